"""The comparison logic of benchmarks/pretraining/ddp_check.py (2 processes vs 1) and the streamed corpus
repetition of benchmarks/pretraining/shard_scale.py; nothing here is timed."""

import pytest
import torch
from conftest import load_benchmark


def _load(name):
    return load_benchmark(name)


@pytest.fixture(scope="module")
def ddp_check():
    return _load("ddp_check")


def _rows(losses):
    return [{"step": i + 1, "loss": v} for i, v in enumerate(losses)]


def test_compare_logs_equal_and_within(ddp_check):
    out = ddp_check.compare_logs(_rows([40.0, 39.0]), _rows([40.0, 39.0]), ["loss"], rtol=1e-4, atol=2e-5)
    assert out["loss"] == {"max_abs": 0.0, "max_rel": 0.0, "worst_step": 1, "within": True, "steps": 2}
    out = ddp_check.compare_logs(_rows([40.001, 39.0]), _rows([40.0, 39.0]), ["loss"], rtol=1e-4, atol=2e-5)
    assert out["loss"]["within"] and out["loss"]["worst_step"] == 1
    assert out["loss"]["max_abs"] == pytest.approx(1e-3) and out["loss"]["max_rel"] == pytest.approx(2.5e-5)


def test_compare_logs_out_of_tolerance_names_the_step(ddp_check):
    out = ddp_check.compare_logs(_rows([40.0, 39.5, 38.0]), _rows([40.0, 39.0, 38.0]), ["loss"], rtol=1e-4, atol=2e-5)
    assert not out["loss"]["within"] and out["loss"]["worst_step"] == 2
    assert out["loss"]["max_rel"] == pytest.approx(0.5 / 39.0)


def test_compare_logs_zero_reference(ddp_check):
    out = ddp_check.compare_logs([{"step": 1, "acc": 0.1}], [{"step": 1, "acc": 0.0}], ["acc"], rtol=1e-4, atol=2e-5)
    assert out["acc"]["max_rel"] == float("inf") and not out["acc"]["within"]
    out = ddp_check.compare_logs([{"step": 1, "acc": 0.0}], [{"step": 1, "acc": 0.0}], ["acc"])
    assert out["acc"]["max_rel"] == 0.0 and out["acc"]["within"]


def test_compare_logs_refuses_different_steps(ddp_check):
    with pytest.raises(ValueError, match="same steps"):
        ddp_check.compare_logs(_rows([1.0]), _rows([1.0, 2.0]), ["loss"])
    with pytest.raises(ValueError, match="same steps"):
        ddp_check.compare_logs([], [], ["loss"])


def test_compare_weights(ddp_check):
    a = {"w": torch.zeros(2, 2), "b": torch.ones(3), "empty": torch.zeros(0)}
    b = {"w": torch.tensor([[0.0, 0.5], [0.0, 0.0]]), "b": torch.ones(3), "empty": torch.zeros(0)}
    assert ddp_check.compare_weights(a, b) == {"max_abs": 0.5, "tensor": "w", "tensors": 3}
    with pytest.raises(ValueError, match="keys"):
        ddp_check.compare_weights(a, {"w": a["w"]})


def test_make_corpus_repeats_whole_documents(tmp_path):
    shard_scale = _load("shard_scale")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Sentence one.\nSentence two.\n", encoding="utf8")
    b.write_text("Other doc.", encoding="utf8")  # no final newline: the blank line after it keeps documents apart
    out = tmp_path / "big" / "corpus.txt"
    size = shard_scale.make_corpus([a, b], 3, out)
    text = out.read_text(encoding="utf8")
    assert size == out.stat().st_size
    assert text == "Sentence one.\nSentence two.\n\n\nOther doc.\n\n" * 3
