"""Questions and answers on a Doc: the QA Doc contract, documented and serializable.

ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) answers BioASQ factoid questions by
extracting a span of a snippet. One Doc is one (question, context) pair:

- `doc.text` is the context;
- `doc._.question` (str) is the question and `doc._.qa_id` (str or None) names the
  pair, `<questionid>_<nnn>` for BioASQ; both live in `doc.user_data`, so they survive
  `DocBin(store_user_data=True)`, `Doc.copy()` and multiprocessing in `nlp.pipe`;
- `doc.spans[ANSWERS_KEY]` holds the answers (label `ANSWER_LABEL`): gold ones in
  training data, predicted ones (best first, scores in `attrs["scores"]`) after the
  `electramed_qa` pipe.

`install_qa_extensions` registers the extensions once (idempotent, never `force=True`);
importing this module calls it. `carry_question` copies the question from an
Example's reference to its predicted Doc; `question_key` groups the pairs of a question.

Used by the BioASQ readers (`corpora/bioasq.py`), the QA pipe and its scorer
(`pipeline/qa.py`, `pipeline/qa_metrics.py`) and the QA model (`ml/qa_model.py`).
Like `relations.py`, this module depends on spaCy's `Doc` only.
"""
import re
from typing import Optional, Union

from spacy.tokens import Doc

ANSWERS_KEY = "answers"
ANSWER_LABEL = "ANSWER"
QA_EXTENSIONS = ("question", "qa_id")
PAIR_ID_SUFFIX = re.compile(r"_\d+$")


def install_qa_extensions() -> None:
    """Register `Doc._.question` and `Doc._.qa_id` once (never `force=True`)."""
    for name in QA_EXTENSIONS:
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


def question_key(doc_or_id: Union[Doc, str, None], question: Optional[str] = None) -> str:
    """The BioASQ question a pair belongs to: the id before its `_<nnn>` snippet suffix.

    Without an id, the question text itself identifies the question.
    """
    if isinstance(doc_or_id, Doc):
        question = doc_or_id._.question
        doc_or_id = doc_or_id._.qa_id
    if doc_or_id:
        return PAIR_ID_SUFFIX.sub("", str(doc_or_id))
    return (question or "").strip()


def carry_question(example) -> None:
    """Copy `_.question`/`_.qa_id` from the reference Doc to the predicted one (they are inputs, not gold)."""
    for attr in QA_EXTENSIONS:
        if getattr(example.predicted._, attr) is None:
            setattr(example.predicted._, attr, getattr(example.reference._, attr))


install_qa_extensions()
