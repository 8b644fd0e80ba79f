"""Sentence splitting never cuts a mention (rules in electramed_spacy/corpora/sentences.py)."""
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from electramed_spacy.corpora.common import MENTIONS_KEY, ConversionSummary
from electramed_spacy.corpora.sentences import NOTE_SUPPRESSED, set_sentence_starts

VOCAB = spacy.blank("en").vocab


def test_split_inside_a_mention_is_suppressed_and_counted():
    words = ["Treatment", "with", "vitamin", "B", ".", "Complex", "tablets", "helped", ".", "Anemia", "resolved", "."]
    doc = Doc(VOCAB, words=words)
    doc.spans[MENTIONS_KEY] = [doc[2:6]]  # "vitamin B . Complex"
    summary = ConversionSummary()
    set_sentence_starts(doc, summary=summary)
    assert [s.text for s in doc.sents] == ["Treatment with vitamin B . Complex tablets helped .", "Anemia resolved ."]
    assert summary.notes[NOTE_SUPPRESSED] == 1


def test_rules_lowercase_closing_punctuation_newline_and_forced_starts():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Rats got 5 mg (i.v.). then died! \"Dose\" mattered (p < 0.05.) Title line\nNext line")
    set_sentence_starts(doc, forced_starts=[doc.text.index("Title")])
    assert [s.text for s in doc.sents] == [
        "Rats got 5 mg (i.v.). then died!",
        "\"Dose\" mattered (p < 0.05.)",
        "Title line\n",
        "Next line",
    ]


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["Aspirin", ".", "reduces", "!", "Stroke", "risk", "?", "in", "\n"]), min_size=1, max_size=30),
    data=st.data(),
)
def test_property_no_mention_contains_a_sentence_start(words, data):
    doc = Doc(VOCAB, words=words)
    n = len(doc)
    bounds = sorted(data.draw(st.lists(st.integers(0, n), max_size=6, unique=True)))
    spans = [doc[a:b] for a, b in zip(bounds[::2], bounds[1::2]) if a < b]
    doc.spans[MENTIONS_KEY] = spans
    set_sentence_starts(doc)
    assert doc[0].is_sent_start
    for span in spans:
        assert not any(t.is_sent_start for t in span[1:])
