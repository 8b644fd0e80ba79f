"""`electramed annotate` as a careless or hostile user drives it: kills with workers, odd records and
paths, files that are not ours. Each case was a way to lose data, mix outputs or abort a run."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from annotate_helpers import annotate_cli, output_bytes, records, shard_files, tiny_pipeline, write_jsonl

from electramed_spacy.annotate import annotate

DDI_XML = Path(__file__).resolve().parents[1] / "fixtures" / "re" / "ddi" / "interaction_sample.xml"
_cli = annotate_cli


@pytest.fixture(scope="module")
def nlp_path(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory)


def _start(nlp_path, input_path, out, *extra):
    """`electramed annotate` in its own process (as a user's shell runs it)."""
    cmd = [sys.executable, "-m", "electramed_spacy.cli", "annotate", str(nlp_path), str(input_path), str(out),
           "--quiet", "--shard-size", "50", "--batch-size", "8", *map(str, extra)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(condition, seconds=120.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _workers_of(out):
    path = out / ".workers.json"
    return [pid for pid, _ in json.loads(path.read_text())] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_with_two_workers_then_rerun_gives_the_uninterrupted_output(nlp_path, tmp_path, sig):
    """The workers die with the run (no stray process holds the folder), and the rerun's output is
    byte-identical to a run never interrupted. Ctrl-C and SIGTERM end the run promptly too."""
    input_path = write_jsonl(tmp_path / "docs.jsonl", 2000)
    assert annotate(nlp_path, input_path, tmp_path / "reference", shard_size=50, batch_size=8, progress=False).documents == 2000
    out = tmp_path / "out"
    run = _start(nlp_path, input_path, out, "--workers", 2)
    assert _wait_for(lambda: len(shard_files(out)) >= 2 and _workers_of(out)), run.stdout.read() if run.poll() else ""
    workers = _workers_of(out)
    assert len(workers) == 2
    if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group, workers included
        os.killpg(run.pid, sig)
    else:  # a kill of the main process only: its workers are left to be found
        run.send_signal(sig)
    run.wait(60)  # a Ctrl-C used to hang here until pressed twice
    assert run.returncode != 0
    assert _wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                     for p in workers), 30), "a worker outlived the run"
    rerun = _start(nlp_path, input_path, out, "--workers", 2)
    assert rerun.wait(300) == 0, rerun.stdout.read()
    assert output_bytes(out) == output_bytes(tmp_path / "reference")
    assert [r["id"] for r in records(out)] == [f"doc-{i:05d}" for i in range(2000)]


def test_a_stray_worker_of_a_killed_run_is_ended_by_its_pid(nlp_path, tmp_path):
    """Where no parent-death signal exists, the rerun ends what the killed run recorded (pid + start time)."""
    input_path = write_jsonl(tmp_path / "docs.jsonl", 10)
    out = tmp_path / "out"
    out.mkdir()
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        rows = [[stray.pid, psutil.Process(stray.pid).create_time()], [unrelated.pid, 0.0]]  # 0.0: a reused pid
        (out / ".workers.json").write_text(json.dumps(rows))
        assert _cli(nlp_path, input_path, out)[0] == 0
        stray.wait(10)  # reaped already by the rerun when it is this process's own child
        assert not psutil.pid_exists(stray.pid)
        assert unrelated.poll() is None  # another process with that pid now: left alone
    finally:
        for proc in (stray, unrelated):
            proc.kill()
            proc.wait()


def test_one_record_with_a_lone_surrogate_is_one_counted_record(nlp_path, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "Cisplatin."}\n{"id": "bad", "text": "x \\ud800 y"}\n{"id": "c", "text": "Aspirin."}\n')
    for _ in range(2):  # and again on the rerun
        code, out = _cli(nlp_path, path, tmp_path / "out")
        assert code == 0, out
    assert [r["id"] for r in records(tmp_path / "out")] == ["a", "c"]
    logged = [json.loads(line) for line in (tmp_path / "out" / "malformed.jsonl").read_text().splitlines()]
    assert len(logged) == 1 and "id bad" in logged[0]["where"] and "U+D800 at character 2" in logged[0]["detail"]


def test_a_txt_file_name_that_is_not_utf8(nlp_path, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "plain.txt").write_text("Cisplatin induced nephrotoxicity.")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "w") as f:
        f.write("Aspirin reduced the risk.")
    code, out = _cli(nlp_path, folder, tmp_path / "out")
    assert code == 0, out
    assert sorted(r["id"] for r in records(tmp_path / "out")) == ["caf\\xe9", "plain"]
    assert _cli(nlp_path, folder, tmp_path / "out")[0] == 0  # and it resumes


def test_a_users_tmp_files_are_never_touched(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 6)
    out = tmp_path / "out"
    assert _cli(nlp_path, path, out, "--shard-size", 3)[0] == 0
    (out / "thesis.tmp").write_text("chapter 1")
    (out / "part-000009.jsonl.tmp").write_text("not ours either")
    code, msg = _cli(nlp_path, path, out, "--shard-size", 4)  # refused: other settings
    assert code == 1 and "other shard_size" in msg
    assert _cli(nlp_path, path, out, "--shard-size", 3)[0] == 0  # resumed
    assert (out / "thesis.tmp").read_text() == "chapter 1" and (out / "part-000009.jsonl.tmp").exists()


