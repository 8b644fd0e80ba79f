"""WordPiece vocabularies: the same corpus and settings give byte-identical files, so two runs with one seed are equal."""
import pytest
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
    drop = ("tokens_per_s", "elapsed_s", "peak_fraction")
    assert [{k: v for k, v in r.items() if k not in drop} for r in read_log(runs[0] / LOG)] == \
           [{k: v for k, v in r.items() if k not in drop} for r in read_log(runs[1] / LOG)]


def test_the_log_says_how_close_a_step_is_to_this_machines_peak(corpus, tmp_path):
    """Every logged row carries tokens/s x FLOP per token / the measured matmul peak; the FLOP count is
    6 per non-embedding weight plus attention, per encoder, plus the generator's vocabulary projection."""
    from electramed_spacy.pretraining.model import build_pretrainer
    from electramed_spacy.pretraining.train import step_flops_per_token

    cfg = tiny_config(corpus, tmp_path / "run", **{"training.max_steps": 2, "training.log_every": 1})
    pretrain(cfg, export=False)
    rows = [r for r in read_log(tmp_path / "run" / LOG) if "tokens_per_s" in r]
    assert rows and all(0 < r["peak_fraction"] < 10 for r in rows)
    raw = build_pretrainer(cfg, vocab_size=100, pad_token_id=0)
    dense = lambda m: sum(p.numel() for n, p in m.named_parameters() if "embeddings" not in n)  # noqa: E731
    expected = sum(6.0 * dense(m.electra) + 6.0 * m.config.num_hidden_layers * 16 * m.config.hidden_size
                   for m in (raw.discriminator, raw.generator)) + 6.0 * 0.15 * 100 * raw.generator.config.embedding_size
    assert step_flops_per_token(raw, seq_len=16, mask_prob=0.15) == pytest.approx(expected)
