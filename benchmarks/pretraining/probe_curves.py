"""Downstream-probe F1 against pre-training tokens seen, several pre-training runs on one picture.

The probe (`electramed_spacy/pretraining/probe.py`) is scored in two places: inside a run (`[probe] every`,
rows of `RUN/log.jsonl` with `probe_f` and `tokens`) and afterwards on exported checkpoints
(`electramed probe NAME_stepN=DIR ... --output JSON`). This script puts both on one axis: a point of a probe
JSON named `NAME_stepN` (NAME the run's) is placed at the tokens the run's log reports for step N (interpolated between
logged rows). Writes the series as JSON (every point with its step, tokens and source) and a PNG.

    python benchmarks/pretraining/probe_curves.py --run cont1=/work/pretrain_runs/cont1 \\
        --run scratch=/work/pretrain_runs/scratch_c \\
        --probes cont1=benchmarks/pretraining/results/probe_bc5cdr_cont1_steps.json \\
        --baseline minilm=benchmarks/pretraining/results/probe_bc5cdr_cont1_steps.json \\
        --output benchmarks/pretraining/results/probe_curves_bc5cdr.json --plot benchmarks/pretraining/results/probe_curves_bc5cdr.png

`--previous JSON` (an earlier output) keeps its curves, so a picture can grow after the runs behind it are gone.
"""
import json
import re
from bisect import bisect_left
from pathlib import Path
from typing import Dict, List, Optional

import typer

from electramed_spacy.pretraining.log import read_log


def _pairs(items: List[str], what: str) -> List[tuple]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise typer.BadParameter(f"{what} must be NAME=VALUE, got {item!r}")
        out.append((name, value))
    return out


def tokens_at(rows: List[Dict], step: int) -> float:
    """Tokens seen at `step`, from the log's training rows (linear between logged steps; 0 at step 0)."""
    points = sorted({(0, 0)} | {(r["step"], r["tokens"]) for r in rows if "tokens" in r})
    steps = [s for s, _ in points]
    i = bisect_left(steps, step)
    if i < len(steps) and steps[i] == step:
        return points[i][1]
    if i == len(steps):
        raise ValueError(f"step {step} is past the log's last step {steps[-1]}")
    (s0, t0), (s1, t1) = points[i - 1], points[i]
    return t0 + (t1 - t0) * (step - s0) / (s1 - s0)


def collect(runs: Dict[str, Path], probes: List[tuple]) -> Dict[str, List[Dict]]:
    logs = {name: read_log(Path(d) / "log.jsonl") for name, d in runs.items()}
    series = {name: [{"step": r["step"], "tokens": r["tokens"], "probe_f": r["probe_f"], "source": str(Path(runs[name]) / "log.jsonl")}
                     for r in rows if "probe_f" in r] for name, rows in logs.items()}
    for name, path in probes:
        if name not in logs:
            raise typer.BadParameter(f"--probes {name}=...: no --run {name}=RUN_DIR to read its steps' tokens from")
        for encoder, scores in json.loads(Path(path).read_text(encoding="utf8"))["encoders"].items():
            m = re.fullmatch(rf"{re.escape(name)}_step_?0*(\d+)", encoder)
            if m:
                step = int(m.group(1))
                series[name].append({"step": step, "tokens": round(tokens_at(logs[name], step)),
                                     "probe_f": scores["probe_f"], "source": f"{path} ({encoder})"})
    for points in series.values():  # a step probed in the run and again on its export: keep the run's row
        seen = {}
        for p in points:
            seen.setdefault(p["step"], p)
        points[:] = sorted(seen.values(), key=lambda p: p["step"])
    return series


def main(run: List[str] = typer.Option(..., help="NAME=RUN_DIR of a pre-training run (its log.jsonl); repeat"),
         probes: List[str] = typer.Option([], help="NAME=JSON from `electramed probe`: its NAME_stepN rows join run NAME; repeat"),
         baseline: List[str] = typer.Option([], help="ENCODER=JSON: a probe JSON's encoder drawn as a level line"),
         previous: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                 help="an earlier --output of this script: its series and levels stay "
                                                      "(runs whose directories are gone); a --run of the same name replaces it"),
         output: Path = typer.Option(...), plot: Optional[Path] = typer.Option(None)):
    kept = json.loads(previous.read_text(encoding="utf8")) if previous else {"series": {}, "baselines": {}}
    series = {**kept["series"], **collect(dict(_pairs(run, "--run")), _pairs(probes, "--probes"))}
    levels = {**kept["baselines"], **{name: json.loads(Path(path).read_text(encoding="utf8"))["encoders"][name]["probe_f"]
                                      for name, path in _pairs(baseline, "--baseline")}}
    output.write_text(json.dumps({"series": series, "baselines": levels}, indent=2) + "\n", encoding="utf8")
    for name, points in series.items():
        print(name, " ".join(f"{p['step']}:{100 * p['probe_f']:.2f}" for p in points))
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, points in series.items():
            ax.plot([p["tokens"] / 1e6 for p in points], [100 * p["probe_f"] for p in points], "o-", label=name)
        for name, level in levels.items():
            ax.axhline(100 * level, ls="--", color="grey", lw=1)
            ax.annotate(name, (0, 100 * level), textcoords="offset points", xytext=(2, 3), color="grey")
        ax.set_xlabel("pre-training tokens seen (millions)")
        ax.set_ylabel("probe entity F1 (dev)")
        ax.set_title("linear NER probe on the frozen encoder")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        print(f"wrote {output} and {plot}")


if __name__ == "__main__":
    typer.run(main)
