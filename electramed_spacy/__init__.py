"""electramed-spacy: ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) for spaCy.

Importing the package is never required: every registered function, factory and
reader is exposed through entry points (see setup.cfg), so `spacy.load` finds them.
"""
from .about import __version__  # noqa: F401
