"""BioASQ factoid QA readers: SQuAD-style JSON and raw BioASQ (golden) JSON -> Docs.

ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) fine-tunes on BioASQ factoid
questions in the SQuAD-style files prepared by BioBERT (Lee et al. 2020): one
(question, snippet) pair per `qas` item, ids `<questionid>_<nnn>`. The raw BioASQ
JSON (`questions[]` with `body`, `type`, `exact_answer`, `snippets`) is what the
golden files use; it is read for scoring and can also be turned into pairs.

One Doc per (question, context) pair:

- `doc.text` is the context (the snippet); tokenised with the pipeline's tokenizer,
  tokens split at answer boundaries so no gold answer is lost (counted);
- `doc._.question` (str) is the question, `doc._.qa_id` (str) the pair id;
  both live in `doc.user_data`, so they survive `DocBin(store_user_data=True)`;
- `doc.spans["answers"]` holds the gold answer spans (empty for test files).

That contract (extensions, keys, `carry_question`, `question_key`) is defined in
`electramed_spacy/doc/qa.py`; it is re-exported here.

Bad input follows the other readers (`common.py`): the file is read with
`common.read_text` (UTF-8, BOM removed); malformed JSON or an undecodable byte
raises CorpusFormatError with file:line; a structurally wrong item raises with its JSON
path (`data[0].paragraphs[12].qas[0]`), or, with `on_error="count"`, is dropped
and counted in the ConversionSummary. Nothing is dropped silently.
"""
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc
from spacy.training import Corpus
from spacy.util import registry

from ..doc.qa import ANSWER_LABEL, ANSWERS_KEY, carry_question, install_qa_extensions, question_key  # noqa: F401 (re-exported)
from .common import ON_ERROR, ConversionSummary, CorpusFormatError, parse_json, read_text, split_at_boundaries


def make_qa_doc(
    make_doc, question: str, context: str, answers: Sequence[Tuple[int, int]] = (), *, qa_id: Optional[str] = None,
) -> Tuple[Doc, int]:
    """A Doc over `context` with the question attached and gold answers (char offsets) as spans.

    Returns (doc, number of tokens split at answer boundaries).
    """
    install_qa_extensions()
    doc = make_doc(context)
    doc, n_splits = split_at_boundaries(doc, [b for a in answers for b in a])
    doc._.question = question
    doc._.qa_id = qa_id
    spans = []
    for start, end in answers:
        span = doc.char_span(start, end, label=ANSWER_LABEL)
        if span is not None and not any((s.start, s.end) == (span.start, span.end) for s in spans):
            spans.append(span)
    doc.spans[ANSWERS_KEY] = spans
    return doc, n_splits


def _load_json(path: Path):
    return parse_json(read_text(path), path)


def detect_format(path: Union[str, Path]) -> str:
    """"golden" for raw BioASQ JSON (a top-level "questions" list), else "squad"."""
    data = _load_json(Path(path))
    return "golden" if isinstance(data, dict) and "questions" in data and "data" not in data else "squad"


