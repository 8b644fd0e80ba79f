"""CoNLL reader/writer: IOB1 and IOB2, tab or space separated, -DOCSTART-, and the
offsets -> BIO -> offsets round trip (hypothesis)."""
import tempfile
from pathlib import Path

import pytest
import spacy
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.training import biluo_to_iob, offsets_to_biluo_tags

from electramed_spacy.corpora.common import MENTIONS_KEY, ConversionSummary
from electramed_spacy.corpora.conll import read_conll, spans_to_tags, tags_to_spans, write_conll

VOCAB = spacy.blank("en").vocab
IOB2_FILE = FIXTURES / "ner" / "bc5cdr_sample_iob2.tsv"
IOB1_FILE = FIXTURES / "ner" / "ncbi_sample_iob1.conll"


def _read(path, **kwargs):
    summary = ConversionSummary(source=str(path))
    return list(read_conll(path, VOCAB, summary=summary, **kwargs)), summary


def test_leading_bom_is_not_part_of_the_first_token(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + "Aspirin\tB-Chemical\nworks\tO\n".encode())
    (doc,), _ = _read(path)
    assert [t.text for t in doc] == ["Aspirin", "works"]
    assert [(e.text, e.label_) for e in doc.ents] == [("Aspirin", "Chemical")]


def test_iob2_tab_separated():
    docs, summary = _read(IOB2_FILE, n_sents=2)
    assert [len(list(d.sents)) for d in docs] == [2, 1]
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Naloxone", "Chemical"), ("clonidine", "Chemical"), ("Carbamazepine", "Chemical"),
        ("cardiac dysfunction", "Disease"), ("epilepsy", "Disease")]
    assert docs[0].text.startswith("Naloxone reverses the antihypertensive effect of clonidine . Carbamazepine - induced")
    assert list(docs[0].spans[MENTIONS_KEY]) == list(docs[0].ents)
    assert (summary.documents, summary.sentences) == (2, 3)
    assert summary.entities == {"Chemical": 5, "Disease": 3}
    assert summary.notes["scheme detected: iob2"] == 1


def test_iob1_space_separated_with_docstart_and_hyphenated_labels():
    docs, summary = _read(IOB1_FILE, scheme="auto", n_sents=0)
    assert len(docs) == 2  # one per -DOCSTART- section
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("familial adenomatous polyposis", "Disease-Class"), ("Colorectal cancer", "Disease-Class"),
        ("breast cancer", "Disease-Class"), ("ataxia telangiectasia", "Disease-Class")]
    assert [e.text for e in docs[1].ents] == ["Hereditary hemochromatosis"]
    assert summary.notes["scheme detected: iob1"] == 1
    assert summary.notes["-DOCSTART- lines"] == 2
    assert [s.text for s in docs[0].sents][1] == "Colorectal cancer breast cancer and ataxia telangiectasia ."


def test_iob1_and_iob2_readings_agree():
    assert tags_to_spans(["I-X", "I-X", "B-X", "O", "I-Y"]) == [(0, 2, "X"), (2, 3, "X"), (4, 5, "Y")]
    assert tags_to_spans(["B-X", "I-X", "B-X", "O", "B-Y"], scheme="iob2") == [(0, 2, "X"), (2, 3, "X"), (4, 5, "Y")]
    assert spans_to_tags(5, [(0, 2, "X"), (2, 3, "X"), (4, 5, "Y")], scheme="iob1") == ["I-X", "I-X", "B-X", "O", "I-Y"]
    with pytest.raises(ValueError):
        tags_to_spans(["O", "I-X"], scheme="iob2")


def test_writer_reader_round_trip(tmp_path):
    docs, _ = _read(IOB2_FILE, n_sents=10)
    for scheme in ("iob1", "iob2"):
        out = tmp_path / f"{scheme}.tsv"
        write_conll(docs, out, scheme=scheme, docstart=True)
        back, _ = _read(out, scheme=scheme, n_sents=0)
        assert [(e.start_char, e.end_char, e.label_) for e in back[0].ents] == [(e.start_char, e.end_char, e.label_) for e in docs[0].ents]
        assert [s.start for s in back[0].sents] == [s.start for s in docs[0].sents]


WORDS = st.sampled_from(["Cisplatin", "induced", "acute", "renal", "failure", "in", "rats", ".", "5-FU", "(", ")", "IL-6"])
LABELS = st.sampled_from(["Chemical", "Disease", "Gene-or-protein"])


@settings(max_examples=80, deadline=None)
@given(words=st.lists(WORDS, min_size=1, max_size=25), data=st.data())
def test_property_offsets_to_bio_to_offsets(words, data):
    doc = Doc(VOCAB, words=words)
    n = len(doc)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=8, unique=True)))
    # non-overlapping, possibly adjacent, mentions (adjacent same-label ones exercise IOB1's B-)
    token_spans = [(a, b, data.draw(LABELS)) for a, b in zip(cuts[::2], cuts[1::2]) if a < b]
    offsets = [(doc[a].idx, doc[b - 1].idx + len(doc[b - 1]), label) for a, b, label in token_spans]
    iob2 = biluo_to_iob(offsets_to_biluo_tags(doc, offsets))
    assert tags_to_spans(iob2, scheme="iob2") == token_spans
    iob1 = spans_to_tags(n, tags_to_spans(iob2), scheme="iob1")
    assert tags_to_spans(iob1, scheme="iob1") == token_spans
    # and through files in both schemes
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in offsets]
    doc[0].is_sent_start = True
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in ("iob1", "iob2"):
            path = Path(tmp) / "x.tsv"
            write_conll([doc], path, scheme=scheme)
            (back,) = list(read_conll(path, VOCAB, scheme=scheme, n_sents=0))
            assert [(e.start_char, e.end_char, e.label_) for e in back.ents] == offsets
