"""Registered spaCy readers (found through entry points) and `electramed convert`."""
import json
import subprocess
import sys

import pytest
import spacy
from conftest import FIXTURES
from spacy.tokens import DocBin
from spacy.util import registry
from thinc.api import Config
from typer.testing import CliRunner

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
    ("convert", ["--format", "ddi"], "x.xml", '<?xml version="1.0"?>\n<document id="d">\n<sentence id="s" text="Aspirin.">\n', ":4: not well-formed XML"),
    ("convert", ["--format", "ddi"], "x.xml", '<document id="d">\n<sentence id="s" text="Aspirin.">\n<entity id="e" charOffset="0-6" type="protein" text="Aspirin"/>\n</sentence></document>\n', ":3: entity type 'protein'"),
    ("convert", ["--format", "chemprot"], "x.jsonl", '{"text": "<< A >> binds [[ B ]].", "label": "AGONIST"}\n{"text": "<< A >>\n', ":2: not valid JSON"),
    ("convert", ["--format", "chemprot"], "x.jsonl", '{"text": "<< A >> binds [[ B ]].", "label": "BINDER"}\n', ":1: label 'BINDER'"),
    ("convert", ["--format", "chemprot", "--form", "pure"], "x.json", json.dumps({"sentences": [["A"]], "ner": 5, "relations": [[]]}) + "\n", ":1: 'ner' is not a list"),
    ("convert", ["--format", "chemprot"], "x.json", b'{"text": "caf\xe9"}\n', ":1: byte 0xe9"),
    ("convert", ["--format", "bioasq"], "x.json", '{"data": [\n  {"paragraphs": [}\n]}', ":2: not valid JSON"),
    ("convert", ["--format", "bioasq"], "x.json", json.dumps({"data": [{"paragraphs": [{"context": 5, "qas": []}]}]}), ": at data[0].paragraphs[0]: missing or non-string 'context'"),
    ("convert", ["--format", "bioasq", "--form", "golden"], "x.json", json.dumps({"questions": [{"id": "q", "type": "factoid"}]}), ": at questions[0]: missing 'id' or 'body'"),
    ("convert", ["--format", "bioasq"], "x.json", b'{"data": []}\n\xff\n', ":2: byte 0xff"),
]


def _flat(text: str) -> str:
    """Output with wasabi's line wrapping undone."""
    return " ".join(text.split())


def _invoke(tmp_path, command, options, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    out = tmp_path / "out.spacy"
    args = [command, str(path), str(out)] + options
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
    ("convert", ["--format", "chemprot"], "x.jsonl", ""),
    ("convert", ["--format", "chemprot", "--form", "pure"], "x.json", "\n"),
    ("convert", ["--format", "bioasq"], "x.json", '{"data": []}'),
    ("convert", ["--format", "bioasq", "--form", "golden"], "x.json", '{"questions": []}'),
]


@pytest.mark.parametrize("command,options,name,content", EMPTY)
def test_every_converter_warns_when_it_reads_no_document(tmp_path, command, options, name, content):
    result, path, out = _invoke(tmp_path, command, options, name, content)
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert f"0 documents read from {path}" in out and "the input is empty or holds nothing in the expected format" in out, out


@pytest.mark.parametrize("command,options,name", [
    ("convert", ["--format", "ddi"], "x.xml"), ("convert", ["--format", "bioasq"], "x.json"), ("convert", ["--format", "brat"], "x.ann")])
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


# ---------------------------------------------------------------- one `electramed convert` for every format
RE = FIXTURES / "re"
QA = FIXTURES / "qa"


def convert(*args):
    result = CliRunner().invoke(app, ["convert", *map(str, args)])
    return result, " ".join(result.output.split())  # typer/rich wrap long lines


