"""`electramed.Tokenizer.v1`: spaCy's default tokenizer, refusing text which is not valid Unicode.

A Python str can hold lone surrogates ("\\ud800", e.g. from JSON with a broken UTF-16
escape, or bytes decoded with errors="surrogateescape"). spaCy's own tokenizer fails
on them while hashing the token strings (`UnicodeEncodeError` from spacy/strings.pyx,
with an offset into the token, not the text), before any component of an ELECTRAMed
pipeline (ELECTRA, arXiv:2003.10555; ELECTRAMed, arXiv:2104.09585) runs. This
tokenizer checks the text first and raises `ElectraMedError` [E010] with the character
offset and the fix; valid text is tokenized exactly as by `spacy.Tokenizer.v1`.

Select it in a config with::

    [nlp.tokenizer]
    @tokenizers = "electramed.Tokenizer.v1"
"""
import re
from typing import Callable

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import registry

from ..errors import ElectraMedError, Errors

SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str) -> None:
    """Raise ElectraMedError [E010] if `text` holds a surrogate code point."""
    if not text.isascii():
        match = SURROGATE.search(text)
        if match:
            raise ElectraMedError(Errors.E010.format(code=ord(match.group()), offset=match.start()))


class ElectraMedTokenizer(Tokenizer):
    """spaCy's `Tokenizer` with `check_text` first; serialises like it."""

    def __call__(self, text: str) -> Doc:
        check_text(text)
        return super().__call__(text)


@registry.tokenizers("electramed.Tokenizer.v1")
def create_tokenizer() -> Callable[[Language], Tokenizer]:
    make_spacy_tokenizer = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make_tokenizer(nlp: Language) -> Tokenizer:
        base = make_spacy_tokenizer(nlp)
        return ElectraMedTokenizer(
            nlp.vocab, rules=base.rules, prefix_search=base.prefix_search, suffix_search=base.suffix_search,
            infix_finditer=base.infix_finditer, token_match=base.token_match, url_match=base.url_match,
            faster_heuristics=base.faster_heuristics,
        )

    return make_tokenizer
