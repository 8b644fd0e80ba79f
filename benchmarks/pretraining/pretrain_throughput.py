"""Throughput of one whole ELECTRA pre-training step: ours vs a naive Hugging Face loop.

A step is everything the loop does per optimizer update: read the batch from the packed shards,
mask, forward, backward, clip, AdamW step.

Naive (`naive_hf_fp32`): a loop written with transformers' defaults, the way most ELECTRA ports
train. Batches built row by row in Python from the same memory-mapped arrays, masking with a
per-token Python special-token mask (as `DataCollatorForLanguageModeling` does), full-vocabulary
ElectraForMaskedLM(labels=...) + ElectraForPreTraining(labels=...), shared embeddings, fp32,
eager attention, `float(loss)` every step, torch's default (per-tensor) AdamW and clipping.

Ours: the shipped code path of `electramed_spacy.pretraining.train` (`get_batch`, `TokenMasker`,
`micro_step`, `build_pretrainer`: MLM logits only at masked positions), in fp32 or bf16 autocast,
optionally with SDPA attention and `torch.compile` (inductor) of the two encoders; the shipped
fused AdamW (`build_optimizer`) or, to measure that lever, torch's default or foreach AdamW. Same shapes (ELECTRA-small: 12 layers, hidden 256, embedding 128, 4 heads,
generator 1/4; batch 32 x 128; vocab 31,090 = SciVocab), same data, same machine, same run.
Timing interleaves the variants step by step in one process (a shared machine's load then hits
them alike); peak RSS (VmHWM) comes from a separate subprocess per variant.

    python benchmarks/pretraining/pretrain_throughput.py [--steps 10] [--warmup 2] [--threads 2] [--variants naive_hf_fp32,ours_bf16]

Run by hand; numbers go to the README, never into asserts.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# optim: "shipped" = train.build_optimizer (fused AdamW); "loop" = torch's default per-tensor AdamW; "foreach"
VARIANTS = {
    "naive_hf_fp32": dict(ours=False, bf16=False, sdpa=False, compile=False, optim="loop"),
    "ours_fp32": dict(ours=True, bf16=False, sdpa=False, compile=False, optim="shipped"),
    "ours_fp32_sdpa": dict(ours=True, bf16=False, sdpa=True, compile=False, optim="shipped"),
    "ours_bf16": dict(ours=True, bf16=True, sdpa=False, compile=False, optim="shipped"),
    "ours_bf16_sdpa": dict(ours=True, bf16=True, sdpa=True, compile=False, optim="shipped"),
    "ours_bf16_adamw_loop": dict(ours=True, bf16=True, sdpa=False, compile=False, optim="loop"),
    "ours_bf16_adamw_foreach": dict(ours=True, bf16=True, sdpa=False, compile=False, optim="foreach"),
    "ours_bf16_compile": dict(ours=True, bf16=True, sdpa=False, compile=True, optim="shipped"),
    "ours_bf16_sdpa_compile": dict(ours=True, bf16=True, sdpa=True, compile=True, optim="shipped"),
    "ours_fp32_compile": dict(ours=True, bf16=False, sdpa=False, compile=True, optim="shipped"),
}
DEFAULT_VARIANTS = "naive_hf_fp32,ours_fp32,ours_bf16,ours_bf16_sdpa,ours_bf16_adamw_loop"
SMALL = dict(embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024,
             max_position_embeddings=512, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
             generator_size=0.25, generator_layers=None, init_from=None)
OBJECTIVE = dict(mask_prob=0.15, mask_token_prob=0.85, random_token_prob=0.0, sampling="gumbel", temperature=1.0,
                 gen_weight=1.0, disc_weight=50.0)
TRAINING = dict(lr=5e-4, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01)
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = [PAD, UNK, CLS, SEP, MASK]


def write_shards(out: Path, *, rows: int, length: int, vocab_size: int, shards: int = 4) -> Path:
    """Packed `[CLS] A [SEP] B [SEP] [PAD]...` rows in uint16 shards + manifest, as `build_shards` writes them
    (10% of rows shorter, as ELECTRA's short_seq_prob gives)."""
    import numpy as np

    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    metas = []
    for s in range(shards):
        n = rows // shards
        array = np.full((n, length), PAD, dtype=np.uint16)
        for r in range(n):
            size = length if rng.random() > 0.1 else int(rng.integers(8, length))
            cut = int(rng.integers(2, size - 2))
            array[r, :size] = rng.integers(5, vocab_size, size)
            array[r, [0, cut, size - 1]] = [CLS, SEP, SEP]
        np.save(out / f"shard_{s:05d}.npy", array)
        metas.append({"index": s, "file": f"shard_{s:05d}.npy", "sequences": n, "tokens": int((array != PAD).sum())})
    manifest = {"vocab_size": vocab_size, "max_seq_length": length, "sequences": sum(m["sequences"] for m in metas),
                "tokens": sum(m["tokens"] for m in metas), "shards": metas}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf8")
    return out


def naive_step_fn(batch: int, vocab_size: int, dataset):
    """The naive loop's step: Python batches, per-call special-token mask, full-vocab MLM, fp32, default AdamW."""
    import torch
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    from electramed_spacy.pretraining.data import batch_indices
    from electramed_spacy.pretraining.model import electra_configs, param_groups

    disc_cfg, gen_cfg = electra_configs(SMALL, vocab_size=vocab_size, pad_token_id=PAD)
    disc, gen = ElectraForPreTraining(disc_cfg), ElectraForMaskedLM(gen_cfg)
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    model = torch.nn.ModuleDict({"disc": disc, "gen": gen}).train()
    optimizer = torch.optim.AdamW(param_groups(model, TRAINING["weight_decay"]), lr=TRAINING["lr"], eps=TRAINING["eps"])
    rng = torch.Generator().manual_seed(0)
    position = 0

    def step() -> float:
        nonlocal position
        rows, types = [], []
        for index in batch_indices(position, batch, len(dataset), 0):
            shard = int((dataset.offsets <= index).sum()) - 1
            row = [int(t) for t in dataset.arrays[shard][index - dataset.offsets[shard]]]
            first_sep = row.index(SEP)
            rows.append(row)
            types.append([0] * (first_sep + 1) + [1] * (len(row) - first_sep - 1))
        position += batch
        input_ids, token_type_ids = torch.tensor(rows), torch.tensor(types)
        attention_mask = (input_ids != PAD).long()
        special = torch.tensor([[t in SPECIAL for t in row] for row in rows])
        probability = torch.full(input_ids.shape, OBJECTIVE["mask_prob"]).masked_fill(special, 0.0)
        is_masked = torch.bernoulli(probability, generator=rng).bool()
        labels = input_ids.masked_fill(~is_masked, -100)
        to_mask = torch.bernoulli(torch.full(input_ids.shape, OBJECTIVE["mask_token_prob"]), generator=rng).bool() & is_masked
        masked_ids = input_ids.masked_fill(to_mask, MASK)
        out = gen(masked_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels)  # (batch, length, vocab)
        with torch.no_grad():
            logits = out.logits[is_masked]
            u = torch.rand(logits.shape, generator=rng)
            sampled = (logits - torch.log(-torch.log(u.clamp(1e-9, 1 - 1e-9)))).argmax(-1)
        corrupted = masked_ids.clone()
        corrupted[is_masked] = sampled
        disc_out = disc(corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        labels=(corrupted != input_ids).long())
        loss = out.loss + OBJECTIVE["disc_weight"] * disc_out.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()  # the naive loop logs every step

    return step


def ours_step_fn(v: dict, batch: int, vocab_size: int, dataset):
    """The shipped loop's step (train.py's own functions), without Accelerate's wrapper (one process,
    several precisions: Accelerate allows one mixed-precision setting per process)."""
    import torch

    from electramed_spacy.pretraining.masking import TokenMasker
    from electramed_spacy.pretraining.model import build_pretrainer, param_groups
    from electramed_spacy.pretraining.train import build_optimizer, get_batch, micro_step

    cfg = {"model": {**SMALL, "sdpa_attention": v["sdpa"]}, "objective": OBJECTIVE}
    model = build_pretrainer(cfg, vocab_size=vocab_size, pad_token_id=PAD).train()
    if v["compile"]:
        model.discriminator.compile()
        model.generator.electra.compile()
    device = torch.device("cpu")
    if v["optim"] == "shipped":
        optimizer = build_optimizer(model, TRAINING, device)
    else:
        optimizer = torch.optim.AdamW(param_groups(model, TRAINING["weight_decay"]), lr=TRAINING["lr"], eps=TRAINING["eps"],
                                      foreach=v["optim"] == "foreach")
    masker = TokenMasker(special_ids=SPECIAL, mask_id=MASK, vocab_size=vocab_size, **{
        k: OBJECTIVE[k] for k in ("mask_prob", "mask_token_prob", "random_token_prob")})
    rng = torch.Generator().manual_seed(0)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=v["bf16"])  # noqa: E731
    position = 0

    def step() -> float:
        nonlocal position
        data, _ = get_batch(dataset, position, batch, 0, pad_id=PAD, sep_id=SEP, device=device)
        position += batch
        sums = micro_step(model, data, masker, rng, autocast=autocast, backward=torch.Tensor.backward, accum=1)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return sums  # read by the caller only after the clock stops, as the loop reads it only when logging

    return step


