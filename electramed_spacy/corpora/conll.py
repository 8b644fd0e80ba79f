"""CoNLL token-per-line reader and writer (IOB1 / IOB2, any tag set) for the
token-level NER benchmarks of ELECTRAMed (arXiv:2104.09585), e.g. the BC5CDR and
NCBI-disease files of Crichton et al. (MTL-Bioinformatics-2016).

Input: one token per line, columns separated by a tab (or, when a line has no
tab, by spaces); the token is the first column and the tag the last, so
`token<TAB>B-Chemical` and CoNLL-2003's `token POS chunk B-PER` both work. A blank
line ends a sentence; a `-DOCSTART-` line ends a document. Tags are `O`,
`B-LABEL` or `I-LABEL` with any LABEL (hyphens allowed after the first).

Schemes. IOB2 starts every chunk with B-; IOB1 starts a chunk with I- and uses B-
only between two adjacent chunks of the same type. Both are decoded by one rule
(B- starts a chunk; I-X continues a chunk of type X, else starts one), so:

* `iob1`: accept either;
* `iob2`: strict - an I- tag that starts a chunk is an error naming file:line;
* `auto` (default): decode as above; the file is reported as IOB1 in the summary
  notes when any chunk starts with I-, else as IOB2.

Docs: `n_sents` consecutive sentences form one Doc (0 = one Doc per `-DOCSTART-`
section, or per file); sentence starts are set (`token.is_sent_start`), tokens are
joined by single spaces. Chunks never cross a sentence boundary. The file is read
through `common.read_lines` (UTF-8, a leading BOM removed, so it never sticks to
the first token).
"""
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..formats.conll import DOCSTART, SCHEMES, ConllLineError, conll_sentences
from ..formats.iob import tags_to_spans  # noqa: F401 (re-exported: the decoding rule lives there)
from .common import DOC_ID, MENTIONS_KEY, ConversionSummary, CorpusFormatError, read_lines

CONLL_PATTERNS = ("*.tsv", "*.conll", "*.iob", "*.iob2", "*.bio")


def spans_to_tags(n_tokens: int, spans: Iterable[Tuple[int, int, str]], *, scheme: str = "iob2") -> List[str]:
    """Encode non-overlapping `(start, end, label)` token chunks as IOB1 or IOB2 tags."""
    if scheme not in ("iob1", "iob2"):
        raise ValueError(f"scheme must be 'iob1' or 'iob2' to write tags, got {scheme!r}")
    tags = ["O"] * n_tokens
    prev_end, prev_label = -1, None
    for start, end, label in sorted(spans):
        adjacent_same = start == prev_end and label == prev_label
        first = "B" if scheme == "iob2" or adjacent_same else "I"
        tags[start] = f"{first}-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
        prev_end, prev_label = end, label
    return tags


def doc_to_conll(doc: Doc, *, scheme: str = "iob2", sep: str = "\t") -> str:
    """One Doc as CoNLL lines (tags from `doc.ents`, a blank line after each sentence).
    Whitespace tokens are skipped (they cannot be a CoNLL line)."""
    tags = spans_to_tags(len(doc), [(e.start, e.end, e.label_) for e in doc.ents], scheme=scheme)
    sents = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
    lines: List[str] = []
    for sent in sents:
        lines.extend(f"{t.text}{sep}{tags[t.i]}" for t in sent if not t.is_space)
        lines.append("")
    return "\n".join(lines) + "\n"


def write_conll(docs: Iterable[Doc], path: Union[str, Path], *, scheme: str = "iob2", docstart: bool = False) -> None:
    """Write Docs to a CoNLL file (optionally with a -DOCSTART- line before each Doc)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for doc in docs:
            if docstart:
                f.write(f"{DOCSTART}\tO\n\n")
            f.write(doc_to_conll(doc, scheme=scheme))


def _make_doc(vocab: Vocab, sents: List[List[Tuple[str, str]]], doc_id: str) -> Doc:
    words = [w for sent in sents for w, _ in sent]
    sent_starts = [i == 0 for sent in sents for i in range(len(sent))]
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], sent_starts=sent_starts)
    ents = []
    offset = 0
    for sent in sents:
        # already validated while reading; the scheme check was done there too
        for start, end, label in tags_to_spans([t for _, t in sent], scheme="iob1"):
            ents.append(doc[offset + start : offset + end])
            ents[-1].label_ = label
        offset += len(sent)
    doc.ents = ents
    doc.spans[MENTIONS_KEY] = list(doc.ents)
    doc._.set(DOC_ID, doc_id)
    return doc


def read_conll(
    path: Union[str, Path],
    vocab: Vocab,
    *,
    scheme: str = "auto",
    n_sents: int = 10,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield Docs of `n_sents` sentences from a CoNLL file (see the module docstring)."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if n_sents < 0:
        raise ValueError(f"n_sents must be >= 0 (0 = one Doc per -DOCSTART- section), got {n_sents}")
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    counts: Counter = Counter()
    sents: List[List[Tuple[str, str]]] = []
    n_docs = 0

    def flush() -> Iterator[Doc]:
        nonlocal sents, n_docs
        if sents:
            doc = _make_doc(vocab, sents, f"{path.name}#{n_docs}")
            n_docs += 1
            summary.add_doc(doc)
            sents = []
            yield doc

    try:
        for sent in conll_sentences(read_lines(path), scheme=scheme, counts=counts):
            if sent is None:  # -DOCSTART-
                yield from flush()
                continue
            sents.append(sent)
            if n_sents and len(sents) >= n_sents:
                yield from flush()
    except ConllLineError as err:
        raise CorpusFormatError(path, err.line, err.problem, err.expected) from None
    yield from flush()
    if counts["docstarts"]:
        summary.notes["-DOCSTART- lines"] += counts["docstarts"]
    if scheme == "auto":
        summary.notes[f"scheme detected: {'iob1' if counts['i_starts'] else 'iob2'}"] += 1
    if counts["i_starts"]:
        summary.notes["chunks starting with I- (IOB1)"] += counts["i_starts"]