def read_docbin(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def test_convert_help_lists_every_format():
    result = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("pubtator", "conll", "brat", "ddi", "chemprot", "bioasq"):
        assert f"{name}:" in result.output, name


@pytest.mark.parametrize("fmt, source, check", [
    ("pubtator", NER / "bc5cdr_sample.PubTator.txt", lambda docs: docs[0].ents[0].label_ == "Chemical"),
    ("conll", NER / "ncbi_sample_iob1.conll", lambda docs: any(d.ents for d in docs)),
    ("brat", NER / "brat", lambda docs: docs[0]._.relations),
    ("ddi", RE / "ddi", lambda docs: docs[0]._.relations),
    ("chemprot", RE / "chemprot" / "pure_sample.json", lambda docs: any(d._.relations for d in docs)),
    ("chemprot", RE / "chemprot" / "sentences_sample.jsonl", lambda docs: any(d._.relations for d in docs)),
    ("bioasq", QA / "bioasq_squad_sample.json", lambda docs: docs[0].spans["answers"]),
    ("bioasq", QA / "bioasq_golden_sample.json", lambda docs: docs[0]._.question),
])
def test_convert_reads_every_format(tmp_path, fmt, source, check):
    result, text = convert(source, tmp_path / "out.spacy", "--format", fmt)
    assert result.exit_code == 0, text
    docs = read_docbin(tmp_path / "out.spacy")
    assert docs and check(docs) and f"Wrote {len(docs)} documents" in text


def test_label_map_merges_ncbi_disease_types(tmp_path):
    """NCBI-disease's four mention types merged to Disease (the usual protocol); the summary counts the new
    labels, notes each renaming, and warns about a label the corpus does not have (here DiseaseClass)."""
    summary = tmp_path / "summary.json"
    result, text = convert(NER / "ncbi_disease_sample.PubTator.txt", tmp_path / "out.spacy", "--format", "pubtator",
                           "--label-map", "SpecificDisease=Disease,DiseaseClass=Disease,Modifier=Disease,CompositeMention=Disease",
                           "--summary-json", summary)
    assert result.exit_code == 0, text
    docs = read_docbin(tmp_path / "out.spacy")
    assert {s.label_ for d in docs for s in list(d.ents) + list(d.spans["mentions"])} == {"Disease"}
    data = json.loads(summary.read_text())
    assert data["entities"] == {"Disease": 4}
    assert data["notes"]["label SpecificDisease -> Disease (--label-map)"] == 2
    assert "no entity is labelled DiseaseClass" in text


@pytest.mark.parametrize("label_map, message", [
    ("SpecificDisease", "'SpecificDisease' is not FROM=TO"),
    ("A=B,A=C", "maps 'A' twice"),
    (",", "--label-map is empty"),
])
def test_bad_label_map_fails_before_writing(tmp_path, label_map, message):
    result, text = convert(NER / "ncbi_disease_sample.PubTator.txt", tmp_path / "out.spacy", "--format", "pubtator", "--label-map", label_map)
    assert result.exit_code == 1 and message in text and not (tmp_path / "out.spacy").exists()


def test_option_of_another_format_is_refused(tmp_path):
    result, text = convert(NER / "bc5cdr_sample.PubTator.txt", tmp_path / "out.spacy", "--format", "pubtator", "--scheme", "iob1")
    assert result.exit_code == 1 and "--scheme does not apply to --format pubtator, whose options are: --sentences" in text
    result, text = convert(RE / "ddi", tmp_path / "out.spacy", "--format", "ddi", "--discontinuous", "merge")
    assert result.exit_code == 1 and "discontinuous must be one of" in text


def test_one_discontinuous_vocabulary_for_brat_and_ddi(tmp_path):
    """drop | first | extent | fragments for both; DDI's old 'span' still works, with a deprecation note."""
    for fmt, source, covering in (("brat", NER / "brat", "renal and hepatic failure"),
                                  ("ddi", RE / "ddi", "beta- and alpha-adrenergic blockers")):
        mentions = {}
        for policy in ("drop", "first", "extent", "fragments"):
            result, text = convert(source, tmp_path / f"{fmt}_{policy}.spacy", "--format", fmt, "--discontinuous", policy)
            assert result.exit_code == 0, text
            mentions[policy] = [s.text for d in read_docbin(tmp_path / f"{fmt}_{policy}.spacy") for s in d.spans["mentions"]]
        assert covering in mentions["extent"] and covering not in mentions["first"]
        assert len(mentions["drop"]) + 1 == len(mentions["first"]) == len(mentions["fragments"]) - 1
    result, text = convert(RE / "ddi", tmp_path / "span.spacy", "--format", "ddi", "--discontinuous", "span")
    assert result.exit_code == 0 and "--discontinuous span is deprecated" in text and "use --discontinuous extent" in text
    assert (tmp_path / "span.spacy").read_bytes() == (tmp_path / "ddi_extent.spacy").read_bytes()


def test_old_command_names_are_deprecated_aliases(tmp_path):
    """convert-ddi / convert-chemprot / convert-bioasq and --on-mismatch print a deprecation note and write
    exactly what the one convert command writes."""
    runner = CliRunner()
    cases = [
        (["convert-ddi", RE / "ddi", "-o", tmp_path / "a.spacy", "--dev-output", tmp_path / "a_dev.spacy", "--dev-fraction", "0.5"],
         [RE / "ddi", tmp_path / "b.spacy", "--format", "ddi", "--dev-output", tmp_path / "b_dev.spacy", "--dev-fraction", "0.5"]),
        (["convert-chemprot", RE / "chemprot" / "sentences_sample.jsonl", tmp_path / "a.spacy", "--labels", "fine"],
         [RE / "chemprot" / "sentences_sample.jsonl", tmp_path / "b.spacy", "--format", "chemprot", "--labels", "fine"]),
        (["convert-bioasq", QA / "bioasq_golden_sample.json", tmp_path / "a.spacy", "--format", "golden", "--unanswerable", "keep"],
         [QA / "bioasq_golden_sample.json", tmp_path / "b.spacy", "--format", "bioasq", "--form", "golden", "--unanswerable", "keep"]),
    ]
    for old, new in cases:
        result = runner.invoke(app, list(map(str, old)))
        assert result.exit_code == 0, result.output
        assert f"{old[0]} is deprecated and will be removed in the next release: use electramed convert" in " ".join(result.output.split())
        result, text = convert(*new)
        assert result.exit_code == 0, text
        assert (tmp_path / "a.spacy").read_bytes() == (tmp_path / "b.spacy").read_bytes(), old[0]
    assert (tmp_path / "a_dev.spacy").read_bytes() == (tmp_path / "b_dev.spacy").read_bytes()
    result, text = convert(NER / "bc5cdr_sample.PubTator.txt", tmp_path / "c.spacy", "--format", "pubtator", "--on-mismatch", "count")
    assert result.exit_code == 0 and "--on-mismatch is deprecated" in text and "use --on-error (same policy)" in text
