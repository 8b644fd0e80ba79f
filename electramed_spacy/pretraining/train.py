"""The ELECTRA pre-training loop (Clark et al. 2020, arXiv:2003.10555; ELECTRAMed,
arXiv:2104.09585), in the order it runs: config -> input checks -> Accelerator -> vocab ->
shards -> seed -> model -> optimizer -> prepare -> resume -> loop -> checkpoint -> export.

The same code runs on one CPU, one GPU or many GPUs through Hugging Face Accelerate:

    electramed pretrain configs/pretrain_small.cfg                    # 1 CPU / 1 GPU
    accelerate launch --multi_gpu --num_processes 8 -m electramed_spacy.pretraining.train \\
        configs/pretrain_small.cfg --training.batch_size 128           # 8 GPUs, 1 node
    accelerate launch --num_machines 2 --machine_rank R --main_process_ip HOST \\
        --num_processes 16 -m electramed_spacy.pretraining.train CONFIG  # 2 nodes x 8 GPUs

`batch_size` is per device and micro-step: a step sees batch_size x processes x
grad_accum_steps sequences (printed up front). Checkpoints (every `checkpoint_every`
steps, on SIGINT/SIGTERM and at the end) hold the model, optimizer, step, data position
and every RNG state, as tensors and plain values loaded with `weights_only=True` (a checkpoint
cannot run code). `--resume` continues from the newest one that loads and reproduces the losses
of an uninterrupted run, also after a SIGKILL (tested on CPU; on several GPUs only rank 0's RNG
state is kept).
"""
import contextlib
import json
import os
import pickle
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .config import config_to_str, load_config, parse_overrides
from .data import PackedSequences, batch_indices, build_shards, resolve_corpus, scan_corpus, token_type_ids, _fingerprint
from .errors import PretrainError
from .masking import mask_tokens
from .model import build_pretrainer, count_params, get_lr, param_groups

CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"


# ---------------------------------------------------------------- data preparation
def prepare_vocab(cfg: Dict[str, Any], files: List[Path], *, locked: Optional[str] = None) -> Path:
    """The run's tokenizer dir (`OUTPUT/vocab`): trained WordPiece, [paths] vocab, or init_from's vocab."""
    from .vocab import build_vocab

    out = Path(cfg["paths"]["output"]) / "vocab"
    vocab_file = cfg["paths"]["vocab"]
    init_from = cfg["model"]["init_from"]
    if init_from and not vocab_file:
        vocab_file = str(Path(init_from) / "vocab.txt")
        if not Path(vocab_file).exists():
            raise PretrainError(f"[model] init_from = {init_from!r} has no vocab.txt; set [paths] vocab to the checkpoint's vocabulary.")
    build_vocab(files, out, vocab_file=vocab_file, lowercase=cfg["corpus"]["lowercase"], size=cfg["vocab"]["size"],
                min_frequency=cfg["vocab"]["min_frequency"], max_seq_length=cfg["corpus"]["max_seq_length"], locked=locked)
    return out


def prepare_data(cfg: Dict[str, Any], *, progress: bool = True) -> Dict[str, Any]:
    """Checks the corpus (fails fast on bad input), then builds vocab and shards, skipping finished work.

    Once checkpoints exist under [paths] output, its vocabulary is locked: other vocab settings are an error.
    """
    files = resolve_corpus(cfg["paths"]["corpus"])
    ranges = scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
    output = Path(cfg["paths"]["output"])
    ckpt = latest_checkpoint(output)
    locked = None
    if ckpt is not None:
        locked = (f"The vocabulary settings ([paths] vocab/corpus, [vocab], [corpus] lowercase) do not match the checkpoint "
                  f"{ckpt}, which was trained with {output / 'vocab'}. Resume with the original settings, or start a new [paths] output")
    vocab_dir = prepare_vocab(cfg, files, locked=locked)
    if cfg["model"]["init_from"]:
        check_init_from(cfg["model"]["init_from"], vocab_dir)
    manifest = build_shards(files, vocab_dir, Path(cfg["paths"]["output"]) / "shards", cfg["corpus"], progress=progress, ranges=ranges)
    return {"files": files, "vocab_dir": vocab_dir, "manifest": manifest}


