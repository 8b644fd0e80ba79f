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


def _weights(model):
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def test_frozen_encoder_steps_train_the_head_first(tiny_electra):
    """electramed.frozen_encoder_steps.v1 (LP-FT): for the first `steps` updates the transformer keeps its weights
    while the NER head learns; from then on the transformer is updated again with its configured grad_factor."""
    import pytest
    import torch

    from electramed_spacy.errors import ElectraMedError

    spacy.util.fix_random_seed(0)
    config = load_config(CONFIGS / "ner.cfg", overrides={
        "paths.model": str(tiny_electra), "training.before_update": {
            "@callbacks": "electramed.frozen_encoder_steps.v1", "steps": 2}}, interpolate=True)
    before_update = spacy.util.registry.resolve({"cb": config["training"]["before_update"]})["cb"]
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = _examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    optimizer.learn_rate = 1e-3
    optimizer.L2 = 0.0  # decoupled weight decay shrinks every weight by lr x L2 per update, gradient or not
    encoder = next(n for n in nlp.get_pipe("transformer").model.walk() if n.shims).shims[0]._model
    head = nlp.get_pipe("ner").model
    start, head_start = _weights(encoder), head.get_ref("lower").get_param("W").copy()
    for step in range(2):
        before_update(nlp, {"step": step, "epoch": 0})
        nlp.update(examples, sgd=optimizer, drop=0.0)
    assert all(torch.equal(start[k], v) for k, v in _weights(encoder).items())  # frozen
    assert not (head.get_ref("lower").get_param("W") == head_start).all()  # the head learned
    for step in (2, 3):  # (the first update after the frozen ones can pass a zero gradient, like any first one)
        before_update(nlp, {"step": step, "epoch": 0})
        nlp.update(examples, sgd=optimizer, drop=0.0)
    assert any(not torch.equal(start[k], v) for k, v in _weights(encoder).items())  # fine-tuned from step 2 on
    listener_out = next(n for n in head.walk() if n.name == "trfs2arrays")
    assert listener_out.attrs["grad_factor"] == 1.0  # ner.cfg's grad_factor, restored
    with pytest.raises(ElectraMedError, match="E062"):
        spacy.util.registry.resolve({"cb": {"@callbacks": "electramed.frozen_encoder_steps.v1", "steps": -1}})


def test_frozen_then_linear_is_one_switch_for_lp_ft():
    """ner.cfg's schedule reads `frozen_steps` from [training.before_update] steps: 0 gives warmup_linear.v1 itself,
    100 gives the LP-FT schedule the README measured (constant_then.v1 2e-3 for 100 updates, then warmup_linear over 200)."""
    from itertools import islice

    import pytest
    from thinc.api import constant_then, warmup_linear

    from electramed_spacy.errors import ElectraMedError

    def rates(overrides, n=300):
        config = load_config(CONFIGS / "ner.cfg", overrides=overrides, interpolate=True)
        schedule = spacy.util.registry.resolve({"s": config["training"]["optimizer"]["learn_rate"]})["s"]
        return list(islice(schedule, n))

    shared = {"training.max_steps": 300, "training.optimizer.learn_rate.warmup_steps": 30,
              "training.optimizer.learn_rate.initial_rate": 1e-4}
    assert rates(shared) == list(islice(warmup_linear(1e-4, 30, 300), 300))
    lp_ft = rates({**shared, "training.before_update.steps": 100})
    assert lp_ft == list(islice(constant_then(0.002, 100, warmup_linear(1e-4, 30, 200)), 300))
    assert lp_ft[99] == 0.002 and lp_ft[100] == 0.0 and lp_ft[130] == pytest.approx(1e-4) and lp_ft[-1] > 0.0
    with pytest.raises(ElectraMedError, match="E062"):
        rates({**shared, "training.before_update.steps": 301})
