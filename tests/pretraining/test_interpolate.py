"""`electramed interpolate` on two tiny random BERTs built here: the weights are the weighted mean,
alpha 0 / 1 give the ends back, and encoders that do not line up are refused."""
import json

import pytest
import torch
from conftest import save_tiny_bert
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.interpolate import interpolate

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "aspirin", "warfarin", "binds"]


def _perturbed(path, source):
    """`source` with 1.0 added to every weight, same tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(source)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(source).save_pretrained(path)
    return path


def test_weights_are_the_weighted_mean(tmp_path):
    from transformers import AutoModel

    start = save_tiny_bert(tmp_path / "start", VOCAB)
    end = _perturbed(tmp_path / "end", start)
    interpolate(str(start), str(end), 0.25, tmp_path / "mix")
    a, b = AutoModel.from_pretrained(start).state_dict(), AutoModel.from_pretrained(end).state_dict()
    mix = AutoModel.from_pretrained(tmp_path / "mix").state_dict()
    for name, weight in mix.items():
        if weight.is_floating_point():
            torch.testing.assert_close(weight, 0.75 * a[name] + 0.25 * b[name])
    assert json.loads((tmp_path / "mix" / "interpolation.json").read_text())["alpha"] == 0.25
    interpolate(str(start), str(end), 1.0, tmp_path / "one")
    assert all(torch.equal(v, b[k]) for k, v in AutoModel.from_pretrained(tmp_path / "one").state_dict().items())


def test_encoders_that_do_not_line_up_are_refused(tmp_path):
    start = save_tiny_bert(tmp_path / "start", VOCAB)
    deeper = save_tiny_bert(tmp_path / "deeper", VOCAB, layers=3)
    with pytest.raises(PretrainError, match="lacks or shapes differently"):
        interpolate(str(start), str(deeper), 0.5, tmp_path / "x")
    other_vocab = save_tiny_bert(tmp_path / "other", VOCAB[:-1] + ["inhibits"])
    with pytest.raises(PretrainError, match="different vocabularies"):
        interpolate(str(start), str(other_vocab), 0.5, tmp_path / "y")
    with pytest.raises(PretrainError, match="alpha"):
        interpolate(str(start), str(start), 1.5, tmp_path / "z")
    assert not any((tmp_path / n).exists() for n in "xyz")


def test_the_command_writes_a_new_folder_only(tmp_path):
    start = save_tiny_bert(tmp_path / "start", VOCAB)
    result = CliRunner().invoke(app, ["interpolate", str(start), str(start), str(tmp_path / "mix"), "--alpha", "0.5"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "mix" / "interpolation.json").read_text())["alpha"] == 0.5
    result = CliRunner().invoke(app, ["interpolate", str(start), str(start), str(tmp_path / "mix")])
    assert result.exit_code == 2 and "exists" in result.output
    result = CliRunner().invoke(app, ["interpolate", str(start), str(start), str(tmp_path / "bad"), "--alpha", "2"])
    assert result.exit_code == 1 and "alpha" in result.output and not (tmp_path / "bad").exists()
