"""Shared machinery for the corpus readers: file:line errors, conversion
summaries, and building a Doc from text + character-offset mentions.

Readers know only Docs: they return `Doc` objects with `doc.ents`, the span group
`doc.spans["mentions"]` (every mention, nested/overlapping ones included) and,
where the corpus has them, relations (`electramed_spacy.relations`).

Tokenisation policy: the text is tokenised with the pipeline's tokenizer, then any
token that a mention boundary falls inside is split at that boundary, so no
mention is ever lost to tokenisation (splits are counted in the summary).
Overlap policy for `doc.ents` (which cannot overlap): mentions are taken by start,
longest first; a mention overlapping one already taken is kept only in
`doc.spans["mentions"]` and counted as `overlap`.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span
from wasabi import msg

MENTIONS_KEY = "mentions"
ON_MISMATCH = ("error", "count")


class CorpusFormatError(ValueError):
    """Malformed input: says which file and line, what was found and what was expected."""

    def __init__(self, path: Union[str, Path], line: Optional[int], problem: str, expected: str = ""):
        where = f"{path}:{line}" if line is not None else str(path)
        text = f"{where}: {problem}"
        if expected:
            text += f" Expected: {expected}"
        super().__init__(text)
        self.path, self.line = str(path), line


@dataclass
class ConversionSummary:
    """What a conversion produced and what it dropped, with reasons. Nothing is dropped silently."""

    source: str = ""
    documents: int = 0
    sentences: int = 0
    entities: Counter = field(default_factory=Counter)
    relations: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    notes: Counter = field(default_factory=Counter)  # non-losses worth knowing (e.g. tokens split)

    def add_doc(self, doc: Doc) -> None:
        self.documents += 1
        self.sentences += sum(1 for _ in doc.sents) if doc.has_annotation("SENT_START") else 1
        self.entities.update(span.label_ for span in doc.spans.get(MENTIONS_KEY, doc.ents))
        if doc.has_extension("relation_data") and doc._.relation_data:
            self.relations.update(row[4] for row in doc._.relation_data)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def as_dict(self) -> Dict[str, object]:
        return {
            "source": self.source, "documents": self.documents, "sentences": self.sentences,
            "entities": dict(self.entities), "relations": dict(self.relations),
            "dropped": dict(self.dropped), "notes": dict(self.notes),
        }

    def print(self) -> None:
        msg.divider(f"Converted {self.source}" if self.source else "Conversion summary")
        rows = [("documents", self.documents), ("sentences", self.sentences)]
        rows += [(f"entities: {k}", v) for k, v in sorted(self.entities.items())]
        rows += [(f"relations: {k}", v) for k, v in sorted(self.relations.items())]
        rows += [(f"dropped: {k}", v) for k, v in sorted(self.dropped.items())]
        rows += [(f"note: {k}", v) for k, v in sorted(self.notes.items())]
        msg.table(rows, aligns=("l", "r"))
        if self.dropped:
            msg.warn(f"{sum(self.dropped.values())} item(s) dropped; reasons above.")


def split_at_boundaries(doc: Doc, boundaries: Iterable[int]) -> Tuple[Doc, int]:
    """Return a Doc whose tokens start/end at every given character offset.

    Tokens that contain a boundary strictly inside are split there (whitespace
    is preserved, so `doc.text` is unchanged). Returns (doc, number of splits).
    """
    cuts = sorted(set(boundaries))
    words: List[str] = []
    spaces: List[bool] = []
    n_splits = 0
    ci = 0
    text = doc.text  # computed once: Doc.text joins every token, so reading it per token is quadratic
    for token in doc:
        start, end = token.idx, token.idx + len(token.text)
        while ci < len(cuts) and cuts[ci] <= start:
            ci += 1
        pieces = [start]
        j = ci
        while j < len(cuts) and cuts[j] < end:
            pieces.append(cuts[j])
            j += 1
        pieces.append(end)
        n_splits += len(pieces) - 2
        for k in range(len(pieces) - 1):
            words.append(text[pieces[k] : pieces[k + 1]])
            spaces.append(bool(token.whitespace_) if k == len(pieces) - 2 else False)
    if n_splits == 0:
        return doc, 0
    return Doc(doc.vocab, words=words, spaces=spaces), n_splits


def doc_from_offsets(
    make_doc,
    text: str,
    mentions: Sequence[Tuple[int, int, str]],
    *,
    summary: Optional[ConversionSummary] = None,
    on_mismatch: str = "error",
    where: str = "",
    mention_texts: Optional[Sequence[Optional[str]]] = None,
    mention_where: Optional[Sequence[str]] = None,
    kb_ids: Optional[Sequence[str]] = None,
) -> Tuple[Doc, List[Optional[Span]]]:
    """Build a Doc from `text` and `(start_char, end_char, label)` mentions.

    make_doc: the tokenizer (`nlp.make_doc`). `mention_texts`, when given, are the
    surface strings the corpus claims for each mention; a mismatch with
    `text[start:end]` (or offsets outside the text) raises CorpusFormatError
    (`on_mismatch="error"`) or is counted and dropped (`"count"`).
    `mention_where`, when given, names each mention's source ("file:line") for the
    error message; `kb_ids` sets each mention's `span.kb_id_` (e.g. MeSH ids).
    Returns the Doc and, per input mention, its Span (None if dropped).
    """
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}")
    summary = summary if summary is not None else ConversionSummary()
    valid: List[Optional[Tuple[int, int, str]]] = []
    for i, (start, end, label) in enumerate(mentions):
        claimed = mention_texts[i] if mention_texts is not None else None
        problem = None
        if not (0 <= start < end <= len(text)):
            problem = f"mention offsets {start}-{end} ({label}) fall outside the text of length {len(text)}."
        elif claimed is not None and text[start:end] != claimed:
            problem = f"mention {claimed!r} ({label}) at {start}-{end} does not match the text there: {text[start:end]!r}."
        elif not text[start:end].strip():
            problem = f"mention ({label}) at {start}-{end} covers only whitespace."
        if problem:
            if on_mismatch == "error":
                loc = mention_where[i] if mention_where is not None else (where or "<text>")
                raise CorpusFormatError(loc, None, problem, "offsets that index the document text (or use on_mismatch='count').")
            summary.drop("offset mismatch")
            valid.append(None)
            continue
        stripped_start = start + (len(text[start:end]) - len(text[start:end].lstrip()))
        stripped_end = end - (len(text[start:end]) - len(text[start:end].rstrip()))
        valid.append((stripped_start, stripped_end, label))
    doc = make_doc(text)
    bounds = [b for m in valid if m for b in m[:2]]
    doc, n_splits = split_at_boundaries(doc, bounds)
    if n_splits:
        summary.notes["tokens split at mention boundaries"] += n_splits
    spans: List[Optional[Span]] = []
    for i, m in enumerate(valid):
        span = None
        if m:
            kb_id = kb_ids[i] if kb_ids is not None and kb_ids[i] is not None else ""
            span = doc.char_span(m[0], m[1], label=m[2], kb_id=kb_id)
            if span is None:  # cannot happen after split_at_boundaries; never drop silently
                summary.drop("mention not aligned to tokens")
        spans.append(span)
    kept = [s for s in spans if s is not None]
    doc.spans[MENTIONS_KEY] = kept
    ents: List[Span] = []
    taken = set()
    for span in sorted(kept, key=lambda s: (s.start, -(s.end - s.start))):
        if any(i in taken for i in range(span.start, span.end)):
            summary.drop("overlapping mention (kept in doc.spans['mentions'], not in doc.ents)")
            continue
        ents.append(span)
        taken.update(range(span.start, span.end))
    doc.ents = ents
    return doc, spans


# `doc._.doc_id`: the source document's id (PMID for PubTator, file stem for brat,
# "file#n" for CoNLL). Stored in user_data, so it survives DocBin(store_user_data=True).
DOC_ID = "doc_id"


def install_doc_id() -> None:
    """Register `doc._.doc_id` once (idempotent, never force)."""
    if not Doc.has_extension(DOC_ID):
        Doc.set_extension(DOC_ID, default=None)


def input_files(path: Union[str, Path], patterns: Sequence[str]) -> List[Path]:
    """`path` itself if it is a file, else the files under it matching any glob
    pattern (recursive, sorted). Raises CorpusFormatError when nothing is found."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise CorpusFormatError(path, None, "the input does not exist.", "a file or a directory of corpus files.")
    files = sorted({f for pattern in patterns for f in path.rglob(pattern) if f.is_file()})
    if not files:
        raise CorpusFormatError(path, None, "no corpus files found in this directory.", f"files matching {', '.join(patterns)}.")
    return files


def save_docbin(docs: Iterable[Doc], output: Union[str, Path]) -> Path:
    """Write Docs to a .spacy DocBin with user data (relations, questions, doc ids), creating folders."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output)
    return output


install_doc_id()
