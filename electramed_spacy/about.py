__title__ = "electramed-spacy"
__version__ = "0.1.0"
