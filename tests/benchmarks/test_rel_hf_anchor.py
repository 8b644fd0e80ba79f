"""benchmarks/relations/rel_hf_anchor.py (the plain transformers DDI-2013 recipe) on three tiny DDI-like XML
documents and a random 1-layer BERT built here: pairs and labels, @DRUG$ masking, a 2-step run."""
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from conftest import load_benchmark, save_tiny_bert

# (document id, folder, sentences); a sentence is (text, entities [(mention, charOffset or None)], pairs)
# with pairs (e1 index, e2 index, ddi, type); charOffset None = computed from the first occurrence
DOCS = [
    ("DDI-DrugBank.d1", "DrugBank", [
        ("Aspirin increases the effect of warfarin and heparin.",
         [("Aspirin", None), ("warfarin", None), ("heparin", None)],
         [(0, 1, "true", "effect"), (0, 2, "false", None), (1, 2, "false", None)]),
        ("No interactions were reported.", [], []),
    ]),
    ("DDI-MedLine.d2", "MedLine", [
        # "calcium" is nested in "calcium channel blockers" and written as a discontinuous mention
        ("Calcium channel blockers reduce digoxin clearance.",
         [("Calcium channel blockers", None), ("Calcium", "0-6;16-23"), ("digoxin", None)],
         [(0, 1, "false", None), (0, 2, "true", "mechanism"), (1, 2, "true", "advise")]),
    ]),
    ("DDI-DrugBank.d3", "DrugBank", [
        ("Lithium and digoxin interact.", [("Lithium", None), ("digoxin", None)], [(0, 1, "true", "int")]),
    ]),
]
WORDS = ("aspirin increases the effect of warfarin and heparin no interactions were reported calcium channel "
         "blockers reduce digoxin clearance lithium interact drug").split()


def write_docs(directory: Path) -> None:
    for doc_id, folder, sentences in DOCS:
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<document id="{doc_id}">']
        for s, (text, entities, pairs) in enumerate(sentences):
            sid = f"{doc_id}.s{s}"
            lines.append(f'<sentence id="{sid}" text="{text}">')
            for e, (mention, offset) in enumerate(entities):
                if offset is None:
                    start = text.index(mention)
                    offset = f"{start}-{start + len(mention) - 1}"  # DDI end offsets are inclusive
                lines.append(f'<entity id="{sid}.e{e}" charOffset="{offset}" type="drug" text="{mention}"/>')
            for p, (e1, e2, ddi, rtype) in enumerate(pairs):
                typ = f' type="{rtype}"' if rtype else ""
                lines.append(f'<pair id="{sid}.p{p}" e1="{sid}.e{e1}" e2="{sid}.e{e2}" ddi="{ddi}"{typ}/>')
            lines.append("</sentence>")
        lines.append("</document>")
        (directory / folder).mkdir(parents=True, exist_ok=True)
        (directory / folder / f"{doc_id}.xml").write_text("\n".join(lines) + "\n", encoding="utf8")


@pytest.fixture(scope="module")
def anchor():
    return load_benchmark("rel_hf_anchor")


@pytest.fixture
def ddi_dir(tmp_path):
    write_docs(tmp_path / "ddi")
    return tmp_path / "ddi"


@pytest.fixture
def bert_dir(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "@", "$"] + WORDS
    return save_tiny_bert(tmp_path / "bert", vocab, layers=1, intermediate=37, max_positions=128)


def test_pairs_labels_and_masking(anchor, ddi_dir):
    instances, documents = anchor.read_ddi(ddi_dir)
    assert documents == ["DDI-DrugBank.d1", "DDI-DrugBank.d3", "DDI-MedLine.d2"]  # sorted file order
    assert anchor.counts(instances) == {"pairs": 7, "positive": 4, "documents_with_pairs": 3}
    got = [(x["doc"], x["text"], x["label"]) for x in instances]
    assert got == [
        ("DDI-DrugBank.d1", "@DRUG$ increases the effect of @DRUG$ and heparin.", "effect"),
        ("DDI-DrugBank.d1", "@DRUG$ increases the effect of warfarin and @DRUG$.", "NONE"),
        ("DDI-DrugBank.d1", "Aspirin increases the effect of @DRUG$ and @DRUG$.", "NONE"),
        ("DDI-DrugBank.d3", "@DRUG$ and @DRUG$ interact.", "int"),
        # overlapping targets (nested, the inner one discontinuous): their union is replaced once
        ("DDI-MedLine.d2", "@DRUG$ reduce digoxin clearance.", "NONE"),
        ("DDI-MedLine.d2", "@DRUG$ reduce @DRUG$ clearance.", "mechanism"),
        ("DDI-MedLine.d2", "@DRUG$ channel blockers reduce @DRUG$ clearance.", "advise"),
    ]
    # identical spans and the argument order do not matter
    assert anchor.mask_pair("ab cd ef", (3, 5), (3, 5)) == "ab @DRUG$ ef"
    assert anchor.mask_pair("ab cd ef", (6, 8), (0, 2)) == "@DRUG$ cd @DRUG$"
    train, dev = anchor.split_by_document(instances, documents, 0.34, seed=0)
    assert len({x["doc"] for x in dev}) == 1 and len(train) + len(dev) == 7
    assert not {x["doc"] for x in train} & {x["doc"] for x in dev}
    assert anchor.split_by_document(instances, documents, 0.34, seed=0) == (train, dev)


