"""brat standoff reader: mentions, relations, discontinuous policy, ignored lines."""
import pytest
import spacy
from conftest import FIXTURES

from electramed_spacy.corpora.brat import read_brat
from electramed_spacy.corpora.common import MENTIONS_KEY, NOTE_WHITESPACE, ConversionSummary, CorpusFormatError

BRAT = FIXTURES / "ner" / "brat"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def _read(nlp, path=BRAT, **kwargs):
    summary = ConversionSummary(source=str(path))
    return list(read_brat(path, nlp.make_doc, summary=summary, **kwargs)), summary


def test_default_drops_discontinuous_and_counts_everything(nlp):
    (doc,), summary = _read(nlp)
    assert doc._.doc_id == "metformin"
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Metformin", "Chemical"), ("glucose", "Chemical"), ("type 2 diabetes", "Disease"),
        ("Lactic acidosis", "Disease"), ("hepatic failure", "Disease")]
    assert [(r.head.text, r.tail.text, r.label) for r in doc._.relations] == [
        ("Metformin", "type 2 diabetes", "Treats"), ("Metformin", "Lactic acidosis", "Causes")]
    assert summary.dropped == {
        "discontinuous mention (policy: drop)": 1, "relation with a dropped argument": 1,
        "brat attribute lines (not converted)": 1, "brat normalisation lines (not converted)": 1,
        "brat note lines (not converted)": 1, "brat event lines (not converted)": 1,
    }
    # the newline ends the first sentence
    assert [s.text.strip() for s in doc.sents] == [
        "Metformin lowers blood glucose in type 2 diabetes.",
        "Lactic acidosis is rare; renal and hepatic failure increase the risk."]


def test_discontinuous_extent_and_fragments(nlp):
    (doc,), summary = _read(nlp, discontinuous="extent")
    assert "renal and hepatic failure" in [s.text for s in doc.spans[MENTIONS_KEY]]
    assert ("renal and hepatic failure", "Lactic acidosis", "Risk") in [(r.head.text, r.tail.text, r.label) for r in doc._.relations]
    assert summary.notes["discontinuous mentions (policy: extent)"] == 1
    assert summary.dropped["overlapping mention (kept in doc.spans['mentions'], not in doc.ents)"] == 1
    (doc,), summary = _read(nlp, discontinuous="fragments")
    texts = [s.text for s in doc.spans[MENTIONS_KEY]]
    assert "renal" in texts and texts.count("failure") == 1
    assert ("renal", "Lactic acidosis", "Risk") in [(r.head.text, r.tail.text, r.label) for r in doc._.relations]
    assert summary.notes["discontinuous mentions (policy: fragments)"] == 1


def test_single_ann_file_and_unknown_policy(nlp):
    docs, _ = _read(nlp, BRAT / "metformin.ann")
    assert len(docs) == 1
    with pytest.raises(ValueError, match="discontinuous must be one of"):
        _read(nlp, discontinuous="merge")


def test_bom_in_text_file_is_removed_and_offsets_stay_right(nlp, tmp_path):
    """brat counts a leading BOM as a character: the offsets shift back with it, and a
    mention text that includes it is a BOM-only difference (accepted, noted)."""
    (tmp_path / "doc.txt").write_bytes(b"\xef\xbb\xbf" + "Metformin lowers glucose.\n".encode())
    (tmp_path / "doc.ann").write_text("T1\tChemical 0 10\t\ufeffMetformin\nT2\tChemical 18 25\tglucose\n", encoding="utf8")
    (doc,), summary = _read(nlp, tmp_path)
    assert doc.text == "Metformin lowers glucose.\n"
    assert [e.text for e in doc.ents] == ["Metformin", "glucose"]
    assert summary.notes[NOTE_WHITESPACE] == 1 and not summary.dropped


def test_brat_mention_text_with_trailing_whitespace_is_accepted(nlp, tmp_path):
    (tmp_path / "doc.txt").write_text("Metformin lowers glucose.\n", encoding="utf8")
    (tmp_path / "doc.ann").write_text("T1\tChemical 0 10\tMetformin \nT2\tChemical 17 24\tglucose  \n", encoding="utf8")
    (doc,), summary = _read(nlp, tmp_path)
    assert [e.text for e in doc.ents] == ["Metformin", "glucose"]
    assert summary.notes[NOTE_WHITESPACE] == 1  # T1 matches exactly (its offsets cover the space)
    (tmp_path / "doc.ann").write_text("T1\tChemical 0 10\tMetformine\n", encoding="utf8")
    with pytest.raises(CorpusFormatError, match=r"doc\.ann:1: mention 'Metformine'"):
        _read(nlp, tmp_path)
