"""One NER training run as a results JSON: the dev curve from its log, the test scores of model-best.

    python benchmarks/ner_accuracy/collect_ner_run.py TRAIN_LOG TEST_JSON --command "..." --machine "..." --output out.json

TRAIN_LOG is what `spacy train` / `electramed train` printed (the table of steps and scores);
TEST_JSON is `spacy evaluate MODEL-BEST TEST.spacy --output TEST_JSON`.
"""
import json
import re
from pathlib import Path

import typer

ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def dev_curve(log_text: str):
    """(epoch, step, ents_f, ents_p, ents_r) per evaluation row of a spaCy training log (NER columns), in step
    order; a step printed twice (a resumed `electramed train` reprints the rows before its checkpoint) once."""
    rows = {}
    for line in log_text.splitlines():
        m = ROW.match(line)
        if m:
            epoch, step, _, _, f, p, r, _ = m.groups()
            rows[int(step)] = {"epoch": int(epoch), "step": int(step), "dev_f": float(f), "dev_p": float(p), "dev_r": float(r)}
    return [rows[step] for step in sorted(rows)]


def main(train_log: Path, test_json: Path, command: str = typer.Option(...), machine: str = typer.Option(...),
         encoder: str = typer.Option(...), output: Path = typer.Option(...)):
    curve = dev_curve(train_log.read_text(encoding="utf8", errors="replace"))
    test = json.loads(test_json.read_text())
    best = max(curve, key=lambda r: (r["dev_f"], -r["step"])) if curve else None
    result = {"encoder": encoder, "command": command, "machine": machine, "dev_curve": curve, "best_dev": best,
              "test": {"ents_f": round(100 * test["ents_f"], 2), "ents_p": round(100 * test["ents_p"], 2),
                       "ents_r": round(100 * test["ents_r"], 2),
                       "per_type_f": {k: round(100 * v["f"], 2) for k, v in test["ents_per_type"].items()},
                       "words_per_s": round(test.get("speed", 0.0))}}
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["test"]), "best dev", best)


if __name__ == "__main__":
    typer.run(main)
