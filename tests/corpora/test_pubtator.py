"""PubTator reader on small BC5CDR / NCBI-disease style fixtures."""
import pytest
import spacy
from conftest import FIXTURES
from spacy.tokens import DocBin

from electramed_spacy.corpora.common import MENTIONS_KEY, NOTE_WHITESPACE, ConversionSummary, CorpusFormatError
from electramed_spacy.corpora.pubtator import NOTE_COMPOSITE, NOTE_CONCEPT_ONLY, read_pubtator
from electramed_spacy.corpora.sentences import NOTE_SUPPRESSED

BC5CDR = FIXTURES / "ner" / "bc5cdr_sample.PubTator.txt"
NCBI = FIXTURES / "ner" / "ncbi_disease_sample.PubTator.txt"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def _read(nlp, path, **kwargs):
    summary = ConversionSummary(source=str(path))
    return list(read_pubtator(path, nlp.make_doc, summary=summary, **kwargs)), summary


def test_bc5cdr_fixture_mentions_ids_and_text(nlp):
    docs, summary = _read(nlp, BC5CDR)
    assert [d._.doc_id for d in docs] == ["9000101", "9000102"]
    doc = docs[0]
    assert doc.text.startswith("Lithium-induced nephrogenic diabetes insipidus in a patient with bipolar disorder. A 54-year-old")
    mentions = doc.spans[MENTIONS_KEY]
    assert len(mentions) == 12
    assert (mentions[0].text, mentions[0].label_, mentions[0].kb_id_) == ("Lithium", "Chemical", "D008094")
    by_text = {s.text: s for s in mentions}
    assert by_text["St. John's wort"].kb_id_ == "-1"
    assert by_text["Ocular and auditory toxicity"].kb_id_ == "D014786|D006311"
    assert summary.documents == 2
    assert summary.entities == {"Chemical": 10, "Disease": 9}
    assert summary.notes[NOTE_COMPOSITE] == 1


def test_nested_mentions_follow_the_overlap_policy(nlp):
    docs, summary = _read(nlp, BC5CDR)
    doc = docs[1]
    # "magnesium" inside "magnesium sulfate": both kept as mentions, the longer one in doc.ents
    assert {s.text for s in doc.spans[MENTIONS_KEY]} >= {"magnesium", "magnesium sulfate"}
    assert "magnesium sulfate" in [e.text for e in doc.ents]
    assert "magnesium" not in [e.text for e in doc.ents]
    assert sum(v for k, v in summary.dropped.items() if k.startswith("overlapping mention")) == 1


def test_cid_relations_link_first_mentions_and_keep_concepts(nlp):
    docs, summary = _read(nlp, BC5CDR)
    doc = docs[0]
    assert [list(r) for r in doc._.concept_relations] == [
        ["D008094", "D018500", "CID"], ["D016651", "D011141", "CID"], ["D016651", "D009999", "CID"]]
    rels = [(r.head.text, r.tail.text, r.label) for r in doc._.relations]
    assert rels == [("Lithium", "nephrogenic diabetes insipidus", "CID"), ("lithium carbonate", "polyuria", "CID")]
    # D009999 has no mention: concept level only, counted
    assert summary.notes[NOTE_CONCEPT_ONLY] == 1
    # first mention in text order: "Cisplatin" in the title, not "cisplatin" in the abstract
    assert [(r.head.start_char, r.tail.text) for r in docs[1]._.relations] == [(0, "nephrotoxicity")]
    assert summary.relations == {"CID": 3}


def test_sentences_never_split_inside_a_mention(nlp):
    docs, summary = _read(nlp, BC5CDR)
    doc = docs[0]
    sents = [s.text for s in doc.sents]
    assert sents[0] == "Lithium-induced nephrogenic diabetes insipidus in a patient with bipolar disorder."
    # "e.g. 151" does not end a sentence (lower-case / digit rule)
    assert any("e.g. 151 mmol/L" in s for s in sents)
    for span in doc.spans[MENTIONS_KEY]:
        assert all(not t.is_sent_start for t in span[1:]), span.text
    assert any("She also took St. John's wort for depression." == s for s in sents)
    assert NOTE_SUPPRESSED not in summary.notes  # "St." is one token: nothing to suppress here
    assert summary.sentences == sum(len(list(d.sents)) for d in docs)


def test_no_sentences_option(nlp):
    docs, summary = _read(nlp, BC5CDR, sentences=False)
    assert not docs[0].has_annotation("SENT_START")
    assert summary.sentences == 2


def test_ncbi_disease_types_are_labels(nlp):
    docs, summary = _read(nlp, NCBI)
    assert summary.entities == {"CompositeMention": 1, "SpecificDisease": 2, "Modifier": 1}
    assert docs[0]._.relations == []


