"""benchmarks/ner_accuracy/encoder_compare.py collects runs that already have their test scores (a comparison grows
across sessions without retraining) and summarises dev/test per encoder: mean and spread over seeds."""
import json
from pathlib import Path

import pytest
import typer
from conftest import load_benchmark


def load_script():
    return load_benchmark("encoder_compare")


def finished_run(out: Path, dev_f: float, test_f: float) -> None:
    (out / "model-best").mkdir(parents=True)
    (out / "model-best" / "meta.json").write_text(json.dumps({"performance": {"rel_micro_f": dev_f}}))
    (out / "test.json").write_text(json.dumps({"rel_micro_f": test_f, "protocol": "gold entities"}))
    (out / "train_time.json").write_text(json.dumps({"seconds": 2700, "threads": 1, "loadavg_at_start": [1.0, 1.0, 1.0]}))


def test_collects_finished_relation_runs(tmp_path):
    script = load_script()
    finished_run(tmp_path / "minilm_s0", 0.70, 0.69)
    finished_run(tmp_path / "minilm_s1", 0.68, 0.66)
    (tmp_path / "minilm_s1.log").write_text("python -m spacy train rel.cfg --system.seed 1\nstep 0 ...\n")
    encoder = tmp_path / "encoder"  # no model card: nothing is written beside it
    encoder.mkdir()
    script.main(tmp_path, [f"minilm={encoder}"], [0, 1], tmp_path / "rel.cfg", tmp_path / "train.spacy",
                tmp_path / "dev.spacy", tmp_path / "test.spacy", "rel_micro_f", "relations", 1, None, tmp_path / "c.png", None)
    table = json.loads((tmp_path / "compare_0_1.json").read_text())
    assert table["encoders"]["minilm"]["summary"] == {
        "n": 2, "dev_mean": 69.0, "dev_spread": 2.0, "test_mean": 67.5, "test_spread": 3.0, "test": [69.0, 66.0]}
    assert table["encoders"]["minilm"]["runs"][1]["train_time"]["seconds"] == 2700
    # each row says what trained it; a run without a log says nothing
    assert table["encoders"]["minilm"]["runs"][1]["train_command"] == "python -m spacy train rel.cfg --system.seed 1"
    assert "train_command" not in table["encoders"]["minilm"]["runs"][0]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert list(encoder.iterdir()) == []


def test_relations_are_scored_with_gold_entities(tmp_path):
    command = load_script().EVALUATE["relations"](tmp_path / "m", tmp_path / "t.spacy", tmp_path / "o.json")
    assert command[:2] == ["electramed", "evaluate-relations"] and "--gold-entities" in command


def test_unknown_evaluation_is_refused(tmp_path):
    with pytest.raises(typer.BadParameter, match="--evaluate 'ner'"):
        load_script().main(tmp_path, ["a=b"], [0], tmp_path / "c.cfg", tmp_path / "t", tmp_path / "d", tmp_path / "e",
                           "ents_f", "ner", 1, None, None, None)


def test_previous_table_keeps_its_encoders(tmp_path):
    """An earlier table's encoders stay beside new ones (their run folders gone); one of the same name is replaced;
    a table of another comparison is refused."""
    script = load_script()
    finished_run(tmp_path / "new_s0", 0.70, 0.69)
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    files = [tmp_path / "rel.cfg", tmp_path / "train.spacy", tmp_path / "dev.spacy", tmp_path / "test.spacy"]
    old = {"config": str(files[0]), "train": str(files[1]), "dev": str(files[2]), "test": str(files[3]),
           "shared_overrides": ["--training.max_steps", "450"], "threads": 1,
           "encoders": {"gone": {"path": "x", "runs": [], "summary": {"test_mean": 60.0}},
                        "new": {"path": "y", "runs": [], "summary": {"test_mean": 1.0}}}}
    previous = tmp_path / "old.json"
    previous.write_text(json.dumps(old))
    script.main(tmp_path, [f"new={encoder}"], [0], *files, "rel_micro_f", "relations", 1,
                ["--training.max_steps", "450"], None, previous)
    table = json.loads((tmp_path / "compare_0.json").read_text())
    assert table["encoders"]["gone"] == old["encoders"]["gone"]
    assert table["encoders"]["new"]["summary"]["test"] == [69.0]
    with pytest.raises(typer.BadParameter, match="shared_overrides differ"):
        script.main(tmp_path, [f"new={encoder}"], [0], *files, "rel_micro_f", "relations", 1,
                    ["--training.max_steps", "300"], None, previous)


def test_collect_only_never_trains(tmp_path):
    script = load_script()
    finished_run(tmp_path / "minilm_s0", 0.70, 0.69)
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    with pytest.raises(typer.BadParameter, match="minilm_s1: no test.json"):
        script.main(tmp_path, [f"minilm={encoder}"], [0, 1], tmp_path / "rel.cfg", tmp_path / "train.spacy",
                    tmp_path / "dev.spacy", tmp_path / "test.spacy", "rel_micro_f", "relations", 1, None, None, None,
                    collect_only=True)
    assert not (tmp_path / "minilm_s1").exists() and not (tmp_path / "minilm_s1.log").exists()
