"""Relations on a Doc: `doc._.relations`, documented, serializable.

The stored form is plain data in `doc._.relation_data` (a list of
`[head_start, head_end, tail_start, tail_end, label, score]` token offsets), so it
survives `DocBin(store_user_data=True)` and `Doc.to_disk`. `doc._.relations` is a
read-only view of it as `Relation(head: Span, tail: Span, label, score)` tuples;
write with `set_relations`. `relation_rows(doc)` gives rows for a table.

Used by the corpora readers (gold relations: DDI-2013, ChemProt, BC5CDR CID) and
by the `electramed_relation_extractor` pipe (predicted relations).
"""
from typing import Dict, Iterable, List, NamedTuple

from spacy.tokens import Doc, Span

from ..errors import ElectraMedError, Errors

RELATION_DATA = "relation_data"


class Relation(NamedTuple):
    head: Span
    tail: Span
    label: str
    score: float = 1.0


def _get_relations(doc: Doc) -> List[Relation]:
    """The stored relations; a head or tail that is one of `doc.ents` is that entity (label and kb id kept)."""
    data = doc._.get(RELATION_DATA) or []
    if not data:
        return []
    ents = {(e.start, e.end): e for e in doc.ents}

    def span(start: int, end: int) -> Span:
        return ents.get((start, end)) or doc[start:end]

    return [Relation(span(hs, he), span(ts, te), label, float(score)) for hs, he, ts, te, label, score in data]


def install_extensions() -> None:
    """Register `doc._.relation_data` and `doc._.relations` once (idempotent, never force)."""
    if not Doc.has_extension(RELATION_DATA):
        Doc.set_extension(RELATION_DATA, default=None)
    if not Doc.has_extension("relations"):
        Doc.set_extension("relations", getter=_get_relations)


def set_relations(doc: Doc, relations: Iterable[Relation]) -> None:
    """Replace the relations of `doc` (heads and tails must be Spans of `doc`)."""
    install_extensions()
    data = []
    for rel in relations:
        for span in (rel.head, rel.tail):
            if span.doc is not doc:
                raise ElectraMedError(Errors.E040.format(text=span.text))
        data.append([rel.head.start, rel.head.end, rel.tail.start, rel.tail.end, str(rel.label), float(rel.score)])
    doc._.set(RELATION_DATA, data)


def relation_rows(doc: Doc) -> List[Dict[str, object]]:
    """One dict per relation, ready for a table or `pandas.DataFrame`."""
    install_extensions()
    return [
        {
            "head": r.head.text, "head_label": r.head.label_, "head_start_char": r.head.start_char,
            "tail": r.tail.text, "tail_label": r.tail.label_, "tail_start_char": r.tail.start_char,
            "label": r.label, "score": round(r.score, 4),
        }
        for r in doc._.relations
    ]


install_extensions()
