"""WordPiece vocabularies: the same corpus and settings give byte-identical files, so two runs with one seed are equal."""
from transformers import AutoTokenizer

from electramed_spacy.pretraining.log import LOG, read_log
from electramed_spacy.pretraining.train import pretrain
from electramed_spacy.pretraining.vocab import SPECIAL_TOKENS

from .conftest import tiny_config


def test_same_corpus_and_seed_give_the_same_vocab_and_losses(corpus, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        pretrain(tiny_config(corpus, run, **{"training.max_steps": 3}), export=False)
    a, b = ({p.name: p.read_bytes() for p in (run / "vocab").iterdir()} for run in runs)
    assert "vocab.txt" in a and a == b
    tok = AutoTokenizer.from_pretrained(str(runs[0] / "vocab"))
    assert set(tok.get_added_vocab()) == set(SPECIAL_TOKENS), "only the BERT special tokens are special"
    assert len(tok) == 200 and any(t.startswith("##") for t in tok.tokenize("nephrotoxicities"))
    drop = ("tokens_per_s", "elapsed_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in read_log(runs[0] / LOG)] == \
           [{k: v for k, v in r.items() if k not in drop} for r in read_log(runs[1] / LOG)]
