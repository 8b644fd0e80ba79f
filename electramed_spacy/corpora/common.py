"""Shared machinery for the corpus readers: file:line errors, conversion
summaries, and building a Doc from text + character-offset mentions.

Readers know only Docs: they return `Doc` objects with `doc.ents`, the span group
`doc.spans["mentions"]` (every mention, nested/overlapping ones included) and,
where the corpus has them, relations (`electramed_spacy.doc.relations`).

Tokenisation policy: the text is tokenised with the pipeline's tokenizer, then any
token that a mention boundary falls inside is split at that boundary, so no
mention is ever lost to tokenisation (splits are counted in the summary).
Overlap policy for `doc.ents` (which cannot overlap): mentions are taken by start,
longest first; a mention overlapping one already taken is kept only in
`doc.spans["mentions"]` and counted as `overlap`.

Reading policy, shared by every reader so they fail alike:

* text comes through `read_text` / `read_lines`: UTF-8, a leading byte-order mark
  (BOM) removed, and an undecodable byte reported as file:line (`CorpusFormatError`);
  JSON through `parse_json` (file:line for syntax errors);
* tolerant where safe, strict where not: a mention whose claimed text differs from
  the document text at its offsets only in whitespace or a BOM is accepted, the
  span trimmed to the document's non-whitespace text, and counted as a note
  (`NOTE_WHITESPACE`; the NCBI-disease training file has mention texts with
  trailing spaces); any other difference is an error (or a counted drop).
"""
import io
import json
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span, SpanGroup
from wasabi import msg

from ..errors import ElectraMedError
from .policies import DEPRECATED_DISCONTINUOUS, DISCONTINUOUS, ON_ERROR  # noqa: F401 (re-exported)

MENTIONS_KEY = "mentions"
BOM = "\ufeff"
NOTE_WHITESPACE = "mention text differs from the document only in whitespace/BOM (span trimmed)"
EXPECTED_UTF8 = "a UTF-8 text file (re-encode it, e.g. `iconv -f latin1 -t utf-8 in > out`)."


class CorpusFormatError(ElectraMedError):
    """Malformed input: says which file and line, what was found and what was expected.

    The one error type the corpus readers raise for bad input (a ValueError, via
    ElectraMedError); invalid options raise a plain ValueError.
    """

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
        if not self.documents:
            msg.warn(empty_warning(self.source))

    def drops_line(self) -> str:
        """The drops on one line, most frequent first: 'reason (n), ...'."""
        return ", ".join(f"{reason} ({n})" for reason, n in self.dropped.most_common())


def empty_warning(source: str) -> str:
    where = source or "the input"
    return f"0 documents read from {where}: the input is empty or holds nothing in the expected format."


def _decode_error(path: Union[str, Path], data: bytes, err: UnicodeDecodeError) -> CorpusFormatError:
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    return CorpusFormatError(
        path, line, f"byte 0x{data[err.start]:02x} at column {column} (byte offset {err.start}) is not UTF-8 ({err.reason}).",
        EXPECTED_UTF8,
    )


def strip_bom(text: str) -> Tuple[str, bool]:
    """(text without a leading byte-order mark, whether there was one)."""
    return (text[1:], True) if text.startswith(BOM) else (text, False)


def read_text_bom(path: Union[str, Path], *, newline: Optional[str] = None) -> Tuple[str, bool]:
    """A UTF-8 file's text without its leading BOM, and whether it had one.

    `newline` as in `open()`: None translates `\\r\\n`/`\\r` to `\\n`; "" keeps them
    (brat counts them in offsets). An undecodable byte is a CorpusFormatError
    naming file:line and the column.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _decode_error(path, data, err) from None
    if newline is None:
        text = "".join(io.StringIO(text, newline=None))
    return strip_bom(text)


def read_text(path: Union[str, Path], *, newline: Optional[str] = None) -> str:
    """`read_text_bom` without the flag: the text every reader works on."""
    return read_text_bom(path, newline=newline)[0]


def read_lines(path: Union[str, Path], *, newline: Optional[str] = None) -> Iterator[Tuple[int, str]]:
    """(line number from 1, line with its line ending) of a UTF-8 file, BOM removed."""
    yield from enumerate(io.StringIO(read_text(path, newline=newline), newline=newline), start=1)


def parse_json(text: str, path: Union[str, Path], line: Optional[int] = None) -> Any:
    """json.loads with errors as CorpusFormatError: file:line of the syntax error
    (`line`: the line of a JSON-lines record, whose errors are reported there)."""
    expected = "one JSON object per line." if line is not None else "a JSON file."
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = line if line is not None else err.lineno
        raise CorpusFormatError(path, where, f"not valid JSON ({err.msg}, column {err.colno}).", expected) from None
    except (ValueError, RecursionError) as err:  # e.g. nesting too deep, an integer of 5000 digits
        raise CorpusFormatError(path, line, f"JSON that cannot be read ({type(err).__name__}: {str(err)[:80]}).", expected) from None


def as_offset(value: str, *, signed: bool = False) -> Optional[int]:
    """The integer in `value` (ASCII digits only, so '²' is not one), else None."""
    digits = value[1:] if signed and value.startswith("-") else value
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(value)


def _squash(text: str) -> str:
    return "".join(text.replace(BOM, " ").split())


def _trim(text: str, start: int, end: int) -> Tuple[int, int]:
    """Offsets moved inwards past whitespace and BOMs."""
    while start < end and (text[start].isspace() or text[start] == BOM):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] == BOM):
        end -= 1
    return start, end


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
    on_error: str = "error",
    where: str = "",
    mention_texts: Optional[Sequence[Optional[str]]] = None,
    mention_where: Optional[Sequence[str]] = None,
    kb_ids: Optional[Sequence[str]] = None,
) -> Tuple[Doc, List[Optional[Span]]]:
    """Build a Doc from `text` and `(start_char, end_char, label)` mentions.

    make_doc: the tokenizer (`nlp.make_doc`). `mention_texts`, when given, are the
    surface strings the corpus claims for each mention; a mismatch with
    `text[start:end]` (or offsets outside the text) raises CorpusFormatError
    (`on_error="error"`) or is counted and dropped (`"count"`).
    A claimed text that differs only in whitespace or a BOM is accepted and
    counted as `NOTE_WHITESPACE` (see the module docstring); every span is trimmed
    to the non-whitespace text it covers.
    `mention_where`, when given, names each mention's source ("file:line") for the
    error message; `kb_ids` sets each mention's `span.kb_id_` (e.g. MeSH ids).
    Returns the Doc and, per input mention, its Span (None if dropped).
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    summary = summary if summary is not None else ConversionSummary()
    valid: List[Optional[Tuple[int, int, str]]] = []
    for i, (start, end, label) in enumerate(mentions):
        claimed = mention_texts[i] if mention_texts is not None else None
        problem = None
        trimmed = _trim(text, start, end) if 0 <= start < end <= len(text) else (0, 0)
        if not (0 <= start < end <= len(text)):
            problem = f"mention offsets {start}-{end} ({label}) fall outside the text of length {len(text)}."
        elif claimed is not None and text[start:end] != claimed:
            if _squash(text[start:end]) != _squash(claimed) or not _squash(claimed):
                problem = f"mention {claimed!r} ({label}) at {start}-{end} does not match the text there: {text[start:end]!r}."
            else:
                summary.notes[NOTE_WHITESPACE] += 1
        if not problem and trimmed[0] >= trimmed[1]:
            problem = f"mention ({label}) at {start}-{end} covers only whitespace."
        if problem:
            if on_error == "error":
                loc = mention_where[i] if mention_where is not None else (where or "<text>")
                raise CorpusFormatError(loc, None, problem, "offsets that index the document text (or use on_error='count').")
            summary.drop("offset mismatch")
            valid.append(None)
            continue
        valid.append((trimmed[0], trimmed[1], label))
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


