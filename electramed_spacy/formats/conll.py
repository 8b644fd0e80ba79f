"""CoNLL token-per-line parsing, without spaCy: one parser for the corpus reader (`corpora/conll.py`, which
builds Docs) and the pre-training probe (`pretraining/probe.py`, which must not import spaCy).

One token per line, columns separated by a tab (or, when a line has no tab, by spaces); the token is the
first column and the tag the last, so `token<TAB>B-Chemical` and CoNLL-2003's `token POS chunk B-PER` both
work. A blank line ends a sentence; a `-DOCSTART-` line ends a document. Tags are `O`, `B-LABEL` or
`I-LABEL` (IOB1 or IOB2, decoded by `iob.tags_to_spans`).
"""
from collections import Counter
from typing import Iterable, Iterator, List, Optional, Tuple

from .iob import split_tag

DOCSTART = "-DOCSTART-"
SCHEMES = ("auto", "iob1", "iob2")
EXPECTED_LINE = "'token<TAB>tag' (or space separated; the tag in the last column), a blank line between sentences, or -DOCSTART-."
EXPECTED_TAG = "O, B-LABEL or I-LABEL (IOB1/IOB2; convert BILUO/BIOES files first)."

Sentence = List[Tuple[str, str]]


class ConllLineError(ValueError):
    """A line that is not CoNLL: `line` (from 1), what is wrong, and what was expected."""

    def __init__(self, line: int, problem: str, expected: str):
        super().__init__(f"line {line}: {problem} Expected {expected}")
        self.line, self.problem, self.expected = line, problem, expected


def conll_sentences(lines: Iterable[Tuple[int, str]], *, scheme: str = "auto",
                    counts: Optional[Counter] = None) -> Iterator[Optional[Sentence]]:
    """Each sentence of numbered `lines` as [(token, tag)], and None where a `-DOCSTART-` line ends a document.

    scheme "iob2" raises ConllLineError at an I- tag that starts a chunk; "iob1" and "auto" accept it and count
    it in `counts["i_starts"]` (`counts["docstarts"]` counts the -DOCSTART- lines)."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    counts = counts if counts is not None else Counter()
    sent: Sentence = []
    for n, raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            if sent:
                yield sent
            sent = []
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if cols[0] == DOCSTART:
            if sent:
                yield sent
            sent = []
            counts["docstarts"] += 1
            yield None
            continue
        if len(cols) < 2 or not cols[0] or not cols[-1]:
            raise ConllLineError(n, f"{len(cols)} column(s) in {line[:60]!r}.", EXPECTED_LINE)
        token, tag = cols[0].strip(), cols[-1].strip()
        if not token:
            raise ConllLineError(n, f"empty token in {line[:60]!r}.", EXPECTED_LINE)
        try:
            prefix, label = split_tag(tag)
        except ValueError:
            raise ConllLineError(n, f"tag {tag!r} is not an IOB tag.", EXPECTED_TAG) from None
        if prefix == "I" and not (sent and sent[-1][1] != "O" and split_tag(sent[-1][1])[1] == label):
            if scheme == "iob2":
                previous = sent[-1][1] if sent else "sentence start"
                raise ConllLineError(n, f"{tag} starts a chunk (previous tag: {previous}).",
                                     f"B-{label} at the start of every chunk under --scheme iob2; "
                                     "use --scheme iob1 or auto for IOB1 files.")
            counts["i_starts"] += 1
        sent.append((token, tag))
    if sent:
        yield sent
