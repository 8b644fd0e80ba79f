"""benchmarks/pretraining/probe_curves.py: probe rows of a run's log.jsonl and `electramed probe` JSON rows named
RUN_stepN land on one tokens axis; other encoders of the JSON stay out; the plot is drawn."""
import json
from pathlib import Path

import pytest
import typer
from conftest import load_benchmark


def write_run(run: Path) -> None:
    run.mkdir()
    rows = [{"step": 10, "tokens": 1000, "loss": 9.0}, {"step": 20, "tokens": 3000, "loss": 8.0},
            {"step": 20, "tokens": 3000, "probe_f": 0.40}, {"step": 30, "tokens": 4000, "loss": 7.0}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")


def write_probes(path: Path) -> None:
    encoders = {"base": {"probe_f": 0.50}, "cont_step15": {"probe_f": 0.45}, "cont_step20": {"probe_f": 0.99},
                "other_step10": {"probe_f": 0.10}}
    path.write_text(json.dumps({"encoders": encoders}), encoding="utf8")


def test_tokens_at_interpolates_and_refuses_past_the_log():
    script = load_benchmark("probe_curves")
    rows = [{"step": 10, "tokens": 1000}, {"step": 20, "tokens": 3000}]
    assert script.tokens_at(rows, 0) == 0
    assert script.tokens_at(rows, 5) == 500
    assert script.tokens_at(rows, 20) == 3000
    assert script.tokens_at(rows, 15) == 2000
    with pytest.raises(ValueError, match="past the log"):
        script.tokens_at(rows, 21)


def test_collect_joins_the_runs_probe_rows(tmp_path):
    script = load_benchmark("probe_curves")
    write_run(tmp_path / "cont")
    write_probes(tmp_path / "probes.json")
    series = script.collect({"cont": tmp_path / "cont"}, [("cont", str(tmp_path / "probes.json"))])
    points = series["cont"]
    # step 15 from the JSON at interpolated tokens; step 20 probed in the run wins over the JSON's 0.99;
    # "other_step10" and "base" belong to no run named so
    assert [(p["step"], p["tokens"], p["probe_f"]) for p in points] == [(15, 2000, 0.45), (20, 3000, 0.40)]
    with pytest.raises(typer.BadParameter, match="no --run other"):
        script.collect({"cont": tmp_path / "cont"}, [("other", str(tmp_path / "probes.json"))])


def test_main_writes_json_and_plot(tmp_path):
    script = load_benchmark("probe_curves")
    write_run(tmp_path / "cont")
    write_probes(tmp_path / "probes.json")
    out, png = tmp_path / "curves.json", tmp_path / "curves.png"
    script.main(run=[f"cont={tmp_path / 'cont'}"], probes=[f"cont={tmp_path / 'probes.json'}"],
                baseline=[f"base={tmp_path / 'probes.json'}"], previous=None, output=out, plot=png)
    result = json.loads(out.read_text())
    assert result["baselines"] == {"base": 0.5}
    assert [p["step"] for p in result["series"]["cont"]] == [15, 20]
    assert png.stat().st_size > 1000


def test_previous_output_keeps_its_curves(tmp_path):
    """A run whose directory is gone stays on the picture; a --run of the same name replaces its old curve."""
    script = load_benchmark("probe_curves")
    write_run(tmp_path / "cont")
    previous = tmp_path / "old.json"
    old_point = {"step": 5, "tokens": 500, "probe_f": 0.3, "source": "gone/log.jsonl"}
    previous.write_text(json.dumps({"series": {"gone": [old_point], "cont": [old_point]}, "baselines": {"base": 0.5}}))
    out = tmp_path / "curves.json"
    script.main(run=[f"cont={tmp_path / 'cont'}"], probes=[], baseline=[], previous=previous, output=out, plot=None)
    result = json.loads(out.read_text())
    assert result["series"]["gone"] == [old_point]
    assert [(p["step"], p["probe_f"]) for p in result["series"]["cont"]] == [(20, 0.40)]
    assert result["baselines"] == {"base": 0.5}
