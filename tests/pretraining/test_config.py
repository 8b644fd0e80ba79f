"""Config schema: every key known, misspellings suggested, overrides parsed."""
import pytest

from electramed_spacy.pretraining.config import config_from_str, config_to_str, load_config, parse_overrides
from electramed_spacy.pretraining.errors import PretrainError

from .conftest import REPO, TINY_CFG


@pytest.mark.parametrize("name", ["pretrain_tiny.cfg", "pretrain_small.cfg"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg["objective"]["disc_weight"] == 50.0 and cfg["objective"]["gen_weight"] == 1.0


def test_small_is_electra_small():
    m = load_config(REPO / "configs" / "pretrain_small.cfg")["model"]
    assert (m["num_hidden_layers"], m["hidden_size"], m["embedding_size"], m["num_attention_heads"], m["generator_size"]) == (12, 256, 128, 4, 0.25)


def test_misspelled_key_in_file_suggests(tmp_path):
    text = TINY_CFG.read_text().replace("max_steps =", "max_step =")
    with pytest.raises(PretrainError, match=r"unknown key 'max_step' in \[training\]. Did you mean 'max_steps'\?"):
        config_from_str(text, source="x.cfg")


def test_misspelled_override_suggests():
    with pytest.raises(PretrainError, match=r"override --training.learning_rate.*unknown key.*"):
        load_config(TINY_CFG, {"training.learning_rate": 0.1})
    with pytest.raises(PretrainError, match=r"unknown config section \[trainig\]. Did you mean 'training'\?"):
        load_config(TINY_CFG, {"trainig.lr": 0.1})


def test_wrong_type_and_choice():
    with pytest.raises(PretrainError, match=r"\[training\] max_steps = 'ten' should be int"):
        load_config(TINY_CFG, {"training.max_steps": "ten"})
    with pytest.raises(PretrainError, match="choose one of auto, bf16, fp16, fp32"):
        load_config(TINY_CFG, {"training.precision": "fp8"})


def test_missing_key():
    text = "\n".join(line for line in TINY_CFG.read_text().splitlines() if not line.startswith("grad_clip"))
    with pytest.raises(PretrainError, match=r"\[training\] lacks grad_clip"):
        config_from_str(text)


def test_parse_overrides_and_round_trip():
    o = parse_overrides(["--training.max_steps", "10", "--paths.vocab=null", "--paths.output", "out/dir", "--corpus.lowercase", "false"])
    assert o == {"training.max_steps": 10, "paths.vocab": None, "paths.output": "out/dir", "corpus.lowercase": False}
    with pytest.raises(PretrainError, match="section.key value"):
        parse_overrides(["stray"])
    cfg = load_config(TINY_CFG, o)
    assert config_from_str(config_to_str(cfg)) == cfg


@pytest.mark.parametrize("key, value, message", [
    ("training.batch_size", 0, r"batch_size = 0 must be >= 1"),
    ("training.max_steps", 0, r"max_steps = 0 must be >= 1 .*untrained model"),
    ("training.grad_accum_steps", 0, r"grad_accum_steps = 0 must be >= 1"),
    ("training.checkpoint_every", 0, r"checkpoint_every = 0 must be >= 1"),
    ("training.lr", -1e-4, r"needs lr > 0"),
    ("training.min_lr", 1.0, r"0 <= min_lr <= lr"),
])
def test_broken_training_settings_are_refused_at_start(key, value, message):
    with pytest.raises(PretrainError, match=message):
        load_config(TINY_CFG, {key: value})


def test_a_vocab_with_a_repeated_line_names_both_lines(tmp_path):
    from electramed_spacy.pretraining.vocab import load_vocab_file

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\naspirin\nstroke\naspirin\n")
    with pytest.raises(PretrainError, match=r"vocab.txt:8: 'aspirin' is already on line 6"):
        load_vocab_file(vocab)


def test_a_step_that_cannot_fit_in_memory_is_refused_before_training():
    import torch

    from electramed_spacy.pretraining.train import check_step_memory, step_memory_bytes

    cfg = load_config(REPO / "configs" / "pretrain_small.cfg")
    small = step_memory_bytes(cfg, vocab_size=31090, seq_len=128, n_params=14_000_000)
    assert "GiB estimated per micro-step" in check_step_memory(small, torch.device("cpu"))
    cfg["training"]["batch_size"] = 1_000_000
    huge = step_memory_bytes(cfg, vocab_size=31090, seq_len=128, n_params=14_000_000)
    assert huge > 1000 * small
    with pytest.raises(PretrainError, match=r"would not fit\. Lower \[training\] batch_size"):
        check_step_memory(huge, torch.device("cpu"))
