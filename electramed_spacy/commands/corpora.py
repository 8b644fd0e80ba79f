"""`electramed convert`: every corpus format -> a spaCy DocBin (.spacy), as spaCy's `convert`.

One command for the six formats of `corpora.readers.FORMATS` (pubtator, conll, brat, ddi, chemprot,
bioasq), with one `--on-error` policy, one `--discontinuous` vocabulary, one dev split
(`--dev-output`, by question for bioasq) and `--label-map A=B,C=B` (e.g. NCBI-disease's four disease
types merged to Disease). The DocBin keeps entities (`doc.ents`, with MeSH ids as `kb_id_`), every
mention (`doc.spans["mentions"]`), sentence starts and, through `store_user_data=True`, relations
(`doc._.relations`), questions and `doc._.doc_id`, so `spacy.Corpus.v1` can train the ELECTRAMed
(arXiv:2104.09585) pipelines from it. Every run ends with the conversion summary: documents,
sentences, entities per label, dropped with reasons (and a warning when it read no document).
`convert-ddi`, `convert-chemprot` and `convert-bioasq` remain for one release as deprecated aliases.

`conversion_errors` is the one error path of every conversion: bad input ends the command with one
line naming file:line (JSON formats: the file and the item's JSON path), exit code 1 and no
traceback, and no output file is written.
"""
import json
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import typer
from tqdm import tqdm
from wasabi import msg

from ..corpora.policies import DEPRECATED_DISCONTINUOUS, DISCONTINUOUS, FORMAT_DESCRIPTIONS
from ._app import app


@contextmanager
def conversion_errors() -> Iterator[None]:
    """Turn the readers' errors into one `✘ file:line: problem Expected: ...` line on stderr, exit 1.

    CorpusFormatError is bad input; a plain ValueError is an invalid option value
    (checked by the readers); OSError an unreadable file. Anything else is a bug
    and keeps its traceback.
    """
    try:
        yield
    except ValueError as err:  # CorpusFormatError included
        _fail(str(err))
    except OSError as err:
        _fail(f"{err.filename if err.filename is not None else 'input'}: cannot read it ({err.strerror or err}).")


