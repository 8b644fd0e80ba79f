"""The `electramed` command line (typer), ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585).

The app lives in `electramed_spacy/commands/_app.py`; each area registers its commands
on it in its own module under `electramed_spacy/commands/`. This module only imports
those modules and exposes `app` (the `electramed` console script, setup.cfg). No
module of the package imports this one. Scripts and project.yml call these commands;
the logic lives in the package.
"""
from .commands import annotate, assets, corpora, model_card, package, pretrain, qa, relations, train  # noqa: F401  (each registers its commands)
from .commands._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
