"""BioASQ factoid evaluation: per-question aggregation, strict/lenient accuracy and MRR.

BioASQ Task B (Tsatsaronis et al. 2015) scores a factoid question by a ranked list
of at most 5 answers: strict accuracy = the first answer is right, lenient
accuracy = a right answer is among the 5, MRR = mean of 1/rank of the first right
answer (0 when none of the 5 is right). "Right" means equal, case-insensitively,
to one of the golden synonyms. ELECTRAMed (arXiv:2104.09585) and BioBERT report
these three numbers per 7b test batch.

A question's answers come from several snippets (one Doc each). As in BioBERT's
post-processing, the snippet answers are pooled and each distinct answer string
(after normalisation) keeps its best score; the top 5 by that score form the list.

Normalisation: lowercase, whitespace collapsed, surrounding whitespace and a
final period removed. Nothing else (no article or punctuation stripping), which
keeps it close to the official case-insensitive exact match.

`electramed.qa_scorer.v1` exposes these as `qa_strict_acc`, `qa_lenient_acc` and
`qa_mrr` to `nlp.evaluate` and `spacy benchmark accuracy`, with the golden
synonyms taken from the reference Docs' answer spans of the same question.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from spacy.training import Example
from spacy.util import registry

from ..doc.qa import ANSWERS_KEY, install_qa_extensions, question_key

TOP_N = 5
SCORE_KEYS = ("qa_strict_acc", "qa_lenient_acc", "qa_mrr")
_SPACE = re.compile(r"\s+")


def normalize_answer(text: str) -> str:
    text = _SPACE.sub(" ", text).strip().lower()
    return text[:-1].rstrip() if text.endswith(".") else text


def aggregate_answers(candidates: Iterable[Tuple[str, float]], top_n: int = TOP_N) -> List[str]:
    """Pool (answer text, score) pairs: max score per normalised text, best `top_n` texts.

    Ties keep first-seen order. The returned surface form is that of the best-scored mention.
    """
    best: "OrderedDict[str, Tuple[float, str]]" = OrderedDict()
    for text, score in candidates:
        key = normalize_answer(text)
        if not key:
            continue
        if key not in best or score > best[key][0]:
            best[key] = (float(score), text.strip())
    ranked = sorted(best.values(), key=lambda pair: -pair[0])  # stable: ties stay in first-seen order
    return [text for _, text in ranked[:top_n]]


def score_question(ranked: Sequence[str], synonyms: Iterable[str], top_n: int = TOP_N) -> Tuple[float, float, float]:
    """(strict, lenient, reciprocal rank) for one question."""
    gold = {normalize_answer(s) for s in synonyms if normalize_answer(s)}
    for rank, answer in enumerate(ranked[:top_n], start=1):
        if normalize_answer(answer) in gold:
            return float(rank == 1), 1.0, 1.0 / rank
    return 0.0, 0.0, 0.0


def bioasq_factoid_scores(
    predictions: Mapping[str, Sequence[str]], golden: Mapping[str, Iterable[str]], top_n: int = TOP_N,
) -> Dict[str, Optional[float]]:
    """Mean strict/lenient/MRR over the golden questions.

    A golden question with no prediction counts as wrong (BioASQ's denominator is
    the number of questions asked). Returns None scores when `golden` is empty.
    """
    if not golden:
        return {key: None for key in SCORE_KEYS} | {"qa_questions": 0}
    totals = [0.0, 0.0, 0.0]
    for qid, synonyms in golden.items():
        for i, value in enumerate(score_question(predictions.get(qid, []), synonyms, top_n)):
            totals[i] += value
    n = len(golden)
    return {key: total / n for key, total in zip(SCORE_KEYS, totals)} | {"qa_questions": n}


def predicted_candidates(doc, spans_key: str = ANSWERS_KEY) -> List[Tuple[str, float]]:
    """(text, score) for the answers the QA pipe wrote on `doc`."""
    group = doc.spans.get(spans_key)
    if group is None:
        return []
    scores = list(group.attrs.get("scores", [])) if hasattr(group, "attrs") else []
    if len(scores) != len(group):
        # no scores: keep the group's order
        scores = [-float(i) for i in range(len(group))]
    return [(span.text, float(score)) for span, score in zip(group, scores)]


def aggregate_docs(docs: Iterable, spans_key: str = ANSWERS_KEY, top_n: int = TOP_N) -> Dict[str, List[str]]:
    """Per question key (pair id before `_nnn`): the pooled top-`top_n` answers."""
    install_qa_extensions()
    pooled: Dict[str, List[Tuple[str, float]]] = OrderedDict()
    for doc in docs:
        pooled.setdefault(question_key(doc), []).extend(predicted_candidates(doc, spans_key))
    return {qid: aggregate_answers(cands, top_n) for qid, cands in pooled.items()}


def score_qa_examples(examples: Iterable[Example], *, spans_key: str = ANSWERS_KEY, top_n: int = TOP_N, **kwargs) -> Dict[str, Optional[float]]:
    """BioASQ measures over Examples: gold synonyms are the reference answer texts of each question."""
    install_qa_extensions()
    examples = list(examples)
    golden: Dict[str, set] = OrderedDict()
    for eg in examples:
        key = question_key(eg.reference._.qa_id or eg.predicted._.qa_id, eg.reference._.question or eg.predicted._.question)
        golden.setdefault(key, set()).update(span.text for span in eg.reference.spans.get(spans_key, []))
    # questions with no gold answer anywhere cannot be scored as factoids
    golden = {qid: syns for qid, syns in golden.items() if syns}
    pooled: Dict[str, List[Tuple[str, float]]] = OrderedDict()
    for eg in examples:
        key = question_key(eg.reference._.qa_id or eg.predicted._.qa_id, eg.reference._.question or eg.predicted._.question)
        pooled.setdefault(key, []).extend(predicted_candidates(eg.predicted, spans_key))
    predictions = {qid: aggregate_answers(c, top_n) for qid, c in pooled.items()}
    return bioasq_factoid_scores(predictions, golden, top_n)


@registry.scorers("electramed.qa_scorer.v1")
def make_qa_scorer(top_n: int = TOP_N) -> Callable[..., Dict[str, Optional[float]]]:
    """Scorer for `electramed_qa`: qa_strict_acc, qa_lenient_acc, qa_mrr (BioASQ factoid)."""
    def score(examples: Iterable[Example], **kwargs) -> Dict[str, Optional[float]]:
        kwargs.setdefault("top_n", top_n)
        return score_qa_examples(examples, **kwargs)

    return score
