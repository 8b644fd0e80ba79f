"""Registered spaCy readers (found through entry points) and `electramed convert`."""
import json
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import registry
from thinc.api import Config
from typer.testing import CliRunner

from conftest import FIXTURES
from electramed_spacy.cli import app

NER = FIXTURES / "ner"


def test_readers_registered_through_entry_points():
    code = (
        "import sys, spacy\n"
        "from spacy.util import registry\n"
        "assert 'electramed_spacy' not in sys.modules\n"
        "for name in ('electramed.PubTatorCorpus.v1', 'electramed.ConllCorpus.v1', 'electramed.BratCorpus.v1'):\n"
        "    print(registry.readers.get(name).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["electramed_spacy.corpora.readers"] * 3


def test_readers_from_config_yield_examples():
    nlp = spacy.blank("en")
    cfg = Config().from_str(f"""
    [pubtator]
    @readers = "electramed.PubTatorCorpus.v1"
    path = "{NER / 'bc5cdr_sample.PubTator.txt'}"

    [conll]
    @readers = "electramed.ConllCorpus.v1"
    path = "{NER / 'ncbi_sample_iob1.conll'}"
    scheme = "iob1"
    n_sents = 1
    limit = 2

    [brat]
    @readers = "electramed.BratCorpus.v1"
    path = "{NER / 'brat'}"
    discontinuous = "extent"
    """)
    readers = registry.resolve(cfg)
    examples = list(readers["pubtator"](nlp))
    assert len(examples) == 2
    eg = examples[0]
    assert eg.predicted.text == eg.reference.text and not eg.predicted.ents
    assert [e.text for e in eg.reference.ents][:2] == ["Lithium", "nephrogenic diabetes insipidus"]
    # gold entities project onto the pipeline's own tokenisation
    assert "Chemical" in [t.split("-")[-1] for t in eg.get_aligned_ner() if t]
    assert len(list(readers["conll"](nlp))) == 2
    (brat,) = list(readers["brat"](nlp))
    assert "renal and hepatic failure" in [s.text for s in brat.reference.spans["mentions"]]


def test_reader_rejects_bad_option():
    cfg = Config().from_str('[c]\n@readers = "electramed.ConllCorpus.v1"\npath = "x.tsv"\nscheme = "bilou"\n')
    with pytest.raises(ValueError, match="scheme must be one of"):
        registry.resolve(cfg)


def test_convert_cli_pubtator_with_summary(tmp_path):
    out, summary = tmp_path / "train.spacy", tmp_path / "summary.json"
    result = CliRunner().invoke(app, [
        "convert", str(NER / "bc5cdr_sample.PubTator.txt"), str(out), "--format", "pubtator",
        "--summary-json", str(summary)])
    assert result.exit_code == 0, result.output
    assert "entities: Chemical" in result.output and "relations: CID" in result.output
    assert "dropped: overlapping mention" in result.output
    data = json.loads(summary.read_text())
    assert data["documents"] == 2 and data["entities"] == {"Chemical": 10, "Disease": 9}
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [(r.head.text, r.tail.text) for r in docs[0]._.relations][0] == ("Lithium", "nephrogenic diabetes insipidus")


def test_convert_cli_conll_and_brat(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(NER / "ncbi_sample_iob1.conll"), str(tmp_path / "c.spacy"),
                                 "--format", "conll", "--scheme", "iob1", "--n-sents", "1"])
    assert result.exit_code == 0, result.output
    assert len(DocBin().from_disk(tmp_path / "c.spacy")) == 3
    result = runner.invoke(app, ["convert", str(NER / "brat"), str(tmp_path / "b.spacy"), "--format", "brat",
                                 "--discontinuous", "fragments", "--no-sentences"])
    assert result.exit_code == 0, result.output
    assert "note: discontinuous mentions (policy: fragments)" in result.output


def test_convert_cli_bad_input_exits_with_file_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("Aspirin\tB-Chemical\nstroke\tX-Disease\n")
    result = CliRunner().invoke(app, ["convert", str(bad), str(tmp_path / "o.spacy"), "--format", "conll"])
    assert result.exit_code == 1
    assert f"{bad}:2:" in result.output and "Expected: O, B-LABEL or I-LABEL" in result.output
    assert not (tmp_path / "o.spacy").exists()


PUBTATOR_HEAD = "5|t|Aspirin and stroke.\n5|a|Aspirin reduces stroke.\n"
SQUAD = {"data": [{"paragraphs": [{"context": "Naloxone reverses clonidine.", "qas": [
    {"id": "q_001", "question": "Which drug?", "answers": [{"text": "Naloxone", "answer_start": 0}]}]}]}]}
