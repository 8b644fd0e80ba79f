"""Extractive question answering as a spaCy pipe (`electramed_qa`), for BioASQ factoid questions.

ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) answers BioASQ factoid questions
by extracting a span of a snippet, as BioBERT does: a question+context
cross-encoder with start/end logits (ELECTRA, arXiv:2003.10555, SQuAD set-up).

Usage::

    import spacy
    from electramed_spacy.pipeline.qa import ask

    nlp = spacy.load("en_electramed_qa")
    doc = ask(nlp, "What does pembrolizumab's companion test assess?", abstract)
    answers = doc.spans["answers"]
    for span, score in zip(answers, answers.attrs["scores"]):
        print(span.text, span.start_char, round(score, 3))

    # many pairs: set the question on each Doc, then batch through nlp.pipe
    docs = [nlp.make_doc(text) for text in abstracts]
    for doc, q in zip(docs, questions):
        doc._.question = q
    for doc in nlp.pipe(docs, batch_size=32):
        print(doc._.question, [s.text for s in doc.spans["answers"]])

Design decisions, and why:

- **The question lives on the Doc, in `doc._.question`** (a str; `doc._.qa_id`
  optionally names the pair, `<questionid>_<nnn>` for BioASQ; the contract is
  `electramed_spacy/doc/qa.py`, shared with the readers and the scorer). The Doc is the
  context: the answers must be Spans of it, so the context is what gets
  tokenised and the question is an input attribute next to it, like a
  `user_data` hint. It lives in `doc.user_data`, so it survives DocBin
  (`store_user_data=True`), `Doc.copy()` and multiprocessing in `nlp.pipe`, and
  many (question, context) pairs batch through `nlp.pipe` with no special API.
  Alternatives rejected: the question in component settings (one question per
  pipeline call, no batching), `nlp.pipe(as_tuples=True)` contexts (the
  component never sees them), or question+context concatenated in one Doc
  (answers could come out of the question, offsets shift).
  `ask(nlp, question, text)` and `ask_pipe(nlp, pairs)` are thin helpers.
- **Answers go to `doc.spans["answers"]`** (label ANSWER), best first, at most
  `top_k`; `group.attrs["scores"]` holds each answer's probability (softmax over
  the Doc's candidate spans and the no-answer option, so scores compare across
  the snippets of a question), `attrs["no_answer_score"]` the no-answer
  probability and `attrs["status"]` one of "ok", "no answer", "empty question",
  "empty context". Span groups and their attrs serialise with DocBin.
- **The pipe owns its encoder instead of listening to the pipeline's shared
  transformer.** Extractive QA needs the question and the context in the *same*
  encoder pass (every context token attends to the question); a shared
  `TransformerListener` only offers context-only vectors computed once per Doc,
  and question-agnostic context vectors plus a small head lose most of the
  accuracy (the SQuAD literature's cross- vs. bi-encoder gap). So the encoder
  pass is per (question, window) anyway, and the weights are fine-tuned for QA.
  The cost is a second copy of the encoder in a pipeline that also has NER;
  `en_electramed_qa` is a QA-only pipeline, so it has one.
- **Long contexts** are split into windows of `max_length` wordpieces that overlap
  by `overlap`; candidate answers are pooled over windows (best score per
  character span), so an answer cut by one window's edge is found in the next.
  Work per Doc is bounded: the number of windows grows linearly with the context,
  each answer is at most `max_answer_tokens` wordpieces, decoding tries
  `n_best` (20) starts and ends per window and keeps a pool of at most
  4 * `top_k` * `candidates_per_answer` (16 * `top_k`) candidate spans, whatever the number of windows.
- **No answer**: the [CLS] score (lowest over the windows, as in SQuAD 2.0 BERT).
  When `no_answer = true` and it beats the best span, the answer group is empty
  with status "no answer". For BioASQ factoid scoring set `no_answer = false`:
  every factoid question has an answer and the top-5 list should be full.
- **Bad input never raises inside `nlp.pipe`**: a Doc without a question, or with
  an empty context, gets an empty answer group and the status says why; a
  question longer than `max_question_tokens` wordpieces is cut to that length
  (BERT's max_query_length), a lone surrogate in it is read as "?"; a
  non-English context is not detected, it simply gets (poor) answers. `ask`
  raises a clear error for an empty question or text. A context that is not valid
  Unicode (a lone surrogate) fails in spaCy's tokenizer, before the pipe; with
  `electramed.Tokenizer.v1` that is ElectraMedError [E010].
"""
from itertools import islice
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import minibatch
from thinc.api import Config, Model, set_dropout_rate

from ..about import ELECTRAMED_HUB_ID
from ..doc.qa import ANSWER_LABEL, ANSWERS_KEY, carry_question, install_qa_extensions
from ..errors import ElectraMedError, Errors
from ..ml.qa_model import QAOutput, decode_windows, window_targets
from .qa_metrics import make_qa_scorer

