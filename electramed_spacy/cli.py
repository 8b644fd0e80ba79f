"""The `electramed` command line (typer).

Each area registers its commands on `app` in its own module under
`electramed_spacy/commands/`; this module only assembles them. Scripts and
project.yml call these commands; the logic lives in the package.
"""
import importlib

import typer

app = typer.Typer(
    name="electramed",
    help="ELECTRAMed for spaCy: corpora, vocabulary, ELECTRA pre-training, relations and QA.",
    no_args_is_help=True,
    add_completion=False,
)



@app.callback()
def _main() -> None:
    """ELECTRAMed for spaCy (arXiv:2104.09585). Run `electramed COMMAND --help` for details."""


# Modules that add commands to `app`; a module that is not written yet is skipped.
COMMAND_MODULES = ["corpora", "pretrain", "relations", "qa", "package"]
for _module in COMMAND_MODULES:
    try:
        importlib.import_module(f"electramed_spacy.commands.{_module}")
    except ModuleNotFoundError as err:
        if err.name != f"electramed_spacy.commands.{_module}":
            raise


def main() -> None:
    app()


if __name__ == "__main__":
    main()
