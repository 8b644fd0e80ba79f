"""brat standoff reader: mentions, relations, discontinuous policy, ignored lines."""
import pytest
import spacy

from conftest import FIXTURES
from electramed_spacy.corpora.brat import read_brat
from electramed_spacy.corpora.common import MENTIONS_KEY, ConversionSummary

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
