"""`electramed annotate --quantize`: the pipeline's electramed.Transformer.v1 encoders run int8 on CPU,
the choice is part of the run's settings, and pipelines it cannot apply to are refused in one line."""
import json

import pytest
import spacy
from annotate_helpers import records, tiny_pipeline, write_jsonl
from typer.testing import CliRunner

from electramed_spacy.annotate.run import load_pipeline, quantize_overrides
from electramed_spacy.cli import app

runner = CliRunner()
MODE = "dynamic_int8_per_channel"


@pytest.fixture(scope="module")
def trf_path(tiny_electra, tmp_path_factory):
    """A saved pipeline: electramed.Transformer.v1 (tiny ELECTRA) + a NER listening to it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(tiny_electra)}})
    nlp.add_pipe("ner", config={"model": {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
                                          "extra_state_tokens": False, "hidden_width": 16, "maxout_pieces": 2,
                                          "use_upper": False, "tok2vec": {
                                              "@architectures": "spacy-transformers.TransformerListener.v1",
                                              "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}}}})
    nlp.get_pipe("ner").add_label("Chemical")
    nlp.initialize()
    path = tmp_path_factory.mktemp("annotate_trf") / "nlp"
    nlp.to_disk(path)
    return path


def _cli(*args):
    result = runner.invoke(app, ["annotate", *map(str, args), "--quiet"])
    return result.exit_code, result.output


def test_overrides_name_every_transformer_component(trf_path):
    nlp = spacy.load(trf_path)
    assert quantize_overrides(nlp, MODE) == {"components": {"transformer": {"model": {"quantize": MODE, "autocast": None}}}}
    quantized = load_pipeline(trf_path, quantize=MODE)
    assert quantized.config["components"]["transformer"]["model"]["quantize"] == MODE
    assert load_pipeline(trf_path).config["components"]["transformer"]["model"]["quantize"] is None
    text = "Cisplatin induced nephrotoxicity in rats."
    a = nlp(text)._.trf_data.model_output.last_hidden_state
    b = quantized(text)._.trf_data.model_output.last_hidden_state
    assert a.shape == b.shape and 0 < abs(a - b).max() < 0.1 * abs(a).max()  # int8 ran, close to float32


def test_annotate_with_quantize_records_the_setting(trf_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 5)
    code, out = _cli(trf_path, path, tmp_path / "out", "--quantize", MODE)
    assert code == 0, out
    assert [r["id"] for r in records(tmp_path / "out")] == [f"doc-{i:05d}" for i in range(5)]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["quantize"] == MODE
    code, out = _cli(trf_path, path, tmp_path / "out")  # resuming without it would mix float and int8 shards
    assert code == 1 and "quantize" in out


def test_quantize_refusals_are_one_line(trf_path, tmp_path, tmp_path_factory):
    path = write_jsonl(tmp_path / "docs.jsonl", 2)
    cases = [
        ((tiny_pipeline(tmp_path_factory), path, tmp_path / "o1", "--quantize", MODE), "no component of this pipeline"),
        ((trf_path, path, tmp_path / "o2", "--quantize", "int4"), "--quantize must be one of dynamic_int8"),
        ((trf_path, path, tmp_path / "o3", "--quantize", MODE, "--gpu-id", 0), "--quantize is for CPU inference"),
    ]
    for args, expected in cases:
        code, out = _cli(*args)
        assert code == 1 and expected in out and len(out.strip().splitlines()) == 1, out
