"""`electramed convert`: PubTator / CoNLL / brat corpora -> a spaCy DocBin (.spacy).

The DocBin keeps entities (`doc.ents`, with MeSH ids as `kb_id_`), every mention
(`doc.spans["mentions"]`), sentence starts and, through `store_user_data=True`,
relations (`doc._.relations`) and `doc._.doc_id`, so `spacy.Corpus.v1` can train
the ELECTRAMed (arXiv:2104.09585) NER pipeline from it. Every run ends with the
conversion summary: documents, sentences, entities per label, dropped with reasons
(and a warning when it read no document).

`conversion_errors` is the one error path of every converter (`convert`,
`convert-ddi`, `convert-chemprot`, `convert-bioasq`): bad input ends the command
with one line naming file:line (JSON formats: the file and the item's JSON path),
exit code 1 and no traceback, and no output file is written.
"""
import json
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import spacy
import typer
from spacy.tokens import DocBin
from tqdm import tqdm
from wasabi import msg

from ..cli import app
from ..corpora.common import ConversionSummary
from ..corpora.readers import iter_docs


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


class Format(str, Enum):
    pubtator = "pubtator"
    conll = "conll"
    brat = "brat"


class Scheme(str, Enum):
    auto = "auto"
    iob1 = "iob1"
    iob2 = "iob2"


class OnMismatch(str, Enum):
    error = "error"
    count = "count"


class Discontinuous(str, Enum):
    drop = "drop"
    extent = "extent"
    fragments = "fragments"


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="Corpus file or directory (brat: a directory of .txt + .ann).", exists=True),
    output_path: Path = typer.Argument(..., help="Output DocBin, e.g. corpus/train.spacy."),
    fmt: Format = typer.Option(..., "--format", "-f", help="Input format."),
    scheme: Scheme = typer.Option(Scheme.auto, "--scheme", help="CoNLL tag scheme; auto reports IOB1 if any chunk starts with I-."),
    on_mismatch: OnMismatch = typer.Option(OnMismatch.error, "--on-mismatch", help="Offsets that do not match the text: fail (error) or drop and count (count)."),
    sentences: bool = typer.Option(True, "--sentences/--no-sentences", help="Split PubTator/brat documents into sentences (never inside a mention)."),
    n_sents: int = typer.Option(10, "--n-sents", help="CoNLL: sentences per Doc (0 = one Doc per -DOCSTART- section or file)."),
    discontinuous: Discontinuous = typer.Option(Discontinuous.drop, "--discontinuous", help="brat discontinuous mentions: drop, extent or fragments (all counted)."),
    lang: str = typer.Option("en", "--lang", help="Language of the blank tokenizer used to build the Docs."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the summary as JSON here."),
) -> None:
    """Convert a PubTator, CoNLL (IOB1/IOB2) or brat corpus to a .spacy DocBin."""
    nlp = spacy.blank(lang)
    summary = ConversionSummary(source=str(input_path))
    docbin = DocBin(store_user_data=True)
    docs = iter_docs(
        fmt.value, input_path, nlp, summary=summary, on_mismatch=on_mismatch.value, sentences=sentences,
        scheme=scheme.value, n_sents=n_sents, discontinuous=discontinuous.value,
    )
    with conversion_errors():
        for doc in tqdm(docs, desc=f"Converting {input_path.name}", unit="doc", leave=False, disable=None):
            docbin.add(doc)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(output_path)
    summary.print()
    msg.good(f"Saved {summary.documents} documents to {output_path}")
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
