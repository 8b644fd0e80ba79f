"""A run SIGKILLed at any moment and rerun gives exactly the records of an uninterrupted run.

The run is forked (so it can use a slow test-only component registered here),
killed with SIGKILL at seeded random moments (during start-up, mid-shard, between
shards), rerun, killed again, until a run finishes. The output must then equal the
uninterrupted run byte for byte: no record missing, none twice.
"""
import os
import random
import signal
import time

import pytest
import spacy
from annotate_helpers import output_bytes, records, shard_files, tiny_pipeline, write_jsonl
from spacy.language import Language

from electramed_spacy.annotate import annotate


@Language.component("annotate_test_slow")
def slow(doc):
    time.sleep(0.004)  # ~a real pipeline's pace, so kills land mid-run
    return doc


def _run(nlp_path, input_path, output):
    annotate(nlp_path, input_path, output, shard_size=8, batch_size=4, progress=False)


def _forked_run(*args) -> int:
    pid = os.fork()
    if pid == 0:  # child: run, exit without pytest's teardown
        code = 1
        try:
            _run(*args)
            code = 0
        finally:
            os._exit(code)
    return pid


def _exit_status(pid):
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def _kill_when(pid, out, min_shards: int, delay: float):
    """SIGKILL the run `delay` s after it has `min_shards` shard files; its exit code if it finished first."""
    while len(shard_files(out)) < min_shards:
        if (code := _exit_status(pid)) is not None:
            return code
        time.sleep(0.002)
    time.sleep(delay)
    if (code := _exit_status(pid)) is not None:
        return code
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_at_any_moment_then_rerun_loses_and_duplicates_nothing(tmp_path_factory, tmp_path):
    nlp = spacy.load(tiny_pipeline(tmp_path_factory))
    nlp.add_pipe("annotate_test_slow")
    nlp.to_disk(tmp_path / "slow_nlp")
    input_path = write_jsonl(tmp_path / "docs.jsonl", 120)  # 15 shards
    args = (tmp_path / "slow_nlp", input_path)

    start = time.monotonic()
    _run(*args, tmp_path / "reference")
    per_shard = (time.monotonic() - start) / 15  # an upper bound: start-up included
    expected = output_bytes(tmp_path / "reference")

    rng = random.Random(0)
    out = tmp_path / "killed"
    # once during start-up, then at a random moment after each new shard (mid-shard, mid-write, between shards)
    shards_at_kill = []
    code = _kill_when(_forked_run(*args, out), out, 0, rng.uniform(0, 2 * per_shard))
    while code is None and len(shards_at_kill) < 6:
        shards_at_kill.append(len(shard_files(out)))
        code = _kill_when(_forked_run(*args, out), out, shards_at_kill[-1] + 1, rng.uniform(0, per_shard))
    if code is None:
        code = _kill_when(_forked_run(*args, out), out, 16, 0)  # let the last run finish
    assert code == 0
    assert len(shards_at_kill) >= 3 and shards_at_kill[-1] < 15, shards_at_kill  # the kills did interrupt work

    assert output_bytes(out) == expected
    ids = [r["id"] for r in records(out)]
    assert ids == [f"doc-{i:05d}" for i in range(120)]  # none missing, none twice, input order
    assert not list(out.glob("*.tmp"))
