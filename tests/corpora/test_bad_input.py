"""Every bad-input message names file:line and says what was expected."""
import json

import pytest
import spacy

from electramed_spacy.corpora.bioasq import golden_to_docs, read_squad_json
from electramed_spacy.corpora.brat import read_brat
from electramed_spacy.corpora.chemprot import read_chemprot_pure, read_chemprot_sentences
from electramed_spacy.corpora.common import ConversionSummary, CorpusFormatError, input_files
from electramed_spacy.corpora.conll import read_conll
from electramed_spacy.corpora.ddi import read_ddi_file
from electramed_spacy.corpora.pubtator import DROP_OFFSETS, read_pubtator

NLP = spacy.blank("en")
HEAD = "5|t|Aspirin and stroke.\n5|a|Aspirin reduces stroke.\n"

PUBTATOR_CASES = [
    # (file content, bad line number, problem fragment, expectation fragment)
    ("Aspirin reduces stroke\n", 1, "unrecognised line", "'PMID|t|title'"),
    ("5|x|Aspirin\n", 1, "unknown text line type 'x'", "'PMID|t|title' or 'PMID|a|abstract'"),
    (HEAD + "5|t|Again\n", 3, "a second title line for PMID 5", "a blank line between documents"),
    ("5|t|Aspirin.\n6|a|Stroke.\n", 2, "abstract line for PMID 6 without its title line", "'6|t|title' right before"),
    (HEAD + "5|a|Twice.\n", 3, "a second abstract line", "one abstract line per document"),
    (HEAD + "6\t0\t7\tAspirin\tChemical\tD1\n", 3, "annotation for PMID 6 inside document 5", "right after the title/abstract"),
    ("5\t0\t7\tAspirin\tChemical\tD1\n", 1, "annotation for PMID 5 inside no document", "right after the title/abstract"),
    (HEAD + "5\t0\t7\tAspirin\n", 3, "mention line with 4 tab-separated columns", "at least 5 columns"),
    (HEAD + "5\t0\tseven\tAspirin\tChemical\tD1\n", 3, "end offset 'seven' is not an integer", "integer character offsets"),
    # a non-integer start offset was read as a relation line and the mention vanished
    (HEAD + "5\t0x\t7\tAspirin\tChemical\tD1\n", 3, "start offset '0x' is not an integer", "integer character offsets"),
    (HEAD + "5\tzero\t7\tAspirin\tChemical\tD1\n", 3, "start offset 'zero' is not an integer", "integer character offsets"),
    (HEAD + "5\t\t7\tAspirin\tChemical\n", 3, "start offset '' is not an integer", "integer character offsets"),
    (HEAD + "5\t\u00b2\t7\tAspirin\tChemical\n", 3, "start offset '\u00b2' is not an integer", "integer character offsets"),
    (HEAD + "5\t7\t0\tAspirin\tChemical\tD1\n", 3, "offsets 7-0 are not an increasing pair", "0 <= start < end"),
    (HEAD + "5\t0\t7\tAspirin\t\tD1\n", 3, "empty type column", "a mention type such as Chemical"),
    (HEAD + "5\tCID\tD1\n", 3, "annotation line with 3 tab-separated columns", "a relation line 'PMID<TAB>label<TAB>id1<TAB>id2'"),
    (HEAD + "5\t0\t7\tAspirim\tChemical\tD1\n", 3, "does not match the text there: 'Aspirin'", "offsets that index the document text"),
    (HEAD + "5\t40\t52\tAspirin\tChemical\tD1\n", 3, "fall outside the text of length", "offsets that index the document text"),
    (HEAD + "5\t7\t8\t \tChemical\tD1\n", 3, "covers only whitespace", "offsets that index the document text"),
]


@pytest.mark.parametrize("content,line,problem,expected", PUBTATOR_CASES)
def test_pubtator_bad_input(tmp_path, content, line, problem, expected):
    path = tmp_path / "bad.PubTator.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusFormatError) as err:
        list(read_pubtator(path, NLP.make_doc))
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message and "Expected: " in message and expected in message, message


CONLL_CASES = [
    ("Aspirin\tB-Chemical\nreduces\n", {}, 2, "1 column(s) in 'reduces'", "'token<TAB>tag'"),
    ("Aspirin\tB-Chemical\nstroke\tE-Disease\n", {}, 2, "tag 'E-Disease' is not an IOB tag", "O, B-LABEL or I-LABEL"),
    ("Aspirin\tB-Chemical\nstroke\tChemical\n", {}, 2, "tag 'Chemical' is not an IOB tag", "O, B-LABEL or I-LABEL"),
    ("Aspirin\tO\nstroke\tI-Disease\n", {"scheme": "iob2"}, 2, "I-Disease starts a chunk (previous tag: O)", "B-Disease at the start of every chunk under --scheme iob2"),
    ("\nstroke I-Disease\n", {"scheme": "iob2"}, 2, "previous tag: sentence start", "use --scheme iob1 or auto"),
]


@pytest.mark.parametrize("content,kwargs,line,problem,expected", CONLL_CASES)
def test_conll_bad_input(tmp_path, content, kwargs, line, problem, expected):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusFormatError) as err:
        list(read_conll(path, NLP.vocab, **kwargs))
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message and expected in message, message


