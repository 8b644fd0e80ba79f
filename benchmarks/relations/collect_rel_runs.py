"""Collect relation training runs into one results JSON: dev curve, test scores, wall clock, peak RSS.

Each run is NAME=LOG, LOG being the output of `/usr/bin/time -v python -m spacy train ...` (spaCy's
table of evaluations, then time's report) for a spaCy run, with `test.json` from `electramed
evaluate-relations` in the run's output folder; or NAME=JSON for `benchmarks/relations/rel_hf_anchor.py`
(its report, with the `/usr/bin/time -v` log next to it as JSON with `.log` for `.json` when there).
End to end: a spaCy run's `test_end_to_end.json` next to `test.json` (`electramed evaluate-relations NER+REL
corpus/ddi_test.spacy --predicted-entities --output RUN/test_end_to_end.json`, the pipeline from
`scripts/assemble_ner_rel.py`), the anchor's `test_end_to_end` (`--ner`); plotted in a second panel.

    python benchmarks/relations/collect_rel_runs.py --run v2_s0=/runs/pooled1000_s0.log --run anchor_s0=/runs/anchor_s0.json \
        --what "DDI-2013, gold entities, MiniLM-L6, v3's budget" --output benchmarks/relations/results/rel_ddi_equal_budget.json \
        --plot benchmarks/relations/results/rel_ddi_equal_budget.png

Runs named RECIPE_sSEED are grouped by RECIPE in the plot: test micro-F1 per seed, a bar at the mean.
"""
import json
import re
import sys
from pathlib import Path
from typing import Dict, List

import typer


def time_report(text: str) -> Dict:
    """Wall clock, peak RSS and the command from `/usr/bin/time -v` output (empty where absent)."""
    out = {}
    if m := re.search(r"Command being timed: \"(.*)\"", text):
        out["command"] = m.group(1)
    if m := re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text):
        out["wall_clock"] = m.group(1)
    if m := re.search(r"Maximum resident set size \(kbytes\): (\d+)", text):
        out["peak_rss_mb"] = round(int(m.group(1)) / 1024)
    return out


def spacy_run(log: Path) -> Dict:
    text = log.read_text(encoding="utf8", errors="replace")
    curve = []
    header = re.search(r"^E\s+#\s+.*$", text, re.M)
    # spaCy's table: names are separated by 2+ spaces ("LOSS TRANS..." holds one), cells by any space
    columns = re.split(r"\s{2,}", header.group(0).strip()) if header else []
    key = next((c for c in ("REL_MICRO_F", "ENTS_F") if c in columns), None)
    for line in text.splitlines():
        cells = line.split()
        if key and len(cells) == len(columns) and cells[0].isdigit() and cells[1].isdigit():
            curve.append([int(cells[1]), float(cells[columns.index(key)])])
    run = {"dev_f_by_step": curve, **time_report(text)}
    output = re.search(r"--output (\S+)", run.get("command", ""))
    test = Path(output.group(1)) / "test.json" if output else None
    if test and test.exists():
        run["test"] = {k: v for k, v in json.loads(test.read_text(encoding="utf8")).items() if k.startswith("rel_")}
        e2e = test.with_name("test_end_to_end.json")
        if e2e.exists():
            run["test_end_to_end"] = {k: v for k, v in json.loads(e2e.read_text(encoding="utf8")).items()
                                      if k.startswith("rel_") or k in ("ents_f", "model", "data")}
    return run


def anchor_run(report: Path) -> Dict:
    data = json.loads(report.read_text(encoding="utf8"))
    run = {"train_steps": data["train_steps"], "planned_steps": data["planned_steps"],
           "train_seconds": round(data["train_seconds"]), "dev": data["dev"], "test": data["test"],
           "command": " ".join(data["command"])}
    if "test_end_to_end" in data:
        run["test_end_to_end"] = data["test_end_to_end"]
    log = report.with_suffix(".log")
    if log.exists():
        run.update({k: v for k, v in time_report(log.read_text(encoding="utf8", errors="replace")).items() if k != "command"})
    return run


def test_f(run: Dict, key: str = "test") -> float:
    test = run.get(key, {})
    f = test.get("rel_micro_f", test.get("f"))
    return None if f is None else 100 * f


def plot(collected: Dict[str, Dict], what: str, path: Path) -> None:
    panels: Dict[str, Dict[str, List[float]]] = {}
    for key, xlabel in (("test", "test micro-F1, gold entities (dots: seeds; bar: mean)"),
                        ("test_end_to_end", "test micro-F1, end to end (predicted entities)")):
        for name, run in collected.items():
            if (f := test_f(run, key)) is not None:
                panels.setdefault(xlabel, {}).setdefault(re.sub(r"_s\d+$", "", name), []).append(f)
    seed_dots(panels, what, path)


