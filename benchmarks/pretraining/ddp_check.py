"""Do 2 processes train like 1? The README's multi-GPU command, checked on this CPU (issue 13).

Runs configs/pretrain_tiny.cfg (the committed sample corpus) three times, in run directories
outside the repository, each `--steps` steps with a log row per step:

- `two`:       accelerate launch --multi_gpu --num_processes 2 -m electramed_spacy.pretraining.train
               ... --training.batch_size B   (the README's command with 2 processes; on a machine
               without CUDA, Accelerate runs them on the CPU over gloo; `--cpu --num_processes 2`
               instead starts ONE process in accelerate 1.15: its simple launcher, multi-CPU needs mpirun)
- `one_accum`: 1 process, batch B x 2 accumulation steps: the same global batch, split into the same
               micro-batches the two ranks see (train.py: position = data_position + (m*world + rank)*B).
               Data-parallel training equals this run up to fp32 reduction order, so this is the reference.
- `one_batch`: 1 process, one micro-batch of 2B (reported, not judged: each micro-batch's losses are
               means over its own masked tokens, so 2 x B and 1 x 2B weight tokens differently).

Dropout is off in all runs (`--model.hidden_dropout_prob 0 --model.attention_probs_dropout_prob 0`):
every rank seeds torch's global RNG alike, so with dropout the runs differ by design. Masking and
the generator's samples come from `mask_gen`; if its seed depends on the rank, the runs differ in
their masks and this check fails (it says so). The vocabulary is built once and given to every run.

Verdict (`same training`, `SAME WEIGHTS, DIFFERENT LOG` or `DIFFERENT`): `two` vs `one_accum`, per
logged step, for the continuous metrics (loss, gen_loss, disc_loss): |a - b| <= atol + rtol * |b|, and
the final weights (max |a - b| over every tensor of the checkpoint). With 2 processes the all-reduce
computes (g0 + g1) / 2 and accumulation g0 / 2 + g1 / 2: halving is exact, so equal masks give equal
training bit for bit (measured: difference 0). The tolerances leave room for summation-order noise where
that does not hold (more processes, other reductions): fp32 rtol 1e-4, atol 2e-5 (two units of the log's
5-decimal rounding), weights 1e-4, against the 1e-2 and more by which different masks move these losses;
bf16 rtol 2e-2 (a few bf16 ulps of 2^-8).
Accuracies and the token count are reported too (accuracies move in steps of 1/masked tokens).

    python benchmarks/pretraining/ddp_check.py [--steps 30] [--batch-size 8] [--precision fp32] \\
        [--workdir /tmp/electramed_ddp_check] [--src .] [--label TEXT] [--out benchmarks/pretraining/results/ddp_check.json]

`--src` runs the package and configs of another checkout (e.g. a patched copy); exit status 1 when
`two` and `one_accum` differ beyond the tolerances.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

REPO = Path(__file__).resolve().parents[2]
JUDGED = ("loss", "gen_loss", "disc_loss")
REPORTED = ("gen_acc", "disc_acc", "replaced", "tokens")
TOLERANCES = {"fp32": {"rtol": 1e-4, "atol": 2e-5, "weights": 1e-4}, "bf16": {"rtol": 2e-2, "atol": 2e-5, "weights": 2e-2}}


def compare_logs(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]], metrics: Sequence[str], *,
                 rtol: float = 0.0, atol: float = 0.0) -> Dict[str, Dict[str, Any]]:
    """Per metric: the largest |a - b| and |a - b| / |b| over the steps both logs hold, the step that uses
    most of its tolerance atol + rtol * |b|, and whether every step is within it (b = the reference)."""
    rows_a, rows_b = {r["step"]: r for r in a}, {r["step"]: r for r in b}
    steps = sorted(set(rows_a) & set(rows_b))
    if not steps or len(steps) != len(rows_b):
        raise ValueError(f"the logs must hold the same steps: {sorted(rows_a)} vs {sorted(rows_b)}")
    out = {}
    for key in metrics:
        diffs = [(abs(rows_a[s][key] - rows_b[s][key]), abs(rows_b[s][key]), s) for s in steps]
        worst = max(diffs, key=lambda d: d[0] / (atol + rtol * d[1]) if atol + rtol * d[1] > 0 else d[0])
        out[key] = {
            "max_abs": max(d[0] for d in diffs),
            "max_rel": max(d[0] / d[1] if d[1] else (0.0 if d[0] == 0 else float("inf")) for d in diffs),
            "worst_step": worst[2], "within": all(d[0] <= atol + rtol * d[1] for d in diffs), "steps": len(steps),
        }
    return out


def compare_weights(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    """Max |a - b| over every tensor of two state dicts with the same keys, and the tensor where it is."""
    if set(a) != set(b):
        raise ValueError(f"the state dicts differ in keys: {sorted(set(a) ^ set(b))[:5]}")
    worst = max(((float((a[k].float() - b[k].float()).abs().max()) if a[k].numel() else 0.0), k) for k in a)
    return {"max_abs": worst[0], "tensor": worst[1], "tensors": len(a)}


def read_log(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]


def final_weights(run_dir: Path) -> Dict[str, Any]:
    from electramed_spacy.pretraining.checkpoint import load_newest

    ckpt, state = load_newest(run_dir)
    if state is None:
        raise SystemExit(f"no checkpoint in {run_dir}")
    return state["model"]


def run(name: str, cmd: List[str], src: Path, run_dir: Path) -> Dict[str, Any]:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    load = Path("/proc/loadavg").read_text().strip()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"run {name} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    header = [line for line in proc.stdout.splitlines() if line.startswith(("model:", "tokens per step:"))]
    print(f"{name}: {wall:.0f} s; " + " | ".join(header), flush=True)
    return {"command": " ".join(cmd), "wall_s": round(wall, 1), "loadavg_before": load, "header": header}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8, help="per process and micro-step (B)")
    p.add_argument("--precision", default="fp32", choices=sorted(TOLERANCES))
    p.add_argument("--config", default="configs/pretrain_tiny.cfg", help="relative to --src")
    p.add_argument("--workdir", default="/tmp/electramed_ddp_check", help="run directories, outside the repository")
    p.add_argument("--src", default=str(REPO), help="the checkout whose package and configs run")
    p.add_argument("--out", default="benchmarks/pretraining/results/ddp_check.json", help="relative to this repository; '' = none")
    p.add_argument("--label", default="", help="what --src holds (e.g. a proposed patch), recorded in --out")
    args = p.parse_args()
    src, workdir = Path(args.src).resolve(), Path(args.workdir).resolve() / args.precision
    if workdir == REPO or REPO in workdir.parents:
        raise SystemExit(f"--workdir {workdir} is inside the repository; give a path outside it (e.g. /tmp/...).")
    sys.path.insert(0, str(src))
    from electramed_spacy.pretraining.config import load_config
    from electramed_spacy.pretraining.data import resolve_corpus
    from electramed_spacy.pretraining.vocab import build_vocab

    config = str(src / args.config)
    cfg = load_config(config)
    corpus = str((src / cfg["paths"]["corpus"]).resolve())
    build_vocab(resolve_corpus(corpus), workdir / "vocab", lowercase=cfg["corpus"]["lowercase"], size=cfg["vocab"]["size"],
                min_frequency=cfg["vocab"]["min_frequency"], max_seq_length=cfg["corpus"]["max_seq_length"])
    common = ["--paths.corpus", corpus, "--paths.vocab", str(workdir / "vocab" / "vocab.txt"),
              "--training.max_steps", str(args.steps), "--training.log_every", "1", "--training.checkpoint_every", str(args.steps),
              "--training.precision", args.precision, "--training.progress_bar", "false", "--training.num_threads", "1",
              "--model.hidden_dropout_prob", "0", "--model.attention_probs_dropout_prob", "0"]
    module = ["-m", "electramed_spacy.pretraining.train", config]
    b = args.batch_size
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no" if args.precision == "fp32" else args.precision, "--dynamo_backend", "no"]
    runs = {
        "two": launch + module + common + ["--training.batch_size", str(b)],
        "one_accum": [sys.executable] + module + common + ["--training.batch_size", str(b), "--training.grad_accum_steps", "2"],
        "one_batch": [sys.executable] + module + common + ["--training.batch_size", str(2 * b)],
    }
    info = {name: run(name, cmd + ["--paths.output", str(workdir / name)], src, workdir / name) for name, cmd in runs.items()}
    if "x 2" not in " ".join(info["two"]["header"]):
        raise SystemExit(f"`{info['two']['command']}` did not run 2 processes: {info['two']['header']}")

    tol = TOLERANCES[args.precision]
    logs = {name: read_log(workdir / name / "log.jsonl") for name in runs}
    weights = {name: final_weights(workdir / name) for name in runs}
    comparisons = {}
    for other in ("one_accum", "one_batch"):
        comparisons[f"two_vs_{other}"] = {
            "judged": other == "one_accum",
            "metrics": compare_logs(logs["two"], logs[other], JUDGED + REPORTED, rtol=tol["rtol"], atol=tol["atol"]),
            "weights": compare_weights(weights["two"], weights[other]),
        }
    ref = comparisons["two_vs_one_accum"]
    same_log = all(ref["metrics"][k]["within"] for k in JUDGED)
    same_weights = ref["weights"]["max_abs"] <= tol["weights"]
    ok = same_log and same_weights
    for name, c in comparisons.items():
        print(f"{name}{' (judged)' if c['judged'] else ''}: {c['metrics']['loss']['steps']} steps")
        for key, m in c["metrics"].items():
            print(f"  {key:9s} max |diff| {m['max_abs']:.3g}  max rel {m['max_rel']:.3g}  (worst at step {m['worst_step']})"
                  + ("" if key not in JUDGED or not c["judged"] else ("  ok" if m["within"] else "  OUT OF TOLERANCE")))
        print(f"  weights   max |diff| {c['weights']['max_abs']:.3g} ({c['weights']['tensor']})")
    # equal weights with unequal logs: the training matches, the log does not describe the global batch
    verdict = "same training" if ok else "SAME WEIGHTS, DIFFERENT LOG" if same_weights else "DIFFERENT"
    print(f"2 processes vs 1 process with the same micro-batches ({args.precision}): {verdict} "
          f"(tolerance rtol {tol['rtol']}, atol {tol['atol']}, weights {tol['weights']})")
    if args.out:
        out = REPO / args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(out.read_text(encoding="utf8")) if out.exists() else {}
        key = f"{args.precision}, {args.label or ('this checkout' if src == REPO else str(src))}"
        old[key] = {
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]), "src": str(src), "steps": args.steps,
            "batch_size": b, "tolerance": tol, "verdict": verdict, "runs": info, "comparisons": comparisons}
        out.write_text(json.dumps(old, indent=2) + "\n", encoding="utf8")
        print(f"wrote {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
