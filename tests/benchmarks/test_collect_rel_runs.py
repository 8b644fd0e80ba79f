"""benchmarks/relations/collect_rel_runs.py: a spaCy training log (with /usr/bin/time -v's report and the run's
test.json) and an anchor report are read into one results JSON, and the per-recipe plot is drawn."""
import json
from pathlib import Path

from conftest import load_benchmark


def load_script():
    return load_benchmark("collect_rel_runs")


def spacy_log(run_dir: Path) -> str:
    return f"""start 2026-11-27T09:13:02+00:00
\x1b[38;5;4mi Pipeline: ['transformer', 'relation_extractor']\x1b[0m
E    #       LOSS TRANS...  LOSS RELAT...  REL_MICRO_F  REL_MICRO_P  REL_MICRO_R  SCORE 
---  ------  -------------  -------------  -----------  -----------  -----------  ------
  0       0           0.00         346.03         0.00         0.00         0.00    0.00
  2     250       33815.60       55079.97        24.37        67.29        14.88    0.24
  5     500       91690.20       16330.95        63.30        69.29        58.26    0.63
\tCommand being timed: "python -m spacy train configs/rel_pooled.cfg --output {run_dir} --system.seed 1"
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:30:05
\tMaximum resident set size (kbytes): 13764160
"""


def test_collects_spacy_and_anchor_runs_and_plots(tmp_path):
    script = load_script()
    run_dir = tmp_path / "v2_run"
    run_dir.mkdir()
    (run_dir / "test.json").write_text(json.dumps({"rel_micro_f": 0.6667, "rel_micro_p": 0.65, "rel_micro_r": 0.68,
                                                   "ents_f": 1.0}))
    (run_dir / "test_end_to_end.json").write_text(json.dumps({"rel_micro_f": 0.61, "ents_f": 0.84, "model": "e2e",
                                                               "protocol": "predicted entities", "token_acc": 1.0}))
    log = tmp_path / "v2.log"
    log.write_text(spacy_log(run_dir), encoding="utf8")
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({"train_steps": 10, "planned_steps": 12, "train_seconds": 61.4,
                                  "dev": {"f": 0.5}, "test": {"f": 0.52, "p": 0.5, "r": 0.54},
                                  "test_end_to_end": {"f": 0.47, "ents_f": 0.84},
                                  "command": ["benchmarks/relations/rel_hf_anchor.py", "--seed", "0"]}))
    anchor.with_suffix(".log").write_text("\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:58:18\n"
                                          "\tMaximum resident set size (kbytes): 2289664\n")
    output, png = tmp_path / "runs.json", tmp_path / "runs.png"
    script.main([f"v2_s1={log}", f"anchor_s0={anchor}"], what="DDI test", machine="1 thread",
                output=output, plot_path=png, print_markdown=False)
    runs = json.loads(output.read_text())["runs"]
    assert runs["v2_s1"]["dev_f_by_step"] == [[0, 0.0], [250, 24.37], [500, 63.30]]
    assert runs["v2_s1"]["test"] == {"rel_micro_f": 0.6667, "rel_micro_p": 0.65, "rel_micro_r": 0.68}
    assert runs["v2_s1"]["wall_clock"] == "1:30:05" and runs["v2_s1"]["peak_rss_mb"] == 13442
    assert runs["anchor_s0"]["train_seconds"] == 61 and runs["anchor_s0"]["peak_rss_mb"] == 2236
    assert runs["anchor_s0"]["command"] == "benchmarks/relations/rel_hf_anchor.py --seed 0"
    # end to end: the spaCy run's evaluate-relations output beside test.json, the anchor's own
    assert runs["v2_s1"]["test_end_to_end"] == {"rel_micro_f": 0.61, "ents_f": 0.84, "model": "e2e"}
    assert runs["anchor_s0"]["test_end_to_end"] == {"f": 0.47, "ents_f": 0.84}
    lines = script.markdown(runs).splitlines()
    assert lines[0].endswith("| train time | end to end F1 (NER F1) |") and lines[2].endswith("| 61.00 (84.00) |")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_rows():
    script = load_script()
    runs = {"v3_s0": {"dev_f_by_step": [[0, 0.0], [250, 47.2], [500, 71.6]], "wall_clock": "1:46:21",
                      "test": {"rel_micro_p": 0.6654, "rel_micro_r": 0.7171, "rel_micro_f": 0.6903,
                               "rel_f_per_type": {"int": {"p": 0.7, "r": 0.4, "f": 0.5166}}}},
            "anchor_s0": {"train_seconds": 6659, "dev": {"f": 0.5407},
                          "test": {"p": 0.5412, "r": 0.5036, "f": 0.5217, "per_type_f": {"int": 0.3939}}}}
    lines = script.markdown(runs).splitlines()
    assert lines[0] == "| run | dev F1 (best) | test P / R / **F1** | int | train time |"
    assert lines[2] == "| v3_s0 | 71.60 | 66.54 / 71.71 / **69.03** | 51.66 | 1:46:21 |"
    assert lines[3] == "| anchor_s0 | 54.07 | 54.12 / 50.36 / **52.17** | 39.39 | 110:59 |"
