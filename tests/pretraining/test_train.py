"""The training loop: loss falls, kill + resume == uninterrupted, export loads in transformers and spaCy."""
import copy
import json
import os
import signal

import pytest
import torch

from electramed_spacy.pretraining.checkpoint import latest_checkpoint
from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.log import LOG, read_log
from electramed_spacy.pretraining.model import build_pretrainer, get_lr, param_groups
from electramed_spacy.pretraining.train import pretrain

from .conftest import tiny_config, write_corpus

LOSS_KEYS = ("loss", "gen_loss", "disc_loss", "gen_acc", "disc_acc")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run shared by the export tests: 40 steps, high learning rate, tiny corpus."""
    tmp = tmp_path_factory.mktemp("pretrain")
    corpus = write_corpus(tmp / "corpus.txt")
    cfg = tiny_config(corpus, tmp / "run", **{"training.max_steps": 40, "training.lr": 0.003, "training.warmup_steps": 4})
    summary = pretrain(cfg)
    return cfg, summary, tmp


def test_loss_falls(trained):
    cfg, summary, tmp = trained
    log = read_log(tmp / "run" / LOG)
    assert len(log) == 40
    first = sum(r["gen_loss"] for r in log[:5]) / 5
    last = sum(r["gen_loss"] for r in log[-5:]) / 5
    assert last < first - 0.5, f"generator loss should fall on a 7-sentence corpus: {first:.2f} -> {last:.2f}"
    assert sum(r["gen_acc"] for r in log[-5:]) / 5 > sum(r["gen_acc"] for r in log[:5]) / 5
    assert (tmp / "run" / "curves.png").stat().st_size > 0
    assert (tmp / "run" / "config.cfg").exists()
    assert summary["tokens_seen"] > 0 and summary["stopped_by"] == "max_steps"


def test_kill_and_resume_gives_the_same_losses(corpus, tmp_path):
    extra = {"training.max_steps": 10, "training.checkpoint_every": 100}
    pretrain(tiny_config(corpus, tmp_path / "straight", **extra), export=False)

    def kill_at_4(step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    cfg = tiny_config(corpus, tmp_path / "killed", **extra)
    summary = pretrain(cfg, on_step=kill_at_4)
    assert summary["step"] == 4 and summary["stopped_by"] == "SIGTERM"
    assert latest_checkpoint(tmp_path / "killed").name == "step_00000004"
    assert not (tmp_path / "killed" / "model").exists(), "an interrupted run is not exported"
    pretrain(cfg, resume=True)
    straight, resumed = read_log(tmp_path / "straight" / LOG), read_log(tmp_path / "killed" / LOG)
    assert [r["step"] for r in resumed] == list(range(1, 11))
    for a, b in zip(straight, resumed):
        for key in LOSS_KEYS + ("lr", "tokens"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["step"], key)


def test_resume_and_restart_errors(corpus, tmp_path, trained):
    cfg, _, tmp = trained
    with pytest.raises(PretrainError, match="no checkpoint under"):
        pretrain(tiny_config(corpus, tmp_path / "fresh"), resume=True)
    with pytest.raises(PretrainError, match="already holds checkpoints.*--resume"):
        pretrain(cfg)
    # a different vocabulary than the checkpoint's
    other = tmp_path / "vocab.txt"
    other.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "aspirin", "works"]) + "\n", encoding="utf8")
    bad = dict(cfg, paths={**cfg["paths"], "vocab": str(other)})
    with pytest.raises(PretrainError, match=r"do not match the checkpoint .*step_00000040.*changed since .*vocab_file"):
        pretrain(bad, resume=True)


def test_export_loads_in_transformers(trained):
    from transformers import AutoModel, AutoTokenizer, ElectraForMaskedLM, ElectraModel

    cfg, summary, tmp = trained
    model_dir = tmp / "run" / "model"
    assert summary["model_dir"] == str(model_dir)
    model = AutoModel.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    assert isinstance(model, ElectraModel) and tok.is_fast and tok.do_lower_case
    for d in (model_dir, model_dir / "generator"):  # safetensors: loading the weights runs no code
        assert (d / "model.safetensors").exists() and not list(d.glob("*.bin"))
    assert tok.model_max_length == cfg["model"]["max_position_embeddings"]
    out = model(**tok("Aspirin reduces stroke.", return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 32 and torch.isfinite(out).all()
    gen = ElectraForMaskedLM.from_pretrained(str(model_dir / "generator"))
    assert torch.equal(gen.electra.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
    card = (model_dir / "README.md").read_text()
    for word in ("corpus", "steps", "tokens_seen", "final_disc_loss", "vocabulary"):
        assert word in card


def test_export_loads_in_spacy_transformers(trained):
    spacy = pytest.importorskip("spacy")
    _, _, tmp = trained
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(tmp / "run" / "model")}})
    nlp.initialize()
    doc = nlp("Cisplatin induced nephrotoxicity.")
    assert doc._.trf_data.tensors[0].shape[-1] == 32


def test_model_ties_and_sizes(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "x")
    model = build_pretrainer(cfg, vocab_size=200, pad_token_id=0)
    emb = model.discriminator.electra.embeddings
    assert model.generator.electra.embeddings is emb
    assert model.generator.generator_lm_head.weight is emb.word_embeddings.weight
    assert model.generator.config.hidden_size == 16  # generator_size 0.5 of 32
    decay, no_decay = param_groups(model, 0.01)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for p in decay["params"] + no_decay["params"])
    assert n == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()), "tied weights counted once"


def test_sdpa_attention_matches_eager(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "x", **{"model.sdpa_attention": False})
    torch.manual_seed(0)
    eager = build_pretrainer(cfg, vocab_size=200, pad_token_id=0).eval()
    cfg["model"]["sdpa_attention"] = True
    torch.manual_seed(0)
    fused = build_pretrainer(cfg, vocab_size=200, pad_token_id=0).eval()
    ids = torch.randint(5, 200, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    a = eager.discriminator(ids, attention_mask=mask).logits
    b = fused.discriminator(ids, attention_mask=mask).logits
    assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)


def test_get_lr_schedule():
    kw = dict(lr=1.0, warmup_steps=10, max_steps=110, min_lr=0.0)
    assert get_lr(0, **kw) == pytest.approx(0.1)
    assert get_lr(9, **kw) == pytest.approx(1.0)
    assert get_lr(60, **kw) == pytest.approx(0.5)
    assert get_lr(110, **kw) == 0.0 and get_lr(500, **kw) == 0.0
    lrs = [get_lr(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_optimizer_is_fused_and_resumes_fused_from_an_unfused_checkpoint():
    """The fused AdamW gives the default AdamW's update; a checkpoint written by the default one resumes fused."""
    from electramed_spacy.pretraining.train import build_optimizer, load_optimizer_state

    t_cfg = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01)
    torch.manual_seed(0)
    a, b = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    plain = torch.optim.AdamW(param_groups(a, 0.01), lr=0.01, eps=1e-6)  # torch's default: the per-tensor loop
    a(torch.randn(3, 8)).sum().backward()
    plain.step()
    fused = build_optimizer(b, t_cfg, torch.device("cpu"))
    b.load_state_dict(a.state_dict())
    load_optimizer_state(fused, copy.deepcopy(plain.state_dict()))  # as from disk: no tensors shared with `plain`
    assert all(group["fused"] for group in fused.param_groups)
    x = torch.randn(3, 8)
    for opt, model in ((plain, a), (fused, b)):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6) and torch.allclose(a.bias, b.bias, atol=1e-6)


