""""It learns": pre-train a small ELECTRA on real PubMed text for a fixed CPU budget, export it,
and export the same architecture randomly initialised, for the NER comparison on BC5CDR
(ELECTRAMed, arXiv:2104.09585, Table 2 is the full-scale version of this experiment).

    python benchmarks/pretraining/pretrain_learns.py --minutes 40 --steps 1200 --output /work/pretrain_runs/learns \\
        [--config configs/pretrain_small.cfg] [--section.key value ...]

Writes OUTPUT/model (pre-trained, with curves.png / log.jsonl next to it) and OUTPUT/random_model
(same sizes and vocabulary, no pre-training), then prints the NER commands to compare them. `--steps`
sets the learning-rate schedule; `--minutes` stops training earlier if the budget runs out (the
model is exported either way, and `--resume --minutes M` with a larger M continues the same schedule). The defaults suit 1 shared CPU thread: ELECTRA-small widths with 4 layers,
SciVocab (as ELECTRAMed), sequences of 128, batch 32.
"""
import argparse
import json
import time
from pathlib import Path

from electramed_spacy.pretraining.config import load_config, parse_overrides
from electramed_spacy.pretraining.export import init_model
from electramed_spacy.pretraining.train import pretrain

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DEFAULTS = {
    "paths.corpus": [str(SHARED / "pretrain" / "pubmed_pmc_independent.txt"), str(SHARED / "pretrain" / "benchmark_train_dev_text.txt")],
    "paths.vocab": str(SHARED / "vocab" / "electramed_scivocab_uncased.txt"),
    "model.num_hidden_layers": 4,
    "training.batch_size": 32,
    "training.precision": "bf16",
    "model.sdpa_attention": False,
    "training.warmup_steps": 100,
    "training.lr": 0.001,
    "training.num_threads": 1,
    "training.log_every": 10,
    "training.checkpoint_every": 100,
    "training.progress_bar": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "pretrain_small.cfg"))
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--output", default="/work/pretrain_runs/learns")
    parser.add_argument("--resume", action="store_true")
    args, rest = parser.parse_known_args()
    overrides = {**DEFAULTS, "paths.output": args.output, "training.max_minutes": args.minutes,
                 "training.max_steps": args.steps, **parse_overrides(rest)}
    cfg = load_config(args.config, overrides)
    t0 = time.time()
    summary = pretrain(cfg, resume=args.resume)
    random_dir = init_model(cfg, Path(args.output) / "random_model")
    summary.update({"wall_minutes": round((time.time() - t0) / 60, 1), "random_model": str(random_dir), "overrides": overrides})
    (Path(args.output) / "learns_summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf8")
    print(json.dumps(summary, indent=2, default=str))
    print("\nNER comparison (same config, steps and seed; only the encoder differs):")
    for name, path in (("pretrained", summary.get("model_dir")), ("random", random_dir)):
        print(f"  python -m spacy train configs/ner.cfg --output training/ner_{name} "
              f"--components.transformer.model.name {path}   # + the paths.* of the NER workflow")


if __name__ == "__main__":
    main()
