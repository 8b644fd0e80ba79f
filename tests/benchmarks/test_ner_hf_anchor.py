"""benchmarks/ner_accuracy/ner_hf_anchor.py: BIO decoding and exact-match scoring as spaCy counts entities,
word-budget batches, and a run on a tiny BERT that a rerun continues from its checkpoint, not from scratch."""
import json

import spacy
from conftest import load_benchmark, save_tiny_bert
from spacy.tokens import DocBin, Span

bench = load_benchmark("ner_hf_anchor")


def test_decode_as_chunks():
    assert bench.decode(["B-Chemical", "I-Chemical", "O", "I-Disease", "B-Disease", "I-Chemical"]) == [
        (0, 2, "Chemical"), (3, 4, "Disease"), (4, 5, "Disease"), (5, 6, "Chemical")]
    assert bench.decode([]) == []


def test_batches_hold_at_most_the_word_budget():
    sentences = [(0, ["w"] * n, ["O"] * n) for n in (5, 3, 9, 2, 20)]
    import random

    batches = bench.batches_by_words(sentences, 10, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(5))
    for b in batches:
        assert len(b) == 1 or sum(len(sentences[i][1]) for i in b) <= 10


def _docbin(path, nlp):
    docs = []
    for text in ["Aspirin causes ulcers .", "Warfarin treats stroke .", "Heparin and aspirin cause bleeding ."]:
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")]
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def test_a_run_scores_and_a_rerun_continues(tmp_path):
    nlp = spacy.blank("en")
    data = _docbin(tmp_path / "d.spacy", nlp)
    words = sorted({t.lower_ for d in DocBin().from_disk(data).get_docs(nlp.vocab) for t in d})
    encoder = save_tiny_bert(tmp_path / "bert", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
    args = dict(train=data, dev=data, test=data, encoder=str(encoder), run_dir=tmp_path / "run", steps=4, lr=1e-3,
                warmup=1, batch_words=8, max_length=32, eval_every=2, checkpoint_every=1, seed=0, precision="float32")
    bench.main(**args, output=tmp_path / "a.json")
    first = json.loads((tmp_path / "a.json").read_text())
    assert [row["step"] for row in first["dev_curve"]] == [2, 4]
    assert set(first["test"]) >= {"ents_f", "ents_p", "ents_r", "per_type_f", "words_per_s"}
    bench.main(**args, output=tmp_path / "b.json")  # the checkpoint is at step 4: nothing more to train
    second = json.loads((tmp_path / "b.json").read_text())
    assert second["dev_curve"] == first["dev_curve"] and second["test"]["ents_f"] == first["test"]["ents_f"]
