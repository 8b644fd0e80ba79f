"""Checkpoints: loaded without running code, broken ones skipped on resume, and a SIGKILL at any
moment (between checkpoints or inside a checkpoint write) resumes to the losses of an uninterrupted run."""
import json
import multiprocessing
import os
import signal
import time

import pytest
import torch

from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.export import export_checkpoint
from electramed_spacy.pretraining.log import LOG, read_log
from electramed_spacy.pretraining.train import pretrain

from .conftest import tiny_config

ROW_KEYS = ("step", "lr", "loss", "gen_loss", "disc_loss", "gen_acc", "disc_acc", "replaced", "tokens")


class RunsCode:
    """Unpickling this creates `marker`: a stand-in for a checkpoint someone hands you that runs code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def rows(run):
    return [{k: r[k] for k in ROW_KEYS} for r in read_log(run / LOG)]


def test_checkpoint_that_runs_code_is_refused(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "step_00000002"
    ckpt.mkdir(parents=True)
    marker = tmp_path / "code_ran"
    torch.save({"model": {}, "step": 2, "rng": RunsCode(marker)}, ckpt / "state.pt")
    with pytest.raises(PretrainError, match=r"--resume: no checkpoint under .*checkpoints loads"):
        pretrain(cfg, resume=True)
    with pytest.raises(PretrainError, match=r"step_00000002/state.pt: holds objects other than tensors .* could run code"):
        export_checkpoint(cfg, checkpoint=ckpt)
    assert not marker.exists()
    torch.load(ckpt / "state.pt", weights_only=False)  # what loading used to do: the payload is real
    assert marker.exists()


def test_resume_skips_broken_checkpoints(corpus, tmp_path, capsys):
    cfg = tiny_config(corpus, tmp_path / "run", **{"training.max_steps": 6, "training.checkpoint_every": 2,
                                                    "training.keep_checkpoints": 3})
    pretrain(cfg, export=False)
    root = tmp_path / "run" / "checkpoints"
    (root / "step_00000006" / "state.pt").write_bytes(b"")  # e.g. a full disk
    truncated = root / "step_00000004" / "state.pt"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    capsys.readouterr()
    summary = pretrain(cfg, resume=True, export=False)
    out = " ".join(capsys.readouterr().out.split())
    assert f"skipping checkpoint {root / 'step_00000006' / 'state.pt'}: the file is empty" in out
    assert f"skipping checkpoint {truncated}: RuntimeError: PytorchStreamReader failed" in out
    assert f"resuming from {root / 'step_00000002'}" in out
    assert summary["step"] == 6 and [r["step"] for r in read_log(tmp_path / "run" / LOG)] == list(range(1, 7))
    for state in root.glob("step_*/state.pt"):
        state.write_bytes(b"")
    with pytest.raises(PretrainError, match=r"--resume: no checkpoint under .*checkpoints loads \(newest: .*step_00000006/state.pt: the file is empty"):
        pretrain(cfg, resume=True)


def run_until_killed(cfg, *, resume, step, in_write):
    """Fork a pre-training run, let it reach `step` (its log row written, or inside its checkpoint
    write) and SIGKILL it there; returns the dead process's pid. Forking skips a fresh interpreter's imports."""
    ctx = multiprocessing.get_context("fork")
    there = ctx.Event()

    def wait_for_kill():
        there.set()
        time.sleep(60)

    def child():
        if in_write:
            save = torch.save

            def slow_save(obj, path):  # the state is written, the rename not done yet
                save(obj, path)
                if obj["step"] == step:
                    wait_for_kill()

            torch.save = slow_save  # in the child only
        pretrain(cfg, resume=resume, on_step=lambda s: s == step and not in_write and wait_for_kill())

    proc = ctx.Process(target=child)
    proc.start()
    try:
        assert there.wait(60), f"the run ended (exit code {proc.exitcode}) before step {step}"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    assert proc.exitcode == -signal.SIGKILL
    return proc.pid


def test_sigkill_then_resume_reproduces_an_uninterrupted_run(corpus, tmp_path):
    extra = {"training.max_steps": 8, "training.checkpoint_every": 2, "training.keep_checkpoints": 2}
    pretrain(tiny_config(corpus, tmp_path / "straight", **extra), export=False)
    cfg = tiny_config(corpus, tmp_path / "killed", **extra)
    root = tmp_path / "killed" / "checkpoints"
    run_until_killed(cfg, resume=False, step=5, in_write=False)
    assert sorted(p.name for p in root.iterdir()) == ["step_00000002", "step_00000004"]
    pid = run_until_killed(cfg, resume=True, step=6, in_write=True)
    dead = root / f".tmp-step_00000006-{pid}"
    assert (dead / "state.pt").exists() and not (root / "step_00000006").exists()
    live = root / f".tmp-step_00000009-{os.getpid()}"  # a write in progress in a live process is left alone
    live.mkdir()
    pretrain(cfg, resume=True, export=False)
    assert sorted(p.name for p in root.iterdir()) == [live.name, "step_00000006", "step_00000008"]
    assert rows(tmp_path / "killed") == rows(tmp_path / "straight")
    assert [r["step"] for r in rows(tmp_path / "killed")] == list(range(1, 9))


def test_checkpoint_with_numpy_rng_array_still_loads(tmp_path):
    """Checkpoints written before RNG states became plain lists hold numpy's key array: data only, allowed."""
    import numpy as np

    from electramed_spacy.pretraining.checkpoint import load_state, set_rng_state

    np.random.seed(3)
    legacy = np.random.get_state()
    expected = np.random.random(3)
    ckpt = tmp_path / "step_00000001"
    ckpt.mkdir()
    torch.save({"model": {}, "optimizer": {}, "step": 1, "vocab_sha": "x",
                "rng": {"python": __import__("random").getstate(), "numpy": legacy, "torch": torch.get_rng_state(),
                        "mask": torch.Generator().get_state()}}, ckpt / "state.pt")
    state = load_state(ckpt)
    np.random.seed(99)
    set_rng_state(state["rng"], torch.Generator())
    assert np.array_equal(np.random.random(3), expected)


