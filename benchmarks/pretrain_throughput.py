"""Throughput of one ELECTRA pre-training step: ours vs the obvious Hugging Face loop.

Reference: transformers' ElectraForMaskedLM (full-vocabulary logits, labels -100 off the
masked positions) + ElectraForPreTraining, shared embeddings, fp32, eager attention, the
way most ELECTRA ports train. Ours: `electramed_spacy.pretraining.model.ElectraPretrainer`
(MLM logits only at masked positions), optionally with bf16 autocast and SDPA attention.
Same shapes (ELECTRA-small: 12 layers, hidden 256, embedding 128, 4 heads, generator 1/4;
batch 32 x 128; vocab 31,090 = SciVocab), same masking, same optimizer, same machine, same run.
Timing interleaves the variants step by step in one process (a shared machine's load then hits
them alike); peak RSS (ru_maxrss) comes from a separate subprocess per variant.

    python benchmarks/pretrain_throughput.py [--steps 3] [--warmup 1] [--threads 1] [--variants reference_hf_fp32,ours_bf16_sdpa]

Run by hand; numbers go to the README, never into asserts.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "reference_hf_fp32": dict(ours=False, bf16=False, sdpa=False),
    "ours_fp32": dict(ours=True, bf16=False, sdpa=False),
    "ours_fp32_sdpa": dict(ours=True, bf16=False, sdpa=True),
    "ours_bf16": dict(ours=True, bf16=True, sdpa=False),
    "ours_bf16_sdpa": dict(ours=True, bf16=True, sdpa=True),
}
SMALL = dict(embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024,
             max_position_embeddings=512, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
             generator_size=0.25, generator_layers=None, init_from=None)
OBJECTIVE = dict(mask_prob=0.15, mask_token_prob=0.85, random_token_prob=0.0, sampling="gumbel", temperature=1.0,
                 gen_weight=1.0, disc_weight=50.0)


def reference_step_fn(vocab_size: int):
    """The obvious loop: full-vocab generator logits via ElectraForMaskedLM(labels=...)."""
    import torch
    import torch.nn.functional as F
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    from electramed_spacy.pretraining.model import electra_configs

    disc_cfg, gen_cfg = electra_configs(SMALL, vocab_size=vocab_size, pad_token_id=0)
    disc, gen = ElectraForPreTraining(disc_cfg), ElectraForMaskedLM(gen_cfg)
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    model = torch.nn.ModuleDict({"disc": disc, "gen": gen})

    def step(input_ids, masked_ids, is_masked, attention_mask, token_type_ids, generator):
        labels = input_ids.masked_fill(~is_masked, -100)
        out = gen(masked_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels)  # (batch, length, vocab)
        with torch.no_grad():
            logits = out.logits[is_masked].float()
            u = torch.rand(logits.shape, generator=generator)
            sampled = (logits - torch.log(-torch.log(u.clamp(1e-9, 1 - 1e-9)))).argmax(-1)
        corrupted = masked_ids.clone()
        corrupted[is_masked] = sampled
        disc_labels = (corrupted != input_ids).float()
        d = disc(corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        real = attention_mask.bool()
        return out.loss + 50.0 * F.binary_cross_entropy_with_logits(d[real], disc_labels[real])

    return model, step


def build_variant(name: str, batch: int, length: int, vocab_size: int):
    """A `one_step()` closure for a variant: it masks, runs forward/backward, clips and updates."""
    import torch

    from electramed_spacy.pretraining.masking import mask_tokens
    from electramed_spacy.pretraining.model import build_pretrainer, param_groups

    torch.manual_seed(0)
    v = VARIANTS[name]
    if v["ours"]:
        cfg = {"model": {**SMALL, "sdpa_attention": v["sdpa"]}, "objective": OBJECTIVE}
        model = build_pretrainer(cfg, vocab_size=vocab_size, pad_token_id=0)

        def step(*args):
            return model(*args)["loss"]
    else:
        model, step = reference_step_fn(vocab_size)
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=5e-4, eps=1e-6)
    gen = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, vocab_size, (batch, length), generator=gen)
    input_ids[:, 0], input_ids[:, -1] = 2, 3
    attention_mask = torch.ones_like(input_ids)
    token_type_ids = torch.zeros_like(input_ids)

    def one_step() -> float:
        masked_ids, is_masked = mask_tokens(input_ids, special_ids=[0, 1, 2, 3, 4], mask_id=4, vocab_size=vocab_size,
                                            mask_prob=0.15, mask_token_prob=0.85, random_token_prob=0.0, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v["bf16"]):
            loss = step(input_ids, masked_ids, is_masked, attention_mask, token_type_ids, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return one_step


def peak_memory(name: str, threads: int, batch: int, length: int, vocab_size: int) -> dict:
    """Run in a fresh subprocess: peak RSS of building the variant and one training step (AdamW state included)."""
    import torch

    torch.set_num_threads(threads)
    step = build_variant(name, batch, length, vocab_size)
    loss = step()
    return {"variant": name, "peak_rss_mb": round(peak_rss_kb() / 1024, 1), "loss": loss}


def peak_rss_kb() -> int:
    """VmHWM (reset by exec, unlike ru_maxrss, which a subprocess inherits from its parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def interleaved_timing(names, steps: int, warmup: int, threads: int, batch: int, length: int, vocab_size: int) -> dict:
    """All variants in one process, one step each in turn, so load from other processes on a
    shared machine hits every variant alike. Wall-clock and CPU seconds per step, medians."""
    import torch

    torch.set_num_threads(threads)
    fns = {name: build_variant(name, batch, length, vocab_size) for name in names}
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for i in range(warmup + steps):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if i >= warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    # the fastest step is the least disturbed by other processes; the median is reported next to it
    return {n: {"min_step_s": round(min(wall[n]), 3), "median_step_s": round(med(wall[n]), 3),
                "tokens_per_s": round(batch * length / min(wall[n]), 1),
                "tokens_per_s_median": round(batch * length / med(wall[n]), 1),
                "tokens_per_cpu_s": round(batch * length / min(cpu[n]), 1),
                "step_times_s": [round(t, 2) for t in wall[n]]} for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=31090)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="benchmarks/results/pretrain_throughput.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = [args.threads, args.batch, args.length, args.vocab_size]
    if args.child:
        print(json.dumps(peak_memory(args.child, *shape)))
        return
    names = args.variants.split(",")
    memory = {}
    for name in names:  # before the parent allocates anything
        cmd = [sys.executable, __file__, "--child", name] + [
            a for k, val in zip(["--threads", "--batch", "--length", "--vocab-size"], shape) for a in (k, str(val))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        memory[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: peak RSS {memory[name]['peak_rss_mb']:.0f} MB", flush=True)
    t0 = time.time()
    timing = interleaved_timing(names, args.steps, args.warmup, *shape)
    print(f"timing done in {time.time() - t0:.0f}s", flush=True)
    rows = [{"variant": name, **timing[name], **memory[name]} for name in names]
    ref = next((r for r in rows if r["variant"] == "reference_hf_fp32"), None)
    print(f"\n{'variant':18s} {'tok/s(best)':>11s} {'speed-up':>9s} {'tok/s(median)':>13s} {'speed-up':>9s} {'peak RSS MB':>12s}")
    for r in rows:
        r["speedup_vs_reference"] = round(r["tokens_per_s"] / ref["tokens_per_s"], 2) if ref else None
        r["median_speedup_vs_reference"] = round(r["tokens_per_s_median"] / ref["tokens_per_s_median"], 2) if ref else None
        print(f"{r['variant']:18s} {r['tokens_per_s']:>11.0f} {r['speedup_vs_reference'] or 0:>8.2f}x "
              f"{r['tokens_per_s_median']:>13.0f} {r['median_speedup_vs_reference'] or 0:>8.2f}x {r['peak_rss_mb']:>12.0f}")
    import torch

    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
            "cpu_flags_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None,
            "load_avg_at_end": os.getloadavg(), "shape": "ELECTRA-small, generator 1/4", **vars(args)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2), encoding="utf8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
