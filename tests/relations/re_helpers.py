"""Helpers for the relation tests: a tiny pipeline and hand-made gold Docs."""
from pathlib import Path
from typing import List, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from electramed_spacy.doc.relations import Relation, set_relations

RE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "re"

# (text, [(mention, label)], [(head index, tail index, relation label)])
TRAIN_DATA = [
    ("Ketoconazole increases the plasma concentration of midazolam.",
     [("Ketoconazole", "drug"), ("midazolam", "drug")], [(0, 1, "mechanism")]),
    ("Naloxone reverses the antihypertensive effect of clonidine.",
     [("Naloxone", "drug"), ("clonidine", "drug")], [(0, 1, "effect")]),
    ("Warfarin and aspirin were given together without problems.",
     [("Warfarin", "drug"), ("aspirin", "drug")], []),
    ("Patients taking lithium should avoid diuretics.",
     [("lithium", "drug"), ("diuretics", "group")], [(0, 1, "advise")]),
]


def make_gold(nlp: Language, text: str, ents: Sequence[Tuple[str, str]], rels: Sequence[Tuple[int, int, str]]) -> Doc:
    doc = nlp.make_doc(text)
    spans = []
    for mention, label in ents:
        start = text.index(mention)
        spans.append(doc.char_span(start, start + len(mention), label=label))
    doc.ents = spans
    set_relations(doc, [Relation(spans[h], spans[t], label) for h, t, label in rels])
    return doc


def tiny_nlp(model_path: Path, *, window: int = 32, stride: int = 24, **rel_config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "electramed.Transformer.v1", "name": str(model_path),
        "get_spans": {"@misc": "electramed.strided_spans.v1", "window": window, "stride": stride},
    }})
    config = {"model": {"hidden_width": 32}}
    for key, value in rel_config.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    nlp.add_pipe("electramed_relation_extractor", name="relation_extractor", config=config)
    return nlp


def rel_tuples(doc: Doc) -> List[Tuple[str, str, str]]:
    return sorted((r.head.text, r.tail.text, r.label) for r in doc._.relations)
