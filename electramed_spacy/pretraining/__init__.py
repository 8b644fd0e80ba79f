"""ELECTRA pre-training in pure PyTorch (Clark et al. 2020, arXiv:2003.10555),
as ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) used it. No spaCy import here.
"""