DEFAULT_QA_MODEL = Config().from_str(
    f"""
[model]
@architectures = "electramed.QAModel.v1"
name = "{ELECTRAMED_HUB_ID}"
max_length = 384
overlap = 128
max_question_tokens = 64
"""
)["model"]

install_qa_extensions()


@Language.factory(
    "electramed_qa",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_QA_MODEL,
        "spans_key": ANSWERS_KEY,
        "top_k": 5,
        "max_answer_tokens": 30,
        "no_answer": True,
        "n_best": 20,
        "candidates_per_answer": 4,
        "score_batch_size": 32,
        "scorer": {"@scorers": "electramed.qa_scorer.v1"},
    },
    default_score_weights={"qa_mrr": 1.0, "qa_strict_acc": 0.0, "qa_lenient_acc": 0.0},
)
def make_qa(
    nlp: Language, name: str, model: Model, *, spans_key: str, top_k: int, max_answer_tokens: int,
    no_answer: bool, n_best: int, candidates_per_answer: int, score_batch_size: int, scorer: Optional[Callable],
) -> "ExtractiveQA":
    """Extractive QA: top-k answer spans of each Doc for `doc._.question`.

    model: `electramed.QAModel.v1` (its own question+context encoder).
    spans_key: span group that receives the answers (and holds gold answers in training data).
    top_k: answers kept per Doc. max_answer_tokens: longest answer, in wordpieces.
    no_answer: leave the group empty when the no-answer score beats the best span.
    n_best: start and end positions tried per window when decoding (BERT's SQuAD n_best_size, 20).
    candidates_per_answer: candidate spans kept per answer slot (top_k * this), so that
        duplicates (spans that expand to the same tokens) can be dropped and top_k remain.
    score_batch_size: batch size for answering, in `score`, Docs that reached the pipe
        without their question (see `ExtractiveQA.score`).
    """
    return ExtractiveQA(
        nlp.vocab, model, name, spans_key=spans_key, top_k=top_k, max_answer_tokens=max_answer_tokens,
        no_answer=no_answer, n_best=n_best, candidates_per_answer=candidates_per_answer,
        score_batch_size=score_batch_size, scorer=scorer,
    )


