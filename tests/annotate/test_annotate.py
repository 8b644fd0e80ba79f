"""`electramed annotate` end to end on a tiny pipeline: records and offsets, malformed records,
resume, settings changes, DocBin shards, 2 worker processes, and the error lines."""
import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest
import spacy
from annotate_helpers import MEDLINE, output_bytes, records, shard_files, tiny_pipeline, write_jsonl
from spacy.tokens import Doc, DocBin
from typer.testing import CliRunner

from electramed_spacy.annotate import annotate
from electramed_spacy.annotate.output import doc_to_record
from electramed_spacy.cli import app
from electramed_spacy.doc.relations import Relation, set_relations

runner = CliRunner()


@pytest.fixture(scope="module")
def nlp_path(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory)


def _cli(*args):
    result = runner.invoke(app, ["annotate", *map(str, args), "--quiet"])
    return result.exit_code, result.output


def _check_offsets(recs):
    for rec in recs:
        for ent in rec["entities"]:
            assert rec["text"][ent["start"]:ent["end"]] == ent["text"]


def test_medline_gz_to_json_lines_with_character_offsets(nlp_path, tmp_path):
    gz = tmp_path / "pubmed24n0001.xml.gz"
    gz.write_bytes(gzip.compress(MEDLINE.read_bytes()))
    code, out = _cli(nlp_path, gz, tmp_path / "out", "--shard-size", 3)
    assert code == 0, out
    recs = records(tmp_path / "out")
    assert [r["id"] for r in recs] == ["9000201", "9000202", "9000203", "9000204"]
    assert all(set(r) == {"id", "text", "entities", "relations"} and r["relations"] == [] for r in recs)
    _check_offsets(recs)
    assert set(recs[0]["entities"][0]) == {"start", "end", "label", "text", "kb_id"}
    non_ascii = {(e["text"], e["label"]) for e in recs[2]["entities"]}
    assert {("Sjögren’s syndrome", "Disease"), ("β-blocker", "Chemical")} <= non_ascii
    assert [p.name for p in shard_files(tmp_path / "out")] == ["part-000000.jsonl", "part-000001.jsonl"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["documents"] == 4 and summary["shards_written"] == 2 and summary["docs_per_s"] > 0


def test_record_has_relations_and_answers_with_character_offsets():
    nlp = spacy.blank("en")
    doc = nlp("Le β-bloquant propranolol aggrave le syndrome de Sjögren.")
    doc.ents = [doc.char_span(14, 25, "Chemical", kb_id="D011433"), doc.char_span(37, 56, "Disease")]
    set_relations(doc, [Relation(doc.ents[0], doc.ents[1], "CID", 0.912345)])
    doc.spans["answers"] = [doc.char_span(14, 25, "ANSWER")]
    doc.spans["answers"].attrs["scores"] = [0.5]
    rec = doc_to_record(doc, "x")
    assert rec["entities"][0] == {"start": 14, "end": 25, "text": "propranolol", "label": "Chemical", "kb_id": "D011433"}
    rel = rec["relations"][0]
    assert (rel["label"], rel["score"], rel["head"]["text"], rel["tail"]["text"]) == ("CID", 0.9123, "propranolol", "syndrome de Sjögren")
    assert doc.text[rel["tail"]["start"]:rel["tail"]["end"]] == "syndrome de Sjögren"
    assert rec["answers"] == [{"start": 14, "end": 25, "text": "propranolol", "score": 0.5}]
    assert "answers" not in doc_to_record(Doc(nlp.vocab, words=["a"]), "y")


def test_malformed_records_are_counted_with_location_or_stop_the_run(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 6)
    lines = path.read_text(encoding="utf8").splitlines()
    lines.insert(2, "{broken")
    lines.insert(5, json.dumps({"id": "no-text"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf8")

    code, out = _cli(nlp_path, path, tmp_path / "out", "--shard-size", 4)
    assert code == 0, out
    assert [r["id"] for r in records(tmp_path / "out")] == [f"doc-{i:05d}" for i in range(6)]
    logged = [json.loads(line) for line in (tmp_path / "out" / "malformed.jsonl").read_text().splitlines()]
    assert [(m["where"], m["reason"]) for m in logged] == [(f"{path}:3", "invalid JSON"), (f"{path}:6", 'no string "text" field')]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["malformed"] == {"invalid JSON": 1, 'no string "text" field': 1}

    code, out = _cli(nlp_path, path, tmp_path / "stop", "--on-error", "stop")
    assert code == 1 and len(out.strip().splitlines()) == 1
    assert f"{path}:3: invalid JSON" in out and "--on-error count" in out


def test_rerun_resumes_only_missing_shards_and_refuses_other_settings(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 10)
    out = tmp_path / "out"
    assert _cli(nlp_path, path, out, "--shard-size", 3)[0] == 0
    full = output_bytes(out)
    assert len(shard_files(out)) == 4

    summary = annotate(nlp_path, path, out, shard_size=3, progress=False)  # all done: nothing to annotate
    assert (summary.documents, summary.skipped_shards, summary.skipped_documents) == (0, 4, 10)

    (out / "part-000001.jsonl").unlink()  # as if killed before this shard was renamed...
    (out / ".electramed-4242-part-000001.jsonl.tmp").write_bytes(b'{"id": "half a rec')  # ...with its half-written temp file
    (out / "thesis.tmp").write_text("a user's own file")  # never ours to delete
    summary = annotate(nlp_path, path, out, shard_size=3, progress=False)
    assert (summary.documents, summary.shards_written, summary.skipped_shards) == (3, 1, 3)
    assert output_bytes(out) == full and [p.name for p in out.glob("*.tmp")] == ["thesis.tmp"]

    code, msg = _cli(nlp_path, path, out, "--shard-size", 5)
    assert code == 1 and "holds a run with other shard_size" in msg and "new output folder" in msg
    path.write_text(path.read_text() + '{"id": "new", "text": "More."}\n')
    code, msg = _cli(nlp_path, path, out, "--shard-size", 3)
    assert code == 1 and "other files" in msg

    retrained = shutil.copytree(nlp_path, tmp_path / "nlp")  # a model saved again at the same path, same meta
    assert _cli(retrained, path, tmp_path / "out2")[0] == 0
    weights = retrained / "ner" / "model"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # touched: same weights
    assert _cli(retrained, path, tmp_path / "out2")[0] == 0
    nlp = spacy.load(retrained)  # other weights under the same name and version
    layer = next(node for node in nlp.get_pipe("ner").model.walk() if node.has_param("W"))
    layer.set_param("W", layer.get_param("W") + 0.01)
    nlp.to_disk(retrained)
    code, msg = _cli(retrained, path, tmp_path / "out2")
    assert code == 1 and "other pipeline_sha256" in msg


def test_docbin_shards_hold_the_same_annotations(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 7)
    assert _cli(nlp_path, path, tmp_path / "jsonl", "--shard-size", 4)[0] == 0
    assert _cli(nlp_path, path, tmp_path / "bin", "--shard-size", 4, "--output-format", "docbin")[0] == 0
    vocab = spacy.blank("en").vocab
    docs = [d for p in shard_files(tmp_path / "bin", "spacy") for d in DocBin().from_disk(p).get_docs(vocab)]
    assert len(shard_files(tmp_path / "bin", "spacy")) == 2
    assert [doc_to_record(d, d._.doc_id) for d in docs] == records(tmp_path / "jsonl")


def test_two_worker_processes_give_the_same_bytes(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 40)
    assert _cli(nlp_path, path, tmp_path / "one", "--shard-size", 7, "--batch-size", 4)[0] == 0
    code, out = _cli(nlp_path, path, tmp_path / "two", "--shard-size", 7, "--batch-size", 4, "--workers", 2, "--threads", 1)
    assert code == 0, out
    assert output_bytes(tmp_path / "two") == output_bytes(tmp_path / "one")
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["workers"] == 2


def test_user_errors_are_one_actionable_line(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 2)
    cases = [
        ((tmp_path / "no_such_pipeline", path, tmp_path / "o1"), "cannot load the pipeline"),
        ((nlp_path, tmp_path / "missing.jsonl", tmp_path / "o2"), "does not exist"),
        ((nlp_path, path, tmp_path / "o3", "--engine", "spark"), "--engine must be local or dask"),
        ((nlp_path, path, tmp_path / "o4", "--workers", 2, "--gpu-id", 0), "--workers 1, or --engine dask"),
        ((nlp_path, path, tmp_path / "o5", "--shard-size", 0), "--shard-size must be at least 1"),
    ]
    for args, expected in cases:
        code, out = _cli(*args)
        assert code == 1 and expected in out and len(out.strip().splitlines()) == 1, out

    (tmp_path / "busy").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               str(tmp_path / "busy" / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # another process's run holds the folder
        code, out = _cli(nlp_path, path, tmp_path / "busy")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and "another `electramed annotate` is writing here" in out


def test_dask_engine_without_the_extra_says_how_to_install(nlp_path, tmp_path, monkeypatch):
    from electramed_spacy.annotate import dask_engine

    monkeypatch.setattr(dask_engine, "WorkerPlugin", object)  # as when `distributed` is not installed
    code, out = _cli(nlp_path, write_jsonl(tmp_path / "docs.jsonl", 2), tmp_path / "out", "--engine", "dask")
    assert code == 1 and "pip install 'electramed-spacy[dask]'" in out
