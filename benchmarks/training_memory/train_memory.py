"""Peak memory and time of training updates, with glibc's mmap threshold fixed or left dynamic.

Each setting runs in a fresh process (a threshold cannot be unset): build the pipeline from CONFIG as
`spacy train` does (before_init left out, so only this script sets the threshold), initialise on
the training corpus, then run `--updates` updates of the config's batcher over the training
examples, heaviest first (`--order pairs`: most candidate pairs of the relation pipe; `tokens`:
longest Docs; `corpus`: as read). Reports per setting: seconds per update, RSS before and after,
peak RSS (VmHWM). Settings alternate `--repeats` times.

    python benchmarks/training_memory/train_memory.py configs/rel.cfg corpus/ddi_train.spacy corpus/ddi_dev.spacy MINILM \
        --updates 1 --order pairs --threshold 0 --threshold 131072 --output benchmarks/training_memory/results/train_memory.json

`--threshold 0` = glibc's default (dynamic). Threads: `--threads` (torch).
"""
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import typer

CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
import torch
torch.set_num_threads(args["threads"])
from electramed_spacy.training.memory import set_mmap_threshold
if args["threshold"]:
    assert set_mmap_threshold(args["threshold"]), "not glibc"
import spacy
from spacy import util
from spacy.util import registry, resolve_dot_names
from spacy.schemas import ConfigSchemaTraining
overrides = {"paths.train": args["train"], "paths.dev": args["dev"], "paths.model": args["encoder"],
             "initialize.before_init": None, **args["overrides"]}
raw = util.load_config(args["config"], overrides=overrides, interpolate=False)
config = raw.interpolate()
nlp = util.load_model_from_config(raw, auto_fill=True)
T = registry.resolve(config["training"], schema=ConfigSchemaTraining)
train_corpus, = resolve_dot_names(config, [T["train_corpus"]])
examples = list(train_corpus(nlp))
util.fix_random_seed(config["training"]["seed"])
optimizer = T["optimizer"]
nlp.initialize(lambda: examples, sgd=optimizer)
if args["order"] == "pairs":
    pipe = next(p for _, p in nlp.pipeline if hasattr(p, "_gold_candidates"))
    examples.sort(key=lambda eg: -len(pipe._gold_candidates(eg)[0]))
elif args["order"] == "tokens":
    examples.sort(key=lambda eg: -len(eg.reference))
def status():
    return {k: int(v.split()[0]) / 1024 for k, v in (l.split(":", 1) for l in open("/proc/self/status")) if k in ("VmRSS", "VmHWM")}
before = status()
times = []
batches = T["batcher"](examples)
for _, batch in zip(range(args["updates"]), batches):
    start = time.perf_counter()
    nlp.update(batch, sgd=optimizer, drop=T["dropout"])
    times.append(time.perf_counter() - start)
after = status()
print("RESULT " + json.dumps({"threshold": args["threshold"], "seconds_per_update": times,
      "rss_before_mb": before["VmRSS"], "rss_after_mb": after["VmRSS"], "peak_rss_mb": after["VmHWM"],
      "examples_first_update": len(next(iter(T["batcher"](examples))))}))
"""


def main(
    config: Path = typer.Argument(..., help="Training config"),
    train: Path = typer.Argument(..., help="Training DocBin"),
    dev: Path = typer.Argument(..., help="Dev DocBin (the config's reader needs a path)"),
    encoder: str = typer.Argument(..., help="Encoder directory or hub id for paths.model"),
    thresholds: List[int] = typer.Option([0, 131072], "--threshold", help="Bytes; 0 = glibc's dynamic default"),
    updates: int = typer.Option(1, help="Updates per setting"),
    order: str = typer.Option("pairs", help="pairs | tokens | corpus: which examples come first"),
    repeats: int = typer.Option(1, help="Alternating runs per setting"),
    threads: int = typer.Option(1, help="torch threads"),
    override: List[str] = typer.Option([], help="Config override KEY=JSON_VALUE, repeatable"),
    output: Path = typer.Option(..., help="JSON report"),
) -> None:
    if order not in ("pairs", "tokens", "corpus"):
        raise typer.BadParameter("--order must be pairs, tokens or corpus")
    overrides = {}
    for item in override:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    runs = []
    for repeat in range(repeats):
        for threshold in thresholds:
            args = {"config": str(config), "train": str(train), "dev": str(dev), "encoder": encoder, "threshold": threshold,
                    "updates": updates, "order": order, "threads": threads, "overrides": overrides}
            load = open("/proc/loadavg").read().split()[:3]
            start = time.time()
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-6000:])
                raise SystemExit(f"threshold {threshold}: the child failed (rc {proc.returncode})")
            result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
            result.update(repeat=repeat, wall_seconds=time.time() - start, loadavg_before=load)
            runs.append(result)
            print(f"threshold {threshold or 'glibc default'}: {sum(result['seconds_per_update']):.1f} s for {updates} "
                  f"update(s), RSS {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MB, "
                  f"peak {result['peak_rss_mb']:.0f} MB (load {' '.join(load)})", flush=True)
    report = {"config": str(config), "train": str(train), "encoder": encoder, "updates": updates, "order": order,
              "threads": threads, "overrides": overrides, "runs": runs, "command": sys.argv}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
