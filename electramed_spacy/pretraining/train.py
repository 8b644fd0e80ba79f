"""The ELECTRA pre-training loop (Clark et al. 2020, arXiv:2003.10555; ELECTRAMed,
arXiv:2104.09585), in the order it runs: config -> input checks -> Accelerator -> vocab ->
shards -> seed -> model -> optimizer -> prepare -> resume -> loop -> checkpoint -> export.
Only the loop lives here (nanoGPT's `train.py` shape): data preparation is in `prepare.py`,
checkpoints and signals in `checkpoint.py`, the log and curves in `log.py`, export in `export.py`.

The same code runs on one CPU, one GPU or many GPUs through Hugging Face Accelerate:

    electramed pretrain configs/pretrain_small.cfg                    # 1 CPU / 1 GPU
    accelerate launch --multi_gpu --num_processes 8 -m electramed_spacy.pretraining.train \\
        configs/pretrain_small.cfg --training.batch_size 16            # 8 GPUs x 16 = 128 per step
    accelerate launch --num_machines 2 --machine_rank R --main_process_ip HOST \\
        --num_processes 16 -m electramed_spacy.pretraining.train CONFIG  # 2 nodes x 8 GPUs

`batch_size` is per device and micro-step: a step sees batch_size x processes x
grad_accum_steps sequences (printed up front). Checkpoints (every `checkpoint_every`
steps, on SIGINT/SIGTERM and at the end) hold the model, optimizer, step, data position
and every RNG state, as tensors and plain values loaded with `weights_only=True` (a checkpoint
cannot run code). `--resume` continues from the newest one that loads, at the saved data position,
and reproduces the losses of an uninterrupted run, also after a SIGKILL (tested on CPU). Masks and
generator samples are drawn from a generator seeded by each micro-batch's data position, so N processes
train exactly like one process with N accumulation steps (`benchmarks/pretraining/ddp_check.py`: equal losses and
weights with 2 processes over gloo; dropout draws from each rank's own torch RNG). A resume with another global batch (e.g. another GPU count)
is refused unless `--remap-data-position` says to continue from the saved position with the new batch.
"""
import contextlib
import json
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..precision import AUTO, choose_autocast
from .checkpoint import (
    CHECKPOINTS,
    StopSignal,
    latest_checkpoint,
    load_newest,
    remove_dead_tmp,
    resume_position,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import config_to_str, load_config, parse_overrides
from .data import PackedSequences, batch_indices, fingerprint, resolve_corpus, scan_corpus, token_type_ids
from .errors import PretrainError
from .log import LOG, plot_curves, truncate_log
from .masking import TokenMasker
from .model import build_pretrainer, count_params, get_lr, param_groups
from .prepare import prepare_data
from .probe import Probe

RUN_FILES = ("vocab", "shards", CHECKPOINTS, "model", LOG, "curves.png", "config.cfg")
METRICS = ("loss", "gen_loss", "disc_loss", "gen_acc", "disc_acc", "replaced")


def build_optimizer(model: torch.nn.Module, t_cfg: Dict[str, Any], device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (nanoGPT). The fused kernel makes one pass over each tensor
    instead of ~10 elementwise ops: 5x faster than the default per-tensor loop on CPU, same update
    (benchmarks/pretraining/pretrain_throughput.py)."""
    return torch.optim.AdamW(param_groups(model, t_cfg["weight_decay"]), lr=t_cfg["lr"], betas=(t_cfg["beta1"], t_cfg["beta2"]),
                             eps=t_cfg["eps"], fused=device.type in ("cpu", "cuda") or None)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Dict[str, Any]) -> None:
    """Load a checkpoint's optimizer state but keep this optimizer's kernel: saved param groups carry the
    `fused`/`foreach` choice of the run that wrote them (a checkpoint from before the fused AdamW resumes fused)."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = optimizer.defaults["fused"], optimizer.defaults["foreach"]


def get_batch(dataset: PackedSequences, position: int, size: int, seed: int, *, pad_id: int, sep_id: int,
              device: torch.device) -> Tuple[Dict[str, torch.Tensor], int]:
    """`size` sequences from data position `position`, as model inputs, and their count of real tokens."""
    ids = dataset.get(batch_indices(position, size, len(dataset), seed))  # (size, max_len)
    real = ids != pad_id
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(real.astype(np.int64)),
             "token_type_ids": torch.from_numpy(token_type_ids(ids, sep_id))}
    return {k: v.to(device) for k, v in batch.items()}, int(real.sum())


def micro_step(model: torch.nn.Module, batch: Dict[str, torch.Tensor], masker: TokenMasker, generator: torch.Generator, *,
               autocast: Callable[[], ContextManager], backward: Callable[[torch.Tensor], None], accum: int) -> torch.Tensor:
    """Mask, forward (under `autocast`), backward (outside it) of one micro-batch; returns its METRICS / accum
    as one detached (len(METRICS),) tensor, so the host reads them once per step, and only when it logs."""
    input_ids = batch["input_ids"]
    masked_ids, is_masked = masker(input_ids, generator)
    with autocast():
        out = model(input_ids, masked_ids, is_masked, batch["attention_mask"], batch["token_type_ids"], generator=generator)
    backward(out["loss"] / accum)
    return torch.stack([out[k].detach().float() for k in METRICS]) / accum


def step_summary(step: int, lr: float, sums: torch.Tensor, tokens_seen: int) -> Dict[str, Any]:
    """The log row of a step: its metrics (averaged over micro-steps) read from the device in one go."""
    return {"step": step, "lr": lr, **{k: round(v, 5) for k, v in zip(METRICS, sums.tolist())}, "tokens": tokens_seen}


def step_memory_bytes(cfg: Dict[str, Any], *, vocab_size: int, seq_len: int, n_params: int) -> int:
    """A rough upper estimate of one micro-step's memory: float32 weights, gradients and AdamW's two
    moments (16 bytes a parameter), per-layer activations kept for backward (Korthikanti et al. 2022,
    arXiv:2205.05198: 34 s b h + 5 a s^2 b bytes at 16 bits, doubled for float32) for the discriminator and
    the generator, and the generator's vocabulary logits at the masked positions (three copies: logits,
    softmax, gradient)."""
    model, b, s = cfg["model"], cfg["training"]["batch_size"], seq_len
    gen_width = model["hidden_size"] * model["generator_size"]
    gen_layers = model["generator_layers"] or model["num_hidden_layers"]

    def activations(width: float, layers: int) -> float:
        heads = max(1.0, model["num_attention_heads"] * width / model["hidden_size"])
        return layers * 2 * (34 * s * b * width + 5 * heads * s * s * b)

    logits = 3 * 4 * b * s * cfg["objective"]["mask_prob"] * vocab_size
    return int(16 * n_params + activations(model["hidden_size"], model["num_hidden_layers"])
               + activations(gen_width, gen_layers) + logits)


def step_flops_per_token(raw: torch.nn.Module, *, seq_len: int, mask_prob: float) -> float:
    """Training FLOPs per input token of one ELECTRA step (Kaplan et al. 2020, arXiv:2001.08361: 6 per
    non-embedding weight, forward and backward, plus 6 n_layer n_ctx d_model for attention), for the
    discriminator and the generator, plus the generator's vocabulary projection at the masked positions."""
    def encoder_flops(model: torch.nn.Module) -> float:
        config = model.config
        embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
        dense = sum(p.numel() for p in model.parameters()) - embedding
        return 6.0 * dense + 6.0 * config.num_hidden_layers * seq_len * config.hidden_size

    vocab, gen_width = raw.generator.config.vocab_size, raw.generator.config.embedding_size
    return encoder_flops(raw.discriminator.electra) + encoder_flops(raw.generator.electra) + 6.0 * mask_prob * vocab * gen_width


def peak_flops(precision: str, device: torch.device) -> float:
    """This machine's measured matmul FLOP/s in `precision` (precision.py's cached calibration)."""
    from ..precision import calibration

    return calibration(device)["bfloat16" if precision in ("bf16", "fp16") else "float32"]


def check_step_memory(estimate: int, device: torch.device) -> str:
    """PretrainError when `estimate` exceeds the memory free on `device`; else a line for the log."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        import psutil

        free = psutil.virtual_memory().available
    line = f"memory: ~{estimate / 2**30:.2f} GiB estimated per micro-step, {free / 2**30:.2f} GiB free on {device.type}"
    if estimate > free:
        raise PretrainError(f"{line}: the step would not fit. Lower [training] batch_size (and raise grad_accum_steps to "
                            "keep the same sequences per update), or [corpus] max_seq_length.")
    return line


def clean_output(output: Path) -> None:
    """Remove what an earlier run wrote under [paths] output (only the names a run writes)."""
    for name in RUN_FILES:
        path = Path(output) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _masker(obj: Dict[str, Any], tokenizer, vocab_dir: Path, device) -> TokenMasker:
    """The `[objective]`'s masking over `tokenizer`'s vocabulary (whole words: its "##" continuation pieces)."""
    continuation = None
    if obj["whole_word"]:
        continuation = [i for piece, i in tokenizer.get_vocab().items() if piece.startswith("##")]
        if not continuation:
            raise PretrainError(f"[objective] whole_word = true needs a WordPiece vocabulary (\"##\" continuation pieces); "
                                f"{vocab_dir} has none: set whole_word = false.")
    return TokenMasker(special_ids=sorted(set(tokenizer.all_special_ids)), mask_id=tokenizer.mask_token_id,
                       vocab_size=len(tokenizer), mask_prob=obj["mask_prob"], mask_token_prob=obj["mask_token_prob"],
                       random_token_prob=obj["random_token_prob"], continuation_ids=continuation, device=device)


def _check_run(cfg: Dict[str, Any], output: Path, *, resume: bool, overwrite: bool, remap_data_position: bool):
    """The checks that fail before any long work (flags, corpus, probe data, checkpoints, precision), and the
    removal of an old run under `overwrite`: returns (probe, newest checkpoint, its state, precision)."""
    t_cfg, paths = cfg["training"], cfg["paths"]
    if overwrite and resume:
        raise PretrainError("--overwrite and --resume contradict each other: pick one.")
    if remap_data_position and not resume:
        raise PretrainError("--remap-data-position applies to a resumed run: add --resume (or --resume-or-start).")
    if overwrite:
        files = resolve_corpus(paths["corpus"])  # check the input before deleting the old run
        scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
        clean_output(output)
    remove_dead_tmp(output / CHECKPOINTS, ".tmp-step_*")
    probe = Probe.from_config(cfg["probe"])  # its data read (and checked) before any long work
    ckpt, state = load_newest(output) if resume else (None, None)
    if not resume and latest_checkpoint(output) is not None:
        raise PretrainError(f"{output} already holds checkpoints ({latest_checkpoint(output).name}). Use --resume to continue, or set [paths] output to a new directory.")
    precision = t_cfg["precision"]
    use_cuda = torch.cuda.is_available()
    if precision == AUTO:  # measured on this machine: bf16 where its matmuls are clearly faster, else fp32
        precision = "bf16" if choose_autocast(torch.device("cuda" if use_cuda else "cpu"), what="pre-training") else "fp32"
        print(f"precision auto: {precision} ({'bf16' if precision == 'bf16' else 'float32'} matmuls measured faster here; precision.py)")
    if precision == "fp16" and not use_cuda:
        raise PretrainError("[training] precision = fp16 needs a CUDA GPU; on CPU use bf16 (or fp32).")
    return probe, ckpt, state, precision


def _finish(accelerator, model, raw, summary: Dict[str, Any], *, output: Path, log_path: Path, data, dataset, cfg,
            export: bool) -> None:
    """After the loop, on the main process: the stop line, the curves, and the export (not after a signal)."""
    step, stop_reason = summary["step"], summary["stopped_by"]
    print(f"stopped at step {step}/{summary['max_steps']} ({stop_reason}); last: {summary['last']}")
    if stop_reason.startswith("SIG"):
        print(f"checkpoint saved; continue with: electramed pretrain CONFIG --resume --paths.output {output}")
    plot_curves(log_path, output / "curves.png")
    if export and not stop_reason.startswith("SIG"):
        from .export import export_pretrainer

        summary["model_dir"] = str(export_pretrainer(
            accelerator.unwrap_model(model), data["vocab_dir"], output / "model", cfg=cfg, summary=summary,
            manifest=dataset.manifest, overwrite=True))
        print(f"exported the {'generator (MLM only)' if raw.mlm_only else 'discriminator'} to {summary['model_dir']} "
              f"(generator with its MLM head in {summary['model_dir']}/generator)")


def pretrain(cfg: Dict[str, Any], *, resume: bool = False, overwrite: bool = False, progress: Optional[bool] = None,
             on_step: Optional[Callable[[int], None]] = None, export: bool = True,
             remap_data_position: bool = False) -> Dict[str, Any]:
    """Run (or continue) pre-training as configured; returns a summary. `on_step(step)` is for tests.

    `overwrite` starts from scratch, removing an earlier run's vocab, shards, checkpoints and export
    (what `spacy project run` wants when a dependency changed). `remap_data_position` lets a resume
    change the global batch: the run continues from the checkpoint's data position with the new batch."""
    from accelerate import Accelerator

    t_cfg, paths = cfg["training"], cfg["paths"]
    output = Path(paths["output"])
    progress = t_cfg["progress_bar"] if progress is None else progress
    if t_cfg["num_threads"]:
        torch.set_num_threads(t_cfg["num_threads"])

    # 1. checks that fail fast, accelerator, then vocab and shards (each skipped when already built)
    probe, ckpt, state, precision = _check_run(cfg, output, resume=resume, overwrite=overwrite,
                                               remap_data_position=remap_data_position)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no" if precision == "fp32" else precision)
    with accelerator.main_process_first():  # rank 0 builds vocab and shards; the others then find them done
        data = prepare_data(cfg, progress=progress and accelerator.is_main_process)
    vocab_sha = fingerprint(data["vocab_dir"] / "tokenizer.json")
    if state is not None and state["vocab_sha"] != vocab_sha:
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
    pad_id, sep_id = tokenizer.pad_token_id, tokenizer.sep_token_id
    obj = cfg["objective"]
    masker = _masker(obj, tokenizer, data["vocab_dir"], device)

    # 3. model and optimizer
    model = build_pretrainer(cfg, vocab_size=len(tokenizer), pad_token_id=pad_id)
    optimizer = build_optimizer(model, t_cfg, device)
    step, tokens_seen, elapsed_before = 0, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        load_optimizer_state(optimizer, state["optimizer"])
        step, tokens_seen, elapsed_before = state["step"], state["tokens_seen"], state["elapsed"]
    model, optimizer = accelerator.prepare(model, optimizer)
    mask_gen = torch.Generator(device=device)
    mask_gen.manual_seed(seed * 1000 + rank)
    if state is not None:
        set_rng_state(state["rng"], mask_gen)

    micro, accum, max_steps = t_cfg["batch_size"], t_cfg["grad_accum_steps"], t_cfg["max_steps"]
    seqs_per_step = micro * world * accum
    # sequences consumed so far, read from the checkpoint: the next step starts exactly there
    data_position = 0 if state is None else resume_position(ckpt, state, global_batch=seqs_per_step, remap=remap_data_position)
    max_len = dataset.max_seq_length
    memory_line = check_step_memory(step_memory_bytes(cfg, vocab_size=len(tokenizer), seq_len=max_len,
                                                      n_params=count_params(accelerator.unwrap_model(model))), device)
    lr_args = dict(lr=t_cfg["lr"], warmup_steps=t_cfg["warmup_steps"], max_steps=max_steps, min_lr=t_cfg["min_lr"])
    raw = accelerator.unwrap_model(model)
    flops_per_token = step_flops_per_token(raw, seq_len=max_len, mask_prob=obj["mask_prob"])
    peak = peak_flops(precision, device) * world
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.cfg").write_text(config_to_str(cfg), encoding="utf8")
        print(f"corpus: {dataset.manifest['sequences']:,} sequences, {dataset.manifest['tokens']:,} tokens in {len(dataset.arrays)} shards; vocab {len(tokenizer):,}")
        print(f"model: discriminator {count_params(raw.discriminator)/1e6:.2f}M, generator {count_params(raw.generator)/1e6:.2f}M params (shared embeddings counted in both); "
              f"device {device} x {world}, precision {precision}, threads {torch.get_num_threads()}")
        print(f"tokens per step: {micro} seqs x {world} processes x {accum} accum x {max_len} = {seqs_per_step * max_len:,}; "
              f"steps {step} -> {max_steps}")
        print(memory_line)
        print(f"compute: ~{flops_per_token / 1e6:.1f} MFLOP per token; this machine's measured {precision} matmul peak "
              f"{peak / 1e9:.1f} GFLOP/s ({world} process(es)): the log's peak_fraction is tokens/s x FLOP/token / peak")

    # 4. the loop
    log_path = output / LOG
    if accelerator.is_main_process:
        truncate_log(log_path, step)

    def log_probe() -> float:
        """The probe of the encoder being trained (the discriminator; with disc_weight = 0 the generator) as it
        is now, appended to the log; returns its seconds."""
        if probe is None or not accelerator.is_main_process:
            return 0.0
        row = {"step": step, "tokens": tokens_seen, **probe(raw.encoder, tokenizer)}
        with open(log_path, "a", encoding="utf8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"probe at step {step}: entity F1 {row['probe_f']:.4f} (P {row['probe_p']:.4f}, R {row['probe_r']:.4f}; {row['probe_s']} s)")
        return row["probe_s"]

    if state is None:
        log_probe()  # where the run starts from: the init_from encoder, or random weights
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
            sums = torch.zeros(len(METRICS), device=device)  # (metrics,), read by the host only when logged
            step_tokens = 0
            for m in range(accum):
                position = data_position + (m * world + rank) * micro
                # masks and generator samples keyed on the data position, not the rank: N processes x batch b
                # draw what 1 process x batch b x N accumulation steps draws (benchmarks/pretraining/ddp_check.py)
                mask_gen.manual_seed(seed * 2**40 + position)
                batch, n_tokens = get_batch(dataset, position, micro, seed, pad_id=pad_id, sep_id=sep_id, device=device)
                sync = accelerator.no_sync(model) if m < accum - 1 else contextlib.nullcontext()
                with sync:
                    sums += micro_step(model, batch, masker, mask_gen, autocast=accelerator.autocast,
                                       backward=accelerator.backward, accum=accum)
                step_tokens += n_tokens
            if t_cfg["grad_clip"] > 0:
                accelerator.clip_grad_norm_(model.parameters(), t_cfg["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            data_position += seqs_per_step
            if world > 1:  # log the global batch, not rank 0's share of it
                totals = accelerator.reduce(torch.cat([sums.double(), torch.tensor([float(step_tokens)], dtype=torch.float64, device=device)]))
                sums, step_tokens = (totals[:-1] / world).float(), int(totals[-1])
            tokens_seen += step_tokens
            now = time.time()
            logged = step % t_cfg["log_every"] == 0 or step == max_steps
            if logged:  # the step's one device -> host read of its metrics (or at a checkpoint, below)
                last = step_summary(step, lr, sums, tokens_seen)
                last["tokens_per_s"] = round((tokens_seen - tok_last) / max(now - t_last, 1e-9), 1)
                last["peak_fraction"] = round(last["tokens_per_s"] * flops_per_token / peak, 3)
                last["elapsed_s"] = round(elapsed_before + now - t_start, 1)
                t_last, tok_last = now, tokens_seen
                if accelerator.is_main_process:
                    with open(log_path, "a", encoding="utf8") as f:
                        f.write(json.dumps(last) + "\n")
            if bar is not None:
                bar.update()
                if logged:
                    bar.set_postfix(loss=f"{last['loss']:.3f}", disc_acc=f"{last['disc_acc']:.3f}", gen_acc=f"{last['gen_acc']:.3f}",
                                    tok_s=f"{last['tokens_per_s']:.0f}", peak=f"{last['peak_fraction']:.0%}", lr=f"{lr:.2e}",
                                    refresh=False)
            if on_step is not None:
                on_step(step)
            if probe is not None and (probe.due(step) or step == max_steps):
                t_last += log_probe()  # the next tokens/s leaves the probe's time out
            if stop.received is not None:
                stop_reason = signal.Signals(stop.received).name
            elif budget_s and elapsed_before + now - t_start >= budget_s:
                stop_reason = f"max_minutes={t_cfg['max_minutes']}"
            if step % t_cfg["checkpoint_every"] == 0 or step == max_steps or stop_reason != "max_steps":
                if not logged:
                    last = step_summary(step, lr, sums, tokens_seen)
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save_checkpoint(output, {
                        "model": accelerator.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step, "tokens_seen": tokens_seen, "data_position": data_position, "global_batch": seqs_per_step,
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
        _finish(accelerator, model, raw, summary, output=output, log_path=log_path, data=data, dataset=dataset, cfg=cfg,
                export=export)
    accelerator.wait_for_everyone()
    return summary


def main(argv: Optional[List[str]] = None) -> None:
    """`python -m electramed_spacy.pretraining.train CONFIG [--resume [--remap-data-position]] [--section.key value ...]`
    (for accelerate launch)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = ("--resume", "--remap-data-position")
    if not argv or argv[0].startswith("-"):
        raise SystemExit(f"usage: python -m electramed_spacy.pretraining.train CONFIG [{'] ['.join(flags)}] [--section.key value ...]")
    rest = [a for a in argv[1:] if a not in flags]
    pretrain(load_config(argv[0], parse_overrides(rest)), resume="--resume" in argv, remap_data_position="--remap-data-position" in argv)


if __name__ == "__main__":
    main()
