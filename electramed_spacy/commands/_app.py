"""The `electramed` typer app that every command module registers on (spaCy's `cli/_util.py` pattern).

`electramed_spacy/commands/*.py` do `from ._app import app` and add their commands;
`electramed_spacy/cli.py` imports them all and exposes `app` (the console script).
This module and the command modules import only typer/wasabi and light helpers at
the top: spaCy, thinc, torch and transformers are imported inside the command bodies,
so `electramed pretrain` (pure PyTorch, ELECTRA arXiv:2003.10555) and `--help` start
without loading spaCy.
"""
import typer

app = typer.Typer(
    name="electramed",
    help="ELECTRAMed for spaCy: corpora, vocabulary, ELECTRA pre-training, relations and QA.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from ..about import __version__

        typer.echo(f"electramed-spacy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """ELECTRAMed for spaCy (arXiv:2104.09585). Run `electramed COMMAND --help` for details."""
    import logging
    import sys

    logger = logging.getLogger("electramed")  # what `auto` settings chose and why, on stderr
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("i %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
