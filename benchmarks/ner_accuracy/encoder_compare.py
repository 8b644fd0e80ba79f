"""Does an encoder make a pipeline better? Same config, data, steps and seeds; only the encoder differs.

Fine-tunes `configs/ner.cfg` (or any spaCy training config) once per (encoder, seed), scores model-best
on the test DocBin with `spacy benchmark accuracy`, and writes one JSON table with every run plus
mean and spread per encoder. A run whose `test.json` exists is collected, not retrained, so a
comparison can grow across sessions (keep OUTPUT outside the repository); `--collect-only` makes a missing
run an error instead of a new training. Run by hand:

    python benchmarks/ner_accuracy/encoder_compare.py /work/runs/dapt_ner \\
        --encoder minilm=PATH/TO/MINILM --encoder minilm_dapt=RUN/model \\
        --seed 0 --seed 1 --train corpus/bc5cdr_train.spacy --dev corpus/bc5cdr_dev.spacy \\
        --test corpus/bc5cdr_test.spacy -- --training.max_steps 600 --corpora.dev.limit 250

Relations (DDI-2013 with gold entities) are scored by `electramed evaluate-relations --gold-entities`:

    python benchmarks/ner_accuracy/encoder_compare.py /work/runs/dapt_rel --config configs/rel.cfg --evaluate relations \
        --score rel_micro_f --encoder minilm=PATH/TO/MINILM --encoder minilm_dapt=RUN/model \
        --train corpus/ddi_train.spacy --dev corpus/ddi_dev.spacy --test corpus/ddi_test.spacy -- --training.max_steps 400

Everything after `--` goes to `spacy train` unchanged (the settings every run shares). Each run
trains with OMP_NUM_THREADS=--threads, in sequence; start two copies with different --seed for
two cores (two 1-thread jobs beat one 2-thread job on small encoders). Each run trained here records its
wall clock, threads and the load average at its start in RUN/train_time.json (a budget is part of a result);
each row of the table carries the command that trained it (the first line of RUN.log);
`--plot PNG` draws dev and test per encoder, a dot per seed. `--previous JSON` keeps the encoders of an
earlier table of the same comparison (config, data, overrides) beside the new ones, for runs that are gone.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import typer

# imported here, not where the card is written: a broken install fails now, not after hours of fine-tuning
from electramed_spacy.pretraining.export import write_card

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relations"))  # collect_rel_runs: the seed-dot plot
from collect_rel_runs import seed_dots  # noqa: E402

EVALUATE = {
    "spacy": lambda model, test, out: [sys.executable, "-m", "spacy", "benchmark", "accuracy", str(model), str(test),
                                       "--output", str(out)],
    "relations": lambda model, test, out: ["electramed", "evaluate-relations", str(model), str(test), "--gold-entities",
                                           "--output", str(out)],
}


def run_one(out: Path, encoder: str, seed: int, *, config: Path, train: Path, dev: Path, test: Path,
            threads: int, extra: List[str], evaluate: str = "spacy", collect_only: bool = False) -> Dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if not (out / "test.json").exists():
        if collect_only:
            raise typer.BadParameter(f"{out}: no test.json, and --collect-only trains nothing (a misspelt --encoder "
                                     f"name or seed?)")
        train_cmd = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(out), "--paths.train", str(train),
                     "--paths.dev", str(dev), "--paths.model", encoder, "--system.seed", str(seed), *extra]
        load, start = os.getloadavg(), time.monotonic()
        with open(f"{out}.log", "a", encoding="utf8") as log:
            log.write(" ".join(train_cmd) + "\n")
            log.flush()
            subprocess.run(train_cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        (out / "train_time.json").write_text(json.dumps({"seconds": round(time.monotonic() - start), "threads": threads,
                                                         "loadavg_at_start": [round(x, 2) for x in load]}), encoding="utf8")
        subprocess.run(EVALUATE[evaluate](out / "model-best", test, out / "test.json"), check=True, env=env, cwd=REPO,
                       stdout=subprocess.DEVNULL)
    test_scores = json.loads((out / "test.json").read_text(encoding="utf8"))
    meta = json.loads((out / "model-best" / "meta.json").read_text(encoding="utf8"))
    row = {"seed": seed, "dev": meta["performance"], "test": test_scores}
    if (out / "train_time.json").exists():
        row["train_time"] = json.loads((out / "train_time.json").read_text(encoding="utf8"))
    log = Path(f"{out}.log")
    if log.exists():  # the command that trained this run (a collected run may predate today's shared overrides)
        row["train_command"] = log.read_text(encoding="utf8").split("\n", 1)[0]
    return row


def summarise(rows: List[Dict], key: str) -> Dict[str, float]:
    dev = [r["dev"][key] * 100 for r in rows]
    test = [r["test"][key] * 100 for r in rows]
    spread = lambda xs: round(max(xs) - min(xs), 2)  # noqa: E731 (two seeds: the range is the honest spread)
    return {"n": len(rows), "dev_mean": round(statistics.mean(dev), 2), "dev_spread": spread(dev),
            "test_mean": round(statistics.mean(test), 2), "test_spread": spread(test), "test": [round(x, 2) for x in test]}


def add_to_card(encoder: Path, key: str, summary: Dict, command: str) -> None:
    """Our exports carry a model card: the downstream figures go into it, with the command that made them."""
    card_file = encoder / "electramed_card.json"
    if card_file.exists():
        card = json.loads(card_file.read_text(encoding="utf8"))
        card.setdefault("downstream", {})[key] = {**summary, "command": command}
        write_card(encoder, card)


def main(
    output: Path = typer.Argument(..., help="Run directory (outside the repository)"),
    encoder: List[str] = typer.Option(..., help="NAME=PATH of a save_pretrained encoder; repeat"),
    seed: List[int] = typer.Option([0, 1], help="Fine-tuning seeds; repeat"),
    config: Path = typer.Option(REPO / "configs" / "ner.cfg"),
    train: Path = typer.Option(...), dev: Path = typer.Option(...), test: Path = typer.Option(...),
    score: str = typer.Option("ents_f", help="Score key compared (from the scorer's output): ents_f, rel_micro_f, ..."),
    evaluate: str = typer.Option("spacy", help="Test scoring: spacy (`spacy benchmark accuracy`) | relations "
                                 "(`electramed evaluate-relations --gold-entities`)"),
    threads: int = typer.Option(1),
    extra: List[str] = typer.Argument(None, help="After --: `spacy train` overrides every run shares"),
    plot: Path = typer.Option(None, help="Also draw dev and test per encoder, a dot per seed (PNG)"),
    previous: Path = typer.Option(None, exists=True, dir_okay=False,
                                  help="An earlier output JSON of the same comparison: its encoders stay in the table and "
                                       "the plot (runs whose folders are gone); an --encoder of the same name replaces one"),
    collect_only: bool = typer.Option(False, "--collect-only", help="Only collect finished runs: a run without its "
                                                                    "test scores is an error, never a new training"),
) -> None:
    if evaluate not in EVALUATE:
        raise typer.BadParameter(f"--evaluate {evaluate!r}: use one of {', '.join(EVALUATE)}")
    output.mkdir(parents=True, exist_ok=True)
    table = {"config": str(config), "train": str(train), "dev": str(dev), "test": str(test), "shared_overrides": extra or [],
             "threads": threads, "encoders": {}}
    if previous:
        kept = json.loads(previous.read_text(encoding="utf8"))
        differ = [k for k in ("config", "train", "dev", "test", "shared_overrides") if kept[k] != table[k]]
        if differ:
            raise typer.BadParameter(f"--previous {previous}: another comparison ({', '.join(differ)} differ: "
                                     f"{', '.join(f'{kept[k]} vs {table[k]}' for k in differ)})")
        table["encoders"] = kept["encoders"]
    for item in encoder:
        name, _, path = item.partition("=")
        if not path:
            raise typer.BadParameter(f"--encoder {item!r}: write NAME=PATH")
        rows = [run_one(output / f"{name}_s{s}", path, s, config=config, train=train, dev=dev, test=test,
                        threads=threads, extra=list(extra or []), evaluate=evaluate, collect_only=collect_only)
                for s in seed]
        table["encoders"][name] = {"path": path, "runs": rows, "summary": summarise(rows, score)}
        print(name, json.dumps(table["encoders"][name]["summary"]))
        add_to_card(Path(path), f"{config.name} on {train.name}, {score}, test {test.name}", table["encoders"][name]["summary"],
                    " ".join(sys.argv))
    (output / f"compare_{'_'.join(str(s) for s in seed)}.json").write_text(json.dumps(table, indent=2), encoding="utf8")
    if plot:
        seed_dots({f"{split} {score} (dots: seeds; bar: mean)": {name: [100 * r[split][score] for r in enc["runs"]]
                                                                for name, enc in table["encoders"].items()}
                   for split in ("dev", "test")}, f"{config.name}, train {train.name}, test {test.name}", plot)


if __name__ == "__main__":
    typer.run(main)
