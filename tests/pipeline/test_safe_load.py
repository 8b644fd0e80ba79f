"""Loading a crafted pipeline folder: nothing written outside our temp dir, no code unpickled (E008, E009)."""
import io
import pickle
import shutil

import pytest
import spacy
import srsly
import torch

from electramed_spacy.errors import ElectraMedError


@pytest.fixture(scope="module")
def saved_pipeline(tiny_electra, tmp_path_factory):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(tiny_electra)}})
    nlp.initialize()
    path = tmp_path_factory.mktemp("safe_load") / "pipeline"
    nlp.to_disk(path)
    return path, nlp("Cisplatin induced nephrotoxicity.")._.trf_data.model_output.last_hidden_state


def _tamper(src, dst, change):
    """Copy the pipeline at `src` to `dst`, with `change(shim_msg)` applied to the transformer's stored shim."""
    shutil.copytree(src, dst)
    model_file = dst / "transformer" / "model"
    msg = srsly.msgpack_loads(model_file.read_bytes())
    (index, shim_bytes), = [(i, s[0]) for i, s in enumerate(msg["shims"]) if s]
    shim = srsly.msgpack_loads(shim_bytes)
    change(shim)
    msg["shims"][index] = [srsly.msgpack_dumps(shim)]
    model_file.write_bytes(srsly.msgpack_dumps(msg))
    return dst


class Payload:
    """Unpickling this runs `open(marker, 'w')`: the file appears only if the pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_untouched_pipeline_loads_with_the_same_output(saved_pipeline):
    path, expected = saved_pipeline
    nlp = spacy.load(path)
    got = nlp("Cisplatin induced nephrotoxicity.")._.trf_data.model_output.last_hidden_state
    assert got.shape == expected.shape and abs(got - expected).max() < 1e-5


@pytest.mark.parametrize("kind", ["climbs", "absolute", "nested"])
def test_a_stored_file_name_outside_the_temp_dir_is_refused(saved_pipeline, tmp_path, kind):
    path, _ = saved_pipeline
    target = tmp_path / "victim" / "bashrc"
    target.parent.mkdir()
    name = {"climbs": "../" * 12 + str(target).lstrip("/"), "absolute": str(target), "nested": "sub/vocab.txt"}[kind]
    crafted = _tamper(path, tmp_path / "crafted", lambda shim: shim["tokenizer"].__setitem__(name, b"echo owned\n"))
    with pytest.raises(ElectraMedError, match=r"\[E008\].*transformer component's model file"):
        spacy.load(crafted)
    assert not target.exists()


def test_tokenizer_options_other_than_use_fast_are_refused(saved_pipeline, tmp_path):
    path, _ = saved_pipeline
    crafted = _tamper(path, tmp_path / "crafted",
                      lambda shim: shim["tokenizer"].__setitem__("kwargs", {"use_fast": True, "trust_remote_code": True}))
    with pytest.raises(ElectraMedError, match=r"\[E008\].*trust_remote_code"):
        spacy.load(crafted)


def test_pickled_code_in_the_weights_never_runs(saved_pipeline, tmp_path, monkeypatch):
    """Even with the variable that turns torch's weights-only default off, the weights are not unpickled."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path, _ = saved_pipeline
    marker = tmp_path / "code_ran"
    blob = io.BytesIO()
    torch.save({"weight": Payload(marker)}, blob)
    crafted = _tamper(path, tmp_path / "crafted", lambda shim: shim.__setitem__("state", blob.getvalue()))
    with pytest.raises(ElectraMedError, match=r"\[E009\]"):
        spacy.load(crafted)
    assert not marker.exists()
    from electramed_spacy.ml.safe_load import load_state

    with pytest.raises(ElectraMedError, match=r"\[E009\]"):  # a plain pickle, not even torch's format
        load_state(pickle.dumps(Payload(marker)), "a test blob")
    assert not marker.exists()


def test_encoder_owning_shims_check_names_and_weights(tiny_electra, tmp_path, monkeypatch):
    """The QA / marked-pair models' own shim (EncoderShim) goes through the same checks."""
    from transformers import AutoModel, AutoTokenizer

    from electramed_spacy.ml.qa_model import QAModule, QAShim

    shim = QAShim(QAModule(AutoModel.from_pretrained(tiny_electra)))
    shim.tokenizer = AutoTokenizer.from_pretrained(tiny_electra)
    good = shim.to_bytes()
    assert QAShim(None).from_bytes(good)._model is not None

    msg = srsly.msgpack_loads(good)
    target = tmp_path / "escaped.json"
    msg["files"]["../" * 12 + str(target).lstrip("/")] = b"{}"
    with pytest.raises(ElectraMedError, match=r"\[E008\].*QAShim"):
        QAShim(None).from_bytes(srsly.msgpack_dumps(msg))
    assert not target.exists()

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    msg = srsly.msgpack_loads(good)
    blob = io.BytesIO()
    torch.save(Payload(tmp_path / "code_ran"), blob)
    msg["state"] = blob.getvalue()
    with pytest.raises(ElectraMedError, match=r"\[E009\]"):
        QAShim(None).from_bytes(srsly.msgpack_dumps(msg))
    assert not (tmp_path / "code_ran").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc/passwd", "..\\x", "x\x00y", 3])
def test_checked_name_refuses_anything_but_a_plain_file_name(name):
    from electramed_spacy.ml.safe_load import checked_name

    with pytest.raises(ElectraMedError, match=r"\[E008\]"):
        checked_name(name, "a test")
    assert checked_name("tokenizer_config.json", "a test") == "tokenizer_config.json"