def test_scoring_excludes_none(anchor):
    gold = ["NONE", "effect", "mechanism", "NONE", "advise"]
    pred = ["effect", "effect", "NONE", "NONE", "int"]
    s = anchor.score(gold, pred)
    # tp 1 (effect); fp 2 (effect on NONE, int on advise); fn 2 (mechanism, advise)
    assert s["p"] == pytest.approx(1 / 3) and s["r"] == pytest.approx(1 / 3)
    assert s["per_type_f"]["effect"] == pytest.approx(2 / 3) and s["per_type_f"]["int"] == 0.0


def test_two_step_run_writes_json(anchor, ddi_dir, bert_dir, tmp_path):
    instances, documents = anchor.read_ddi(ddi_dir)
    n_train = len(anchor.split_by_document(instances, documents, 0.34, seed=0)[0])
    batch_size = math.ceil(n_train / 2)  # one epoch = 2 steps
    output = tmp_path / "out" / "anchor.json"
    anchor.run(ddi_dir, ddi_dir, str(bert_dir), output, seed=0, epochs=1.0, dev_fraction=0.34,
               batch_size=batch_size, check_counts=False)
    report = json.loads(output.read_text(encoding="utf8"))
    assert report["train_steps"] == report["planned_steps"] == 2
    assert report["counts"]["test"]["pairs"] == 7 and report["bf16"] is True and report["threads"] >= 1
    assert report["encoder"] == str(bert_dir) and isinstance(report["command"], list)
    for split in ("dev", "test"):
        scores = [report[split][k] for k in ("p", "r", "f")] + list(report[split]["per_type_f"].values())
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in scores), report[split]
    assert report["train_seconds"] > 0 and report["train_pairs_per_second"] > 0


def test_ner_loading_leaves_the_classifier_init_unchanged(anchor, ddi_dir, bert_dir, tmp_path, monkeypatch):
    """--ner loads a spaCy pipeline before training (its transformer draws from torch's generator); the
    classifier must still start from the seed's state, so --seed S scores the same with or without --ner."""
    import torch

    states, create = [], anchor.AutoModelForSequenceClassification.from_pretrained

    def from_pretrained(*args, **kwargs):
        states.append(torch.random.get_rng_state())
        return create(*args, **kwargs)

    def load_ner(ner):
        torch.rand(5)  # as building a spacy-transformers model does
        return object()

    monkeypatch.setattr(anchor.AutoModelForSequenceClassification, "from_pretrained", from_pretrained)
    monkeypatch.setattr(anchor, "load_ner", load_ner)
    monkeypatch.setattr(anchor, "end_to_end", lambda *args: {"f": 0.0, "ents_f": 0.0})
    for ner in (None, "ner"):
        anchor.run(ddi_dir, ddi_dir, str(bert_dir), tmp_path / f"{ner}.json", seed=3, epochs=0.01, dev_fraction=0.34,
                   check_counts=False, ner=ner, e2e_docs=None if ner is None else tmp_path / "docs.spacy")
    assert len(states) == 2 and torch.equal(states[0], states[1])


