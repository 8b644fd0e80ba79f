"""`auto` precision: bf16 only where this machine measures it clearly faster; explicit values win."""
import json

import pytest
import spacy
import torch

from electramed_spacy import precision


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """A calibration cache in tmp_path holding the given rates (no timing done)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def write(fp32, bf16, layer=None):
        rates = {"float32": fp32, "bfloat16": bf16}
        if layer is not None:
            rates.update(layer_float32=1000.0, layer_bfloat16=1000.0 * layer)
        path = tmp_path / "electramed" / "precision.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({precision._key(torch.device("cpu")): rates}))

    return write


@pytest.mark.parametrize("fp32, bf16, layer, expected", [
    (80e9, 0.9e9, None, None),  # emulated bf16 (AVX2 only)
    (80e9, 90e9, None, None),  # a tie keeps float32
    (80e9, 400e9, 0.8, None),  # fast matmuls, but the layer as a whole is slower (casts, softmax, norms)
    (80e9, 400e9, 2.5, "bfloat16"),
])
def test_auto_picks_bf16_only_when_clearly_faster(measured, fp32, bf16, layer, expected):
    measured(fp32, bf16, layer)
    assert precision.resolve_autocast("auto") == expected
    assert precision.resolve_autocast("bfloat16") == "bfloat16" and precision.resolve_autocast(None) is None


def test_calibration_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rates = precision.calibration()
    assert rates["float32"] > 1e8 and rates["bfloat16"] > 0  # FLOP/s of a real product on this machine
    calls = []
    monkeypatch.setattr(precision, "matmul_peak", lambda *a, **k: calls.append(a) or 1.0)
    assert precision.calibration() == rates and not calls


def test_the_encoder_and_pretraining_take_auto(measured, tiny_electra):
    from pathlib import Path

    from electramed_spacy.pretraining.config import load_config

    measured(80e9, 0.9e9)  # an AVX2-only CPU: float32
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1",
                                                  "name": str(tiny_electra), "autocast": "auto"}})
    nlp.initialize()
    assert nlp("Cisplatin induced nephrotoxicity.")._.trf_data.model_output.last_hidden_state.dtype == "float32"
    configs = Path(__file__).resolve().parents[1] / "configs"
    assert load_config(configs / "pretrain_tiny.cfg")["training"]["precision"] == "auto"
