"""The one error type pre-training raises for input a user can fix (config, corpus, vocab, checkpoint)."""
from ..errors import ElectraMedError


class PretrainError(ElectraMedError):
    """Bad pre-training input: the message says what, where (file:line, config key) and how to fix it."""
