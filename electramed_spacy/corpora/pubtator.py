"""PubTator reader (BC5CDR, NCBI-disease) -> Docs with typed mentions, MeSH ids and CID relations.

The BC5CDR corpus (Li et al. 2016) and NCBI-disease are the NER benchmarks of
ELECTRAMed (arXiv:2104.09585, Table 2). Format, one block per document, blank
line between blocks:

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>ids[<TAB>composite texts]]
    PMID<TAB>CID<TAB>chemical id<TAB>disease id

The Doc text is `title + " " + abstract` (the offsets in the file assume this).
Every mention is in `doc.spans["mentions"]` with its identifiers in `span.kb_id_`
exactly as written (`D009270`, `-1` for none, `D014786|D006311` for composite
mentions); `doc.ents` holds the non-overlapping ones (policy in `common.py`).
NCBI-disease types (SpecificDisease, Modifier, ...) are kept as labels. The 7th
column of composite mentions (the individual mention texts) is not stored; this
is counted in the summary notes.

Relations. CID relations in PubTator are document-level, between *concepts*
(MeSH ids), not mentions. We keep them twice:

* `doc._.concept_relations`: every relation line, as `[head_id, tail_id, label]`
  (e.g. `["D008750", "D007022", "CID"]`) - the exact corpus annotation;
* `doc._.relations` (via `set_relations`): one mention-level relation per concept
  pair, from the **first mention in the text** of the head concept to the first
  mention of the tail concept. A mention whose kb_id lists several ids (`A|B`)
  is a mention of each. When either concept has no mention in the Doc, the
  relation stays concept-level only and is counted in the summary notes.

Sentences: with `sentences=True` the title is one sentence and the abstract is
split by `sentences.set_sentence_starts` (never inside a mention).

Line kinds: a line whose second column is an integer is a mention; a relation
line has a label there (`CID`) and exactly 4 columns. A `PMID|t|` or `PMID|a|`
line is text even when the text holds a tab. Any other annotation line with 5 or more columns is a mention
with a malformed start offset: an error naming file:line, or with
`on_error="count"` a counted drop, like every mention whose offsets are not
an increasing pair of integers. Text follows `common.read_lines` (UTF-8, BOM
removed); mention texts that differ from the document only in whitespace are
accepted and noted (`common.NOTE_WHITESPACE`).
"""
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc, Span

from ..doc.relations import Relation, set_relations
from .common import DOC_ID, MENTIONS_KEY, ConversionSummary, CorpusFormatError, as_offset, doc_from_offsets, read_lines
from .sentences import set_sentence_starts

CONCEPT_RELATIONS = "concept_relations"
PUBTATOR_PATTERNS = ("*.PubTator.txt", "*.pubtator", "*.PubTator", "*.pubtator.txt")
TEXT_LINE = re.compile(r"^([^\t|]+)\|([^|\t]*)\|(.*)$")
EXPECTED_LINE = (
    "'PMID|t|title', 'PMID|a|abstract', a mention line 'PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>ids]', "
    "a relation line 'PMID<TAB>label<TAB>id1<TAB>id2', or a blank line between documents."
)
NOTE_COMPOSITE = "composite mention texts (PubTator 7th column) not stored"
NOTE_CONCEPT_ONLY = "concept relations without a mention of both concepts (kept in doc._.concept_relations only)"
DROP_OFFSETS = "mention with malformed offsets (not an increasing pair of integers)"
RELATION_LABEL = re.compile(r"[A-Za-z][\w:.\-]*")
EXPECTED_OFFSETS = "integer character offsets 'PMID<TAB>start<TAB>end<TAB>...' with 0 <= start < end (or on_error='count')."


def install_extensions() -> None:
    """Register `doc._.concept_relations` once (idempotent, never force)."""
    if not Doc.has_extension(CONCEPT_RELATIONS):
        Doc.set_extension(CONCEPT_RELATIONS, default=None)


class _Block:
    """The lines of one PubTator document while it is being read."""

    def __init__(self, pmid: str, line: int):
        self.pmid, self.line = pmid, line
        self.title: Optional[str] = None
        self.abstract: Optional[str] = None
        self.mentions: List[Tuple[int, int, str, str, str, int]] = []  # start, end, text, type, ids, line
        self.relations: List[Tuple[str, str, str, int]] = []  # label, head id, tail id, line
        self.composite = 0  # mention lines with the 7th column (individual composite texts)


def _is_relation(cols: List[str]) -> bool:
    """'PMID<TAB>CID<TAB>id<TAB>id': four columns, a label, then two ids (five or more columns are a mention,
    whatever its offsets look like)."""
    return len(cols) == 4 and RELATION_LABEL.fullmatch(cols[1]) is not None


