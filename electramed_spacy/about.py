__title__ = "electramed-spacy"
__version__ = "0.1.0"
# The published ELECTRAMed encoder (Miolo et al. 2021, arXiv:2104.09585): the one place its hub id is written.
ELECTRAMED_HUB_ID = "giacomomiolo/electramed_base_scivocab_1M"