# (command, input file name, content, where the message must point)
MALFORMED = [
    ("convert", ["--format", "pubtator"], "x.PubTator.txt", PUBTATOR_HEAD + "5\t0x\t7\tAspirin\tChemical\tD1\n", ":3: mention start offset '0x'"),
    ("convert", ["--format", "conll"], "x.tsv", "Aspirin\tB-Chemical\nstroke\tX-Disease\n", ":2: tag 'X-Disease'"),
    ("convert", ["--format", "conll"], "x.tsv", b"Aspirin\tO\ncaf\xe9\tO\n", ":2: byte 0xe9 at column 4"),
    ("convert-ddi", [], "x.xml", '<?xml version="1.0"?>\n<document id="d">\n<sentence id="s" text="Aspirin.">\n', ":4: not well-formed XML"),
    ("convert-ddi", [], "x.xml", '<document id="d">\n<sentence id="s" text="Aspirin.">\n<entity id="e" charOffset="0-6" type="protein" text="Aspirin"/>\n</sentence></document>\n', ":3: entity type 'protein'"),
    ("convert-chemprot", [], "x.jsonl", '{"text": "<< A >> binds [[ B ]].", "label": "AGONIST"}\n{"text": "<< A >>\n', ":2: not valid JSON"),
    ("convert-chemprot", [], "x.jsonl", '{"text": "<< A >> binds [[ B ]].", "label": "BINDER"}\n', ":1: label 'BINDER'"),
    ("convert-chemprot", ["--form", "pure"], "x.json", json.dumps({"sentences": [["A"]], "ner": 5, "relations": [[]]}) + "\n", ":1: 'ner' is not a list"),
    ("convert-chemprot", [], "x.json", b'{"text": "caf\xe9"}\n', ":1: byte 0xe9"),
    ("convert-bioasq", [], "x.json", '{"data": [\n  {"paragraphs": [}\n]}', ":2: not valid JSON"),
    ("convert-bioasq", [], "x.json", json.dumps({"data": [{"paragraphs": [{"context": 5, "qas": []}]}]}), ": at data[0].paragraphs[0]: missing or non-string 'context'"),
    ("convert-bioasq", ["--format", "golden"], "x.json", json.dumps({"questions": [{"id": "q", "type": "factoid"}]}), ": at questions[0]: missing 'id' or 'body'"),
    ("convert-bioasq", [], "x.json", b'{"data": []}\n\xff\n', ":2: byte 0xff"),
]


def _flat(text: str) -> str:
    """Output with wasabi's line wrapping undone."""
    return " ".join(text.split())


def _invoke(tmp_path, command, options, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    out = tmp_path / "out.spacy"
    args = [command, str(path)] + (["-o", str(out)] if command == "convert-ddi" else [str(out)]) + options
    return CliRunner().invoke(app, args), path, out


@pytest.mark.parametrize("command,options,name,content,where", MALFORMED)
def test_every_converter_fails_with_one_line_naming_file_and_line(tmp_path, command, options, name, content, where):
    """One error path for all converters: one line, file:line (JSON: file and JSON path), exit 1, no traceback."""
    result, path, out = _invoke(tmp_path, command, options, name, content)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught error
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"✘ {path}{where}"), lines[0]
    assert "Expected: " in lines[0]
    assert not out.exists()


EMPTY = [
    ("convert", ["--format", "pubtator"], "x.PubTator.txt", ""),
    ("convert", ["--format", "conll"], "x.tsv", "\n\n"),
    ("convert-chemprot", [], "x.jsonl", ""),
    ("convert-chemprot", ["--form", "pure"], "x.json", "\n"),
    ("convert-bioasq", [], "x.json", '{"data": []}'),
    ("convert-bioasq", ["--format", "golden"], "x.json", '{"questions": []}'),
]


@pytest.mark.parametrize("command,options,name,content", EMPTY)
def test_every_converter_warns_when_it_reads_no_document(tmp_path, command, options, name, content):
    result, path, out = _invoke(tmp_path, command, options, name, content)
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert f"0 documents read from {path}" in out and "the input is empty or holds nothing in the expected format" in out, out


@pytest.mark.parametrize("command,options,name", [
    ("convert-ddi", [], "x.xml"), ("convert-bioasq", [], "x.json"), ("convert", ["--format", "brat"], "x.ann")])
def test_empty_files_of_formats_that_cannot_be_empty_fail_cleanly(tmp_path, command, options, name):
    """An empty XML/JSON file is malformed; an empty brat .ann has no .txt here: one clean line each."""
    result, path, _ = _invoke(tmp_path, command, options, name, "")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert len(result.output.strip().splitlines()) == 1 and str(path) in result.output, result.output


def test_registered_reader_reports_drops_once(tmp_path, capsys):
    """Count mode used to drop silently under `spacy train` (no summary is printed there)."""
    path = tmp_path / "x.PubTator.txt"
    path.write_text(PUBTATOR_HEAD + "5\t0\t7\tAspirim\tChemical\tD1\n5\t12\t18\tstroke\tDisease\tD2\n5\tzero\t7\tAspirin\tChemical\tD1\n")
    reader = registry.resolve(Config().from_str(
        f'[c]\n@readers = "electramed.PubTatorCorpus.v1"\npath = "{path}"\non_mismatch = "count"\n'))["c"]
    nlp = spacy.blank("en")
    for _ in range(3):  # three epochs
        assert [e.text for eg in reader(nlp) for e in eg.reference.ents] == ["stroke"]
    out = _flat(capsys.readouterr().out)
    assert out.count("item(s) dropped while reading") == 1, out
    assert f"pubtator corpus {path}: 2 item(s) dropped while reading: " in out
    assert "offset mismatch (1)" in out and "mention with malformed offsets (not an increasing pair of integers) (1)" in out


def test_registered_reader_warns_on_an_empty_corpus(tmp_path, capsys):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    reader = registry.resolve(Config().from_str(f'[c]\n@readers = "electramed.ConllCorpus.v1"\npath = "{path}"\n'))["c"]
    assert list(reader(spacy.blank("en"))) == []
    assert f"0 documents read from conll corpus {path}" in _flat(capsys.readouterr().out)
