"""SQuAD-style and raw BioASQ readers: Docs with the question, gold answer spans, and bad input."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.corpora.bioasq import (
    detect_format,
    golden_synonyms,
    golden_to_docs,
    question_key,
    read_bioasq_golden,
    read_squad_json,
)
from electramed_spacy.corpora.common import ConversionSummary, CorpusFormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qa"
SQUAD = FIXTURES / "bioasq_squad_sample.json"
GOLDEN = FIXTURES / "bioasq_golden_sample.json"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def _write(tmp_path, obj, name="bad.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj, indent=1), encoding="utf8")
    return path


def _squad(context="Naloxone reverses clonidine.", question="Which drug?", answers=None):
    qa = {"id": "q_001", "question": question, "answers": answers if answers is not None else [{"text": "Naloxone", "answer_start": 0}]}
    para = {"qas": [qa]}
    if context is not None:
        para["context"] = context
    return {"data": [{"paragraphs": [para]}]}


def test_read_squad_fixture(nlp):
    summary = ConversionSummary()
    docs = list(read_squad_json(SQUAD, nlp.make_doc, summary=summary))
    assert len(docs) == 3 and summary.documents == 3 and not summary.dropped
    doc = docs[1]
    assert doc._.question == "Which drug reverses the effect of clonidine?"
    assert doc._.qa_id == "5aaa0000000000000000000a_002"
    assert question_key(doc) == "5aaa0000000000000000000a"
    assert [s.text for s in doc.spans["answers"]] == ["naloxone"]
    assert docs[2].spans["answers"][0].start_char == 48


def test_docbin_round_trip_keeps_question_and_answers(nlp):
    docs = list(read_squad_json(SQUAD, nlp.make_doc))
    back = list(DocBin(docs=docs, store_user_data=True).get_docs(nlp.vocab))
    assert [(d._.question, d._.qa_id, [s.text for s in d.spans["answers"]]) for d in back] == \
        [(d._.question, d._.qa_id, [s.text for s in d.spans["answers"]]) for d in docs]


def test_answer_inside_a_token_splits_it(nlp, tmp_path):
    path = _write(tmp_path, _squad("The PD-L1status was assessed.", answers=[{"text": "PD-L1", "answer_start": 4}]))
    summary = ConversionSummary()
    (doc,) = read_squad_json(path, nlp.make_doc, summary=summary)
    assert doc.spans["answers"][0].text == "PD-L1"
    assert summary.notes["tokens split at answer boundaries"] >= 1


def test_test_file_without_answers(nlp, tmp_path):
    (doc,) = read_squad_json(_write(tmp_path, _squad(answers=[])), nlp.make_doc)
    assert len(doc.spans["answers"]) == 0 and doc._.question == "Which drug?"


def test_invalid_json_reports_file_and_line(nlp, tmp_path):
    path = _write(tmp_path, '{"data": [\n  {"paragraphs": [\n    {"context": "x",}\n]}]}')
    with pytest.raises(CorpusFormatError, match=r"bad\.json:3: not valid JSON"):
        list(read_squad_json(path, nlp.make_doc))


@pytest.mark.parametrize(
    "obj,problem,reason",
    [
        (_squad(context=None), r"data\[0\]\.paragraphs\[0\]: missing or non-string 'context'", "missing context"),
        (_squad(question="  "), r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing or empty 'question'", "empty question"),
        (_squad(answers=[{"text": "Clonidine", "answer_start": 0}]), r"answers\[0\]: answer 'Clonidine' at 0 does not match", "answer offset mismatch"),
        (_squad(answers=[{"text": "Naloxone"}]), r"answers\[0\]: answer .* lacks 'text' or an integer 'answer_start'", "malformed answer"),
        # used to escape as TypeError (iterating an int)
        (_squad(answers=5), r"qas\[0\]\.answers: 'answers' is a int, not a list", "malformed answer"),
        (_squad(answers=[{"text": "Naloxone", "answer_start": 0.0}]), r"lacks 'text' or an integer 'answer_start'", "malformed answer"),
    ],
)
def test_bad_items_raise_with_json_path_or_are_counted(nlp, tmp_path, obj, problem, reason):
    path = _write(tmp_path, obj)
    with pytest.raises(CorpusFormatError, match=problem):
        list(read_squad_json(path, nlp.make_doc))
    summary = ConversionSummary()
    assert list(read_squad_json(path, nlp.make_doc, summary=summary, on_error="count")) == []
    assert summary.dropped[reason] == 1


def test_empty_context_is_dropped_and_counted(nlp, tmp_path):
    summary = ConversionSummary()
    assert list(read_squad_json(_write(tmp_path, _squad(context="  ")), nlp.make_doc, summary=summary)) == []
    assert summary.dropped["empty context"] == 1


def test_not_squad_at_all(nlp, tmp_path):
    with pytest.raises(CorpusFormatError, match="no top-level 'data' list"):
        list(read_squad_json(_write(tmp_path, {"questions": []}), nlp.make_doc))


def test_golden_reader_flattens_synonyms_and_filters_types():
    summary = ConversionSummary()
    questions = read_bioasq_golden(GOLDEN, summary=summary)
    assert [q["id"] for q in questions] == ["5aaa0000000000000000000a", "5bbb0000000000000000000b"]
    assert questions[0]["synonyms"] == ["naloxone", "Narcan"]
    assert questions[1]["synonyms"] == ["Hypothyroidism"]
    assert questions[1]["index"] == 2  # file position (7B_golden.json: batch = index // 100 + 1)
    assert summary.notes["skipped type yesno"] == 1
    assert golden_synonyms([["a", "b"], ["c"]]) == ["a", "b", "c"] and golden_synonyms("x") == ["x"]


def test_golden_to_docs_finds_answers_case_insensitively(nlp):
    summary = ConversionSummary()
    docs = list(golden_to_docs(GOLDEN, nlp.make_doc, summary=summary))
    assert [(d._.qa_id, [s.text for s in d.spans["answers"]]) for d in docs] == [
        ("5aaa0000000000000000000a_001", ["Naloxone"]), ("5bbb0000000000000000000b_001", ["hypothyroidism"])]
    assert summary.dropped["snippet without the exact answer"] == 1
    kept = list(golden_to_docs(GOLDEN, nlp.make_doc, unanswerable="keep"))
    assert len(kept) == 3 and len(kept[1].spans["answers"]) == 0


def test_golden_bad_input(tmp_path):
    with pytest.raises(CorpusFormatError, match="no top-level 'questions' list"):
        read_bioasq_golden(_write(tmp_path, {"data": []}))
    bad = {"questions": [{"id": "x", "type": "factoid"}]}
    with pytest.raises(CorpusFormatError, match=r"questions\[0\]: missing 'id' or 'body'"):
        read_bioasq_golden(_write(tmp_path, bad))
    summary = ConversionSummary()
    assert read_bioasq_golden(_write(tmp_path, bad), summary=summary, on_error="count") == []
    assert summary.dropped["question without id/body"] == 1


def test_golden_odd_field_types_are_read_or_counted(nlp, tmp_path):
    """A number as exact answer is its text; malformed snippets are counted, the question kept
    (it still counts when scoring); these used to escape as TypeError/AttributeError."""
    golden = {"questions": [
        {"id": "a", "body": "How many?", "type": "factoid", "exact_answer": [[5]], "snippets": [{"text": "There are 5 of them."}, "text", {"text": 7}]},
        {"id": "b", "body": "Which?", "type": "factoid", "exact_answer": 3.5, "snippets": 9},
        {"id": "c", "body": "What?", "type": "factoid", "exact_answer": {"x": 1}},
    ]}
    path = _write(tmp_path, golden)
    summary = ConversionSummary()
    questions = read_bioasq_golden(path, summary=summary)
    assert [(q["id"], q["synonyms"], q["snippets"]) for q in questions] == [
        ("a", ["5"], ["There are 5 of them."]), ("b", ["3.5"], []), ("c", [], [])]
    assert summary.dropped["snippet without a 'text' string (question kept)"] == 2
    (doc,) = golden_to_docs(path, nlp.make_doc)
    assert [s.text for s in doc.spans["answers"]] == ["5"]


def test_bom_json_and_format_detection(nlp, tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_squad()).encode())
    (doc,) = read_squad_json(path, nlp.make_doc)
    assert doc.spans["answers"][0].text == "Naloxone"
    assert detect_format(path) == "squad" and detect_format(GOLDEN) == "golden"


def test_convert_command_with_dev_split(tmp_path):
    out, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    result = CliRunner().invoke(app, ["convert-bioasq", str(SQUAD), str(out), "--dev-output", str(dev), "--dev-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    nlp = spacy.blank("en")
    train = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    held = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    assert len(train) + len(held) == 3
    # split by question: both snippets of question a are on the same side
    sides = {}
    for name, docs in (("train", train), ("dev", held)):
        for d in docs:
            sides.setdefault(question_key(d), set()).add(name)
    assert len(sides) == 2 and all(len(s) == 1 for s in sides.values())
    golden_out = tmp_path / "golden.spacy"
    result = CliRunner().invoke(app, ["convert-bioasq", str(GOLDEN), str(golden_out)])
    assert result.exit_code == 0 and "snippet without the exact answer" in result.output
