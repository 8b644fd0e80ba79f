"""The downstream probe: CoNLL reading, BIO spans, a linear tagger on frozen states that learns what the
states hold, the paired bootstrap, the probe inside pre-training (logged, on the card, losses untouched)
and `electramed probe`."""
import json
import re
from pathlib import Path

import pytest
from conftest import save_tiny_bert
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.formats.iob import tags_to_spans
from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.log import LOG, read_log
from electramed_spacy.pretraining.probe import paired_bootstrap, probe, read_conll
from electramed_spacy.pretraining.train import pretrain

from .conftest import tiny_config

CHEMICALS = {"naloxone", "clonidine", "cisplatin", "aspirin"}
DISEASES = {"nephrotoxicity", "stroke"}
SENTENCES = [
    "naloxone reverses the effect of clonidine .",
    "cisplatin induced nephrotoxicity in patients with lung cancer .",
    "aspirin reduces the risk of stroke .",
    "clonidine and aspirin reduces the effect of cisplatin .",
    "patients with stroke and nephrotoxicity .",
]


def tag(word: str) -> str:
    return "B-Chemical" if word in CHEMICALS else "B-Disease" if word in DISEASES else "O"


def write_conll(path: Path, sentences=SENTENCES, repeat: int = 4) -> Path:
    blocks = ["\n".join(f"{w}\t{tag(w)}" for w in s.split()) for s in sentences * repeat]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf8")
    return path


@pytest.fixture
def bert_dir(tmp_path):
    words = sorted({w for s in SENTENCES for w in s.split()})
    return save_tiny_bert(tmp_path / "bert", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)


