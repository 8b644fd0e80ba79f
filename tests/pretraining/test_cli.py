"""`electramed vocab | shards | pretrain | export | init-model` through typer's CliRunner, errors included."""
import json
import re

import pytest
from typer.testing import CliRunner

from electramed_spacy.cli import app

from .conftest import TINY_CFG, tiny_overrides

runner = CliRunner()


def args(corpus, output, **extra):
    out = []
    for key, value in tiny_overrides(corpus, output, **extra).items():
        out += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    return out


def run(*argv):
    """(result, output without colour codes and with line wrapping undone)."""
    result = runner.invoke(app, [str(a) for a in argv])
    return result, " ".join(re.sub(r"\x1b\[[0-9;]*m", "", result.output).split())


def test_vocab_shards_pretrain_export(corpus, tmp_path):
    out = tmp_path / "run"
    result, text = run("vocab", TINY_CFG, *args(corpus, out))
    assert result.exit_code == 0, text
    assert (out / "vocab" / "tokenizer.json").exists() and (out / "vocab" / "vocab.txt").exists()
    result, text = run("shards", TINY_CFG, *args(corpus, out))
    assert result.exit_code == 0, text
    assert "sequences" in text and (out / "shards" / "manifest.json").exists()
    result, text = run("pretrain", TINY_CFG, *args(corpus, out, **{"training.max_steps": 3}))
    assert result.exit_code == 0, text
    assert "tokens per step" in text and (out / "model" / "config.json").exists()
    result, text = run("export", TINY_CFG, *args(corpus, out, **{"training.max_steps": 3}), "--output", tmp_path / "exp")
    assert result.exit_code == 0, text
    assert (tmp_path / "exp" / "generator" / "config.json").exists()
    # export replaces a non-empty directory only with --overwrite, and deletes nothing it was not given
    (tmp_path / "exp.tmp").mkdir()
    (tmp_path / "exp.tmp" / "mine.txt").write_text("keep")
    result, text = run("export", TINY_CFG, *args(corpus, out), "--output", tmp_path / "exp")
    assert result.exit_code == 1 and f"{tmp_path / 'exp'} already exists and is not empty: pass --overwrite" in text
    result, text = run("export", TINY_CFG, *args(corpus, out), "--output", tmp_path / "exp", "--overwrite")
    assert result.exit_code == 0, text
    assert (tmp_path / "exp" / "config.json").exists() and (tmp_path / "exp.tmp" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "exp", "exp.tmp", "run"]
    # a rerun (as `spacy project run` does after a change) needs --overwrite; the old run is replaced
    result, text = run("pretrain", TINY_CFG, *args(corpus, out, **{"training.max_steps": 2}))
    assert result.exit_code == 1 and "already holds checkpoints" in text
    (out / "notes.txt").write_text("mine")
    result, text = run("pretrain", TINY_CFG, *args(corpus, out, **{"training.max_steps": 2, "corpus.max_seq_length": 16}), "--overwrite")
    assert result.exit_code == 0, text
    assert (out / "notes.txt").read_text() == "mine", "--overwrite removes only what a run writes"
    assert json.loads((out / "model" / "electramed_card.json").read_text())["steps"] == 2


def test_init_model_loads(corpus, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    result, text = run("init-model", TINY_CFG, *args(corpus, tmp_path / "run"), "--output", tmp_path / "random")
    assert result.exit_code == 0, text
    model = AutoModel.from_pretrained(str(tmp_path / "random"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "random"))
    assert model.config.hidden_size == 32 and tok.is_fast and tok.do_lower_case and tok.model_max_length == 64
    assert "random" in (tmp_path / "random" / "README.md").read_text()


@pytest.mark.parametrize("command", ["vocab", "shards", "pretrain", "init-model"])
def test_misspelled_override(command, corpus, tmp_path):
    extra = ["--output", tmp_path / "m"] if command == "init-model" else []
    result, text = run(command, TINY_CFG, *args(corpus, tmp_path / "run"), "--training.max_step", "3", *extra)
    assert result.exit_code == 1
    assert "unknown key 'max_step' in [training]. Did you mean 'max_steps'?" in text


def test_bad_corpus_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Fine.\n\xff\xfe broken\n")
    result, text = run("pretrain", TINY_CFG, *args(bad, tmp_path / "run"))
    assert result.exit_code == 1 and "bad.txt:2: bytes that are not UTF-8" in text
    assert not (tmp_path / "run" / "vocab").exists(), "no work before the input is checked"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf8")
    result, text = run("shards", TINY_CFG, *args(empty, tmp_path / "run"))
    assert result.exit_code == 1 and "The corpus is empty" in text
    long = tmp_path / "long.txt"
    long.write_text("a " * 60000 + "\n", encoding="utf8")
    result, text = run("vocab", TINY_CFG, *args(long, tmp_path / "run"))
    assert result.exit_code == 1 and "long.txt:1: a line of 120,001 characters" in text
    result, text = run("pretrain", TINY_CFG, *args(tmp_path / "nope.txt", tmp_path / "run"))
    assert result.exit_code == 1 and "nope.txt does not exist" in text


def test_bad_vocab_file_and_config(corpus, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n", encoding="utf8")
    result, text = run("vocab", TINY_CFG, *args(corpus, tmp_path / "run", **{"paths.vocab": str(vocab)}))
    assert result.exit_code == 1 and "lacks the special tokens" in text
    result, text = run("pretrain", tmp_path / "missing.cfg")
    assert result.exit_code == 1 and "missing.cfg does not exist" in text
    result, text = run("export", TINY_CFG, *args(corpus, tmp_path / "run"))
    assert result.exit_code == 1 and "No checkpoint to export" in text


def test_resume_or_start_is_one_command_for_every_session(corpus, tmp_path):
    """The protocol for runs longer than a session: the same command starts, then resumes the same schedule."""
    out = tmp_path / "run"
    base = args(corpus, out, **{"training.max_steps": 6, "training.checkpoint_every": 2})
    result, text = run("pretrain", TINY_CFG, *base, "--training.max_minutes", "0.0001", "--resume-or-start")
    assert result.exit_code == 0, text
    assert f"Starting {out}" in text and "stopped at step 1/6 (max_minutes" in text
    result, text = run("pretrain", TINY_CFG, *base, "--resume-or-start")
    assert result.exit_code == 0, text
    assert f"Resuming {out}" in text and "steps 1 -> 6" in text and "stopped at step 6/6" in text
    result, text = run("pretrain", TINY_CFG, *base, "--resume-or-start", "--resume")
    assert result.exit_code == 1 and "drop --resume / --overwrite" in text