def _softmax(x: numpy.ndarray) -> numpy.ndarray:
    e = numpy.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class ExtractiveQA(TrainablePipe):
    """Answers `doc._.question` with spans of the Doc (see the module docstring)."""

    def __init__(
        self, vocab, model: Model, name: str = "electramed_qa", *, spans_key: str = ANSWERS_KEY, top_k: int = 5,
        max_answer_tokens: int = 30, no_answer: bool = True, n_best: int = 20, candidates_per_answer: int = 4,
        score_batch_size: int = 32, scorer: Optional[Callable] = make_qa_scorer(),
    ) -> None:
        if top_k < 1 or max_answer_tokens < 1:
            raise ElectraMedError(Errors.E026.format(top_k=top_k, max_answer_tokens=max_answer_tokens))
        install_qa_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {
            "spans_key": spans_key, "top_k": top_k, "max_answer_tokens": max_answer_tokens, "no_answer": no_answer,
            "n_best": n_best, "candidates_per_answer": candidates_per_answer, "score_batch_size": score_batch_size,
        }

    @property
    def key(self) -> str:
        return str(self.cfg["spans_key"])

    def predict(self, docs: Iterable[Doc]) -> QAOutput:
        """Per-window start/end logits for the batch; the Docs are not changed."""
        return self.model.predict(list(docs))

    def set_annotations(self, docs: Iterable[Doc], output: QAOutput) -> None:
        """Write the top-k answers of each Doc to `doc.spans[spans_key]`."""
        for i, doc in enumerate(docs):
            spans, scores, p_null, status = self._answers(doc, output, i)
            doc.spans[self.key] = SpanGroup(
                doc, name=self.key, spans=spans,
                attrs={"scores": scores, "no_answer_score": p_null, "status": status},
            )

    def _answers(self, doc: Doc, output: QAOutput, i: int):
        top_k = int(self.cfg["top_k"])
        status = output.status[i] if i < len(output.status) else "empty question"
        if status != "ok":
            return [], [], None, status
        cands, null = decode_windows(
            output, i, top_k=top_k, max_answer_tokens=int(self.cfg["max_answer_tokens"]),
            n_best=int(self.cfg["n_best"]), keep=top_k * int(self.cfg["candidates_per_answer"]),
        )
        logits = numpy.asarray([c[2] for c in cands] + [null], dtype="f")
        probs = _softmax(logits)
        p_null = float(probs[-1])
        if self.cfg["no_answer"] and (not cands or null > cands[0][2]):
            return [], [], p_null, "no answer"
        spans, scores, seen = [], [], set()
        for (start_char, end_char, _), prob in zip(cands, probs[:-1]):
            span = doc.char_span(start_char, end_char, label=ANSWER_LABEL, alignment_mode="expand")
            if span is None or (span.start, span.end) in seen:
                continue
            seen.add((span.start, span.end))
            spans.append(span)
            scores.append(float(prob))
            if len(spans) == top_k:
                break
        return spans, scores, p_null, status

    def get_loss(self, examples: Iterable[Example], output: QAOutput) -> Tuple[float, Tuple[numpy.ndarray, numpy.ndarray]]:
        """Cross-entropy of the gold start/end wordpiece per window ([CLS] where the window holds no answer)."""
        gold = [[(s.start_char, s.end_char) for s in eg.reference.spans.get(self.key, [])] for eg in examples]
        starts, ends = window_targets(output, gold)
        n = output.start.shape[0]
        loss, grads = 0.0, []
        for logits, target in ((output.start, starts), (output.end, ends)):
            probs = _softmax(logits.astype("f"))  # (windows, length)
            loss += float(-numpy.log(probs[numpy.arange(n), target] + 1e-12).sum())
            d = probs.copy()
            d[numpy.arange(n), target] -= 1.0
            grads.append(d / (2 * n))
        return loss / (2 * n), (grads[0], grads[1])

    def update(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        examples = list(examples)
        validate_examples(examples, "ExtractiveQA.update")
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        for eg in examples:
            carry_question(eg)
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        output, backprop = self.model.begin_update([eg.predicted for eg in examples])
        if output.start.shape[0] == 0:  # no Doc had both a question and a context
            return losses
        loss, d_output = self.get_loss(examples, output)
        backprop(d_output)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        """Load the encoder named in the model config; checks that examples carry questions."""
        validate_get_examples(get_examples, "ExtractiveQA.initialize")
        sample = list(islice(get_examples(), 10))
        for eg in sample:
            carry_question(eg)
        if not any(isinstance(eg.predicted._.question, str) and eg.predicted._.question.strip() for eg in sample):
            raise ElectraMedError(Errors.E024.format(n=len(sample)))
        self.model.initialize(X=[eg.predicted for eg in sample])

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Optional[float]]:
        """BioASQ measures via the registered scorer.

        `spacy benchmark accuracy` (and `spacy.Corpus.v1`) rebuild each predicted Doc
        from the reference text, which drops `doc._.question`, so the pipe saw no
        question. Those Docs get the question from the reference (it is input, not
        gold) and are answered here, `score_batch_size` at a time, before scoring: no
        hook runs between spaCy's rebuilding of the Doc and the pipe.
        """
        examples = list(examples)
        missing = [eg for eg in examples if eg.predicted._.question is None and eg.reference._.question is not None]
        for eg in missing:
            carry_question(eg)
        for batch in minibatch([eg.predicted for eg in missing], size=int(self.cfg["score_batch_size"])):
            self.set_annotations(batch, self.predict(batch))
        return super().score(examples, **kwargs)

    def add_label(self, label: str) -> int:
        raise NotImplementedError("electramed_qa has no labels: answers are spans labelled ANSWER.")


def qa_doc(nlp: Language, question: str, text: str, qa_id: Optional[str] = None) -> Doc:
    """A tokenised Doc over `text` with `doc._.question` set, ready for `nlp(doc)` or `nlp.pipe`."""
    install_qa_extensions()
    doc = nlp.make_doc(text)
    doc._.question = question
    doc._.qa_id = qa_id
    return doc


def _qa_pipe_key(nlp: Language) -> str:
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, ExtractiveQA):
            return pipe.key
    raise ElectraMedError(Errors.E027)


def ask(nlp: Language, question: str, text: str) -> Doc:
    """Answer one question about one text. Returns the Doc: answers in `doc.spans["answers"]`, best first,
    scores in `doc.spans["answers"].attrs["scores"]` (the Doc is returned, not the group: a SpanGroup
    does not keep its Doc alive)."""
    if not isinstance(question, str) or not question.strip():
        raise ElectraMedError(Errors.E025.format(what="question", value=question))
    if not isinstance(text, str) or not text.strip():
        raise ElectraMedError(Errors.E025.format(what="context text", value=text))
    _qa_pipe_key(nlp)
    return nlp(qa_doc(nlp, question, text))


def ask_pipe(nlp: Language, pairs: Iterable[Tuple[str, str]], *, batch_size: int = 32, n_process: int = 1) -> Iterator[Doc]:
    """Docs for many (question, text) pairs, batched through `nlp.pipe`; answers in `doc.spans['answers']`."""
    return nlp.pipe((qa_doc(nlp, q, t) for q, t in pairs), batch_size=batch_size, n_process=n_process)
