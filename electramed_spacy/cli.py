"""The `electramed` command line (typer).

Each area registers its commands on `app` in its own module under
`electramed_spacy/commands/`; this module only assembles them. Scripts and
project.yml call these commands; the logic lives in the package.
"""
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


# Each module adds its commands to `app` when imported.
from .commands import corpora, package, pretrain, qa, relations  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