def build_variant(name: str, batch: int, length: int, vocab_size: int, shard_dir: Path):
    import torch

    from electramed_spacy.pretraining.data import PackedSequences

    torch.manual_seed(0)
    dataset = PackedSequences(shard_dir)
    v = VARIANTS[name]
    return ours_step_fn(v, batch, vocab_size, dataset) if v["ours"] else naive_step_fn(batch, vocab_size, dataset)


def peak_memory(name: str, threads: int, batch: int, length: int, vocab_size: int, shard_dir: Path) -> dict:
    """Run in a fresh subprocess: peak RSS of building the variant and two training steps (AdamW state included)."""
    import torch

    torch.set_num_threads(threads)
    step = build_variant(name, batch, length, vocab_size, shard_dir)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    out = step()
    loss = float(out) if isinstance(out, float) else float(out[0])
    return {"variant": name, "peak_rss_mb": round(peak_rss_kb() / 1024, 1), "loss": loss, "first_step_s": round(first, 1)}


def peak_rss_kb() -> int:
    """VmHWM (reset by exec, unlike ru_maxrss, which a subprocess inherits from its parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def profile(name: str, threads: int, batch: int, length: int, vocab_size: int, shard_dir: Path, out: Path) -> None:
    """torch.profiler table (top ops by self CPU time) of two steps of a variant, after one warm-up step."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    step = build_variant(name, batch, length, vocab_size, shard_dir)
    step()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    header = (f"{name}, {threads} threads, batch {batch} x {length}, 2 steps in {time.perf_counter() - t0:.1f}s "
              f"(profiler on), load {os.getloadavg()}\n")
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + table + "\n", encoding="utf8")
    print(header + table)
    print(f"wrote {out}")


