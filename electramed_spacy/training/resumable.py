"""`electramed train`: `spacy train` that can be stopped and continued with the same command.

spaCy's training loop (`spacy.training.loop.train_while_improving`) cannot resume: a job killed
by a cluster's time limit starts over. This loop is the same update, evaluation, model-best and
patience logic, plus a checkpoint every `checkpoint_every` updates and on SIGTERM / SIGINT, in
OUTPUT/checkpoint/:

* `model/`: the pipeline (`nlp.to_disk`);
* `optimizer.npz`: the optimizer's moments, averages and per-parameter update counts (its schedules
  are stepped again to the same position on resume), keyed by
  where each parameter lives (component, node index in `model.walk()`, shim, name), since thinc's
  model ids differ between processes; numpy arrays only, read with `allow_pickle=False`;
* `state.json` + `rng.npz`: step, epoch, position in the epoch, the python `random` state before
  each epoch's shuffle (to rebuild the shuffled order), the random / numpy / torch states after the
  last update, evaluation results, losses, words seen, elapsed seconds; and `config.cfg`.
Rerunning the same command finds the checkpoint, checks the config is the same, restores all of it
and continues at the next update, so the run reaches the scores of an uninterrupted one (tested on
a tiny pipeline). A checkpoint is written to `checkpoint.new` and renamed into place: a kill while
writing leaves the previous one.
"""
import os
import random
import shutil
import signal
import sys
from pathlib import Path
from timeit import default_timer as timer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy
import srsly
from spacy import util
from spacy.schemas import ConfigSchemaTraining
from spacy.training.initialize import init_nlp
from spacy.training.loop import create_before_to_disk_callback, create_evaluation_callback, subdivide_batch, update_meta
from spacy.util import registry, resolve_dot_names
from thinc.api import Config, constant, fix_random_seed, get_current_ops, set_gpu_allocator
from wasabi import Printer

from .memory import trim_heap

CHECKPOINT = "checkpoint"
MODEL_BEST, MODEL_LAST = "model-best", "model-last"


def parameter_keys(nlp) -> Dict[Tuple[int, str], str]:
    """(thinc node or shim id, parameter name) -> a name that is the same in every process."""
    names: Dict[int, str] = {}
    for component, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if not hasattr(model, "walk"):
            continue
        for i, node in enumerate(model.walk()):
            names.setdefault(node.id, f"{component}/{i}")
            for j, shim in enumerate(node.shims):
                names.setdefault(shim.id, f"{component}/{i}/shim{j}")
    return names


def optimizer_state(optimizer, nlp) -> Tuple[Dict[str, numpy.ndarray], Dict[str, Any]]:
    """(arrays, scalars) of a thinc Optimizer, keys made process-independent (`parameter_keys`). Its
    schedules are generators: they are replayed to the same position on load (`load_optimizer_state`)."""
    names = parameter_keys(nlp)
    arrays: Dict[str, numpy.ndarray] = {}
    counts: Dict[str, Dict[str, int]] = {"nr_update": {}, "last_seen": {}}
    for table in ("mom1", "mom2", "averages"):
        for (owner, param), value in (getattr(optimizer, table, None) or {}).items():
            arrays[f"{table}|{names[owner]}|{param}"] = numpy.asarray(value)
    for table in counts:
        for (owner, param), n in getattr(optimizer, table).items():
            counts[table][f"{names[owner]}|{param}"] = int(n)
    return arrays, counts


def load_optimizer_state(optimizer, nlp, arrays, scalars, updates: int) -> None:
    """Restore what `optimizer_state` saved, and step the schedules `updates` times, as the run did."""
    by_name = {name: key for key, name in parameter_keys(nlp).items()}
    for key, value in arrays.items():
        table, owner, param = key.split("|")
        if getattr(optimizer, table, None) is None:
            setattr(optimizer, table, {})
        getattr(optimizer, table)[(by_name[owner], param)] = get_current_ops().asarray(value)
    for table, values in scalars.items():
        for key, n in values.items():
            owner, param = key.split("|")
            getattr(optimizer, table)[(by_name[owner], param)] = n
    for _ in range(updates):
        optimizer.step_schedules()


class Batches:
    """spaCy's `create_train_batches` (shuffle the examples each epoch, then batch), recording the
    python `random` state before each shuffle so a resumed run can rebuild the epoch it stopped in."""

    def __init__(self, nlp, corpus, batcher, max_epochs: int):
        self.examples = list(corpus(nlp))
        if not self.examples:
            raise ValueError("the training corpus has no examples ([paths] train)")
        self.batcher, self.max_epochs = batcher, max_epochs
        self.shuffle_states: List[Any] = []
        self.epoch, self.position = 0, 0

    def replay(self, shuffle_states: List[Any], epoch: int, position: int) -> None:
        """Rebuild the example order of `epoch` and skip its first `position` batches."""
        for state in shuffle_states:
            random.setstate(state)
            random.shuffle(self.examples)
        self.shuffle_states = list(shuffle_states)
        self.epoch, self.position = epoch, position

    def __iter__(self) -> Iterator[Tuple[int, list]]:
        resumed = bool(self.shuffle_states)
        while self.max_epochs < 1 or self.epoch != self.max_epochs:
            if not resumed:
                self.shuffle_states.append(random.getstate())
                random.shuffle(self.examples)
                self.position = 0
            skip, resumed = self.position, False
            for i, batch in enumerate(self.batcher(self.examples)):
                if i < skip:
                    continue
                self.position = i + 1
                yield self.epoch, batch
            self.epoch += 1