def test_mention_inside_a_token_splits_the_token(nlp, tmp_path):
    text = "Na+/K+-ATPase inhibition by ouabain"
    path = tmp_path / "split.PubTator.txt"
    path.write_text(f"1|t|{text}\n1|a|\n1\t0\t2\tNa\tChemical\tD012964\n1\t28\t35\touabain\tChemical\tD010042\n\n")
    docs, summary = _read(nlp, path)
    assert [e.text for e in docs[0].ents] == ["Na", "ouabain"]
    assert docs[0].text == text  # title only: no trailing space for an empty abstract
    assert summary.notes["tokens split at mention boundaries"] >= 1


def test_offset_mismatch_error_or_count(nlp, tmp_path):
    path = tmp_path / "bad.PubTator.txt"
    path.write_text("7|t|Aspirin and stroke.\n7|a|Aspirin reduces stroke.\n7\t0\t7\tAspirin\tChemical\tD001241\n7\t12\t18\tstroke\tDisease\tD020521\n7\t20\t27\tAspirim\tChemical\tD001241\n\n")
    with pytest.raises(CorpusFormatError) as err:
        _read(nlp, path)
    assert f"{path}:5:" in str(err.value)
    assert "'Aspirim' (Chemical) at 20-27 does not match the text there: 'Aspirin'" in str(err.value)
    assert "Expected: offsets that index the document text" in str(err.value)
    docs, summary = _read(nlp, path, on_error="count")
    assert [e.text for e in docs[0].ents] == ["Aspirin", "stroke"]
    assert summary.dropped["offset mismatch"] == 1


def test_docbin_round_trip_keeps_ids_relations_sentences(nlp):
    docs, _ = _read(nlp, BC5CDR)
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    back = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    for a, b in zip(docs, back):
        assert [(e.start_char, e.end_char, e.label_, e.kb_id_) for e in a.ents] == [(e.start_char, e.end_char, e.label_, e.kb_id_) for e in b.ents]
        assert [(s.start, s.end, s.label_, s.kb_id_) for s in a.spans[MENTIONS_KEY]] == [(s.start, s.end, s.label_, s.kb_id_) for s in b.spans[MENTIONS_KEY]]
        assert [s.start for s in a.sents] == [s.start for s in b.sents]
        assert [(r.head.start, r.tail.start, r.label) for r in a._.relations] == [(r.head.start, r.tail.start, r.label) for r in b._.relations]
        assert [list(r) for r in a._.concept_relations] == [list(r) for r in b._.concept_relations]
        assert a._.doc_id == b._.doc_id


def test_leading_bom_is_stripped(nlp, tmp_path):
    """A BOM made the first PMID '\\ufeff7', so its own mention lines 'belonged to another document'."""
    path = tmp_path / "bom.PubTator.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "7|t|Aspirin and stroke.\n7|a|Rare.\n7\t0\t7\tAspirin\tChemical\tD001241\n".encode())
    docs, _ = _read(nlp, path)
    assert docs[0]._.doc_id == "7" and [e.text for e in docs[0].ents] == ["Aspirin"]
    assert docs[0].text.startswith("Aspirin")


WS_TEXT = "7|t|Aspirin and  stroke.\n7|a|Rare.\n"


@pytest.mark.parametrize("line,span", [
    # NCBI-disease style: the mention column carries trailing whitespace the text does not
    ("7\t0\t7\tAspirin \tChemical\tD1\n", "Aspirin"),
    # offsets that take in the following space; the mention column does not
    ("7\t0\t8\tAspirin\tChemical\tD1\n", "Aspirin"),
    ("7\t12\t19\tstroke\tDisease\tD2\n", "stroke"),
    # whitespace inside differs: "and  stroke" in the text, "and stroke" in the column
    ("7\t8\t19\tand stroke\tDisease\tD2\n", "and  stroke"),
])
def test_mention_text_differing_only_in_whitespace_is_accepted_and_noted(nlp, tmp_path, line, span):
    path = tmp_path / "ws.PubTator.txt"
    path.write_text(WS_TEXT + line)
    docs, summary = _read(nlp, path)
    assert [s.text for s in docs[0].spans[MENTIONS_KEY]] == [span]
    assert summary.notes[NOTE_WHITESPACE] == 1 and not summary.dropped


def test_mention_text_differing_in_more_than_whitespace_stays_an_error(nlp, tmp_path):
    path = tmp_path / "ws.PubTator.txt"
    path.write_text(WS_TEXT + "7\t0\t8\tAspirin a\tChemical\tD1\n")
    with pytest.raises(CorpusFormatError, match=r"ws\.PubTator\.txt:3: mention 'Aspirin a' \(Chemical\) at 0-8 does not match"):
        _read(nlp, path)
