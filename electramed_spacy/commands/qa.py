"""`electramed` QA commands: score a test batch as BioASQ does, ask a question (BioASQ data converts
with `electramed convert --format bioasq`; the old `convert-bioasq` name remains for one release).

BioASQ factoid evaluation (strict/lenient accuracy, MRR over 5 answers) as used for
ELECTRAMed's 7b results (Miolo et al. 2021, arXiv:2104.09585); see
`electramed_spacy.pipeline.qa_metrics`.
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import typer
from wasabi import msg

from ._app import app


@app.command("convert-bioasq", hidden=True)
def convert_bioasq(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="SQuAD-style BioASQ JSON or raw BioASQ (golden) JSON"),
    output_path: Path = typer.Argument(..., dir_okay=False, help="Output .spacy DocBin"),
    fmt: str = typer.Option("auto", "--format", help="squad | golden | auto (by the top-level key)"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits the contexts"),
    on_error: str = typer.Option("error", "--on-error", help="error: stop at the first bad item; count: drop and count it"),
    unanswerable: str = typer.Option("drop", "--unanswerable", help="golden format: snippets without the exact answer: drop | keep"),
    dev_output: Optional[Path] = typer.Option(None, "--dev-output", help="Also write a dev DocBin: a held-out share of the questions"),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share of questions (not pairs) held out for --dev-output"),
) -> None:
    """Deprecated alias of `electramed convert INPUT OUTPUT --format bioasq --form squad|golden|auto` (removed in the next release)."""
    from .corpora import convert, deprecated

    deprecated("convert-bioasq", "electramed convert INPUT OUTPUT --format bioasq (its --format squad|golden is now --form)")
    convert([input_path], output_path, "bioasq", on_error=on_error, options={"form": fmt, "unanswerable": unanswerable},
            dev_output=dev_output, dev_fraction=dev_fraction, lang=lang)


def _qa_pipe(nlp):
    from ..pipeline.qa import ExtractiveQA

    for name, pipe in nlp.pipeline:
        if isinstance(pipe, ExtractiveQA):
            return name, pipe
    msg.fail("The pipeline has no electramed_qa component.", exits=1)


@app.command("qa-score", rich_help_panel="Training and evaluation")
def qa_score(
    model: str = typer.Argument(..., help="Installed pipeline name or path (with an electramed_qa component)"),
    test_json: Path = typer.Argument(..., exists=True, dir_okay=False, help="SQuAD-style test batch (ids <questionid>_<nnn>)"),
    golden_json: Path = typer.Argument(..., exists=True, dir_okay=False, help="BioASQ golden file of the batch"),
    block_size: int = typer.Option(0, "--block-size", help="Also score consecutive blocks of this many golden questions (7B_golden.json: 100 = one test batch)"),
    batch_size: int = typer.Option(32, "--batch-size", help="Pairs per nlp.pipe batch"),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the scores (JSON)"),
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Write the top-5 answers per question (JSON)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU"),
) -> None:
    """Score a BioASQ factoid test batch against its golden file: strict, lenient accuracy and MRR (top 5).

    Every factoid question of the golden file counts; one without predicted answers
    (absent from the test file) counts as wrong. No-answer is switched off: every
    factoid question has an answer, so each list holds up to 5 answers.
    """
    import spacy
    from thinc.api import require_gpu

    from ..corpora.bioasq import read_bioasq_golden, read_squad_json
    from ..corpora.common import ConversionSummary
    from ..pipeline.qa_metrics import TOP_N, aggregate_docs, bioasq_factoid_scores

    if gpu_id >= 0:
        require_gpu(gpu_id)
    nlp = spacy.load(model)
    name, pipe = _qa_pipe(nlp)
    pipe.cfg["no_answer"] = False
    pipe.cfg["top_k"] = max(int(pipe.cfg["top_k"]), TOP_N)
    summary = ConversionSummary(source=str(test_json))
    docs = list(read_squad_json(test_json, nlp.make_doc, summary=summary, on_error="count"))
    if summary.dropped:
        summary.print()
    golden = read_bioasq_golden(golden_json, on_error="count")
    start = time.perf_counter()
    with nlp.select_pipes(enable=[name]):
        done = list(nlp.pipe(docs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    ranked = aggregate_docs(done, spans_key=pipe.key)
    blocks: Dict[str, List[Dict]] = {"all": golden}
    if block_size > 0:
        for q in golden:
            blocks.setdefault(f"block {q['index'] // block_size + 1}", []).append(q)
    results = {}
    for label, questions in blocks.items():
        gold = {q["id"]: q["synonyms"] for q in questions}
        results[label] = bioasq_factoid_scores(ranked, gold)
        results[label]["qa_questions_in_test_file"] = sum(q["id"] in ranked for q in questions)
    n_questions = len(ranked)
    speed = {"pairs": len(done), "questions": n_questions, "seconds": round(seconds, 3),
             "questions_per_s": round(n_questions / seconds, 3) if seconds else None,
             "pairs_per_s": round(len(done) / seconds, 3) if seconds else None}
    rows = [(label, r["qa_questions"], f"{r['qa_strict_acc'] or 0:.4f}", f"{r['qa_lenient_acc'] or 0:.4f}", f"{r['qa_mrr'] or 0:.4f}") for label, r in results.items()]
    msg.table(rows, header=("questions", "n", "strict", "lenient", "MRR"), aligns=("l", "r", "r", "r", "r"))
    msg.info(f"{speed['pairs']} pairs / {n_questions} questions in {speed['seconds']} s: {speed['questions_per_s']} questions/s")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"model": model, "test": str(test_json), "golden": str(golden_json), "scores": results, "speed": speed}, indent=2), encoding="utf8")
    if predictions:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        predictions.write_text(json.dumps(ranked, indent=2), encoding="utf8")


@app.command("ask", rich_help_panel="Using pipelines")
def ask_command(
    model: str = typer.Argument(..., help="Installed pipeline name or path"),
    question: str = typer.Option(..., "--question", "-q"),
    context: Optional[str] = typer.Option(None, "--context", "-c", help="The text to answer from"),
    context_file: Optional[Path] = typer.Option(None, "--context-file", exists=True, dir_okay=False),
) -> None:
    """Answer a question about a text: ranked answer spans with scores."""
    import spacy

    from ..errors import ElectraMedError
    from ..pipeline.qa import ask

    if context is None and context_file is None:
        msg.fail("Give the text with --context or --context-file.", exits=1)
    text = context if context is not None else context_file.read_text(encoding="utf8")
    try:
        nlp = spacy.load(model)
        doc = ask(nlp, question, text)
    except ElectraMedError as err:
        msg.fail(str(err), exits=1)
    answers = doc.spans[_qa_pipe(nlp)[1].key]
    if not len(answers):
        msg.warn(f"No answer ({answers.attrs.get('status')}; no-answer score {answers.attrs.get('no_answer_score')}).")
    for rank, (span, score) in enumerate(zip(answers, answers.attrs["scores"]), start=1):
        print(f"{rank}\t{score:.4f}\t{span.start_char}-{span.end_char}\t{span.text}")