def _rng_state() -> Tuple[Dict[str, Any], Dict[str, numpy.ndarray]]:
    import torch

    kind, keys, pos, has_gauss, cached = numpy.random.get_state()
    return ({"python": random.getstate(), "numpy": [kind, int(pos), int(has_gauss), float(cached)]},
            {"numpy_keys": keys, "torch": torch.get_rng_state().numpy()})


def _set_rng_state(scalars: Dict[str, Any], arrays: Dict[str, numpy.ndarray]) -> None:
    import torch

    random.setstate(_as_tuple(scalars["python"]))
    kind, pos, has_gauss, cached = scalars["numpy"]
    numpy.random.set_state((kind, arrays["numpy_keys"], pos, has_gauss, cached))
    torch.set_rng_state(torch.from_numpy(arrays["torch"].copy()))


def _as_tuple(value):
    """JSON turned the tuples of `random.getstate()` into lists; `random.setstate` wants tuples."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def save_checkpoint(output: Path, nlp, optimizer, loop: Dict[str, Any], batches: Batches, config: Config) -> None:
    """Write OUTPUT/checkpoint atomically (a new folder renamed over the old one)."""
    new, old, final = output / f"{CHECKPOINT}.new", output / f"{CHECKPOINT}.old", output / CHECKPOINT
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    nlp.to_disk(new / "model")
    arrays, scalars = optimizer_state(optimizer, nlp)
    numpy.savez(new / "optimizer.npz", **arrays)
    rng_scalars, rng_arrays = _rng_state()
    numpy.savez(new / "rng.npz", **rng_arrays)
    state = {**loop, "losses": {k: float(v) for k, v in loop["losses"].items()},
             "results": [(None if s is None else float(s), int(st)) for s, st in loop["results"]],
             "optimizer": scalars, "rng": rng_scalars, "epoch": batches.epoch, "position": batches.position,
             "shuffle_states": batches.shuffle_states}
    srsly.write_json(new / "state.json", state)
    config.to_disk(new / "config.cfg")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(output: Path) -> Optional[Path]:
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):  # .old: killed between the two renames
        if (output / name / "state.json").exists():
            return output / name
    return None


def train(config_path: Path, output: Path, *, overrides: Dict[str, Any], checkpoint_every: int, use_gpu: int = -1,
          trim: bool = True, stdout=sys.stdout) -> Path:
    """Train as `spacy train` does, checkpointing; continue from OUTPUT/checkpoint when there is one.
    `trim`: hand freed heap memory back to the system after every update (`memory.trim_heap`)."""
    msg = Printer(no_print=True)
    config = util.load_config(config_path, overrides=overrides, interpolate=False)
    checkpoint = find_checkpoint(output)
    if checkpoint is not None:
        saved = util.load_config(checkpoint / "config.cfg", interpolate=False)
        if saved.to_str() != config.to_str():
            raise ValueError(f"{output} holds a checkpoint of a run with another config ({checkpoint / 'config.cfg'}); rerun "
                             "with the same config and overrides to continue it, or choose a new --output.")
        nlp = util.load_model_from_path(checkpoint / "model")
    else:
        nlp = init_nlp(config, use_gpu=use_gpu)
    output.mkdir(parents=True, exist_ok=True)
    cfg = nlp.config.interpolate()
    if cfg["training"]["seed"] is not None:
        fix_random_seed(cfg["training"]["seed"])
    if use_gpu >= 0 and cfg["training"]["gpu_allocator"]:
        set_gpu_allocator(cfg["training"]["gpu_allocator"])
    T = registry.resolve(cfg["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(cfg, [T["train_corpus"], T["dev_corpus"]])
    optimizer = T["optimizer"]
    batches = Batches(nlp, train_corpus, T["batcher"], T["max_epochs"])
    loop: Dict[str, Any] = {"step": -1, "results": [], "losses": {}, "words": 0, "seconds": 0.0, "finished": False}
    if checkpoint is not None:
        state = srsly.read_json(checkpoint / "state.json")
        if state["finished"]:
            stdout.write(msg.good(f"{output} holds a finished run (update {state['step']}); nothing to do") + "\n")
            return output / MODEL_LAST
        with numpy.load(checkpoint / "optimizer.npz", allow_pickle=False) as arrays:
            load_optimizer_state(optimizer, nlp, dict(arrays), state["optimizer"], updates=state["step"] + 1)
        batches.replay([_as_tuple(s) for s in state["shuffle_states"]], state["epoch"], state["position"])
        with numpy.load(checkpoint / "rng.npz", allow_pickle=False) as arrays:
            _set_rng_state(state["rng"], dict(arrays))
        loop = {k: state[k] for k in loop}
        loop["results"] = [tuple(r) for r in loop["results"]]
        stdout.write(msg.info(f"Continuing from {checkpoint} after update {loop['step']}") + "\n")
    run_loop(nlp, optimizer, batches, T, dev_corpus, output, loop, checkpoint_every, config, stdout, trim=trim)
    return output / MODEL_LAST


def run_loop(nlp, optimizer, batches: Batches, T, dev_corpus, output: Path, loop: Dict[str, Any],
             checkpoint_every: int, config: Config, stdout, trim: bool = True) -> None:
    """`train_while_improving` + `train` of spaCy (update, evaluate, model-best, patience, max_steps)
    from update `loop["step"] + 1` on, with checkpoints; see the module docstring."""
    evaluate = create_evaluation_callback(nlp, dev_corpus, T["score_weights"])
    before_to_disk = create_before_to_disk_callback(T["before_to_disk"])
    dropouts = constant(T["dropout"]) if isinstance(T["dropout"], float) else T["dropout"]
    for _ in range(loop["step"] + 1):  # a dropout schedule continues where it stopped
        next(dropouts)
    exclude, annotating = T["frozen_components"], T["annotating_components"]
    with nlp.select_pipes(disable=exclude):
        log_step, finalize_logger = T["logger"](nlp, stdout, sys.stderr)
    start = timer() - loop["seconds"]
    signals: List[int] = []  # a SIGTERM / SIGINT ends the run after the update in progress, checkpointed
    previous = {s: signal.signal(s, lambda signum, frame: signals.append(signum)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for epoch, batch in batches:
            step = loop["step"] + 1
            if T["before_update"]:
                T["before_update"](nlp, {"step": step, "epoch": epoch})
            dropout = next(dropouts)
            for subbatch in subdivide_batch(batch, T["accumulate_gradient"]):
                nlp.update(subbatch, drop=dropout, losses=loop["losses"], sgd=False, exclude=exclude, annotates=annotating)
            for name, proc in nlp.pipeline:
                if name not in exclude and getattr(proc, "is_trainable", False) and proc.model not in (True, False, None):
                    proc.finish_update(optimizer)
            optimizer.step_schedules()
            if trim:  # glibc's heap fragments across padded batch widths: RSS grew 3 -> 8.75 GB over 800 NER updates
                trim_heap()
            loop["step"], loop["words"] = step, loop["words"] + sum(len(eg) for eg in batch)
            loop["seconds"] = timer() - start
            is_best = score = other = None
            if not step % T["eval_frequency"]:
                with nlp.use_params(optimizer.averages):
                    score, other = evaluate()
                loop["results"].append((score, step))
                is_best = score == max(loop["results"])[0]
            info = {"epoch": epoch, "step": step, "score": score, "other_scores": other, "losses": loop["losses"],
                    "checkpoints": loop["results"], "seconds": int(loop["seconds"]), "words": loop["words"]}
            if is_best is not None:
                with nlp.select_pipes(disable=exclude):
                    update_meta(T, nlp, info)
                _save_models(nlp, optimizer, output, before_to_disk, is_best)
                info["output_path"] = str(output / MODEL_LAST)
            log_step(info if is_best is not None else None)
            if is_best is not None:
                loop["losses"] = {}
            # spaCy's stopping rules: no better score for `patience` updates (earliest best step), or max_steps
            best_step = -max((s, -st) for s, st in loop["results"])[1] if loop["results"] else 0
            done = (T["patience"] and step - best_step >= T["patience"]) or (T["max_steps"] and step >= T["max_steps"])
            if signals and not done:
                save_checkpoint(output, nlp, optimizer, loop, batches, config)
                finalize_logger()
                stdout.write(f"Stopped after update {step} (signal {signals[0]}); checkpoint in {output / CHECKPOINT}: "
                             "rerun the same command to continue.\n")
                raise SystemExit(128 + signals[0])
            if done:
                break
            if checkpoint_every and step and not step % checkpoint_every:
                save_checkpoint(output, nlp, optimizer, loop, batches, config)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    finalize_logger()
    _save_models(nlp, optimizer, output, before_to_disk, False)
    loop["finished"] = True
    save_checkpoint(output, nlp, optimizer, loop, batches, config)
    stdout.write(Printer(no_print=True).good("Saved pipeline to output directory", output / MODEL_LAST) + "\n")


def _save_models(nlp, optimizer, output: Path, before_to_disk, is_best: bool) -> None:
    with nlp.use_params(optimizer.averages):
        before_to_disk(nlp).to_disk(output / MODEL_LAST)
    if is_best:
        shutil.rmtree(output / MODEL_BEST, ignore_errors=True)
        shutil.copytree(output / MODEL_LAST, output / MODEL_BEST)

