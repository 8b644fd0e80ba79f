"""Rule-based sentence splitting for corpus Docs that never splits inside a mention.

ELECTRAMed (arXiv:2104.09585) fine-tunes on sentence-level inputs for NER; the
document-level corpora (PubTator, brat) therefore need sentence starts, and a
boundary inside a mention would cut the mention in two. The rules, in order:

1. The first token starts a sentence, and so does the token at every *forced*
   character offset (e.g. the start of the PubTator abstract after the title).
2. After a sentence-final token (`.`, `!`, `?`) or a whitespace token containing a
   newline, the next token that is neither whitespace nor trailing punctuation
   (`.`, `)`, `]`, or a quote attached to the previous token) starts a sentence **unless it begins with a lower-case letter**
   (which keeps "e.g. the", "i.v. injection", "approx. 5" together).
3. No token strictly inside a mention (any span in `doc.spans["mentions"]` or
   `doc.ents`) starts a sentence: such splits are suppressed and counted in the
   summary notes. So every mention lies within one sentence.

The result is written to `token.is_sent_start` (spaCy's SENT_START, which DocBin keeps).
"""
from typing import Iterable, Optional

from spacy.tokens import Doc

from .common import MENTIONS_KEY, ConversionSummary

SENTENCE_FINAL = frozenset([".", "!", "?", "。"])
CLOSING = frozenset([")", "]", "}", '"', "'", "”", "’", "»"])
QUOTES = frozenset(['"', "'"])  # symmetric: closing when attached, opening after a space
NOTE_SUPPRESSED = "sentence splits suppressed inside mentions"


def set_sentence_starts(
    doc: Doc,
    *,
    forced_starts: Iterable[int] = (),
    summary: Optional[ConversionSummary] = None,
) -> Doc:
    """Set `is_sent_start` on every token of `doc` (in place) following the module rules.

    forced_starts: character offsets where a sentence must start (snapped to the
    token that contains the offset).
    """
    if len(doc) == 0:
        return doc
    starts = [False] * len(doc)
    starts[0] = True
    pending = False
    for i, token in enumerate(doc):
        if i and pending and not token.is_space and not _trails(token):
            starts[i] = not token.text[0].islower()
            pending = False
        if token.text in SENTENCE_FINAL or (token.is_space and "\n" in token.text):
            pending = True
    n_chars = len(doc.text)
    for offset in forced_starts:
        where = doc.char_span(offset, offset + 1, alignment_mode="expand") if 0 <= offset < n_chars else None
        if where is not None:
            starts[where.start] = True
    protected = list(doc.spans.get(MENTIONS_KEY, [])) + list(doc.ents)
    suppressed = 0
    for span in protected:
        for i in range(span.start + 1, span.end):
            if starts[i]:
                starts[i] = False
                suppressed += 1
    if suppressed and summary is not None:
        summary.notes[NOTE_SUPPRESSED] += suppressed
    for token, start in zip(doc, starts):
        token.is_sent_start = start
    return doc


def _trails(token) -> bool:
    """True for punctuation that stays with the sentence before it: `.`, `)`, `."` ..."""
    if token.text in QUOTES and token.i and token.doc[token.i - 1].whitespace_:
        return False
    return all(c in SENTENCE_FINAL or c in CLOSING for c in token.text)
