"""`electramed_sentencizer`: rule-based sentence splitting tuned for biomedical text.

spaCy's `sentencizer` ends a sentence at every `.`, so "5 mg/kg i.v. of cisplatin" and
"Fig. 2 shows" are cut in two, and relation candidates (drawn within sentences) are lost.
Here a `.`, `!` or `?` ends a sentence only when all of these hold:

* it is not the dot of an abbreviation (`ABBREVIATIONS`: routes such as i.v., s.c., p.o.;
  Latin such as e.g., i.e., vs., et al., approx., cf.; figure and table references;
  taxonomy such as sp., spp.; titles such as Dr.);
* it is outside parentheses and brackets ("(see Fig. 2. and ref. 3)" stays whole), or the brackets
  close right after it ("(see Interactions.) Next"); a bracket counts only when it is closed within
  `BRACKET_REACH` tokens, so one stray "(" cannot join the rest of the document;
* the next word does not begin with a lower-case letter (a new sentence begins with a capital,
  a digit or a symbol).
Decimal numbers never reach the rules: spaCy keeps "2.5" as one token. Closing brackets and
quotes after the dot stay with the sentence they close. Boundary F1 on DDI-2013 against its
gold sentences, beside spaCy's sentencizer: `benchmarks/sentences/sentence_split.py`.
"""
from typing import Iterable, List

from spacy.language import Language
from spacy.tokens import Doc

FINAL = frozenset([".", "!", "?"])
BRACKET_REACH = 80
OPENING, CLOSING = frozenset("([{"), frozenset(")]}")
TRAILING = frozenset(")]}\"'”’»")
# lower-cased, without their final dot; dotted forms are listed as spaCy tokenizes them ("i.v" + ".")
ABBREVIATIONS = frozenset("""
i.v i.p i.m i.c.v i.t s.c p.o b.i.d t.i.d q.i.d q.d p.r.n
e.g i.e vs v viz cf al approx ca c.f resp incl
fig figs tab tabs ref refs eq eqs no nos vol pp p suppl
sp spp ssp var subsp gen nov cv
dr prof mr mrs ms st
jan feb mar apr jun jul aug sep sept oct nov dec
""".split())


def bracket_depth(doc: Doc) -> List[int]:
    """Per token, the brackets open around it, counting only pairs closed within `BRACKET_REACH` tokens."""
    delta = [0] * (len(doc) + 1)
    stack: List[int] = []
    for i, token in enumerate(doc):
        if token.text in OPENING:
            stack.append(i)
        elif token.text in CLOSING and stack:
            opened = stack.pop()
            if i - opened <= BRACKET_REACH:
                delta[opened + 1] += 1
                delta[i] -= 1
    depth, running = [], 0
    for i in range(len(doc)):
        running += delta[i]
        depth.append(running)
    return depth


def is_sentence_end(doc: Doc, i: int, depth: int) -> bool:
    """Whether token `i` (a `.`, `!` or `?`) ends a sentence, `depth` being the brackets open around it."""
    token = doc[i]
    if token.text not in FINAL:
        return False
    closers = 0
    while i + 1 + closers < len(doc) and doc[i + 1 + closers].text in CLOSING:
        closers += 1
    if depth - closers > 0:
        return False
    if token.text == "." and i > 0 and not doc[i - 1].whitespace_ and doc[i - 1].text.lower() in ABBREVIATIONS:
        return False
    nxt = next((t for t in doc[i + 1:] if not t.is_space and t.text not in TRAILING), None)
    return nxt is None or not nxt.text[0].islower()


def set_sentences(doc: Doc) -> Doc:
    """Set `is_sent_start` on every token of `doc` (in place)."""
    if not len(doc):
        return doc
    starts = [False] * len(doc)
    starts[0] = True
    pending = False
    for i, (token, depth) in enumerate(zip(doc, bracket_depth(doc))):
        if pending and not token.is_space and token.text not in TRAILING:
            starts[i], pending = True, False
        if is_sentence_end(doc, i, depth):
            pending = True
    for token, start in zip(doc, starts):
        token.is_sent_start = start
    return doc


class BiomedicalSentencizer:
    """The pipe: `set_sentences` on each Doc. Nothing to train or save."""

    def __init__(self, name: str = "electramed_sentencizer"):
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        return set_sentences(doc)

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterable[Doc]:
        for doc in docs:
            yield set_sentences(doc)

    def to_disk(self, path, *, exclude=tuple()):
        pass

    def from_disk(self, path, *, exclude=tuple()):
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return b""

    def from_bytes(self, data: bytes, *, exclude=tuple()):
        return self


@Language.factory("electramed_sentencizer", requires=[], assigns=["token.is_sent_start"])
def make_sentencizer(nlp: Language, name: str) -> BiomedicalSentencizer:
    return BiomedicalSentencizer(name)