def test_read_conll(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("Aspirin\tB-Chemical\nworks\tO\n\n\nStroke\tB-Disease\r\n", encoding="utf8")
    assert read_conll(path) == [(["Aspirin", "works"], ["B-Chemical", "O"]), (["Stroke"], ["B-Disease"])]
    assert read_conll(path, limit=1) == [(["Aspirin", "works"], ["B-Chemical", "O"])]
    path.write_text("Aspirin\tS-Chemical\n", encoding="utf8")
    with pytest.raises(PretrainError, match=r"a.tsv:1: tag 'S-Chemical' is not an IOB tag. Expected O, B-LABEL or I-LABEL"):
        read_conll(path)
    path.write_text("Aspirin\n", encoding="utf8")
    with pytest.raises(PretrainError, match=r"a.tsv:1: 1 column\(s\) in 'Aspirin'"):
        read_conll(path)


def test_read_conll_reads_what_the_corpus_reader_reads(tmp_path):
    """One parser: CoNLL-2003 space-separated columns and -DOCSTART- lines, which the probe once refused,
    give the probe the sentences the corpus reader puts in its Docs."""
    import spacy

    from electramed_spacy.corpora.conll import read_conll as read_conll_docs

    path = tmp_path / "c.conll"
    path.write_text("-DOCSTART- -X- O O\n\nAspirin NN B-NP B-Chemical\nhelps VB B-VP O\n\n"
                    "-DOCSTART- -X- O O\n\nStroke NN B-NP I-Disease\n", encoding="utf8")
    sentences = read_conll(path)
    assert sentences == [(["Aspirin", "helps"], ["B-Chemical", "O"]), (["Stroke"], ["I-Disease"])]
    docs = list(read_conll_docs(path, spacy.blank("en").vocab))
    assert [[t.text for t in sent] for doc in docs for sent in doc.sents] == [words for words, _ in sentences]
    path.write_text("\n\n", encoding="utf8")
    with pytest.raises(PretrainError, match="no sentences"):
        read_conll(path)
    with pytest.raises(PretrainError, match="does not exist"):
        read_conll(tmp_path / "missing.tsv")


def test_bio_spans():
    spans = lambda tags: set(tags_to_spans(tags))  # noqa: E731 (the probe scores span sets)
    assert spans(["B-C", "I-C", "O", "B-D"]) == {(0, 2, "C"), (3, 4, "D")}
    assert spans(["I-C", "I-C", "B-C", "I-D"]) == {(0, 2, "C"), (2, 3, "C"), (3, 4, "D")}  # as conlleval
    assert spans(["O", "O"]) == set()


def test_probe_learns_what_the_states_hold_and_repeats_itself(tmp_path, bert_dir):
    """Entity types here are word identities, which a random encoder's states keep: the tagger finds them."""
    data = read_conll(write_conll(tmp_path / "p.tsv"))
    model, tok = AutoModel.from_pretrained(bert_dir), AutoTokenizer.from_pretrained(bert_dir)
    counts = []
    first = probe(model, tok, data, data, steps=200, lr=0.05, counts=counts)
    assert first["probe_f"] == 1.0 and first["probe_token_acc"] == 1.0
    assert len(counts) == len(data) and sum(c[1] for c in counts) == 4 * 11
    model.train()  # as inside pre-training: probed in eval mode, then given back in training mode
    again = probe(model, tok, data, data, steps=200, lr=0.05)
    assert {k: v for k, v in again.items() if k != "probe_s"} == {k: v for k, v in first.items() if k != "probe_s"}
    assert model.training


def test_words_past_max_length_are_tagged_o(tmp_path, bert_dir):
    data = read_conll(write_conll(tmp_path / "p.tsv"))
    model, tok = AutoModel.from_pretrained(bert_dir), AutoTokenizer.from_pretrained(bert_dir)
    short = probe(model, tok, data, data, steps=200, lr=0.05, max_length=4)  # [CLS] + 2 words + [SEP]
    assert short["probe_r"] < 0.5 and short["probe_dev_words"] == sum(len(w) for w, _ in data)


def test_paired_bootstrap():
    same = [(1, 2, 2), (0, 1, 0), (2, 2, 3)] * 10
    assert paired_bootstrap(same, same) == {"diff": 0.0, "low": 0.0, "high": 0.0, "samples": 1000}
    better = [(2, 2, 2), (1, 1, 1), (2, 2, 2)] * 10
    result = paired_bootstrap(same, better)
    assert result["diff"] > 0 and 0 < result["low"] <= result["diff"] <= result["high"]


def test_probe_in_pretraining_is_logged_and_leaves_the_losses_alone(corpus, tmp_path):
    conll = str(write_conll(tmp_path / "p.tsv"))
    base = {"training.max_steps": 5, "training.checkpoint_every": 100}
    pretrain(tiny_config(corpus, tmp_path / "plain", **base))
    probed = {**base, "probe.train": conll, "probe.dev": conll, "probe.every": 2, "probe.steps": 20}
    pretrain(tiny_config(corpus, tmp_path / "probed", **probed))
    plain, log = read_log(tmp_path / "plain" / LOG), read_log(tmp_path / "probed" / LOG)
    assert [r["step"] for r in log if "probe_f" in r] == [0, 2, 4, 5]  # start, every 2, the last step
    steps = [r for r in log if "gen_loss" in r]
    assert [(r["step"], r["loss"], r["gen_acc"]) for r in steps] == [(r["step"], r["loss"], r["gen_acc"]) for r in plain]
    card = json.loads((tmp_path / "probed" / "model" / "electramed_card.json").read_text(encoding="utf8"))
    assert [s for s, _ in card["probe_f_by_step"]["f"]] == [0, 2, 4, 5]
    assert json.loads((tmp_path / "plain" / "model" / "electramed_card.json").read_text())["probe_f_by_step"] is None


def test_probe_config_errors(corpus, tmp_path):
    with pytest.raises(PretrainError, match=r"\[probe\] every = 5 needs train and dev"):
        tiny_config(corpus, tmp_path / "run", **{"probe.every": 5})
    with pytest.raises(PretrainError, match="Probe data .* does not exist"):
        pretrain(tiny_config(corpus, tmp_path / "run", **{"probe.every": 5, "probe.train": "no.tsv", "probe.dev": "no.tsv"}))
    assert not (tmp_path / "run").exists(), "bad probe data fails before any work"


def test_probe_cli(tmp_path, bert_dir):
    conll = write_conll(tmp_path / "p.tsv")
    out = tmp_path / "probe.json"
    result = CliRunner().invoke(app, ["probe", f"a={bert_dir}", f"b={bert_dir}", "--train", str(conll), "--dev", str(conll),
                                      "--steps", "50", "--output", str(out)])
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", result.output).split())
    assert result.exit_code == 0, text
    assert "F1 - a [95%]" in text and "+0.00 [+0.00, +0.00]" in text
    scores = json.loads(out.read_text(encoding="utf8"))
    assert scores["encoders"]["a"]["probe_f"] == scores["encoders"]["b"]["probe_f"]
    result = CliRunner().invoke(app, ["probe", str(tmp_path / "nowhere"), "--train", str(conll), "--dev", str(conll)])
    assert result.exit_code == 1 and "is not a directory" in " ".join(result.output.split())
