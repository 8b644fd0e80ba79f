"""[vocab] extend: frequent corpus words a given vocabulary splits into pieces are added as whole
words, old tokens keep their ids and embeddings, new embeddings start as the mean of their old pieces."""
import json

import pytest
import torch
from conftest import save_tiny_bert

from electramed_spacy.pretraining.config import load_config
from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.model import build_pretrainer
from electramed_spacy.pretraining.prepare import prepare_data, prepare_vocab
from electramed_spacy.pretraining.train import pretrain
from electramed_spacy.pretraining.vocab import read_extension, words_to_add

from .conftest import TINY_CFG, tiny_overrides

LETTERS = list("abcdefghijklmnopqrstuvwxyz")
# whole words the checkpoint knows; every other word splits into a letter and ##letters
KNOWN = ["the", "of", "and", "in", "with", "effect", "reverses", "patients", "cancer", "lung", "risk", "stroke"]


@pytest.fixture
def bert_dir(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + KNOWN + LETTERS + ["##" + c for c in LETTERS]
    return save_tiny_bert(tmp_path / "bert", vocab)


def extend_cfg(corpus, output, bert_dir, extend, **extra):
    return load_config(TINY_CFG, tiny_overrides(corpus, output, **{
        "model.init_from": str(bert_dir), "model.generator_size": 1.0, "model.generator_layers": 1,
        "model.generator_init": "lower_layers", "vocab.extend": extend, "vocab.min_frequency": 2, **extra}))


def test_words_to_add_ranks_by_pieces_saved(bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bert_dir)
    lines = ["Ketoconazole and ketoconazole.", "ketoconazole with midazolam", "Midazolam, midazolam, midazolam.",
             "zz zz zz zz zz zz zz zz zz zz", "once-only lithium", "the effect"]
    added = words_to_add(tokenizer, lines, 10, min_frequency=2)
    # ketoconazole: 3 x 11 saved = 33; midazolam 4 x 8 = 32; zz 10 x 1 = 10; the rest once or known
    assert list(added) == ["ketoconazole", "midazolam", "zz"]
    assert tokenizer.convert_ids_to_tokens(added["midazolam"]) == ["m"] + ["##" + c for c in "idazolam"]
    assert list(words_to_add(tokenizer, lines, 1, min_frequency=2)) == ["ketoconazole"]
    assert list(words_to_add(tokenizer, lines, 10, min_frequency=4)) == ["midazolam", "zz"]  # ketoconazole: 3 times
    assert words_to_add(tokenizer, lines, 10, min_frequency=11) == {}


def test_extended_vocab_keeps_old_ids_and_tokenises_new_words_whole(corpus, tmp_path, bert_dir):
    from transformers import AutoTokenizer

    cfg = extend_cfg(corpus, tmp_path / "run", bert_dir, 3)
    vocab_dir = prepare_data(cfg, progress=False)["vocab_dir"]
    old, new = AutoTokenizer.from_pretrained(bert_dir), AutoTokenizer.from_pretrained(vocab_dir)
    extension = read_extension(vocab_dir)
    added = list(extension["added"])
    assert len(added) == 3 and extension["base_size"] == len(old) and len(new) == len(old) + 3
    assert all(new.convert_tokens_to_ids(t) == i for t, i in old.get_vocab().items())
    assert [new.convert_tokens_to_ids(w) for w in added] == list(range(len(old), len(old) + 3))
    for word in added:
        assert new.tokenize(f"the {word} .") == ["the", word, "."]
        assert len(old.tokenize(word)) > 1 and extension["added"][word] == old(word, add_special_tokens=False)["input_ids"]
    # the same settings reuse the built vocabulary; another extend rebuilds it
    assert prepare_data(cfg, progress=False)["vocab_dir"] == vocab_dir and read_extension(vocab_dir) == extension
    assert prepare_vocab(extend_cfg(corpus, tmp_path / "run", bert_dir, 1), [corpus]) == vocab_dir
    assert len(read_extension(vocab_dir)["added"]) == 1
    prepare_vocab(extend_cfg(corpus, tmp_path / "run", bert_dir, 0), [corpus])
    assert read_extension(vocab_dir) is None and len(AutoTokenizer.from_pretrained(vocab_dir)) == len(old)


def test_new_embeddings_start_as_the_mean_of_their_old_pieces(corpus, tmp_path, bert_dir):
    from transformers import AutoTokenizer, BertModel

    cfg = extend_cfg(corpus, tmp_path / "run", bert_dir, 3)
    vocab_dir = prepare_data(cfg, progress=False)["vocab_dir"]
    tokenizer = AutoTokenizer.from_pretrained(vocab_dir)
    model = build_pretrainer(cfg, vocab_size=len(tokenizer), pad_token_id=0)
    old = BertModel.from_pretrained(bert_dir).embeddings.word_embeddings.weight
    new = model.discriminator.electra.embeddings.word_embeddings.weight
    assert new.shape == (old.shape[0] + 3, old.shape[1])
    assert torch.equal(new[:old.shape[0]], old)  # old tokens keep their embeddings
    for word, pieces in read_extension(vocab_dir)["added"].items():
        torch.testing.assert_close(new[tokenizer.convert_tokens_to_ids(word)], old[pieces].mean(0))
    assert model.generator.generator_lm_head.weight is new  # the generator's softmax is tied to the new table
    assert model.generator.generator_lm_head.bias.shape == (len(tokenizer),)


def test_extended_run_trains_exports_and_reloads(corpus, tmp_path, bert_dir):
    from transformers import AutoModel, AutoTokenizer

    run = tmp_path / "run"
    summary = pretrain(extend_cfg(corpus, run, bert_dir, 2, **{"training.max_steps": 3}))
    assert summary["step"] == 3
    added = list(read_extension(run / "vocab")["added"])
    model_dir = run / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer.tokenize(added[0]) == [added[0]]
    assert AutoModel.from_pretrained(model_dir).config.vocab_size == len(tokenizer)
    card = json.loads((model_dir / "electramed_card.json").read_text(encoding="utf8"))
    assert card["vocabulary_added_words"] == 2
    # a second stage continues from the export, whose generator/ already has the extended vocabulary
    cfg2 = load_config(TINY_CFG, tiny_overrides(corpus, tmp_path / "run2", **{
        "model.init_from": str(model_dir), "model.generator_size": 1.0, "model.generator_layers": 1,
        "model.generator_init": "lower_layers", "training.max_steps": 2}))
    assert pretrain(cfg2)["step"] == 2


@pytest.mark.parametrize("overrides, match", [
    ({"vocab.extend": -1}, "must be >= 0"),
    ({"vocab.extend": 5, "model.init_from": None, "model.generator_init": "random"}, "adds words to a given vocabulary"),
])
def test_extend_misuse_fails_at_config_time(corpus, tmp_path, bert_dir, overrides, match):
    with pytest.raises(PretrainError, match=match):
        load_config(TINY_CFG, tiny_overrides(corpus, tmp_path / "run", **{
            "model.init_from": str(bert_dir), "model.generator_size": 1.0, "model.generator_layers": 1,
            "model.generator_init": "lower_layers", **overrides}))
