"""`electramed check-package`: load an *installed* pipeline by name and show what it does.

Used by project.yml after `spacy package` + `pip install`, so the workflow proves
that `spacy.load("en_electramed_ner")` works from site-packages, not from a path.
"""
import importlib.util
from typing import Optional

import typer
from wasabi import msg

from ._app import app


@app.command("check-package", rich_help_panel="Packaging")
def check_package(
    name: str = typer.Argument(..., help="Installed package name, e.g. en_electramed_ner"),
    text: str = typer.Option("Cisplatin induced nephrotoxicity in patients with lung cancer.", help="Text to run"),
    question: Optional[str] = typer.Option(None, help="For QA pipelines: a question about TEXT"),
) -> None:
    """Load an installed pipeline package by name, run it on TEXT and print the result."""
    import spacy

    spec = importlib.util.find_spec(name)
    if spec is None:
        msg.fail(f"Package {name!r} is not installed in this environment.", "Build and install it first: spacy project run package-ner install-ner", exits=1)
    nlp = spacy.load(name)
    msg.good(f"Loaded {name} {nlp.meta.get('version')} from {spec.origin}", f"pipeline: {nlp.pipe_names}")
    is_qa = any(nlp.get_pipe_meta(n).factory == "electramed_qa" for n in nlp.pipe_names)
    if is_qa and question is None:
        question = "Which drug causes nephrotoxicity?"
        msg.info(f"A QA pipeline answers a question about TEXT; none given (--question), so asking: {question!r}")
    if question is not None:
        from ..pipeline.qa import ask  # only QA pipelines need it

        doc = ask(nlp, question, text)
    else:
        doc = nlp(text)
    rows = [(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents]
    if not is_qa:
        msg.table(rows or [("(none)", "", "", "")], header=("entity", "label", "start", "end"), divider=True)
    if doc.has_extension("relations") and doc._.relations:
        msg.table([(r.head.text, r.label, r.tail.text, f"{r.score:.3f}") for r in doc._.relations], header=("head", "relation", "tail", "score"), divider=True)
    if "answers" in doc.spans:
        group = doc.spans["answers"]
        scores = group.attrs.get("scores", [None] * len(group))
        answers = [(s.text, f"{sc:.3f}" if sc is not None else "") for s, sc in zip(group, scores)]
        msg.table(answers or [("(none)", "")], header=("answer", "score"), divider=True)
        if not answers:
            msg.warn(f"No answer: {group.attrs.get('status') or 'the model found no span'} (the sample model is tiny; not an error).")
    if not rows and "answers" not in doc.spans:
        msg.warn("The pipeline found no entity in this text (expected for the tiny sample model; not an error).")
