"""configs/ner.cfg end to end on a tiny ELECTRA: overfit, round trip, evaluate."""
import random
from pathlib import Path

import spacy
from spacy.training import Example
from spacy.util import load_config

from electramed_spacy.corpora.common import doc_from_offsets

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TRAIN = [
    ("Cisplatin induced nephrotoxicity in rats.", [(0, 9, "Chemical"), (18, 32, "Disease")]),
    ("Haloperidol caused dyskinesia.", [(0, 11, "Chemical"), (19, 29, "Disease")]),
    ("Lithium and hypothyroidism were linked.", [(0, 7, "Chemical"), (12, 26, "Disease")]),
]


def _nlp_from_config(model_dir):
    config = load_config(CONFIGS / "ner.cfg", overrides={"paths.model": str(model_dir)}, interpolate=True)
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def _examples(nlp):
    return [Example(nlp.make_doc(text), doc_from_offsets(nlp.make_doc, text, ents)[0]) for text, ents in TRAIN]


def test_ner_overfits_and_round_trips(tiny_electra, tmp_path):
    spacy.util.fix_random_seed(0)
    random.seed(0)
    nlp = _nlp_from_config(tiny_electra)
    examples = _examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    optimizer.learn_rate = 1e-3
    first = None
    for _ in range(60):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses, drop=0.0)
        first = losses["ner"] if first is None else first
    assert losses["ner"] < first / 10
    for text, ents in TRAIN:
        doc = nlp(text)
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == ents

    nlp.to_disk(tmp_path / "ner")
    nlp2 = spacy.load(tmp_path / "ner")
    for text, _ in TRAIN:
        assert [(e.text, e.label_) for e in nlp(text).ents] == [(e.text, e.label_) for e in nlp2(text).ents]

    scores = nlp2.evaluate(_examples(nlp2))
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"Chemical", "Disease"}


def test_mixed_empty_and_whitespace_batches(tiny_electra):
    """nlp.pipe and nlp.evaluate on batches mixing empty, whitespace and real texts (issue 10, D3)."""
    nlp = _nlp_from_config(tiny_electra)
    examples = _examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    texts = ["", TRAIN[0][0], "   ", TRAIN[1][0]]
    docs = list(nlp.pipe(texts, batch_size=4))
    assert [d.text for d in docs] == texts
    assert [len(d.ents) for d in (docs[0], docs[2])] == [0, 0]
    for text in texts:
        nlp(text)
    blank = [Example(nlp.make_doc(t), doc_from_offsets(nlp.make_doc, t, [])[0]) for t in ("", "   ")]
    scores = nlp.evaluate([blank[0], examples[0], blank[1], examples[1]], batch_size=4)
    assert "ents_f" in scores


def test_training_configs_are_complete():
    """Every training config passes spaCy's config validation (what `spacy debug config` checks)."""
    from spacy.cli.debug_config import debug_config

    for name in ["ner.cfg", "ner_cnn.cfg"]:
        # Raises (SystemExit via wasabi) on an incomplete or invalid config.
        debug_config(CONFIGS / name, overrides={"paths.train": "x.spacy", "paths.dev": "x.spacy"})