def interleaved_timing(names, steps: int, warmup: int, threads: int, batch: int, length: int, vocab_size: int,
                       shard_dir: Path) -> dict:
    """All variants in one process, one step each in turn, so load from other processes on a
    shared machine hits every variant alike. Wall-clock and CPU seconds per step, medians."""
    import torch

    torch.set_num_threads(threads)
    fns = {name: build_variant(name, batch, length, vocab_size, shard_dir) for name in names}
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    load = []
    for i in range(warmup + steps):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if i >= warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
            else:
                print(f"warm-up {i} {name}: {time.perf_counter() - t0:.1f}s", flush=True)
        load.append(os.getloadavg()[0])
        if i >= warmup:
            print(f"step {i - warmup + 1}/{steps}: " + ", ".join(f"{n} {wall[n][-1]:.2f}s" for n in names)
                  + f"; load {load[-1]:.2f}", flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    # the fastest step is the least disturbed by other processes; the median is reported next to it
    return {n: {"min_step_s": round(min(wall[n]), 3), "median_step_s": round(med(wall[n]), 3),
                "tokens_per_s": round(batch * length / min(wall[n]), 1),
                "tokens_per_s_median": round(batch * length / med(wall[n]), 1),
                "tokens_per_cpu_s": round(batch * length / min(cpu[n]), 1),
                "step_times_s": [round(t, 2) for t in wall[n]]} for n in names}, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=31090)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--profile", default=None, metavar="VARIANT", help="print a torch.profiler table of VARIANT instead")
    parser.add_argument("--out", default="benchmarks/pretraining/results/pretrain_throughput.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shards", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = [args.threads, args.batch, args.length, args.vocab_size]
    if args.child:
        print(json.dumps(peak_memory(args.child, *shape, Path(args.shards))))
        return
    names = args.variants.split(",") if not args.profile else [args.profile]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    tmp = tempfile.TemporaryDirectory()
    rows_needed = args.batch * (args.warmup + args.steps + 2)
    shard_dir = write_shards(Path(tmp.name) / "shards", rows=max(4096, rows_needed), length=args.length,
                             vocab_size=args.vocab_size)
    if args.profile:
        profile(args.profile, *shape, shard_dir, Path(args.out).with_name(f"pretrain_profile_{args.profile}.txt"))
        return
    memory = {name: {} for name in names}
    load_before = os.getloadavg()
    for name in [] if args.no_memory else names:  # before the parent allocates anything
        cmd = [sys.executable, __file__, "--child", name, "--shards", str(shard_dir)] + [
            a for k, val in zip(["--threads", "--batch", "--length", "--vocab-size"], shape) for a in (k, str(val))]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            memory[name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
            print(f"{name}: FAILED {memory[name]['error']}", flush=True)
            continue
        memory[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: peak RSS {memory[name]['peak_rss_mb']:.0f} MB, first step {memory[name]['first_step_s']}s; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    t0 = time.time()
    timing, load = interleaved_timing(names, args.steps, args.warmup, *shape, shard_dir)
    print(f"timing done in {time.time() - t0:.0f}s", flush=True)
    rows = [{"variant": name, **timing[name], **memory[name]} for name in names]
    ref = next((r for r in rows if r["variant"] == "naive_hf_fp32"), None)
    print(f"\n{'variant':24s} {'tok/s(best)':>11s} {'speed-up':>9s} {'tok/s(median)':>13s} {'speed-up':>9s} {'peak RSS MB':>12s}")
    for r in rows:
        r["speedup_vs_naive"] = round(r["tokens_per_s"] / ref["tokens_per_s"], 2) if ref else None
        r["median_speedup_vs_naive"] = round(r["tokens_per_s_median"] / ref["tokens_per_s_median"], 2) if ref else None
        print(f"{r['variant']:24s} {r['tokens_per_s']:>11.0f} {r['speedup_vs_naive'] or 0:>8.2f}x "
              f"{r['tokens_per_s_median']:>13.0f} {r['median_speedup_vs_naive'] or 0:>8.2f}x {r.get('peak_rss_mb', 0):>12.0f}")
    import torch

    from electramed_spacy.precision import calibration
    from electramed_spacy.pretraining.model import build_pretrainer
    from electramed_spacy.pretraining.train import step_flops_per_token

    # the FLOPs of our step (MLM logits at the masked positions only): the naive loop does more work per token
    flops = step_flops_per_token(build_pretrainer({"model": {**SMALL, "sdpa_attention": False}, "objective": OBJECTIVE},
                                                  vocab_size=args.vocab_size, pad_token_id=PAD),
                                 seq_len=args.length, mask_prob=OBJECTIVE["mask_prob"])
    peaks = calibration()
    for r in rows:
        peak = peaks["bfloat16" if VARIANTS[r["variant"]]["bf16"] else "float32"]
        r["peak_fraction"] = round(r["tokens_per_s"] * flops / peak, 3)
        print(f"{r['variant']:24s} {100 * r['peak_fraction']:.0f}% of this CPU's measured "
              f"{'bf16' if VARIANTS[r['variant']]['bf16'] else 'float32'} matmul peak ({peak / 1e9:.0f} GFLOP/s)")
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
            "cpu_flags_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None,
            "load_avg_before": load_before, "load_avg_per_round": load, "load_avg_at_end": os.getloadavg(),
            "flops_per_token": flops, "matmul_peak_flops": peaks,
            "shape": "ELECTRA-small, generator 1/4", "step": "data + masking + forward + backward + clip + AdamW",
            **{k: val for k, val in vars(args).items() if k not in ("child", "shards")}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2), encoding="utf8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
