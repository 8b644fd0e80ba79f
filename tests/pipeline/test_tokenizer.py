"""electramed.Tokenizer.v1: spaCy's tokenizer, plus one clear error for text that is not valid Unicode."""
import pickle

import pytest
import spacy

from electramed_spacy.errors import ElectraMedError
from electramed_spacy.pipeline.tokenizer import ElectraMedTokenizer

CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "electramed.Tokenizer.v1"}}}
TEXT = "Dr. Smith's patients (n=12) got 3.5mg/kg i.v.; see https://example.org/x, don't stop ß\u00a0İ."


def test_tokenizes_like_spacy_and_round_trips(tmp_path):
    nlp, reference = spacy.blank("en", config=CONFIG), spacy.blank("en")
    assert isinstance(nlp.tokenizer, ElectraMedTokenizer)
    assert [t.text for t in nlp(TEXT)] == [t.text for t in reference(TEXT)]
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert isinstance(loaded.tokenizer, ElectraMedTokenizer)
    assert [t.text for t in loaded(TEXT)] == [t.text for t in reference(TEXT)]
    assert isinstance(pickle.loads(pickle.dumps(nlp)).tokenizer, ElectraMedTokenizer)  # nlp.pipe(n_process=2)


@pytest.mark.parametrize("text,code,offset", [("\ud800", "D800", 0), ("Aspirin \udfff and warfarin", "DFFF", 8)])
def test_lone_surrogate_raises_one_clear_error(text, code, offset):
    # where the crash came from: spaCy's own tokenizer, hashing token strings, before any component
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        spacy.blank("en")(text)
    nlp = spacy.blank("en", config=CONFIG)
    for run in (lambda: nlp(text), lambda: list(nlp.pipe(["fine", text]))):
        with pytest.raises(ElectraMedError, match=rf"\[E010\] .*lone surrogate U\+{code} at character {offset}\. Clean it"):
            run()
    cleaned = text.encode("utf-8", "replace").decode("utf-8")  # the fix the message suggests
    assert len(nlp(cleaned).text) == len(text)