@pytest.fixture
def positions(monkeypatch):
    """The data position of every micro-batch the loop reads."""
    import electramed_spacy.pretraining.train as train

    seen = []
    real = train.batch_indices

    def recording(position, size, n, seed):
        seen.append((position, size))
        return real(position, size, n, seed)

    monkeypatch.setattr(train, "batch_indices", recording)
    return seen


def test_resume_reads_the_saved_data_position(corpus, tmp_path, positions):
    """The position comes from the checkpoint, not from step x the current batch: a tampered one is obeyed."""
    from electramed_spacy.pretraining.checkpoint import latest_checkpoint

    cfg = tiny_config(corpus, tmp_path / "run", **{"training.max_steps": 2})
    pretrain(cfg, export=False)
    assert positions == [(0, 8), (8, 8)]
    ckpt = latest_checkpoint(tmp_path / "run")
    state = torch.load(ckpt / "state.pt", weights_only=True)
    assert state["data_position"] == 16 and state["global_batch"] == 8
    state["data_position"] = 1000
    torch.save(state, ckpt / "state.pt")
    positions.clear()
    pretrain(tiny_config(corpus, tmp_path / "run", **{"training.max_steps": 3}), resume=True, export=False)
    assert positions == [(1000, 8)]


def test_changed_global_batch_is_refused_unless_remapped(corpus, tmp_path, positions):
    """Resuming with another batch_size x processes x grad_accum_steps silently skipped or replayed data;
    now it is an error naming both batches and the flag, and --remap-data-position continues exactly
    after the last sequence seen (none skipped, none twice)."""
    from electramed_spacy.pretraining.checkpoint import latest_checkpoint, load_state
    from electramed_spacy.pretraining.train import main

    from .conftest import TINY_CFG, tiny_overrides

    pretrain(tiny_config(corpus, tmp_path / "run", **{"training.max_steps": 2}), export=False)  # 2 x 8 sequences
    smaller = {"training.max_steps": 4, "training.batch_size": 2, "training.grad_accum_steps": 2}
    with pytest.raises(PretrainError, match=r"global batch of 8 sequences per step; this run's is 4 .*--remap-data-position to continue from sequence 16"):
        pretrain(tiny_config(corpus, tmp_path / "run", **smaller), resume=True, export=False)
    with pytest.raises(PretrainError, match="--remap-data-position applies to a resumed run"):
        pretrain(tiny_config(corpus, tmp_path / "other", **smaller), remap_data_position=True)
    positions.clear()
    overrides = [x for k, v in tiny_overrides(corpus, tmp_path / "run", **smaller).items()
                 for x in (f"--{k}", v if isinstance(v, str) else json.dumps(v))]
    main([str(TINY_CFG), "--resume", "--remap-data-position", *overrides])  # what accelerate launch runs
    assert positions == [(16, 2), (18, 2), (20, 2), (22, 2)]
    state = load_state(latest_checkpoint(tmp_path / "run"))
    assert state["step"] == 4 and state["data_position"] == 24 and state["global_batch"] == 4
    positions.clear()
    pretrain(tiny_config(corpus, tmp_path / "run", **{**smaller, "training.max_steps": 5}), resume=True, export=False)
    assert positions == [(24, 2), (26, 2)], "the new batch is the checkpoint's now: no flag needed"


def test_checkpoint_without_global_batch_infers_it(tmp_path):
    """Checkpoints written before `global_batch` was saved had data_position = step x global batch."""
    from electramed_spacy.pretraining.checkpoint import resume_position

    old = {"step": 4, "data_position": 32}
    assert resume_position(tmp_path, old, global_batch=8, remap=False) == 32
    with pytest.raises(PretrainError, match="global batch of 8"):
        resume_position(tmp_path, old, global_batch=16, remap=False)
    assert resume_position(tmp_path, old, global_batch=16, remap=True) == 32
