"""electramed.rel_scorer.v1 on hand-computed examples."""
import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from electramed_spacy.doc.relations import Relation, set_relations
from electramed_spacy.pipeline.relation_extractor import score_relations

NLP = spacy.blank("en")
TEXT = "Aspirin and warfarin and heparin and lithium interact."


def _doc(rels, text=TEXT):
    doc = NLP.make_doc(text)
    doc.ents = [doc.char_span(text.index(w), text.index(w) + len(w), label="drug") for w in ("Aspirin", "warfarin", "heparin", "lithium")]
    e = doc.ents
    set_relations(doc, [Relation(e[h], e[t], label) for h, t, label in rels])
    return doc


def test_hand_computed_micro_and_per_label():
    gold = _doc([(0, 1, "effect"), (0, 2, "effect"), (2, 3, "mechanism"), (1, 3, "advise")])
    # right: (0,1,effect), (2,3,mechanism); wrong label: (0,2) as mechanism; spurious: (1,2,int); missed: (1,3,advise)
    pred = _doc([(0, 1, "effect"), (0, 2, "mechanism"), (2, 3, "mechanism"), (1, 2, "int")])
    scores = score_relations([Example(pred, gold)])
    # tp=2 fp=2 fn=2 -> P = R = F = 0.5
    assert scores["rel_micro_p"] == pytest.approx(0.5)
    assert scores["rel_micro_r"] == pytest.approx(0.5)
    assert scores["rel_micro_f"] == pytest.approx(0.5)
    per = scores["rel_f_per_type"]
    # effect: tp 1, fp 0, fn 1 -> P 1, R .5, F 2/3
    assert per["effect"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    # mechanism: tp 1, fp 1, fn 0 -> P .5, R 1, F 2/3
    assert per["mechanism"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert per["advise"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})
    assert per["int"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})


def test_no_relation_excluded_and_direction():
    gold = _doc([(0, 1, "effect")])
    pred = _doc([(1, 0, "effect"), (2, 3, "NONE")])
    directed = score_relations([Example(pred, gold)])
    assert directed["rel_micro_f"] == 0.0 and directed["rel_micro_p"] == 0.0
    symmetric = score_relations([Example(pred, gold)], symmetric=True)
    assert symmetric["rel_micro_p"] == symmetric["rel_micro_r"] == 1.0  # NONE never counts


def test_micro_over_several_docs_and_tokenisation_independent():
    gold1, gold2 = _doc([(0, 1, "effect")]), _doc([(2, 3, "advise")])
    pred1 = _doc([(0, 1, "effect")])
    # a differently tokenised prediction with the same character offsets is still right
    retok = NLP.make_doc(TEXT)
    with retok.retokenize() as r:
        r.split(retok[0], ["Asp", "irin"], heads=[(retok[0], 1), (retok[0], 0)])
    retok.ents = [retok.char_span(TEXT.index(w), TEXT.index(w) + len(w), label="drug") for w in ("Aspirin", "warfarin", "heparin", "lithium")]
    set_relations(retok, [Relation(retok.ents[2], retok.ents[3], "advise")])
    scores = score_relations([Example(pred1, gold1), Example(retok, gold2)])
    assert scores["rel_micro_f"] == 1.0


def test_empty_examples_and_registry():
    scores = score_relations([Example(_doc([]), _doc([]))])
    assert scores["rel_micro_f"] == 0.0 and scores["rel_f_per_type"] == {}
    assert registry.scorers.get("electramed.rel_scorer.v1")() is score_relations
