"""Continued (domain-adaptive) pre-training from a BERT checkpoint built inside the test:
the generator warm start copies the checkpoint's lower layers, and misuse fails before any work."""
import pytest
import torch
from conftest import save_tiny_bert

from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.model import build_pretrainer
from electramed_spacy.pretraining.train import pretrain

from .conftest import tiny_config

WORDS = ["naloxone", "reverses", "the", "effect", "of", "clonidine", "cisplatin", "induced", "nephrotoxicity", "in",
         "patients", "with", "lung", "cancer", "aspirin", "reduces", "risk", "myocardial", "infarction", "and", "stroke"]


@pytest.fixture
def bert_dir(tmp_path):
    """A 3-layer, width-32 BERT with a whole-word vocabulary, saved like a hub checkpoint."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS + list("abcdefghijklmnopqrstuvwxyz")
    return save_tiny_bert(tmp_path / "bert", vocab, layers=3)


def vocab_size(path):
    return len((path / "vocab.txt").read_text(encoding="utf8").split())


def warm_cfg(corpus, output, bert_dir, **extra):
    return tiny_config(corpus, output, **{"model.init_from": str(bert_dir), "model.generator_size": 1.0,
                                          "model.generator_layers": 2, "model.generator_init": "lower_layers", **extra})


def test_generator_starts_as_the_checkpoints_lower_layers(corpus, tmp_path, bert_dir):
    from transformers import BertModel

    cfg = warm_cfg(corpus, tmp_path / "run", bert_dir)
    model = build_pretrainer(cfg, vocab_size=vocab_size(bert_dir), pad_token_id=0)
    bert = BertModel.from_pretrained(str(bert_dir))
    gen_layers, disc_layers = model.generator.electra.encoder.layer, model.discriminator.electra.encoder.layer
    assert len(gen_layers) == 2 and len(disc_layers) == 3
    for i, layer in enumerate(gen_layers):
        for (name, p), (_, q) in zip(layer.state_dict().items(), bert.encoder.layer[i].state_dict().items()):
            assert torch.equal(p, q), f"generator layer {i} {name} differs from the checkpoint's"
        # copies, not shared tensors: the two halves can diverge
        assert layer.attention.self.query.weight.data_ptr() != disc_layers[i].attention.self.query.weight.data_ptr()
    # the discriminator is the checkpoint itself; embeddings are shared with the generator
    assert torch.equal(disc_layers[2].output.dense.weight, bert.encoder.layer[2].output.dense.weight)
    assert model.generator.electra.embeddings is model.discriminator.electra.embeddings


def test_random_generator_differs_from_the_checkpoint(corpus, tmp_path, bert_dir):
    cfg = warm_cfg(corpus, tmp_path / "run", bert_dir, **{"model.generator_init": "random"})
    model = build_pretrainer(cfg, vocab_size=vocab_size(bert_dir), pad_token_id=0)
    gen, disc = model.generator.electra.encoder.layer[0], model.discriminator.electra.encoder.layer[0]
    assert not torch.equal(gen.attention.self.query.weight, disc.attention.self.query.weight)


def test_warm_started_run_trains_and_exports(corpus, tmp_path, bert_dir):
    summary = pretrain(warm_cfg(corpus, tmp_path / "run", bert_dir, **{"training.max_steps": 4}))
    assert summary["step"] == 4
    assert summary["last"]["gen_loss"] > 0 and 0 <= summary["last"]["disc_acc"] <= 1
    assert (tmp_path / "run" / "model" / "generator" / "config.json").exists()


@pytest.mark.parametrize("overrides, match", [
    ({"model.init_from": None}, "needs init_from"),
    ({"model.generator_size": 0.5}, "generator_size = 1.0"),
    ({"model.generator_layers": None}, "generator_layers set"),
    ({"model.generator_init": "lower"}, "choose one of random, lower_layers"),
])
def test_lower_layers_misuse_fails_at_config_time(corpus, tmp_path, bert_dir, overrides, match):
    with pytest.raises(PretrainError, match=match):
        warm_cfg(corpus, tmp_path / "run", bert_dir, **overrides)


def test_generator_deeper_than_the_checkpoint_is_refused(corpus, tmp_path, bert_dir):
    cfg = warm_cfg(corpus, tmp_path / "run", bert_dir, **{"model.generator_layers": 4})
    with pytest.raises(PretrainError, match="no deeper than the discriminator"):
        build_pretrainer(cfg, vocab_size=vocab_size(bert_dir), pad_token_id=0)


def test_mlm_only_trains_the_generator_and_exports_it(corpus, tmp_path, bert_dir):
    """disc_weight = 0 (the issue's MLM-only lever): a full-depth generator warm-started from the checkpoint learns
    by masked language modelling alone; the discriminator's layers never change and are not what is exported."""
    from transformers import AutoModel, BertModel

    from electramed_spacy.pretraining.log import read_log

    cfg = warm_cfg(corpus, tmp_path / "run", bert_dir, **{"model.generator_layers": 3, "objective.disc_weight": 0.0,
                                                          "training.max_steps": 4})
    summary = pretrain(cfg)
    assert summary["step"] == 4 and summary["last"]["gen_loss"] > 0
    rows = [r for r in read_log(tmp_path / "run" / "log.jsonl") if "gen_loss" in r]
    assert rows and all(r["disc_loss"] != r["disc_loss"] for r in rows)  # NaN: no discriminator was run
    bert = BertModel.from_pretrained(str(bert_dir))
    exported = AutoModel.from_pretrained(str(tmp_path / "run" / "model"))
    # what is exported is the trained generator: its layers moved away from the checkpoint's
    moved = [not torch.equal(a.output.dense.weight, b.output.dense.weight)
             for a, b in zip(exported.encoder.layer, bert.encoder.layer)]
    assert len(moved) == 3 and all(moved)
    card = (tmp_path / "run" / "model" / "README.md").read_text()
    assert "masked language modelling only" in card and "NaN" not in card
    # the frozen discriminator keeps the checkpoint's layers (only the shared embeddings learn)
    model = build_pretrainer(cfg, vocab_size=vocab_size(bert_dir), pad_token_id=0)
    assert model.mlm_only and model.encoder is model.generator.electra
    assert not any(p.requires_grad for p in model.discriminator.electra.encoder.parameters())
    assert all(p.requires_grad for p in model.discriminator.electra.embeddings.parameters())
