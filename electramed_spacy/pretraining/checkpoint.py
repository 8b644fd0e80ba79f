"""Checkpoints of the ELECTRA pre-training loop (arXiv:2003.10555, as ELECTRAMed arXiv:2104.09585 ran it):
everything needed to resume exactly, written atomically and loaded without running code.

A checkpoint `OUTPUT/checkpoints/step_NNNNNNNN/state.pt` holds the model, optimizer, step, tokens seen,
the data position (sequences consumed) and the global batch that consumed them, every RNG state, the
vocabulary's fingerprint and the config, as tensors and plain values loaded with `weights_only=True`.
It is written to a temporary dir and renamed, so a kill mid-write never leaves a broken `step_*`;
SIGINT/SIGTERM ask the loop to checkpoint and stop (`StopSignal`).
"""
import os
import pickle
import random
import shutil
import signal
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .errors import PretrainError

CHECKPOINTS = "checkpoints"


def checkpoints(output: Path) -> List[Path]:
    return sorted((Path(output) / CHECKPOINTS).glob("step_*"))


def latest_checkpoint(output: Path) -> Optional[Path]:
    done = checkpoints(output)
    return done[-1] if done else None


def save_checkpoint(output: Path, state: Dict[str, Any], *, step: int, keep: int) -> Path:
    """Write to a temporary dir, then rename: a kill mid-write never leaves a broken `step_*`."""
    root = output / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    # newer (broken, skipped on resume) checkpoints never push out the one just written
    for old in [c for c in checkpoints(output) if c <= final][:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


# what a numpy uint32 array needs to unpickle: data reconstruction only, nothing that can call code
NUMPY_RNG_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_state(ckpt: Path) -> Dict[str, Any]:
    """`weights_only=True`: a checkpoint holds only tensors and plain values, so loading one never runs code."""
    path = ckpt / "state.pt"
    try:
        with torch.serialization.safe_globals(NUMPY_RNG_GLOBALS):  # checkpoints before 0.2 kept numpy's RNG keys as an array
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise PretrainError(f"{path}: holds objects other than tensors and plain values; refused, since loading them could run code. Use checkpoints written by `electramed pretrain` only.") from None
    except Exception as err:  # truncated, empty, missing, not a torch file
        why = "the file is empty" if path.is_file() and path.stat().st_size == 0 else f"{type(err).__name__}: {str(err).split('. ')[0]}"
        raise PretrainError(f"{path}: {why}. The checkpoint is broken, e.g. by a full disk or an interrupted copy; delete {ckpt}.") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "rng", "vocab_sha"} <= state.keys():
        raise PretrainError(f"{path}: not an `electramed pretrain` checkpoint (needs model, optimizer, step, rng, vocab_sha); delete {ckpt}.")
    return state


def load_newest(output: Path) -> Tuple[Path, Dict[str, Any]]:
    """The newest checkpoint that loads; broken ones are reported and skipped."""
    reasons = []
    for ckpt in reversed(checkpoints(output)):
        try:
            state = load_state(ckpt)
        except PretrainError as err:
            print(f"skipping checkpoint {err}")
            reasons.append(str(err))
            continue
        print(f"resuming from {ckpt} (step {state['step']})")
        return ckpt, state
    if not reasons:
        raise PretrainError(f"--resume: no checkpoint under {output / CHECKPOINTS}. Run without --resume to start.")
    raise PretrainError(f"--resume: no checkpoint under {output / CHECKPOINTS} loads (newest: {reasons[0]}) Start again with --overwrite, or set [paths] output to a new directory.")


def resume_position(ckpt: Path, state: Dict[str, Any], *, global_batch: int, remap: bool) -> int:
    """The data position (sequences consumed) saved in `state`, read rather than recomputed from the current batch.

    A different global batch (batch_size x processes x grad_accum_steps) than the checkpoint's, e.g. after a
    change of GPU count, makes every later step see another number of sequences, so the run is no longer the
    one configured: refused unless `remap`, which continues from the saved position with the new batch (no
    sequence skipped or seen twice). Checkpoints from before `global_batch` was saved had position = step x batch.
    """
    step = state["step"]
    position = state.get("data_position", step * global_batch)
    saved = state.get("global_batch") or (position // step if step else global_batch)
    if saved != global_batch and not remap:
        raise PretrainError(
            f"{ckpt} was trained with a global batch of {saved} sequences per step; this run's is {global_batch} "
            f"([training] batch_size x processes x grad_accum_steps). Resume with the original batch_size, process count "
            f"and grad_accum_steps, or pass --remap-data-position to continue from sequence {position:,} with the new batch.")
    if saved != global_batch:
        print(f"re-mapping the data position: continuing from sequence {position:,} with {global_batch} sequences per step (was {saved})")
    return position


def remove_dead_tmp(folder: Path, pattern: str) -> None:
    """Remove the temporary dirs `NAME-PID` that a killed process left mid-write (its pid no longer runs)."""
    for tmp in folder.glob(pattern):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def rng_state(mask_gen: torch.Generator) -> Dict[str, Any]:
    """Every RNG state, as tensors and plain values (what `weights_only=True` loads)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, keys.tolist(), pos, has_gauss, gauss),
             "torch": torch.get_rng_state(), "mask": mask_gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any], mask_gen: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    mask_gen.set_state(state["mask"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopSignal:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop after the current step."""

    def __init__(self):
        self.received: Optional[int] = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
