"""Entities and relations of a Doc as HTML, with displaCy in manual mode.

For relation output of the `electramed_relation_extractor` pipe (DDI-2013 and
ChemProt relations as evaluated for ELECTRAMed, arXiv:2104.09585). Per Doc the
page draws each sentence once: a sentence holding a relation as an arc diagram
(displaCy "dep" style) whose words are its tokens with each entity merged into
one word tagged with its label and whose curved arcs are the relations (head ->
tail, labelled with the score, words spaced for the longest label); runs of
sentences without relations as highlighted entities (displaCy "ent" style).
Relations across sentences get one more diagram of the whole text. Then a table
of `relation_rows(doc)`.
"""
import html
from typing import Dict, Iterable, List, Union

from spacy import displacy
from spacy.tokens import Doc, Span

from .relations import install_extensions, relation_rows


def _ent_data(doc: Doc) -> Dict:
    return {
        "text": doc.text,
        "ents": [{"start": e.start_char, "end": e.end_char, "label": e.label_} for e in doc.ents],
        "title": None,
    }


def _arc_data(region: Span, relations) -> Dict:
    """displaCy dep manual data: entity spans merged into single words."""
    ents = {}
    for span in [r.head for r in relations] + [r.tail for r in relations] + list(region.ents):
        if region.start <= span.start and span.end <= region.end:
            ents.setdefault(span.start, span)
    words: List[Dict] = []
    word_of: Dict[int, int] = {}
    i = region.start
    while i < region.end:
        span = ents.get(i)
        if span is not None and span.end <= region.end:
            word_of[span.start] = len(words)
            words.append({"text": span.text, "tag": span.label_})
            i = span.end
        else:
            token = region.doc[i]
            if not token.is_space:
                word_of[i] = len(words)
                words.append({"text": token.text, "tag": ""})
            i += 1
    arcs = []
    for r in relations:
        h, t = word_of.get(r.head.start), word_of.get(r.tail.start)
        if h is None or t is None or h == t:
            continue
        start, end = min(h, t), max(h, t)
        arcs.append({"start": start, "end": end, "label": f"{r.label} {r.score:.2f}", "dir": "right" if h < t else "left"})
    return {"words": words, "arcs": arcs}


def _arcs(data: Dict) -> str:
    """An arc diagram whose arcs and labels do not touch: curved arcs (one level per nesting depth, each
    level higher by half the word distance) and words spaced for the longest label or word."""
    longest = max([len(w["text"]) for w in data["words"]] + [len(a["label"]) for a in data["arcs"]] + [8])
    distance = max(100, 8 * longest + 30)  # ~8 px a character at displaCy's default font size
    return displacy.render(data, style="dep", manual=True, page=False, jupyter=False,
                           options={"compact": False, "distance": distance, "offset_x": 60, "word_spacing": 40})


def render_relations(docs: Union[Doc, Iterable[Doc]], *, page: bool = True, max_rows: int = 200) -> str:
    """HTML for the entities and relations (doc._.relations) of one or more Docs."""
    install_extensions()
    docs = [docs] if isinstance(docs, Doc) else list(docs)
    parts = []
    for n, doc in enumerate(docs):
        parts.append(f"<h2>Document {n + 1}</h2>")
        rels = list(doc._.relations)
        regions = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        pending: List[Span] = []  # consecutive sentences without relations, drawn as one entity view

        def flush() -> None:
            if pending:
                parts.append(displacy.render(_ent_data(doc[pending[0].start:pending[-1].end].as_doc()), style="ent",
                                             manual=True, page=False, jupyter=False))
                pending.clear()

        for region in regions:
            inside = [r for r in rels if region.start <= min(r.head.start, r.tail.start) and max(r.head.end, r.tail.end) <= region.end]
            if inside:
                flush()
                parts.append(_arcs(_arc_data(region, inside)))
            else:
                pending.append(region)
        flush()
        crossing = [r for r in rels if not any(
            reg.start <= min(r.head.start, r.tail.start) and max(r.head.end, r.tail.end) <= reg.end for reg in regions)]
        if crossing:  # relations across a sentence boundary: the whole text once more, with their arcs
            parts.append("<p>Relations across sentences:</p>")
            parts.append(_arcs(_arc_data(doc[:], crossing)))
        rows = relation_rows(doc)
        if rows:
            head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows[:max_rows]
            )
            parts.append(f'<table class="electramed-relations" border="1" style="margin-top: 1em"><tr>{head}</tr>{body}</table>')
        else:
            parts.append("<p>No relations.</p>")
    body = "\n".join(parts)
    if not page:
        return body
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>electramed relations</title></head>'
        f'<body style="font-family: sans-serif; margin: 2em">{body}</body></html>'
    )
