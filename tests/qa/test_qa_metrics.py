"""BioASQ factoid measures on hand-computed examples (strict, lenient, MRR over 5; pooling over snippets)."""
import pytest
import spacy
from spacy.tokens import SpanGroup
from spacy.training import Example

from electramed_spacy.corpora.bioasq import make_qa_doc
from electramed_spacy.pipeline.qa_metrics import (
    aggregate_answers,
    aggregate_docs,
    bioasq_factoid_scores,
    make_qa_scorer,
    normalize_answer,
    score_question,
)


def test_normalize_answer():
    assert normalize_answer("  PD-L1   Status. ") == "pd-l1 status"
    assert normalize_answer("Bazex syndrome") == "bazex syndrome"


def test_aggregate_keeps_max_score_per_normalised_answer():
    # "Naloxone" from 2 snippets: 0.2 and 0.9 -> 0.9; "naloxone " is the same answer.
    cands = [("Naloxone", 0.2), ("clonidine", 0.5), ("naloxone ", 0.9), ("rats", 0.1), ("a", 0.05),
             ("b", 0.04), ("c", 0.03)]
    assert aggregate_answers(cands) == ["naloxone", "clonidine", "rats", "a", "b"]
    assert aggregate_answers([("x", 1.0), ("", 2.0)], top_n=5) == ["x"]


def test_score_question_hand_computed():
    assert score_question(["Naloxone", "b"], [["naloxone"][0], "narcan"]) == (1.0, 1.0, 1.0)
    assert score_question(["a", "b", "NARCAN"], ["naloxone", "narcan"]) == (0.0, 1.0, pytest.approx(1 / 3))
    assert score_question(["a", "b", "c", "d", "e", "narcan"], ["narcan"]) == (0.0, 0.0, 0.0)  # rank 6 does not count
    assert score_question([], ["narcan"]) == (0.0, 0.0, 0.0)


def test_bioasq_scores_hand_computed():
    predictions = {"q1": ["x", "y"], "q2": ["a", "b", "gold2"], "q3": ["n", "o"]}
    golden = {"q1": ["X"], "q2": ["Gold2", "syn"], "q3": ["zzz"], "q4": ["never predicted"]}
    scores = bioasq_factoid_scores(predictions, golden)
    assert scores["qa_strict_acc"] == pytest.approx(1 / 4)
    assert scores["qa_lenient_acc"] == pytest.approx(2 / 4)
    assert scores["qa_mrr"] == pytest.approx((1 + 1 / 3) / 4)
    assert scores["qa_questions"] == 4
    assert bioasq_factoid_scores({}, {})["qa_mrr"] is None


def _answered(nlp, question, context, qa_id, answers, gold=None):
    """A predicted Doc with scored answers [(text, score)] and its reference with gold texts."""
    doc, _ = make_qa_doc(nlp.make_doc, question, context, qa_id=qa_id)
    spans = [doc.char_span(context.index(t), context.index(t) + len(t)) for t, _ in answers]
    doc.spans["answers"] = SpanGroup(doc, name="answers", spans=spans, attrs={"scores": [s for _, s in answers]})
    gold_offsets = [(context.index(g), context.index(g) + len(g)) for g in (gold or [])]
    ref, _ = make_qa_doc(nlp.make_doc, question, context, gold_offsets, qa_id=qa_id)
    return doc, ref


def test_pooling_over_snippets_and_registered_scorer():
    nlp = spacy.blank("en")
    # question A: snippet 1 ranks "clonidine" first (0.6) but snippet 2 is surer of "naloxone" (0.8)
    a1 = _answered(nlp, "Q A?", "naloxone blocks clonidine", "qa_001", [("clonidine", 0.6), ("naloxone", 0.3)], ["naloxone"])
    a2 = _answered(nlp, "Q A?", "naloxone given iv", "qa_002", [("naloxone", 0.8)], ["naloxone"])
    # question B: right answer second
    b1 = _answered(nlp, "Q B?", "lithium causes hypothyroidism", "qb_001", [("lithium", 0.9), ("hypothyroidism", 0.1)], ["hypothyroidism"])
    assert aggregate_docs([a1[0], a2[0], b1[0]]) == {"qa": ["naloxone", "clonidine"], "qb": ["lithium", "hypothyroidism"]}
    scores = make_qa_scorer()([Example(p, r) for p, r in (a1, a2, b1)])
    assert scores["qa_strict_acc"] == pytest.approx(0.5)
    assert scores["qa_lenient_acc"] == pytest.approx(1.0)
    assert scores["qa_mrr"] == pytest.approx(0.75)