def check_init_from(init_from: str, vocab_dir: Path) -> None:
    """Before any tokenisation: the checkpoint to continue from must exist and share the vocabulary's size."""
    from transformers import AutoConfig
    from tokenizers import Tokenizer

    path = Path(init_from)
    if not (path / "config.json").exists():
        raise PretrainError(f"[model] init_from = {init_from!r} is not a save_pretrained directory (no config.json).")
    size = Tokenizer.from_file(str(vocab_dir / "tokenizer.json")).get_vocab_size()
    expected = AutoConfig.from_pretrained(str(path)).vocab_size
    if size != expected:
        raise PretrainError(
            f"The vocabulary ({size} tokens) does not match the checkpoint {path} ({expected}). "
            f"Set [paths] vocab = null to use the checkpoint's own vocab.txt, or point it at {path}/vocab.txt."
        )


# ---------------------------------------------------------------- checkpoints
def checkpoints(output: Path) -> List[Path]:
    return sorted((output / CHECKPOINTS).glob("step_*"))


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


# ---------------------------------------------------------------- the loop
RUN_FILES = ("vocab", "shards", CHECKPOINTS, "model", LOG, "curves.png", "config.cfg")


def clean_output(output: Path) -> None:
    """Remove what an earlier run wrote under [paths] output (only the names a run writes)."""
    for name in RUN_FILES:
        path = Path(output) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def pretrain(cfg: Dict[str, Any], *, resume: bool = False, overwrite: bool = False, progress: Optional[bool] = None,
             on_step: Optional[Callable[[int], None]] = None, export: bool = True) -> Dict[str, Any]:
    """Run (or continue) pre-training as configured; returns a summary. `on_step(step)` is for tests.

    `overwrite` starts from scratch, removing an earlier run's vocab, shards, checkpoints and export
    (what `spacy project run` wants when a dependency changed)."""
    from accelerate import Accelerator

    t_cfg, paths = cfg["training"], cfg["paths"]
    output = Path(paths["output"])
    progress = t_cfg["progress_bar"] if progress is None else progress
    if t_cfg["num_threads"]:
        torch.set_num_threads(t_cfg["num_threads"])

    # 1. checks that fail fast, accelerator, then vocab and shards (each skipped when already built)
    if overwrite and resume:
        raise PretrainError("--overwrite and --resume contradict each other: pick one.")
    if overwrite:
        files = resolve_corpus(paths["corpus"])  # check the input before deleting the old run
        scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
        clean_output(output)
    remove_dead_tmp(output / CHECKPOINTS, ".tmp-step_*")
    ckpt, state = load_newest(output) if resume else (None, None)
    if not resume and latest_checkpoint(output) is not None:
        raise PretrainError(f"{output} already holds checkpoints ({latest_checkpoint(output).name}). Use --resume to continue, or set [paths] output to a new directory.")
    precision = t_cfg["precision"]
    use_cuda = torch.cuda.is_available()
    if precision == "fp16" and not use_cuda:
        raise PretrainError("[training] precision = fp16 needs a CUDA GPU; on CPU use bf16 (or fp32).")
    accelerator = Accelerator(cpu=not use_cuda, mixed_precision="no" if precision == "fp32" else precision)
    with accelerator.main_process_first():  # rank 0 builds vocab and shards; the others then find them done
        data = prepare_data(cfg, progress=progress and accelerator.is_main_process)
    vocab_sha = _fingerprint(data["vocab_dir"] / "tokenizer.json")
    if state is not None:
        if state["vocab_sha"] != vocab_sha:
            raise PretrainError(f"The vocabulary in {data['vocab_dir']} does not match the checkpoint {ckpt} (trained with another vocab.txt or corpus). Resume with the original [paths] vocab/corpus, or start a new [paths] output.")

    # 2. seed, data
    seed = t_cfg["seed"]
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    dataset = PackedSequences(output / "shards")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(data["vocab_dir"]))
    special_ids = sorted(set(tokenizer.all_special_ids))
    pad_id, sep_id, mask_id = tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id

    # 3. model and optimizer; weight decay on matrices only
    model = build_pretrainer(cfg, vocab_size=len(tokenizer), pad_token_id=pad_id)
    optimizer = torch.optim.AdamW(param_groups(model, t_cfg["weight_decay"]), lr=t_cfg["lr"],
                                  betas=(t_cfg["beta1"], t_cfg["beta2"]), eps=t_cfg["eps"])
    step, tokens_seen, elapsed_before = 0, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen, elapsed_before = state["step"], state["tokens_seen"], state["elapsed"]
    model, optimizer = accelerator.prepare(model, optimizer)
    mask_gen = torch.Generator(device=device)
    mask_gen.manual_seed(seed * 1000 + rank)
    if state is not None:
        set_rng_state(state["rng"], mask_gen)

    micro, accum, max_steps = t_cfg["batch_size"], t_cfg["grad_accum_steps"], t_cfg["max_steps"]
    seqs_per_step = micro * world * accum
    max_len = dataset.max_seq_length
    obj = cfg["objective"]
    lr_args = dict(lr=t_cfg["lr"], warmup_steps=t_cfg["warmup_steps"], max_steps=max_steps, min_lr=t_cfg["min_lr"])
    raw = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.cfg").write_text(config_to_str(cfg), encoding="utf8")
        print(f"corpus: {dataset.manifest['sequences']:,} sequences, {dataset.manifest['tokens']:,} tokens in {len(dataset.arrays)} shards; vocab {len(tokenizer):,}")
        print(f"model: discriminator {count_params(raw.discriminator)/1e6:.2f}M, generator {count_params(raw.generator)/1e6:.2f}M params (shared embeddings counted in both); "
              f"device {device} x {world}, precision {precision}, threads {torch.get_num_threads()}")
        print(f"tokens per step: {micro} seqs x {world} processes x {accum} accum x {max_len} = {seqs_per_step * max_len:,}; "
              f"steps {step} -> {max_steps}")

    # 4. the loop
    log_path = output / LOG
    if accelerator.is_main_process:
        _truncate_log(log_path, step)
    bar = None
    if progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=max_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)
    budget_s = t_cfg["max_minutes"] * 60
    t_start = time.time()
    t_last, tok_last = t_start, tokens_seen
    last: Dict[str, float] = {}
    stop_reason = "max_steps"
    with StopSignal() as stop:
        while step < max_steps:
            lr = get_lr(step, **lr_args)
            for group in optimizer.param_groups:
                group["lr"] = lr
            sums = {k: 0.0 for k in ("loss", "gen_loss", "disc_loss", "gen_acc", "disc_acc", "replaced")}
            step_tokens = 0
            for m in range(accum):
                position = step * seqs_per_step + (m * world + rank) * micro
                ids = dataset.get(batch_indices(position, micro, len(dataset), seed))  # (micro, max_len)
                input_ids = torch.from_numpy(ids).to(device)
                attention_mask = (input_ids != pad_id).long()
                segments = torch.from_numpy(token_type_ids(ids, sep_id)).to(device)
                masked_ids, is_masked = mask_tokens(
                    input_ids, special_ids=special_ids, mask_id=mask_id, vocab_size=len(tokenizer),
                    mask_prob=obj["mask_prob"], mask_token_prob=obj["mask_token_prob"],
                    random_token_prob=obj["random_token_prob"], generator=mask_gen)
                sync = accelerator.no_sync(model) if m < accum - 1 else contextlib.nullcontext()
                with sync, accelerator.autocast():
                    out = model(input_ids, masked_ids, is_masked, attention_mask, segments, generator=mask_gen)
                    accelerator.backward(out["loss"] / accum)
                for k in sums:
                    sums[k] += float(out[k].detach()) / accum
                step_tokens += int(attention_mask.sum())
            if t_cfg["grad_clip"] > 0:
                accelerator.clip_grad_norm_(model.parameters(), t_cfg["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += step_tokens * world
            last = {"step": step, "lr": lr, **{k: round(v, 5) for k, v in sums.items()}, "tokens": tokens_seen}
            now = time.time()
            if step % t_cfg["log_every"] == 0 or step == max_steps:
                last["tokens_per_s"] = round((tokens_seen - tok_last) / max(now - t_last, 1e-9), 1)
                last["elapsed_s"] = round(elapsed_before + now - t_start, 1)
                t_last, tok_last = now, tokens_seen
                if accelerator.is_main_process:
                    with open(log_path, "a", encoding="utf8") as f:
                        f.write(json.dumps(last) + "\n")
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{sums['loss']:.3f}", disc_acc=f"{sums['disc_acc']:.3f}", gen_acc=f"{sums['gen_acc']:.3f}",
                                tok_s=f"{last.get('tokens_per_s', 0):.0f}", lr=f"{lr:.2e}", refresh=False)
            if on_step is not None:
                on_step(step)
            if stop.received is not None:
                stop_reason = signal.Signals(stop.received).name
            elif budget_s and elapsed_before + now - t_start >= budget_s:
                stop_reason = f"max_minutes={t_cfg['max_minutes']}"
            if step % t_cfg["checkpoint_every"] == 0 or step == max_steps or stop_reason != "max_steps":
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save_checkpoint(output, {
                        "model": accelerator.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step, "tokens_seen": tokens_seen, "data_position": step * seqs_per_step,
                        "elapsed": elapsed_before + time.time() - t_start, "rng": rng_state(mask_gen),
                        "vocab_sha": vocab_sha, "config": config_to_str(cfg), "last": last,
                    }, step=step, keep=t_cfg["keep_checkpoints"])
            if stop_reason != "max_steps":
                break
    if bar is not None:
        bar.close()
    summary = {"step": step, "max_steps": max_steps, "tokens_seen": tokens_seen, "stopped_by": stop_reason, "last": last,
               "output": str(output)}
    if accelerator.is_main_process:
        print(f"stopped at step {step}/{max_steps} ({stop_reason}); last: {last}")
        if stop_reason.startswith("SIG"):
            print(f"checkpoint saved; continue with: electramed pretrain CONFIG --resume --paths.output {output}")
        plot_curves(log_path, output / "curves.png")
        if export and not stop_reason.startswith("SIG"):
            from .export import export_pretrainer

            summary["model_dir"] = str(export_pretrainer(
                accelerator.unwrap_model(model), data["vocab_dir"], output / "model", cfg=cfg, summary=summary,
                manifest=dataset.manifest, overwrite=True))
            print(f"exported discriminator to {summary['model_dir']} (generator in {summary['model_dir']}/generator)")
    accelerator.wait_for_everyone()
    return summary


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines after the checkpoint's step so the log matches one uninterrupted run."""
    if not path.exists():
        return
    lines = [l for l in path.read_text(encoding="utf8").splitlines() if l.strip() and json.loads(l)["step"] <= step]
    path.write_text("".join(l + "\n" for l in lines), encoding="utf8")


def read_log(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(l) for l in Path(path).read_text(encoding="utf8").splitlines() if l.strip()] if Path(path).exists() else []


def base_rate_entropy(p: float) -> float:
    """Binary entropy (nats) of the share of replaced tokens: the RTD loss of a context-blind discriminator."""
    return 0.0 if p <= 0 or p >= 1 else float(-p * np.log(p) - (1 - p) * np.log(1 - p))


def plot_curves(log_path: Path, png: Path) -> Optional[Path]:
    rows = read_log(log_path)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("gen_loss", "disc_loss"):
        axes[0].plot(steps, [r[key] for r in rows], label=key)
    # a discriminator that ignores context can still reach the entropy of the share replaced
    axes[0].plot(steps, [base_rate_entropy(r["replaced"]) for r in rows], "--", label="disc base rate")
    axes[0].set_yscale("log")
    axes[0].set_title("losses (disc x1, unweighted; nats)")
    for key in ("gen_acc", "disc_acc", "replaced"):
        axes[1].plot(steps, [r[key] for r in rows], label=key)
    axes[1].set_title("accuracies / share replaced")
    axes[2].plot(steps, [r["lr"] for r in rows], label="lr")
    axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def main(argv: Optional[List[str]] = None) -> None:
    """`python -m electramed_spacy.pretraining.train CONFIG [--resume] [--section.key value ...]` (for accelerate launch)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: python -m electramed_spacy.pretraining.train CONFIG [--resume] [--section.key value ...]")
    resume = "--resume" in argv
    rest = [a for a in argv[1:] if a != "--resume"]
    pretrain(load_config(argv[0], parse_overrides(rest)), resume=resume)


if __name__ == "__main__":
    main()


def export_checkpoint(cfg: Dict[str, Any], *, checkpoint: Optional[Path] = None, output: Optional[Path] = None,
                      overwrite: bool = False) -> Path:
    """Export a checkpoint (default: the newest under [paths] output) as the model dir spaCy loads.
    An existing, non-empty `output` is replaced only with `overwrite`."""
    from transformers import AutoTokenizer

    from .export import check_output_dir, export_pretrainer

    run = Path(cfg["paths"]["output"])
    output = Path(output) if output else run / "model"
    check_output_dir(output, overwrite=overwrite)
    checkpoint = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if checkpoint is None or not (checkpoint / "state.pt").exists():
        raise PretrainError(f"No checkpoint to export under {run / CHECKPOINTS} (or {checkpoint}). Run `electramed pretrain` first.")
    vocab_dir = run / "vocab"
    state = load_state(checkpoint)
    if not (vocab_dir / "tokenizer.json").exists() or state["vocab_sha"] != _fingerprint(vocab_dir / "tokenizer.json"):
        raise PretrainError(f"The vocabulary in {vocab_dir} is missing or does not match the checkpoint {checkpoint}.")
    tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
    model = build_pretrainer(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    model.load_state_dict(state["model"])
    manifest = json.loads((run / "shards" / "manifest.json").read_text(encoding="utf8"))
    summary = {"step": state["step"], "tokens_seen": state["tokens_seen"], "last": state.get("last", {})}
    return export_pretrainer(model, vocab_dir, output, cfg=cfg, summary=summary, manifest=manifest, overwrite=overwrite)


def init_model(cfg: Dict[str, Any], output: Path, *, seed: Optional[int] = None) -> Path:
    """Vocabulary from the corpus (or [paths] vocab) + a randomly initialised ElectraModel of [model]'s sizes."""
    from transformers import AutoTokenizer

    from .export import save_random_discriminator
    from .model import ARCH_KEYS

    files = resolve_corpus(cfg["paths"]["corpus"])
    scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
    vocab_dir = prepare_vocab(cfg, files)
    tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
    seed = cfg["training"]["seed"] if seed is None else seed
    card = {"initialisation": "random (no pre-training)", "seed": seed, "vocabulary": cfg["paths"]["vocab"] or f"WordPiece trained on {cfg['paths']['corpus']}",
            "lowercase": cfg["corpus"]["lowercase"]}
    return save_random_discriminator(tokenizer, output, seed=seed, card=card, **{k: cfg["model"][k] for k in ARCH_KEYS})