def test_shards_without_a_manifest_are_refused(nlp_path, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", 6)
    out = tmp_path / "out"
    assert _cli(nlp_path, path, out, "--shard-size", 3)[0] == 0
    (out / "run.json").unlink()
    code, msg = _cli(nlp_path, path, out, "--shard-size", 3)
    assert code == 1 and "no run.json" in msg and "part-000000.jsonl" in msg


def test_a_copied_corpus_resumes_and_an_edited_one_does_not(nlp_path, tmp_path):
    first = tmp_path / "a" / "corpus"
    first.mkdir(parents=True)
    write_jsonl(first / "docs.jsonl", 6)
    out = tmp_path / "out"
    assert _cli(nlp_path, first, out, "--shard-size", 3)[0] == 0
    (out / "part-000001.jsonl").unlink()
    copy = shutil.copytree(first, tmp_path / "b" / "corpus")  # new path, new mtimes
    code, msg = _cli(nlp_path, copy, out, "--shard-size", 3)
    assert code == 0, msg
    assert len(shard_files(out)) == 2
    with open(copy / "docs.jsonl", "r+b") as f:  # same size, other text
        f.seek(10)
        f.write(b"X")
    code, msg = _cli(nlp_path, copy, out, "--shard-size", 3)
    assert code == 1 and "other files" in msg


def test_an_output_folder_inside_the_input_folder_resumes(nlp_path, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "docs.jsonl", 6)
    out = corpus / "annotated"
    assert _cli(nlp_path, corpus, out, "--shard-size", 3)[0] == 0
    code, msg = _cli(nlp_path, corpus, out, "--shard-size", 3)  # its own part-*.jsonl are not input
    assert code == 0, msg
    assert len(records(out)) == 6


def test_nothing_annotated_is_an_error(nlp_path, tmp_path):
    code, msg = _cli(nlp_path, DDI_XML, tmp_path / "out")  # DDI-2013 XML is not MEDLINE
    assert code == 1 and "nothing was annotated" in msg and "--format" in msg
    logged = (tmp_path / "out" / "malformed.jsonl").read_text()
    assert "not MEDLINE/PubMed XML" in logged and "<document>" in logged


def test_negative_threads_are_refused(nlp_path, tmp_path):
    code, msg = _cli(nlp_path, write_jsonl(tmp_path / "docs.jsonl", 2), tmp_path / "out", "--threads", -3)
    assert code == 1 and "--threads must be 0" in msg


def test_the_xml_parsers_reason_for_a_bomb_is_logged(nlp_path, tmp_path):
    entities = '<!ENTITY a0 "' + "x" * 100 + '">' + "".join(
        f'<!ENTITY a{i} "' + f"&a{i - 1};" * 10 + '">' for i in range(1, 8))
    (tmp_path / "bomb.xml").write_text(f'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [{entities}]>'
                                       "<PubmedArticleSet><PubmedArticle>&a7;</PubmedArticle></PubmedArticleSet>")
    code, _ = _cli(nlp_path, tmp_path / "bomb.xml", tmp_path / "out")
    assert code == 1
    assert "amplification" in (tmp_path / "out" / "malformed.jsonl").read_text()


def test_a_full_disk_names_the_output_folder(nlp_path, tmp_path, monkeypatch):
    from electramed_spacy.annotate import run

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run, "write_atomic", full)
    out = tmp_path / "out"
    code, msg = _cli(nlp_path, write_jsonl(tmp_path / "docs.jsonl", 2), out)
    assert code == 1 and str(out) in msg and "No space left" in msg and "rerun" in msg


def test_one_abstract_per_line_on_request(nlp_path, tmp_path):
    (tmp_path / "abstracts.txt").write_text("Cisplatin induced nephrotoxicity.\n\nAspirin reduced the risk.\n")
    code, out = _cli(nlp_path, tmp_path / "abstracts.txt", tmp_path / "out", "--format", "lines")
    assert code == 0, out
    assert [r["id"].rsplit(":", 1)[1] for r in records(tmp_path / "out")] == ["1", "3"]
    assert _cli(nlp_path, tmp_path / "abstracts.txt", tmp_path / "one")[0] == 0  # default: the file is one document
    assert len(records(tmp_path / "one")) == 1


def test_a_question_field_reaches_a_qa_pipeline(tmp_path):
    """The QA pipe reads doc._.question: a jsonl "question" is set there, and the answer status is kept."""
    import spacy
    from spacy.language import Language

    @Language.component("annotate_test_echo_question")
    def echo(doc):
        from spacy.tokens import SpanGroup

        group = SpanGroup(doc, name="answers", spans=[doc[:1]] if doc._.question else [])
        group.attrs["scores"] = [1.0] if doc._.question else []
        group.attrs["status"] = "" if doc._.question else "no question"
        doc.spans["answers"] = group
        return doc

    from electramed_spacy.doc.qa import install_qa_extensions

    install_qa_extensions()
    nlp = spacy.blank("en")
    nlp.add_pipe("annotate_test_echo_question")
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": "q1", "text": "Naloxone reverses it.", "question": "Which drug?"}\n'
                    '{"id": "q2", "text": "No question here."}\n')
    from electramed_spacy.annotate.run import run_local

    written = {}
    from electramed_spacy.annotate.inputs import read_jsonl

    run_local(nlp, [(0, list(read_jsonl(path)))], lambda i, data, stats: written.setdefault(i, data),
              lambda *a: None, workers=1, batch_size=4, output_format="jsonl")
    first, second = [json.loads(line) for line in written[0].decode().splitlines()]
    assert first["answers"][0]["text"] == "Naloxone" and "answer_status" not in first
    assert second["answers"] == [] and second["answer_status"] == "no question"