def test_continued_pretraining_from_electra_and_bert(trained, tmp_path):
    """[model] init_from: our own export (ELECTRA + generator/) and a BERT encoder both continue training."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    cfg, _, tmp = trained
    corpus = cfg["paths"]["corpus"]
    exported = tmp / "run" / "model"
    summary = pretrain(tiny_config(corpus, tmp_path / "cont", **{"model.init_from": str(exported), "training.max_steps": 3}), export=False)
    assert summary["step"] == 3
    tok = AutoTokenizer.from_pretrained(str(exported))
    bert_dir = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(bert_dir)
    tok.save_pretrained(bert_dir)
    summary = pretrain(tiny_config(corpus, tmp_path / "bert_cont", **{"model.init_from": str(bert_dir), "training.max_steps": 3}))
    assert summary["step"] == 3 and (tmp_path / "bert_cont" / "model" / "config.json").exists()
    # a vocabulary of another size than the checkpoint's
    other = tmp_path / "vocab.txt"
    other.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "aspirin"]) + "\n", encoding="utf8")
    with pytest.raises(PretrainError, match=r"vocabulary \(6 tokens\) does not match the checkpoint"):
        pretrain(tiny_config(corpus, tmp_path / "bad", **{"model.init_from": str(bert_dir), "paths.vocab": str(other)}))


def test_whole_word_masking_trains_and_needs_wordpiece_continuations(corpus, tmp_path):
    summary = pretrain(tiny_config(corpus, tmp_path / "wwm", **{"objective.whole_word": True, "training.max_steps": 6}))
    log = read_log(tmp_path / "wwm" / LOG)
    assert summary["step"] == 6 and all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    card = json.loads((tmp_path / "wwm" / "model" / "electramed_card.json").read_text(encoding="utf8"))
    assert card["masking"] == "15% of whole words"
    words = tmp_path / "words.txt"  # a vocabulary of whole words only: nothing to group pieces by
    words.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "aspirin", "reduces", "the"]) + "\n",
                     encoding="utf8")
    with pytest.raises(PretrainError, match="whole_word = true needs a WordPiece vocabulary"):
        pretrain(tiny_config(corpus, tmp_path / "words", **{"objective.whole_word": True, "paths.vocab": str(words)}),
                 export=False)