def _parse(path: Path, summary: ConversionSummary, on_error: str) -> Iterator[_Block]:
    """Yield one _Block per document; raise CorpusFormatError at the first malformed line
    (a mention's malformed offsets are counted instead when on_error="count")."""
    block: Optional[_Block] = None

    def bad_offsets(n: int, problem: str) -> None:
        if on_error == "error":
            raise CorpusFormatError(path, n, problem, EXPECTED_OFFSETS)
        summary.drop(DROP_OFFSETS)

    for n, raw in read_lines(path):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if block is not None:
                yield block
                block = None
            continue
        text_line = TEXT_LINE.match(line)
        if "\t" not in line or (text_line and text_line.group(2) in ("t", "a")):  # a tab inside a title/abstract is text
            m = text_line
            if not m:
                raise CorpusFormatError(path, n, f"unrecognised line {line[:60]!r}.", EXPECTED_LINE)
            pmid, kind, text = m.groups()
            if kind not in ("t", "a"):
                raise CorpusFormatError(path, n, f"unknown text line type {kind!r} for PMID {pmid}.", "'PMID|t|title' or 'PMID|a|abstract'.")
            if kind == "t":
                if block is not None:
                    if block.pmid == pmid:
                        raise CorpusFormatError(path, n, f"a second title line for PMID {pmid}.", "one title line per document, and a blank line between documents.")
                    yield block
                block = _Block(pmid, n)
                block.title = text
                continue
            if block is None or block.pmid != pmid:
                raise CorpusFormatError(path, n, f"abstract line for PMID {pmid} without its title line.", f"'{pmid}|t|title' right before '{pmid}|a|abstract'.")
            if block.abstract is not None:
                raise CorpusFormatError(path, n, f"a second abstract line for PMID {pmid}.", "one abstract line per document.")
            block.abstract = text
            continue
        cols = line.split("\t")
        pmid = cols[0]
        if block is None or block.pmid != pmid:
            where = f"document {block.pmid}" if block is not None else "no document"
            raise CorpusFormatError(path, n, f"annotation for PMID {pmid} inside {where}.", "annotation lines right after the title/abstract lines of their own PMID.")
        start = as_offset(cols[1], signed=True) if len(cols) >= 2 else None
        if start is None and _is_relation(cols):
            block.relations.append((cols[1], cols[2], cols[3], n))
            continue
        if start is None and len(cols) < 5:
            raise CorpusFormatError(path, n, f"annotation line with {len(cols)} tab-separated columns: {line[:60]!r}.", EXPECTED_LINE)
        if len(cols) < 5:
            raise CorpusFormatError(path, n, f"mention line with {len(cols)} tab-separated columns.", "'PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>ids]' (at least 5 columns).")
        if not cols[4]:
            raise CorpusFormatError(path, n, "mention line with an empty type column.", "a mention type such as Chemical or Disease in column 5.")
        end = as_offset(cols[2], signed=True)
        if start is None:
            bad_offsets(n, f"mention start offset {cols[1]!r} is not an integer (a relation line is 'PMID<TAB>label<TAB>id1<TAB>id2').")
            continue
        if end is None:
            bad_offsets(n, f"mention end offset {cols[2]!r} is not an integer.")
            continue
        if not 0 <= start < end:
            bad_offsets(n, f"mention offsets {start}-{end} are not an increasing pair of non-negative integers.")
            continue
        ids = cols[5] if len(cols) > 5 else ""
        block.mentions.append((start, end, cols[3], cols[4], ids, n))
        block.composite += len(cols) > 6
    if block is not None:
        yield block


def _first_mentions(doc: Doc) -> Dict[str, Span]:
    """Concept id -> first mention (in text order) that carries it."""
    first: Dict[str, Span] = {}
    for span in sorted(doc.spans[MENTIONS_KEY], key=lambda s: (s.start, s.end)):
        for concept in span.kb_id_.split("|"):
            if concept and concept != "-1":
                first.setdefault(concept, span)
    return first


def read_pubtator(
    path: Union[str, Path],
    make_doc: Callable[[str], Doc],
    *,
    summary: Optional[ConversionSummary] = None,
    on_error: str = "error",
    sentences: bool = True,
) -> Iterator[Doc]:
    """Yield one Doc per PubTator document of the file at `path` (see module docstring).

    make_doc: the tokenizer, e.g. `nlp.make_doc`. on_error: "error" (raise
    CorpusFormatError naming file:line) or "count" (drop the mention, count it).
    """
    install_extensions()
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    for block in _parse(path, summary, on_error):
        text = block.title if not block.abstract else f"{block.title} {block.abstract}"
        doc, spans = doc_from_offsets(
            make_doc, text, [(s, e, t) for s, e, _, t, _, _ in block.mentions],
            summary=summary, on_error=on_error, where=f"{path}:{block.line}",
            mention_texts=[m[2] for m in block.mentions],
            mention_where=[f"{path}:{m[5]}" for m in block.mentions],
            kb_ids=[m[4] for m in block.mentions],
        )
        if block.composite:
            summary.notes[NOTE_COMPOSITE] += block.composite
        doc._.set(DOC_ID, block.pmid)
        doc._.set(CONCEPT_RELATIONS, [[head, tail, label] for label, head, tail, _ in block.relations])
        first = _first_mentions(doc)
        relations = []
        for label, head, tail, _ in block.relations:
            if head in first and tail in first:
                relations.append(Relation(first[head], first[tail], label))
            else:
                summary.notes[NOTE_CONCEPT_ONLY] += 1
        set_relations(doc, relations)
        if sentences:
            forced = [len(block.title) + 1] if block.abstract else []
            set_sentence_starts(doc, forced_starts=forced, summary=summary)
        summary.add_doc(doc)
        yield doc
