"""`electramed` relation commands: evaluate with gold entities and render relations as HTML
(DDI-2013 and ChemProt convert with `electramed convert --format ddi|chemprot`; the old
`convert-ddi` / `convert-chemprot` names remain for one release).

The DDI-2013 and ChemProt relation tasks of ELECTRAMed (Miolo et al. 2021,
arXiv:2104.09585); readers in `electramed_spacy.corpora.{ddi,chemprot}`.
"""
import json
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ._app import app


@app.command("convert-ddi", hidden=True)
def convert_ddi(
    inputs: List[Path] = typer.Argument(..., exists=True, help="DDI-2013 XML files or directories (e.g. ddi2013/train)"),
    output_path: Path = typer.Option(..., "--output", "-o", dir_okay=False, help="Output .spacy DocBin"),
    dev_output: Optional[Path] = typer.Option(None, "--dev-output", help="Also write a dev DocBin from a held-out share of the documents"),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share of documents held out for --dev-output"),
    seed: int = typer.Option(0, "--seed", help="Seed of the document shuffle for the dev split"),
    discontinuous: str = typer.Option("first", "--discontinuous", help="Discontinuous entities: drop | first | extent | fragments"),
    on_error: str = typer.Option("error", "--on-error", help="error: stop at an entity whose offsets do not match; count: drop and count it"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer is used"),
) -> None:
    """Deprecated alias of `electramed convert INPUT OUTPUT --format ddi` (removed in the next release)."""
    from .corpora import convert, deprecated

    deprecated("convert-ddi", "electramed convert INPUT OUTPUT --format ddi")
    convert(inputs, output_path, "ddi", on_error=on_error, options={"discontinuous": discontinuous},
            dev_output=dev_output, dev_fraction=dev_fraction, seed=seed, lang=lang)


@app.command("convert-chemprot", hidden=True)
def convert_chemprot(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="ChemProt file: scibert_sentences/*.jsonl or pure_json/*.json"),
    output_path: Path = typer.Argument(..., dir_okay=False, help="Output .spacy DocBin"),
    form: str = typer.Option("auto", "--form", help="sentences | pure | auto (by the first line's keys)"),
    label_scheme: str = typer.Option("cpr", "--labels", help="sentences form: cpr (CPR:3/4/5/6/9) | fine (13 labels)"),
    on_error: str = typer.Option("error", "--on-error", help="sentences form: error | count lines with unreadable markers"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer is used (sentences form)"),
) -> None:
    """Deprecated alias of `electramed convert INPUT OUTPUT --format chemprot` (removed in the next release)."""
    from .corpora import convert, deprecated

    deprecated("convert-chemprot", "electramed convert INPUT OUTPUT --format chemprot")
    convert([input_path], output_path, "chemprot", on_error=on_error, options={"form": form, "labels": label_scheme}, lang=lang)


@app.command("evaluate-relations", rich_help_panel="Training and evaluation")
def evaluate_relations(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    data_path: Path = typer.Argument(..., exists=True, help="DocBin with gold entities and relations"),
    gold_entities: bool = typer.Option(True, "--gold-entities/--predicted-entities", help="Give the pipe the gold entities (and sentences), or let the pipeline predict them"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    batch_size: int = typer.Option(8, "--batch-size"),
) -> None:
    """Relation P/R/F on a DocBin: with gold entities (the DDI-2013/ChemProt relation protocol)
    or end to end. (`spacy benchmark accuracy` gives the end-to-end figure too.)"""
    import spacy
    from spacy.training import Corpus

    from ..corpora.gold_entities import copy_gold_entities, gold_input_pipes

    nlp = spacy.load(model)
    examples = list(Corpus(str(data_path))(nlp))
    if gold_entities:
        examples = [copy_gold_entities(eg) for eg in examples]
        # NER / sentence splitting would overwrite the gold annotations
        disabled = gold_input_pipes(nlp)
    else:
        disabled = []
    with nlp.select_pipes(disable=disabled):
        scores = nlp.evaluate(examples, batch_size=batch_size)
    keys = ["rel_micro_p", "rel_micro_r", "rel_micro_f"] + (["ents_f"] if not gold_entities and "ents_f" in scores else [])
    msg.table([(k, f"{100 * scores[k]:.2f}") for k in keys if k in scores], header=("score", "%"), aligns=("l", "r"))
    per = scores.get("rel_f_per_type") or {}
    msg.table([(k, f"{100 * v['p']:.2f}", f"{100 * v['r']:.2f}", f"{100 * v['f']:.2f}") for k, v in per.items()],
              header=("label", "P", "R", "F"), aligns=("l", "r", "r", "r"))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        scores.update(protocol="gold entities" if gold_entities else "predicted entities", model=model, data=str(data_path))
        output.write_text(json.dumps(scores, indent=2), encoding="utf8")
        msg.good(f"Saved scores to {output}")


@app.command("visualize-relations", rich_help_panel="Using pipelines")
def visualize_relations(
    model: str = typer.Argument(..., help="Pipeline name or path (use '-' to show the gold relations of a DocBin)"),
    source: str = typer.Argument(..., help="Text, or a path to a .spacy DocBin"),
    output: Path = typer.Option(Path("relations.html"), "--output", "-o", help="HTML file to write"),
    limit: int = typer.Option(20, "--limit", help="At most this many documents from a DocBin"),
    gold_entities: bool = typer.Option(False, "--gold-entities", help="DocBin: run the relation pipe on the gold entities"),
) -> None:
    """Render entities and relations as HTML (displaCy manual mode)."""
    import spacy
    from spacy.tokens import DocBin

    from ..doc.render import render_relations

    path = Path(source)
    if path.suffix == ".spacy" and path.exists():
        vocab = spacy.blank("en").vocab if model == "-" else None
        nlp = None if model == "-" else spacy.load(model)
        docs = list(DocBin().from_disk(path).get_docs((nlp.vocab if nlp else vocab)))[:limit]
        if nlp is not None:
            if gold_entities:
                from spacy.training import Example

                from ..corpora.gold_entities import copy_gold_entities, gold_input_pipes

                docs = [copy_gold_entities(Example(nlp.make_doc(d.text), d)).predicted for d in docs]
                with nlp.select_pipes(disable=gold_input_pipes(nlp)):
                    docs = list(nlp.pipe(docs))
            else:
                docs = list(nlp.pipe(d.text for d in docs))
    else:
        if model == "-":
            msg.fail("MODEL '-' (gold relations) needs a .spacy DocBin as SOURCE.", exits=1)
        docs = [spacy.load(model)(source)]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_relations(docs), encoding="utf8")
    msg.good(f"Wrote {len(docs)} document(s) to {output}")