def _fail(message: str) -> None:
    # typer.secho, not msg.fail: wasabi wraps at 80 columns, and one line is what a log grep needs
    typer.secho(f"✘ {' '.join(message.splitlines())}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


Format = Enum("Format", {name: name for name in FORMAT_DESCRIPTIONS}, type=str)
# one vocabulary with `electramed annotate --on-error count|stop`; "error" is the readers' own word for stop
OnError = Enum("OnError", {"stop": "stop", "count": "count", "error": "error"}, type=str)
CONVERT_HELP = "Convert a corpus to a .spacy DocBin. Formats (--format):\n\n" + "\n\n".join(
    f"{name}: {description}" for name, description in FORMAT_DESCRIPTIONS.items())


def check_output_paths(inputs: List[Path], outputs: Dict[str, Optional[Path]]) -> None:
    """ValueError if an output would replace an input (or a folder holding one) or another output."""
    sources = [Path(p).resolve() for p in inputs]
    seen: Dict[Path, str] = {}
    for what, path in outputs.items():
        if path is None:
            continue
        target = Path(path).resolve()
        for source in sources:
            if target == source or target in source.parents:
                raise ValueError(f"{what} {path} is the input {source} or a folder that holds it: it would be overwritten. "
                                 "Write the DocBin to another path.")
        if target in seen:
            raise ValueError(f"{what} {path} is also {seen[target]}: one would overwrite the other; give each its own path.")
        seen[target] = f"{what}"


def deprecated(old: str, new: str) -> None:
    """The note an old spelling prints for one release before it is removed."""
    typer.secho(f"⚠ {old} is deprecated and will be removed in the next release: use {new}.", fg=typer.colors.YELLOW, err=True)


@app.command("convert", rich_help_panel="Corpora", help=CONVERT_HELP, short_help="Convert a corpus (PubTator, CoNLL, brat, DDI, ChemProt, BioASQ) to a .spacy DocBin.")
def convert_cli(
    input_path: Path = typer.Argument(..., help="Corpus file or directory (brat: a directory of .txt + .ann; ddi: a directory of .xml).", exists=True),
    output_path: Path = typer.Argument(..., help="Output DocBin, e.g. corpus/train.spacy.", dir_okay=False),
    fmt: Format = typer.Option(..., "--format", "-f", help="Input format (see above).", case_sensitive=False),
    on_error: OnError = typer.Option(OnError.stop, "--on-error", help="Bad items (offsets that do not match the text, unreadable markers, malformed QA items): stop at file:line (stop), or drop and count them (count)."),
    discontinuous: Optional[str] = typer.Option(None, "--discontinuous", help=f"brat, ddi: discontinuous mentions: {' | '.join(DISCONTINUOUS)} (default brat: drop, ddi: first)."),
    sentences: Optional[bool] = typer.Option(None, "--sentences/--no-sentences", help="pubtator, brat: split documents into sentences, never inside a mention (default: yes)."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="conll: tag scheme auto | iob1 | iob2 (default auto: IOB1 if any chunk starts with I-)."),
    n_sents: Optional[int] = typer.Option(None, "--n-sents", help="conll: sentences per Doc, 0 = one Doc per -DOCSTART- section or file (default 10)."),
    form: Optional[str] = typer.Option(None, "--form", help="chemprot: sentences | pure | auto; bioasq: squad | golden | auto (default auto)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="chemprot sentences form: cpr (CPR:3/4/5/6/9) | fine (13 labels) (default cpr)."),
    unanswerable: Optional[str] = typer.Option(None, "--unanswerable", help="bioasq golden form: snippets without the exact answer: drop | keep (default drop)."),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Rename entity labels, FROM=TO[,FROM=TO...], e.g. SpecificDisease=Disease,Modifier=Disease."),
    dev_output: Optional[Path] = typer.Option(None, "--dev-output", help="Also write a dev DocBin from a held-out share of the documents (bioasq: of the questions).", dir_okay=False),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share held out for --dev-output."),
    seed: int = typer.Option(0, "--seed", help="Seed of the dev split."),
    lang: str = typer.Option("en", "--lang", help="Language of the blank tokenizer used to build the Docs."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the summary as JSON here."),
    on_mismatch: Optional[OnError] = typer.Option(None, "--on-mismatch", hidden=True, help="Deprecated: --on-error."),
) -> None:
    if on_mismatch is not None:
        deprecated("--on-mismatch", "--on-error (same policy)")
        on_error = on_mismatch
    if on_error is OnError.error:
        deprecated("--on-error error", "--on-error stop (same policy)")
    policy = "count" if on_error is OnError.count else "error"  # the readers' names: ON_ERROR
    options = {"discontinuous": discontinuous, "sentences": sentences, "scheme": scheme, "n_sents": n_sents, "form": form,
               "labels": labels, "unanswerable": unanswerable}
    convert([input_path], output_path, fmt.value, on_error=policy, options={k: v for k, v in options.items() if v is not None},
            label_map=label_map, dev_output=dev_output, dev_fraction=dev_fraction, seed=seed, lang=lang, summary_json=summary_json)


def convert(
    inputs: List[Path], output_path: Path, fmt: str, *, on_error: str = "error", options: Optional[Dict[str, Any]] = None,
    label_map: Optional[str] = None, dev_output: Optional[Path] = None, dev_fraction: float = 0.1, seed: int = 0,
    lang: str = "en", summary_json: Optional[Path] = None,
) -> None:
    """Read `inputs` in format `fmt`, relabel, split off dev, print the summary, write the DocBin(s).
    Nothing is written when the input is bad."""
    import spacy

    from ..corpora.common import ConversionSummary, map_labels, parse_label_map, save_docbin, split_dev
    from ..corpora.readers import FORMATS, check_options, iter_docs

    on_error = "error" if on_error == "stop" else on_error  # the CLI's word for the readers' "error"
    options = dict(options or {})
    summary = ConversionSummary(source=", ".join(map(str, inputs)))
    with conversion_errors():
        check_output_paths(inputs, {"the output": output_path, "--dev-output": dev_output, "--summary-json": summary_json})
        check_options(fmt, options)
        if options.get("discontinuous") in DEPRECATED_DISCONTINUOUS:
            new = DEPRECATED_DISCONTINUOUS[options["discontinuous"]]
            deprecated(f"--discontinuous {options['discontinuous']}", f"--discontinuous {new} (same policy)")
            options["discontinuous"] = new
        mapping = parse_label_map(label_map) if label_map is not None else {}
        nlp = spacy.blank(lang)
        docs = list(tqdm(iter_docs(fmt, inputs, nlp, summary=summary, on_error=on_error, **options),
                         desc=f"Converting {inputs[0].name}", unit="doc", leave=False, disable=None))
        if mapping:
            _apply_label_map(docs, mapping, summary, map_labels)
        train, dev = split_dev(docs, dev_fraction if dev_output is not None else 0.0, seed=seed, key=FORMATS[fmt].group)
    summary.print()
    save_docbin(train, output_path)
    msg.good(f"Wrote {len(train)} documents to {output_path}")
    if dev_output is not None:
        save_docbin(dev, dev_output)
        msg.good(f"Wrote {len(dev)} held-out documents ({dev_fraction:.0%} of the {'questions' if FORMATS[fmt].group else 'documents'}, seed {seed}) to {dev_output}")
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _apply_label_map(docs, mapping: Dict[str, str], summary, map_labels) -> None:
    """Relabel every Doc; the summary counts entities under their new labels and notes each renaming."""
    from collections import Counter

    renamed: Counter = Counter()
    for doc in docs:
        renamed.update(map_labels(doc, mapping))
    entities: Counter = Counter()
    for label, n in summary.entities.items():
        entities[mapping.get(label, label)] += n
    summary.entities = entities
    for old, n in sorted(renamed.items()):
        summary.notes[f"label {old} -> {mapping[old]} (--label-map)"] += n
    unused = sorted(set(mapping) - set(renamed))
    if unused:
        msg.warn(f"--label-map: no entity is labelled {', '.join(unused)} in {summary.source}; check the spelling (labels are case-sensitive).")


@app.command("task-text", rich_help_panel="Corpora")
def task_text_command(
    text: Path = typer.Argument(..., exists=True, dir_okay=False, help="Pre-training text: a sentence per line, a blank line between documents"),
    output: Path = typer.Argument(..., file_okay=False, help="Folder for bc5cdr_task.txt, ddi_task.txt, <docbin>_marked.txt"),
    pubtator: List[Path] = typer.Option([], exists=True, dir_okay=False, help="BC5CDR train/dev PubTator file (repeatable)"),
    ddi_dir: List[Path] = typer.Option([], exists=True, file_okay=False, help="DDI-2013 train folder of XML files (repeatable)"),
    marked: List[Path] = typer.Option([], exists=True, dir_okay=False,
                                      help="DocBin with gold entities (train split): also write its sentences with marked entity pairs"),
    pairs_per_sentence: int = typer.Option(2, min=1, help="Marked copies of a sentence at most"),
    seed: int = typer.Option(0, help="Seed of the drawn pairs"),
):
    """Task-adaptive pre-training text: the documents of TEXT from the given train/dev sources, for `electramed pretrain`."""
    import random

    from ..corpora.task_text import benchmark_documents, marked_sentences, write_documents

    if not pubtator and not ddi_dir and not marked:
        raise typer.BadParameter("give --pubtator and/or --ddi-dir (the sources whose documents to keep) and/or --marked")
    kept = benchmark_documents(text, pubtator, ddi_dir)
    try:  # every input read before anything is written
        marked_docs = {docbin.stem: marked_sentences(docbin, pairs_per_sentence, random.Random(seed)) for docbin in marked}
    except ValueError as err:
        msg.fail(str(err))
        raise typer.Exit(1)
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in kept.items():
        if docs:
            msg.good(write_documents(output / f"{name}_task.txt", docs))
    for stem, docs in marked_docs.items():
        msg.good(write_documents(output / f"{stem}_marked.txt", docs))