def seed_dots(panels: Dict[str, Dict[str, List[float]]], title: str, path: Path) -> None:
    """One panel per score (its x label -> {row: [score per seed]}): a dot per seed, a bar at the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(len(groups) for groups in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 0.6 * rows + 1.4), squeeze=False)
    for ax, (xlabel, groups) in zip(axes[0], panels.items()):
        every = [f for scores in groups.values() for f in scores]
        # zoomed on the scores (seed spreads of 1-2 points vanish on 0-100), room on the right for the labels
        low, high = max(0.0, min(every) - 5), min(100.0, max(every) + 5)
        for i, (name, scores) in enumerate(groups.items()):
            ax.barh(i, sum(scores) / len(scores), color="#c8d7ea")
            ax.plot(scores, [i] * len(scores), "o", color="#1f4e8c")
            ax.text(max(scores) + 0.02 * (high - low), i, " / ".join(f"{f:.2f}" for f in scores), va="center", fontsize=8)
        ax.set_yticks(range(len(groups)), list(groups))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_xlim(low, high + 0.25 * (high - low))
    fig.suptitle(title if len(title) < 90 * len(panels) else title[:87 * len(panels)] + "...", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(collected: Dict[str, Dict]) -> str:
    """One table row per run: best dev F1, test P / R / F1, F1 per type, training time (a spaCy run's
    `spacy train` wall clock, dev evaluations included; the anchor's training loop)."""
    types = sorted({t for run in collected.values() for t in per_type(run)})
    e2e = any("test_end_to_end" in run for run in collected.values())
    lines = ["| run | dev F1 (best) | test P / R / **F1** | " + " | ".join(types) + " | train time |"
             + (" end to end F1 (NER F1) |" if e2e else ""), "|---" * (len(types) + 4 + e2e) + "|"]
    for name, run in collected.items():
        test = run.get("test", {})
        p, r = (test.get("rel_micro_p", test.get("p")), test.get("rel_micro_r", test.get("r")))
        f = test_f(run)
        dev = max((score for _, score in run.get("dev_f_by_step", [])), default=None)
        if dev is None and "dev" in run:
            dev = 100 * run["dev"]["f"]
        cells = [name, "-" if dev is None else f"{dev:.2f}",
                 "-" if f is None else f"{100 * p:.2f} / {100 * r:.2f} / **{f:.2f}**"]
        by_type = per_type(run)
        cells += [f"{100 * by_type[t]:.2f}" if t in by_type else "-" for t in types]
        seconds = run.get("train_seconds")
        cells.append(f"{seconds // 60}:{seconds % 60:02d}" if seconds is not None else run.get("wall_clock", "-"))
        if e2e:
            end = run.get("test_end_to_end", {})
            cells.append(f"{test_f(run, 'test_end_to_end'):.2f} ({100 * end['ents_f']:.2f})" if end else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_type(run: Dict) -> Dict[str, float]:
    test = run.get("test", {})
    scores = test.get("rel_f_per_type", test.get("per_type_f", {}))
    return {t: (v["f"] if isinstance(v, dict) else v) for t, v in scores.items()}


def main(
    runs: List[str] = typer.Option(..., "--run", help="NAME=PATH: a spaCy train log, or an anchor report (.json)"),
    what: str = typer.Option(..., help="One line: data, protocol, encoder, budget"),
    machine: str = typer.Option("", help="One line: threads, what ran beside"),
    output: Path = typer.Option(...),
    plot_path: Path = typer.Option(None, "--plot", help="Also draw test micro-F1 per recipe and seed (PNG)"),
    print_markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table of the runs"),
) -> None:
    collected = {}
    for item in runs:
        name, _, path = item.partition("=")
        path = Path(path)
        collected[name] = anchor_run(path) if path.suffix == ".json" else spacy_run(path)
        f = test_f(collected[name])
        print(f"{name}: test micro-F1 {f:.2f}" if f is not None else f"{name}: no test scores")
    output.write_text(json.dumps({"what": what, "machine": machine, "runs": collected, "command": sys.argv},
                                 indent=1) + "\n", encoding="utf8")
    if plot_path:
        plot(collected, what, plot_path)
    if print_markdown:
        print(markdown(collected))


if __name__ == "__main__":
    typer.run(main)