def _problem(path, where: str, problem: str, expected: str, summary: ConversionSummary, reason: str, on_error: str) -> None:
    if on_error == "error":
        raise CorpusFormatError(path, None, f"at {where}: {problem}", expected + " (or use on_error='count' to drop and count such items).")
    summary.drop(reason)


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def read_squad_json(
    path: Union[str, Path], make_doc, *, summary: Optional[ConversionSummary] = None, on_error: str = "error",
) -> Iterator[Doc]:
    """Docs from a SQuAD-style JSON file (`data[].paragraphs[].{context, qas[]}`).

    Each `qas` item gives one Doc. `answers` may be empty (test files). An answer
    whose `text` does not match `context[answer_start:...]` is an error (or a
    counted drop of that answer). An empty context or question drops the pair.
    """
    _check_on_error(on_error)
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CorpusFormatError(path, None, "no top-level 'data' list.", "SQuAD-style JSON: {\"data\": [{\"paragraphs\": [{\"context\": ..., \"qas\": [...]}]}]}.")
    for ai, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            _problem(path, f"data[{ai}]", "no 'paragraphs' list.", "each article to hold a 'paragraphs' list", summary, "article without paragraphs", on_error)
            continue
        for pi, para in enumerate(paragraphs):
            where = f"data[{ai}].paragraphs[{pi}]"
            context = para.get("context") if isinstance(para, dict) else None
            qas = para.get("qas") if isinstance(para, dict) else None
            if not isinstance(context, str):
                _problem(path, where, "missing or non-string 'context'.", "a 'context' string", summary, "missing context", on_error)
                continue
            if not isinstance(qas, list):
                _problem(path, where, "missing 'qas' list.", "a 'qas' list", summary, "missing qas", on_error)
                continue
            if not context.strip():
                summary.drop("empty context")
                continue
            for qi, qa in enumerate(qas):
                qwhere = f"{where}.qas[{qi}]"
                question = qa.get("question") if isinstance(qa, dict) else None
                if not isinstance(question, str) or not question.strip():
                    _problem(path, qwhere, "missing or empty 'question'.", "a non-empty 'question' string", summary, "empty question", on_error)
                    continue
                answers = qa.get("answers") or []
                if not isinstance(answers, list):
                    _problem(path, f"{qwhere}.answers", f"'answers' is a {type(answers).__name__}, not a list.", "an 'answers' list", summary, "malformed answer", on_error)
                    continue
                offsets = []
                for ni, ans in enumerate(answers):
                    text, start = (ans.get("text"), ans.get("answer_start")) if isinstance(ans, dict) else (None, None)
                    if not isinstance(text, str) or type(start) is not int:
                        _problem(path, f"{qwhere}.answers[{ni}]", f"answer {ans!r} lacks 'text' or an integer 'answer_start'.", "{\"text\": str, \"answer_start\": int}", summary, "malformed answer", on_error)
                        continue
                    end = start + len(text)
                    if not text.strip() or start < 0 or context[start:end] != text:
                        _problem(path, f"{qwhere}.answers[{ni}]", f"answer {text!r} at {start} does not match the context there: {context[start:end]!r}.", "answer_start to index the answer text in the context", summary, "answer offset mismatch", on_error)
                        continue
                    # strip surrounding whitespace so spans start and end on tokens
                    lead = len(text) - len(text.lstrip())
                    offsets.append((start + lead, start + lead + len(text.strip())))
                had_answers = bool(answers)
                if had_answers and not offsets:
                    summary.drop("pair whose every answer was dropped")
                    continue
                doc, n_splits = make_qa_doc(make_doc, question.strip(), context, offsets, qa_id=str(qa.get("id", qwhere)))
                if n_splits:
                    summary.notes["tokens split at answer boundaries"] += n_splits
                summary.documents += 1
                summary.sentences += 1
                summary.entities[ANSWER_LABEL] += len(doc.spans[ANSWERS_KEY])
                yield doc


def golden_synonyms(exact_answer) -> List[str]:
    """Flatten a factoid `exact_answer` (list of synonym lists, or list of strings, or a string).

    A number counts as its text; anything else (null, objects) holds no synonym.
    """
    if isinstance(exact_answer, (int, float)) and not isinstance(exact_answer, bool):
        exact_answer = str(exact_answer)
    if isinstance(exact_answer, str):
        return [exact_answer] if exact_answer.strip() else []
    out: List[str] = []
    for item in exact_answer if isinstance(exact_answer, list) else []:
        out.extend(golden_synonyms(item))
    return out