def test_chemprot_pairs_negatives_and_misses(anchor, tmp_path):
    """PURE form: every CHEMICAL -> GENE pair of a sentence is an instance (NONE without a CPR relation);
    overlapping mentions give no instance, and a relation no instance carries counts as a miss."""
    record = {"doc_key": "1", "sentences": [["Aspirin", "inhibits", "COX", "-", "1", "."],
                                            ["NO", "synthase", "binds", "NO", "and", "CYP", "."]],
              "ner": [[[0, 0, "CHEMICAL"], [2, 4, "GENE"]],
                      [[6, 7, "GENE"], [6, 6, "CHEMICAL"], [9, 9, "CHEMICAL"], [11, 11, "GENE"]]],
              "relations": [[[0, 0, 2, 4, "CPR:4"]], [[6, 6, 6, 7, "CPR:9"], [9, 9, 11, 11, "CPR:3"]]]}
    path = tmp_path / "chemprot.json"
    path.write_text(json.dumps(record) + "\n", encoding="utf8")
    instances, documents, missed = anchor.read_chemprot(path)
    assert documents == ["1"]
    assert [(x["text"], x["label"]) for x in instances] == [
        ("@CHEMICAL$ inhibits @GENE$ .", "CPR:4"),
        # chemical "NO" (6) inside gene "NO synthase" (6-7): that pair overlaps, so no instance
        ("@CHEMICAL$ synthase binds NO and @GENE$ .", "NONE"),
        ("@GENE$ binds @CHEMICAL$ and CYP .", "NONE"),
        ("NO synthase binds @CHEMICAL$ and @GENE$ .", "CPR:3"),
    ]
    assert missed == [{"doc": "1", "label": "CPR:9"}]
    # the miss counts as a false negative of its type
    gold = [x["label"] for x in instances]
    s = anchor.score(gold, gold, anchor.CHEMPROT_LABELS[1:], Counter(m["label"] for m in missed))
    assert s["p"] == 1.0 and s["r"] == pytest.approx(2 / 3) and s["per_type_f"]["CPR:9"] == 0.0 and s["missed"] == 1


def test_end_to_end_reads_pairs_of_predicted_mentions(anchor, ddi_dir, tmp_path, monkeypatch):
    """--ner: every pair of predicted mentions of a sentence is classified and scored by the pipe's scorer
    against the gold relations of the DocBin (a missed mention loses its relations)."""
    import spacy

    from electramed_spacy.commands.corpora import convert

    convert([ddi_dir], tmp_path / "test.spacy", "ddi")
    ner = spacy.blank("en")
    ruler = ner.add_pipe("entity_ruler", name="ner")  # the nested, discontinuous "Calcium" is not found
    ruler.add_patterns([{"label": "drug", "pattern": w} for w in ("Aspirin", "warfarin", "heparin", "digoxin",
                                                                   "Lithium", "Calcium channel blockers")])
    ner.to_disk(tmp_path / "ner")
    seen = []

    def predict(model, tokenizer, instances, labels, bf16, desc=""):
        seen.extend(x["text"] for x in instances)
        return ["effect" if x["text"].startswith("@DRUG$ increases the effect of @DRUG$ and") else
                "int" if x["text"] == "@DRUG$ reduce @DRUG$ clearance." else "NONE" for x in instances]

    monkeypatch.setattr(anchor, "predict", predict)

    class Config:
        id2label = dict(enumerate(anchor.DDI_LABELS))

    model = type("Model", (), {"config": Config})()
    nlp = anchor.load_ner(str(tmp_path / "ner"))
    assert nlp.pipe_names[0] == "sentencizer"  # added: the ruler pipeline sets no sentence boundaries
    result = anchor.end_to_end(model, None, nlp, str(tmp_path / "ner"), tmp_path / "test.spacy", bf16=False)
    assert result["pairs"] == 5 == len(seen)  # 3 in d1's first sentence, 1 in d2, 1 in d3; none across sentences
    assert "@DRUG$ and @DRUG$ interact." in seen
    # gold: effect (Aspirin, warfarin), mechanism (blockers, digoxin), advise (Calcium, digoxin), int (Lithium, digoxin);
    # predicted: effect right, int on the mechanism pair wrong
    assert result["p"] == pytest.approx(0.5) and result["r"] == pytest.approx(0.25)
    assert result["per_type_f"]["effect"] == pytest.approx(1.0) and result["per_type_f"]["mechanism"] == 0.0
    assert result["ents_f"] == 1.0  # the 6 mentions of doc.ents (the nested "Calcium" is kept out of it)
    with pytest.raises(ValueError, match="--ner"):
        anchor.run(ddi_dir, ddi_dir, "unused", tmp_path / "x.json", ner=str(tmp_path / "ner"))
    # a pipeline without NER fails before the encoder is loaded ("unused" is no model) and before any training
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(ValueError, match="no 'ner' component"):
        anchor.run(ddi_dir, ddi_dir, "unused", tmp_path / "x.json", ner=str(tmp_path / "blank"),
                   e2e_docs=tmp_path / "test.spacy", check_counts=False)
    assert not (tmp_path / "x.json").exists()