def discontinuous_policy(value: str) -> str:
    """`value` checked against DISCONTINUOUS; an old name is mapped to its new one with a DeprecationWarning."""
    if value in DEPRECATED_DISCONTINUOUS:
        new = DEPRECATED_DISCONTINUOUS[value]
        warnings.warn(f"discontinuous={value!r} is deprecated and will be removed in the next release: use {new!r} (same policy).",
                      DeprecationWarning, stacklevel=3)
        return new
    if value not in DISCONTINUOUS:
        raise ValueError(f"discontinuous must be one of {DISCONTINUOUS}, got {value!r}.")
    return value


def split_dev(docs: Sequence[Doc], fraction: float, *, seed: int, key: Optional[Callable[[Doc], Hashable]] = None) -> Tuple[List[Doc], List[Doc]]:
    """(train, dev): a seeded random `fraction` of the groups goes to dev, order kept on both sides.

    A group is one Doc, or with `key` every Doc of the same key (BioASQ: all snippets of a question), so no
    group has Docs on both sides. The same Docs, fraction and seed always give the same split.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {fraction}.")
    keys = [i if key is None else key(doc) for i, doc in enumerate(docs)]
    groups = list(dict.fromkeys(keys))  # first-appearance order
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    dev_groups = {groups[i] for i in order[:int(round(len(groups) * fraction))]}
    return [d for d, k in zip(docs, keys) if k not in dev_groups], [d for d, k in zip(docs, keys) if k in dev_groups]


def parse_label_map(text: str) -> Dict[str, str]:
    """`"A=B,C=B"` -> {"A": "B", "C": "B"} (e.g. NCBI-disease's four disease types merged to Disease)."""
    mapping: Dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        old, sep, new = (x.strip() for x in item.partition("="))
        if not sep or not old or not new or "=" in new or ";" in item:
            raise ValueError(f"--label-map: {item!r} is not FROM=TO (pairs are separated by commas); write e.g. "
                             "--label-map SpecificDisease=Disease,Modifier=Disease.")
        if mapping.get(old, new) != new:
            raise ValueError(f"--label-map maps {old!r} twice ({mapping[old]!r} and {new!r}); give each label one target.")
        mapping[old] = new
    if not mapping:
        raise ValueError("--label-map is empty; write e.g. --label-map SpecificDisease=Disease,Modifier=Disease.")
    return mapping


def map_labels(doc: Doc, mapping: Dict[str, str]) -> Counter:
    """Relabel `doc.ents` and every span group in place (offsets, kb ids and group attrs unchanged);
    returns how many mentions (distinct offsets) each old label renamed. Relations refer to token offsets,
    so they are unaffected."""
    renamed = set()

    def relabel(spans: Iterable[Span]) -> List[Span]:
        out = []
        for span in spans:
            new = mapping.get(span.label_)
            if new is not None:
                renamed.add((span.start, span.end, span.label_))
                span = Span(doc, span.start, span.end, label=new, kb_id=span.kb_id)
            out.append(span)
        return out

    for name, group in list(doc.spans.items()):
        if any(span.label_ in mapping for span in group):
            doc.spans[name] = SpanGroup(doc, name=name, attrs=dict(group.attrs), spans=relabel(group))
    if any(ent.label_ in mapping for ent in doc.ents):
        doc.ents = relabel(doc.ents)
    return Counter(label for _, _, label in renamed)


def save_docbin(docs: Iterable[Doc], output: Union[str, Path]) -> Path:
    """Write Docs to a .spacy DocBin with user data (relations, questions, doc ids), creating folders."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output)
    return output


install_doc_id()