def read_bioasq_golden(
    path: Union[str, Path], *, types: Sequence[str] = ("factoid",), summary: Optional[ConversionSummary] = None,
    on_error: str = "error",
) -> List[Dict]:
    """Questions from a raw BioASQ JSON file (`questions[]`), kept only for `types`.

    Returns dicts with `id`, `body`, `type`, `synonyms` (flattened exact_answer;
    empty for a file without answers) and `snippets` (texts), in file order (the
    order matters: BioASQ 7b's golden file holds batches 1-5 as consecutive
    blocks of 100 questions).
    """
    _check_on_error(on_error)
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise CorpusFormatError(path, None, "no top-level 'questions' list.", "BioASQ JSON: {\"questions\": [{\"id\", \"body\", \"type\", \"exact_answer\", \"snippets\"}]}.")
    out = []
    for i, q in enumerate(data["questions"]):
        where = f"questions[{i}]"
        if not isinstance(q, dict) or not isinstance(q.get("id"), str) or not isinstance(q.get("body"), str):
            _problem(path, where, "missing 'id' or 'body'.", "'id' and 'body' strings", summary, "question without id/body", on_error)
            continue
        if q.get("type") not in types:
            summary.notes[f"skipped type {q.get('type')}"] += 1
            continue
        if not q["body"].strip():
            _problem(path, where, "empty 'body'.", "a non-empty question body", summary, "empty question", on_error)
            continue
        # the question still counts for scoring; a malformed snippet only loses its text
        raw = q.get("snippets") if isinstance(q.get("snippets"), list) else []
        snippets = [s["text"] for s in raw if isinstance(s, dict) and isinstance(s.get("text"), str)]
        if len(snippets) < len(raw) or not isinstance(q.get("snippets"), (list, type(None))):
            summary.drop("snippet without a 'text' string (question kept)")
        out.append({
            "id": q["id"], "index": i, "body": q["body"].strip(), "type": q.get("type"),
            "synonyms": golden_synonyms(q.get("exact_answer")), "snippets": snippets,
        })
        summary.documents += 1
    return out


def golden_to_docs(
    path: Union[str, Path], make_doc, *, summary: Optional[ConversionSummary] = None, on_error: str = "error",
    unanswerable: str = "drop",
) -> Iterator[Doc]:
    """(question, snippet) Docs from a raw BioASQ file, answers found by case-insensitive search.

    As in BioBERT's preprocessing, every occurrence of a golden synonym in a snippet
    is a gold span. A snippet with no occurrence is dropped and counted
    (`unanswerable="drop"`) or kept with no answer (`"keep"`: a null-answer example).
    """
    if unanswerable not in ("drop", "keep"):
        raise ValueError(f"unanswerable must be 'drop' or 'keep', got {unanswerable!r}")
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    questions = read_bioasq_golden(path, summary=summary, on_error=on_error)
    summary.documents = 0
    for q in questions:
        for si, snippet in enumerate(q["snippets"]):
            if not snippet.strip():
                summary.drop("empty snippet")
                continue
            low = snippet.lower()
            offsets = set()
            for syn in q["synonyms"]:
                syn = syn.strip().lower()
                for m in re.finditer(re.escape(syn), low) if syn else ():
                    offsets.add((m.start(), m.end()))
            # nested matches (a synonym inside a longer one) keep the longer span
            offsets = sorted(o for o in offsets if not any(p != o and p[0] <= o[0] and o[1] <= p[1] for p in offsets))
            if not offsets and unanswerable == "drop":
                summary.drop("snippet without the exact answer")
                continue
            doc, n_splits = make_qa_doc(make_doc, q["body"], snippet, offsets, qa_id=f"{q['id']}_{si + 1:03d}")
            if n_splits:
                summary.notes["tokens split at answer boundaries"] += n_splits
            summary.documents += 1
            summary.sentences += 1
            summary.entities[ANSWER_LABEL] += len(doc.spans[ANSWERS_KEY])
            yield doc


@registry.readers("electramed.QACorpus.v1")
def create_qa_corpus(path, *, limit: int = 0, shuffle: bool = False) -> Callable:
    """`spacy.Corpus.v1` over a QA DocBin that also puts the question on the predicted Doc.

    spaCy builds each Example's predicted Doc afresh from the text, which drops
    `user_data`; without this the QA pipe would see no question in `spacy train`
    evaluation and `spacy benchmark accuracy`.
    """
    install_qa_extensions()
    corpus = Corpus(path, limit=limit, shuffle=shuffle)

    def read(nlp) -> Iterator:
        for example in corpus(nlp):
            carry_question(example)
            yield example

    return read