BRAT_TEXT = "Metformin causes lactic acidosis.\n"
BRAT_CASES = [
    ("T1\tChemical 0 9\n", 1, "text-bound annotation with 2 tab-separated column(s)", "'T<id><TAB><Label> <start> <end>"),
    ("T1\tChemical 0 nine\tMetformin\n", 1, "offsets '0 nine' of T1 are not 'start end' integer pairs", "'T<id><TAB><Label>"),
    ("T1\tChemical 9 0\tMetformin\n", 1, "offsets 9-0 of T1 do not increase", "start < end for every fragment"),
    ("T1\t 0 9\tMetformin\n", 1, "T1 has no label", "'T<id><TAB><Label>"),
    ("T1\tChemical 0 9\tMetformin\nR1\tCauses Arg1:T1\n", 2, "relation R1 has arguments ['Arg1:T1']", "'R<id><TAB><Label> Arg1:<T id> Arg2:<T id>'"),
    ("T1\tChemical 0 9\tMetformin\nR1\tCauses Arg1:T1 Arg2:T7\n", 2, "relation R1 refers to T7, which is not defined", "Arg1/Arg2 naming T annotations"),
    ("X1\tsomething\n", 1, "unknown annotation line 'X1\\tsomething'", "a line starting with T, R, E, A, M, N, # or *"),
    ("T1\tChemical 0 9\tMetformine\n", 1, "'Metformine' (Chemical) at 0-9 does not match the text there: 'Metformin'", "offsets that index the document text"),
]


@pytest.mark.parametrize("ann,line,problem,expected", BRAT_CASES)
def test_brat_bad_input(tmp_path, ann, line, problem, expected):
    (tmp_path / "doc.txt").write_text(BRAT_TEXT, encoding="utf-8")
    path = tmp_path / "doc.ann"
    path.write_text(ann, encoding="utf-8")
    with pytest.raises(CorpusFormatError) as err:
        list(read_brat(tmp_path, NLP.make_doc))
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message and expected in message, message


def test_brat_missing_text_file(tmp_path):
    (tmp_path / "doc.ann").write_text("T1\tChemical 0 9\tMetformin\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"doc\.ann: no text file doc\.txt next to the annotation file\. Expected: a \.txt file"):
        list(read_brat(tmp_path, NLP.make_doc))


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"nope: the input does not exist\. Expected: a file or a directory"):
        input_files(tmp_path / "nope", ["*.tsv"])
    with pytest.raises(CorpusFormatError, match=r"no corpus files found in this directory\. Expected: files matching \*\.tsv"):
        input_files(tmp_path, ["*.tsv"])


def test_pubtator_malformed_offsets_are_counted_drops_in_count_mode(tmp_path):
    path = tmp_path / "bad.PubTator.txt"
    path.write_text(HEAD + "5\t0x\t7\tAspirin\tChemical\tD1\n5\t7\t0\tAspirin\tChemical\tD1\n5\t12\t18\tstroke\tDisease\tD2\n5\tCID\tD1\tD2\n")
    summary = ConversionSummary()
    (doc,) = read_pubtator(path, NLP.make_doc, summary=summary, on_error="count")
    assert [e.text for e in doc.ents] == ["stroke"]
    assert summary.dropped == {DROP_OFFSETS: 2}
    # the relation line is still a relation, and the bad mention did not become one
    assert doc._.concept_relations == [["D1", "D2", "CID"]]


def _undecodable(tmp_path, name, before: str, after: str = "\n"):
    path = tmp_path / name
    path.write_bytes(before.encode("utf8") + b"caf\xe9" + after.encode("utf8"))
    return path


SQUAD_OK = json.dumps({"data": [{"paragraphs": [{"context": "Aspirin.", "qas": []}]}]}, indent=1)
UNDECODABLE = [
    # (file name, text before the latin-1 byte, reader, line of the byte)
    ("x.PubTator.txt", "5|t|Aspirin and stroke.\n5|a|", lambda p: read_pubtator(p, NLP.make_doc), 2),
    ("x.tsv", "Aspirin\tB-Chemical\n\n", lambda p: read_conll(p, NLP.vocab), 3),
    ("doc.ann", "T1\tChemical 0 9\tMetformin\n#1\tAnnotatorNotes T1\t", lambda p: read_brat(p.parent, NLP.make_doc), 2),
    ("x.jsonl", '{"text": "<< A >> binds [[ B ]].", "label": "AGONIST"}\n{"text": "', lambda p: read_chemprot_sentences(p, NLP.make_doc), 2),
    ("x.json", "\n", lambda p: read_chemprot_pure(p, NLP.make_doc), 2),
    ("x.json", SQUAD_OK[:-3] + "\n", lambda p: read_squad_json(p, NLP.make_doc), SQUAD_OK.count("\n") + 1),
    ("x.json", '{"questions": [\n', lambda p: golden_to_docs(p, NLP.make_doc), 2),
    ("x.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<document id="d">\n<sentence id="s" text="', lambda p: [read_ddi_file(p, NLP.make_doc)], 3),
]


@pytest.mark.parametrize("name,before,read,line", UNDECODABLE)
def test_undecodable_bytes_name_file_and_line(tmp_path, name, before, read, line):
    """Every reader reports a non-UTF-8 byte as file:line (they gave a byte offset, brat not even the file)."""
    if name == "doc.ann":
        (tmp_path / "doc.txt").write_text("Metformin lowers glucose.\n", encoding="utf8")
    path = _undecodable(tmp_path, name, before)
    with pytest.raises(CorpusFormatError) as err:
        list(read(path))
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert "UTF-8" in message or "not well-formed" in message, message


def test_undecodable_brat_text_file_names_the_text_file(tmp_path):
    (tmp_path / "doc.ann").write_text("T1\tChemical 0 9\tMetformin\n", encoding="utf8")
    txt = _undecodable(tmp_path, "doc.txt", "Metformin lowers glucose.\nIn a ", " cafe.\n")
    with pytest.raises(CorpusFormatError) as err:
        list(read_brat(tmp_path, NLP.make_doc))
    assert str(err.value).startswith(f"{txt}:2: byte 0xe9 at column 9"), str(err.value)
    assert "Expected: a UTF-8 text file" in str(err.value)
