"""The electramed_relation_extractor pipe on a tiny random ELECTRA (spancat-style tests)."""
import json

import numpy
import pytest
import spacy
from re_helpers import TRAIN_DATA, make_gold, rel_tuples, tiny_nlp
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import fix_random_seed

from electramed_spacy.corpora.gold_entities import copy_gold_entities, create_gold_entity_corpus
from electramed_spacy.ml.relations.candidates import configure_relation_candidates, configure_relation_candidates_v2
from electramed_spacy.ml.relations.pooled import PAIR_REPRESENTATIONS

SCORE_KEYS = {"rel_micro_p", "rel_micro_r", "rel_micro_f", "rel_f_per_type"}


def _examples(nlp, data=TRAIN_DATA):
    return [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in data]


def _gold_input(nlp, data=TRAIN_DATA):
    """Examples whose predicted Docs carry the gold entities (relations on gold entities)."""
    return [copy_gold_entities(eg) for eg in _examples(nlp, data)]


def test_overfitting_IO(tiny_electra, tmp_path):
    fix_random_seed(0)
    nlp = tiny_nlp(tiny_electra)
    train = _examples(nlp)
    optimizer = nlp.initialize(lambda: train)
    rel = nlp.get_pipe("relation_extractor")
    assert rel.labels == ("advise", "effect", "mechanism")
    losses_seen = []
    for _ in range(60):
        losses = {}
        nlp.update(train, sgd=optimizer, losses=losses)
        losses_seen.append(losses["relation_extractor"])
    assert losses_seen[-1] < losses_seen[0] / 10
    n_pairs = sum(len(rel.get_candidates(eg.reference)) for eg in train)
    assert losses_seen[-1] / n_pairs < 0.1  # the loss is summed over candidate pairs

    docs = [eg.predicted for eg in _gold_input(nlp)]
    predicted = list(nlp.pipe(docs))
    for (text, ents, rels), doc in zip(TRAIN_DATA, predicted):
        assert rel_tuples(doc) == sorted((ents[h][0], ents[t][0], label) for h, t, label in rels)
        assert all(0.5 < r.score <= 1.0 for r in doc._.relations)

    nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert nlp2.get_pipe("relation_extractor").cfg == rel.cfg
    docs2 = list(nlp2.pipe([eg.predicted for eg in _gold_input(nlp2)]))
    for d1, d2 in zip(predicted, docs2):
        assert rel_tuples(d1) == rel_tuples(d2)
        numpy.testing.assert_allclose([r.score for r in d1._.relations], [r.score for r in d2._.relations], rtol=1e-4)

    scores = nlp.evaluate(_gold_input(nlp))
    assert SCORE_KEYS <= set(scores)
    assert scores["rel_micro_f"] == 1.0
    assert set(scores["rel_f_per_type"]) == {"advise", "effect", "mechanism"}

    # the same through the command line: gold-entity evaluation and HTML from a text
    from typer.testing import CliRunner

    from electramed_spacy.cli import app

    gold_path = tmp_path / "gold.spacy"
    DocBin(docs=[eg.reference for eg in train], store_user_data=True).to_disk(gold_path)
    result = CliRunner().invoke(app, ["evaluate-relations", str(tmp_path / "pipeline"), str(gold_path), "--output", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "m.json").read_text(encoding="utf8"))
    assert scores["rel_micro_f"] == 1.0 and scores["protocol"] == "gold entities"
    assert scores["model"] == str(tmp_path / "pipeline") and scores["data"] == str(gold_path)  # what was scored
    result = CliRunner().invoke(app, ["visualize-relations", str(tmp_path / "pipeline"), str(gold_path), "--gold-entities", "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "mechanism" in (tmp_path / "r.html").read_text(encoding="utf8")


@pytest.mark.parametrize("representation", PAIR_REPRESENTATIONS)
def test_pair_representations_train_and_predict(tiny_electra, representation):
    fix_random_seed(0)
    nlp = tiny_nlp(tiny_electra, model={"pair_representation": representation})
    train = _examples(nlp)
    optimizer = nlp.initialize(lambda: train)
    first = nlp.update(train, sgd=optimizer)["relation_extractor"]
    for _ in range(4):
        last = nlp.update(train, sgd=optimizer)["relation_extractor"]
    assert last < first
    rel = nlp.get_pipe("relation_extractor")
    docs = [nlp.get_pipe("transformer")(eg.predicted) for eg in _gold_input(nlp)]
    candidates, scores = rel.predict(docs)
    assert scores.shape == (sum(len(c) for c in candidates), 4)
    numpy.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_representation_is_explained():
    from thinc.api import Linear

    from electramed_spacy.ml.relations.pooled import build_pooled_relation_model

    with pytest.raises(ValueError, match="pair_representation 'markers' is not known"):
        build_pooled_relation_model(Linear(), pair_representation="markers")


def test_zero_and_one_entity_and_empty_batch(tiny_electra):
    fix_random_seed(0)
    nlp = tiny_nlp(tiny_electra)
    nlp.initialize(lambda: _examples(nlp))
    rel = nlp.get_pipe("relation_extractor")
    none = make_gold(nlp, "No drugs are named here.", [], [])
    one = make_gold(nlp, "Aspirin alone was given.", [("Aspirin", "drug")], [])
    for doc in (none, one):
        docs = [nlp.get_pipe("transformer")(doc)]
        candidates, scores = rel.predict(docs)
        assert candidates == [[]] and scores.shape == (0, 4)
        assert list(nlp(doc)._.relations) == []
    assert rel.predict([])[1].shape == (0, 4)
    losses = nlp.update([Example(nlp.make_doc(d.text), d) for d in (none, one)])
    assert losses["relation_extractor"] == 0.0
    assert rel.update([]) == {"relation_extractor": 0.0}
    empty = Doc(nlp.vocab, words=[])
    assert rel.update([Example(empty, empty)]) == {"relation_extractor": 0.0}


def test_mixed_empty_and_whitespace_batches(tiny_electra):
    """nlp.pipe and nlp.evaluate on batches mixing empty, whitespace and real Docs (issue 10, D3):
    the transformer crashed on the empty Doc ([E1002]) and the pair features on its (0, 0) vectors."""
    fix_random_seed(0)
    nlp = tiny_nlp(tiny_electra)
    nlp.initialize(lambda: _examples(nlp))
    rel = nlp.get_pipe("relation_extractor")
    rel.model.get_ref("output_layer").set_param("b", numpy.asarray([-1.0, 1.0, 1.0, 1.0], dtype="f"))  # predict relations
    real = [eg.predicted for eg in _gold_input(nlp)][:2]
    docs = list(nlp.pipe([nlp.make_doc(""), real[0], nlp.make_doc("   "), real[1]], batch_size=4))
    assert [len(d._.relations) for d in docs] == [0, 1, 0, 1]
    blank = [Example(nlp.make_doc(t), make_gold(nlp, t, [], [])) for t in ("", "   ")]
    gold = _gold_input(nlp)
    scores = nlp.evaluate([blank[0], gold[0], blank[1], gold[1]], batch_size=4)
    assert SCORE_KEYS <= set(scores)


def test_predict_does_not_mutate(tiny_electra):
    nlp = tiny_nlp(tiny_electra)
    nlp.initialize(lambda: _examples(nlp))
    rel = nlp.get_pipe("relation_extractor")
    docs = [nlp.get_pipe("transformer")(eg.predicted) for eg in _gold_input(nlp)]
    data_before = [doc._.relation_data for doc in docs]
    rel.predict(docs)
    assert [doc._.relation_data for doc in docs] == data_before


def test_long_document_beyond_window(tiny_electra):
    """A Doc longer than the transformer window (32 tokens here): every candidate gets a score."""
    fix_random_seed(0)
    # the entities are ~150 tokens apart in a Doc without sentences: lift that distance limit
    nlp = tiny_nlp(tiny_electra, window=32, stride=24, candidates={"max_distance_without_sentences": 0})
    nlp.initialize(lambda: _examples(nlp))
    filler = " ".join(["the patients were monitored closely"] * 30)
    text = f"Ketoconazole increases {filler} and midazolam levels rise with {filler} aspirin use."
    doc = make_gold(nlp, text, [("Ketoconazole", "drug"), ("midazolam", "drug"), ("aspirin", "drug")], [(0, 2, "mechanism")])
    assert len(doc) > 300
    eg = copy_gold_entities(Example(nlp.make_doc(text), doc))
    trf_doc = nlp.get_pipe("transformer")(eg.predicted)
    assert trf_doc._.trf_data is not None
    candidates, scores = nlp.get_pipe("relation_extractor").predict([trf_doc])
    assert len(candidates[0]) == 3 and scores.shape == (3, 4)
    assert numpy.isfinite(scores).all()
    losses = nlp.update([Example(nlp.make_doc(text), doc)])
    assert numpy.isfinite(losses["relation_extractor"]) and losses["relation_extractor"] > 0


def test_relations_survive_docbin_and_to_disk(tiny_electra, tmp_path):
    nlp = tiny_nlp(tiny_electra, threshold=0.0)
    nlp.initialize(lambda: _examples(nlp))
    doc = nlp(_gold_input(nlp)[0].predicted)
    # force one known relation so the round trip has something to carry
    from electramed_spacy.doc.relations import Relation, set_relations

    set_relations(doc, [Relation(doc.ents[0], doc.ents[1], "mechanism", 0.75)])
    doc_bin = DocBin(docs=[doc], store_user_data=True)
    back = list(DocBin().from_bytes(doc_bin.to_bytes()).get_docs(nlp.vocab))[0]
    assert rel_tuples(back) == [("Ketoconazole", "midazolam", "mechanism")]
    assert back._.relations[0].score == pytest.approx(0.75)
    doc.to_disk(tmp_path / "doc")
    again = Doc(nlp.vocab).from_disk(tmp_path / "doc")
    assert rel_tuples(again) == rel_tuples(doc)


def test_labels_and_initialize_errors(tiny_electra):
    nlp = tiny_nlp(tiny_electra)
    rel = nlp.get_pipe("relation_extractor")
    with pytest.raises(ValueError, match="no-relation class"):
        rel.add_label("NONE")
    no_rel = [Example(nlp.make_doc(t), make_gold(nlp, t, e, [])) for t, e, _ in TRAIN_DATA]
    with pytest.raises(ValueError, match="found no relation labels"):
        nlp.initialize(lambda: no_rel)
    nlp2 = tiny_nlp(tiny_electra)
    nlp2.initialize(lambda: _examples(nlp2))
    with pytest.raises(ValueError, match="already initialized"):
        nlp2.get_pipe("relation_extractor").add_label("int")


def test_initialize_with_given_labels(tiny_electra):
    nlp3 = tiny_nlp(tiny_electra)
    nlp3.config["initialize"]["components"]["relation_extractor"] = {"labels": ["int", "effect"]}
    nlp3.initialize(lambda: _examples(nlp3))
    assert nlp3.get_pipe("relation_extractor").classes == ["NONE", "int", "effect"]


@pytest.mark.parametrize("configure", [configure_relation_candidates, configure_relation_candidates_v2])
def test_candidates_options(configure):
    nlp = spacy.blank("en")
    text = "Aspirin and warfarin interact. Lithium with EGFR and gefitinib."
    doc = nlp.make_doc(text)
    labels = {"Aspirin": "drug", "warfarin": "drug", "Lithium": "CHEMICAL", "EGFR": "GENE", "gefitinib": "CHEMICAL"}
    doc.ents = [doc.char_span(text.index(w), text.index(w) + len(w), label=lab) for w, lab in labels.items()]
    for token in doc:
        token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    texts = lambda pairs: [(doc[a:b].text, doc[c:d].text) for a, b, c, d in pairs]  # noqa: E731
    same = configure()(doc)
    assert texts(same) == [("Aspirin", "warfarin"), ("Lithium", "EGFR"), ("Lithium", "gefitinib"), ("EGFR", "gefitinib")]
    assert len(configure(same_sentence=False)(doc)) == 10
    assert texts(configure(same_sentence=False, max_distance=2)(doc)) == [("Aspirin", "warfarin"), ("Lithium", "EGFR"), ("EGFR", "gefitinib")]
    directed = configure(type_pairs=[["CHEMICAL", "GENE"]], symmetric=False)
    assert texts(directed(doc)) == [("Lithium", "EGFR"), ("gefitinib", "EGFR")]
    assert configure(symmetric=False).symmetric is False
    sym = configure(type_pairs=[["CHEMICAL", "GENE"]], symmetric=True)
    assert texts(sym(doc)) == [("Lithium", "EGFR"), ("EGFR", "gefitinib")]
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        configure(max_distance=-1)
    with pytest.raises(ValueError, match=r"\[head_label, tail_label\]"):
        configure(type_pairs=[["CHEMICAL"]])


def _dense_doc(nlp, n_tokens: int) -> Doc:
    """n_tokens tokens, an entity on every 4th, no sentence boundaries (e.g. text without a sentencizer)."""
    words = ["aspirin", "and", "the", "warfarin"] * (n_tokens // 4)
    return Doc(nlp.vocab, words=words, ents=["B-drug" if i % 4 == 0 else "O" for i in range(len(words))])


def test_candidates_without_sentences_are_bounded():
    """Issue 10, D4: on a Doc without sentence boundaries v1 pairs every entity with every other
    (quadratic: 3.5 GB at 2,000 tokens); v2 limits the distance and caps the pairs."""
    nlp = spacy.blank("en")
    doc = _dense_doc(nlp, 2000)  # 500 entities
    assert not doc.has_annotation("SENT_START")
    assert len(configure_relation_candidates()(doc)) == 500 * 499 // 2
    near = configure_relation_candidates_v2(max_pairs=0)
    pairs = near(doc)
    assert pairs and all(ts - hs <= 100 for hs, _, ts, _ in pairs)
    assert len(pairs) == sum(min(25, 499 - i) for i in range(500))  # 25 entities within 100 tokens
    assert len(near(_dense_doc(nlp, 20000))) <= 25 * 5000  # linear in length: at most 25 per entity
    assert len(configure_relation_candidates_v2(max_distance=8, max_pairs=0)(doc)) == 2 * 500 - 3  # the smaller limit
    with pytest.warns(UserWarning, match=r"max_pairs=5000 reached in a 20000-token Doc: pairs with a head from token \d+ on"):
        assert len(configure_relation_candidates_v2()(_dense_doc(nlp, 20000))) == 5000
    for key in ("max_distance_without_sentences", "max_pairs"):
        with pytest.raises(ValueError, match=f"{key} must be >= 0"):
            configure_relation_candidates_v2(**{key: -1})


def test_default_candidates_are_v2_and_v1_pipelines_load(tiny_electra, tmp_path):
    """New pipes (factory default, configs/rel.cfg, configs/rel_pooled.cfg) use the bounded v2;
    a pipeline saved with v1 candidates still loads and keeps v1."""
    from pathlib import Path

    from spacy.util import load_config

    configs = Path(__file__).resolve().parents[2] / "configs"
    for name in ("rel.cfg", "rel_pooled.cfg"):
        candidates = load_config(configs / name)["components"]["relation_extractor"]["candidates"]
        assert candidates["@misc"] == "electramed.relation_candidates.v2"
        assert (candidates["max_distance_without_sentences"], candidates["max_pairs"]) == (100, 5000)
    assert tiny_nlp(tiny_electra).get_pipe_config("relation_extractor")["candidates"]["@misc"] == "electramed.relation_candidates.v2"
    nlp = tiny_nlp(tiny_electra, candidates={"@misc": "electramed.relation_candidates.v1"})
    nlp.initialize(lambda: _examples(nlp))
    nlp.to_disk(tmp_path / "v1")
    nlp2 = spacy.load(tmp_path / "v1")
    assert nlp2.get_pipe_config("relation_extractor")["candidates"]["@misc"] == "electramed.relation_candidates.v1"
    assert len(nlp2.get_pipe("relation_extractor").get_candidates(_dense_doc(nlp2, 400))) == 100 * 99 // 2


def test_relation_memory_grows_linearly_with_doc_length(tiny_electra):
    """Pair features pool with prefix sums: memory O(tokens + pairs), where the dense pooling matrix
    was O(tokens * pairs). Measured with tracemalloc (numpy reports its buffers to it)."""
    import tracemalloc

    nlp = tiny_nlp(tiny_electra, candidates={"max_pairs": 0})
    nlp.initialize(lambda: _examples(nlp))
    rel = nlp.get_pipe("relation_extractor")
    peaks = []
    for n_tokens in (600, 6000):
        doc = nlp.get_pipe("transformer")(_dense_doc(nlp, n_tokens))
        tracemalloc.start()
        candidates, scores = rel.predict([doc])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert scores.shape == (len(candidates[0]), 4) and numpy.isfinite(scores).all()
    assert peaks[0] < 16e6  # a dense (pairs * 3, tokens) float32 matrix alone is 3,500 * 3 * 600 * 4 = 25 MB
    assert peaks[1] < 15 * peaks[0]


def test_gold_entity_corpus_copies_ents_and_sentences(tmp_path):
    nlp = spacy.blank("en")
    gold = make_gold(nlp, *TRAIN_DATA[0][:2], TRAIN_DATA[0][2])
    DocBin(docs=[gold], store_user_data=True).to_disk(tmp_path / "x.spacy")
    (eg,) = list(create_gold_entity_corpus(str(tmp_path / "x.spacy"))(nlp))
    assert [(e.text, e.label_) for e in eg.predicted.ents] == [("Ketoconazole", "drug"), ("midazolam", "drug")]
    assert not eg.predicted._.relations and eg.reference._.relations


@pytest.mark.parametrize("representation", PAIR_REPRESENTATIONS)
def test_pair_features_gradient(representation):
    """Backprop of the pair features matches finite differences (token vectors -> pair vectors)."""
    from thinc.api import Model

    from electramed_spacy.ml.relations.pooled import pair_features

    captured = {}

    def forward(model, X, is_train):
        def backprop(dY):
            captured["d"] = dY
            return X

        return X, backprop

    rng = numpy.random.default_rng(0)
    tokvecs = [rng.normal(size=(7, 3)).astype("f"), rng.normal(size=(4, 3)).astype("f")]
    candidates = [[(0, 2, 4, 5), (5, 7, 1, 2)], [(0, 1, 2, 4)]]
    layer = pair_features(Model("fake_tok2vec", forward), representation)
    feats, backprop = layer((tokvecs, candidates), is_train=True)
    R = rng.normal(size=feats.shape).astype("f")
    backprop(R)
    eps = 1e-2
    for d, tv in enumerate(tokvecs):
        for i in range(tv.shape[0]):
            for j in range(tv.shape[1]):
                old = tv[i, j]
                tv[i, j] = old + eps
                up = float((layer((tokvecs, candidates), is_train=False)[0] * R).sum())
                tv[i, j] = old - eps
                down = float((layer((tokvecs, candidates), is_train=False)[0] * R).sum())
                tv[i, j] = old
                assert captured["d"][d][i, j] == pytest.approx((up - down) / (2 * eps), abs=2e-3)


def test_negative_weight_loss(tiny_electra):
    nlp = tiny_nlp(tiny_electra, negative_weight=0.5)
    rel = nlp.get_pipe("relation_extractor")
    rel.cfg["labels"] = ["effect"]
    scores = numpy.asarray([[0.5, 0.5], [0.25, 0.75]], dtype="f")
    loss, d = rel._loss(scores, [0, 1])
    # weights 0.5 (no-relation row) and 1, summed over pairs (not averaged)
    assert loss == pytest.approx(-(0.5 * numpy.log(0.5) + numpy.log(0.75)), rel=1e-5)
    numpy.testing.assert_allclose(d, [[-0.25, 0.25], [0.25, -0.25]], rtol=1e-5)
    with pytest.raises(ValueError, match="negative_weight must be > 0"):
        tiny_nlp(tiny_electra, negative_weight=0.0)


def _head_and_encoder_steps(tiny_electra, scale):
    """|change| of the head's weights after one SGD step, and of the encoder's after the step
    that applies the same (first) gradient."""
    from thinc.api import SGD

    fix_random_seed(0)
    nlp = tiny_nlp(tiny_electra, head_lr_scale=scale)
    examples = _gold_input(nlp)
    nlp.initialize(lambda: examples)
    rel = nlp.get_pipe("relation_extractor")
    out = rel.model.get_ref("output_layer")
    hidden = next(node for node in rel.model.walk() if node.name == "maxout")
    torch_model = next(n for n in nlp.get_pipe("transformer").model.walk() if n.shims).shims[0]._model
    enc_before = [p.detach().clone() for p in torch_model.parameters()]
    # the softmax starts at zero, which would stop every gradient below it on the first step
    out.set_param("W", numpy.random.default_rng(0).normal(0, 0.1, out.get_param("W").shape).astype("f"))
    W0, H0 = out.get_param("W").copy(), hidden.get_param("W").copy()
    sgd = SGD(0.01, L2=0.0, grad_clip=0.0)
    nlp.update(examples, sgd=sgd, drop=0.0)
    head = numpy.abs(out.get_param("W") - W0).sum(), numpy.abs(hidden.get_param("W") - H0).sum()
    # spaCy steps the transformer before its listeners backprop, so the first step's encoder
    # gradient is applied during the second update
    nlp.update(examples, sgd=sgd, drop=0.0)
    enc_delta = sum(float((p.detach() - q).abs().sum()) for p, q in zip(torch_model.parameters(), enc_before))
    return (*head, enc_delta)


def test_head_lr_scale_steps_only_the_head(tiny_electra):
    out1, hid1, enc1 = _head_and_encoder_steps(tiny_electra, 1.0)
    out10, hid10, enc10 = _head_and_encoder_steps(tiny_electra, 10.0)
    assert out1 > 0 and hid1 > 0 and enc1 > 0
    # the first step's gradients are identical, so the head moves exactly 10x as far ...
    assert out10 == pytest.approx(10 * out1, rel=1e-3)
    assert hid10 == pytest.approx(10 * hid1, rel=1e-3)
    # ... and the shared encoder (stepped by the transformer pipe) as far as before
    assert enc10 == pytest.approx(enc1, rel=1e-3)
    with pytest.raises(ValueError, match="head_lr_scale must be > 0"):
        tiny_nlp(tiny_electra, head_lr_scale=0.0)


def test_v1_head_still_loads(tiny_electra, tmp_path):
    """Pipelines saved with the first head (ReLU, RelationModel.v1) keep loading and predicting."""
    fix_random_seed(0)
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_mean.v1"}}
    nlp = tiny_nlp(tiny_electra, model={"@architectures": "electramed.RelationModel.v1", "pair_representation": "mean",
                                        "tok2vec": listener})
    train = _gold_input(nlp)
    optimizer = nlp.initialize(lambda: train)
    for _ in range(5):
        nlp.update(train, sgd=optimizer)
    assert any(node.name == "relu" for node in nlp.get_pipe("relation_extractor").model.walk())
    nlp.to_disk(tmp_path / "v1")
    nlp2 = spacy.load(tmp_path / "v1")
    assert nlp2.get_pipe_config("relation_extractor")["model"]["@architectures"] == "electramed.RelationModel.v1"
    docs = [eg.predicted for eg in _gold_input(nlp2)]
    scores1 = nlp.get_pipe("relation_extractor").predict([nlp.get_pipe("transformer")(d) for d in docs])[1]
    scores2 = nlp2.get_pipe("relation_extractor").predict([nlp2.get_pipe("transformer")(d) for d in docs])[1]
    numpy.testing.assert_allclose(scores1, scores2, rtol=1e-4)
