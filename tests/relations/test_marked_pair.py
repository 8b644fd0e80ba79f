"""`electramed.MarkedPairRelationModel.v1`: pairs encoded with typed entity markers, on a tiny BERT built here."""
import re

import numpy
import pytest
import spacy
from re_helpers import TRAIN_DATA, make_gold, rel_tuples
from spacy.training import Example
from thinc.api import fix_random_seed

from electramed_spacy.corpora.gold_entities import copy_gold_entities
from electramed_spacy.errors import ElectraMedError
from electramed_spacy.ml.relations.marked_pair import (
    encode_contexts,
    encode_pairs,
    fit_window,
    mark_pair,
    mark_spans,
    marker_type,
)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, width-32 random BERT whose vocabulary knows the marker symbols and type words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny_bert")
    texts = [t for t, _, _ in TRAIN_DATA] + ["drug group brand n entity"]
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    chars = sorted({c for w in words for c in w} | set("@#*^"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    vocab += [w for w in words if w not in vocab]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    fix_random_seed(0)
    BertModel(config).save_pretrained(path)
    return path


def _nlp(model_path, **model_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("electramed_relation_extractor", name="relation_extractor", config={"model": {
        "@architectures": "electramed.MarkedPairRelationModel.v1", "name": str(model_path), "hidden_width": 32,
        "autocast": None, **model_config,
    }})
    return nlp


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_mark_pair_plain_nested_overlapping_and_identical():
    text = "aspirin and warfarin"
    marked, at = mark_pair(text, (0, 7), (12, 20), "drug", "brand")
    assert marked == " @ * drug * aspirin @  and  # ^ brand ^ warfarin # "
    assert {marked[at[k]] for k in ("head", "head_end")} == {"@"} and {marked[at[k]] for k in ("tail", "tail_end")} == {"#"}
    assert at["head"] < at["head_end"] < at["tail"] < at["tail_end"]
    # the tail first in the text (directed pairs): offsets still name the right markers
    marked, at = mark_pair(text, (12, 20), (0, 7), None, None)
    assert marked == " # aspirin #  and  @ warfarin @ "
    assert at["tail"] < at["tail_end"] < at["head"] < at["head_end"]
    # nested: the tail inside the head -> the tail's markers sit inside the head's
    marked, at = mark_pair("sodium valproate", (0, 16), (7, 16), "drug", "drug")
    assert marked == " @ * drug * sodium  # ^ drug ^ valproate #  @ "
    assert at["head"] < at["tail"] < at["tail_end"] < at["head_end"]
    # overlapping and identical spans never lose a marker
    for head, tail in [((0, 10), (7, 16)), ((0, 16), (0, 16)), ((3, 3 + 4), (0, 16))]:
        marked, at = mark_pair("sodium valproate", head, tail, "drug", "group")
        assert [marked[at[k]] for k in ("head", "head_end", "tail", "tail_end")] == ["@", "@", "#", "#"]
        assert marked.count("@") == 2 and marked.count("#") == 2
    assert marker_type("DRUG_N") == "drug n" and marker_type("") == "entity"


def test_marker_inside_a_wordpiece_and_a_spacy_token(tiny_bert):
    """A mention boundary in the middle of a word: the marker splits it, and the marker piece is found."""
    tok = _tokenizer(tiny_bert)
    marked, at = mark_pair("ketoconazole-midazolam", (0, 12), (13, 22), "drug", "drug")
    enc = tok(marked, add_special_tokens=False, return_offsets_mapping=True)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    starts = [s for s, _ in enc["offset_mapping"]]
    assert pieces[starts.index(at["head"])] == "@" and pieces[starts.index(at["tail"])] == "#"
    # through a Doc: the pair's markers land on the mentions' characters
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Give ketoconazole-midazolam now.")
    ents = [doc.char_span(5, 17, label="drug", alignment_mode="expand"), doc.char_span(18, 27, label="drug", alignment_mode="expand")]
    pairs = [(ents[0].start, ents[0].end, ents[1].start, ents[1].end)]
    seqs, pos = encode_pairs(tok, [doc], [pairs], max_length=64, context_tokens=8, typed_markers=True)
    words = tok.convert_ids_to_tokens(seqs[0])
    assert words[pos[0, 0]] == "@" and words[pos[0, 1]] == "#"
    assert words[0] == "[CLS]" and words[-1] == "[SEP]"


def test_context_is_the_sentence_and_entities_at_its_edges(tiny_bert):
    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    text = "Naloxone reverses clonidine. Warfarin and aspirin were given together."
    doc = nlp(text)
    spans = [doc.char_span(text.index(w), text.index(w) + len(w), label="drug") for w in ("Naloxone", "clonidine", "Warfarin", "aspirin")]
    doc.ents = spans
    pairs = [(spans[0].start, spans[0].end, spans[1].start, spans[1].end), (spans[2].start, spans[2].end, spans[3].start, spans[3].end)]
    seqs, pos = encode_pairs(tok, [doc], [pairs], max_length=64, context_tokens=8, typed_markers=True)
    first = tok.decode(seqs[0])
    second = tok.decode(seqs[1])
    # each pair sees its own sentence only; the head at sentence start, the tail just before the full stop
    assert "warfarin" not in first and "naloxone" not in second
    assert first.startswith("[CLS] @ * drug * naloxone @") and first.endswith("# ^ drug ^ clonidine #. [SEP]")
    for seq, (h, t) in zip(seqs, pos):
        words = tok.convert_ids_to_tokens(seq)
        assert words[h] == "@" and words[t] == "#"
    # no sentence boundaries: context_tokens on each side
    doc2 = nlp.make_doc(text)
    doc2.ents = [doc2.char_span(s.start_char, s.end_char, label="drug") for s in spans]
    seqs, _ = encode_pairs(tok, [doc2], [pairs[1:]], max_length=64, context_tokens=1, typed_markers=False)
    assert tok.decode(seqs[0]) == "[CLS]. @ warfarin @ and # aspirin # were [SEP]"


def test_sequences_longer_than_max_length_keep_both_markers(tiny_bert):
    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    filler = " ".join(["the plasma"] * 60)
    for text in (f"Naloxone {filler} reverses clonidine {filler}.",  # both mentions fit one window
                 f"Naloxone {filler} {filler} clonidine."):  # farther apart than the window: two halves
        doc = nlp.make_doc(text)
        a = doc.char_span(0, 8, label="drug")
        i = text.index("clonidine")
        b = doc.char_span(i, i + 9, label="drug")
        doc.ents = [a, b]
        seqs, pos = encode_pairs(tok, [doc], [[(a.start, a.end, b.start, b.end)]], max_length=48, context_tokens=500, typed_markers=True)
        words = tok.convert_ids_to_tokens(seqs[0])
        assert len(words) == 48
        assert words[pos[0, 0]] == "@" and words[pos[0, 1]] == "#"
        assert "naloxone" in words and "clonidine" in words
    assert fit_window(10, 2, 5, 3, 6, 20) == [(0, 10)]
    assert fit_window(100, 40, 50, 42, 52, 20) == [(37, 57)]  # centred: 3 before, 4 after
    halves = fit_window(100, 10, 90, 12, 92, 20)
    assert len(halves) == 2 and sum(e - s for s, e in halves) == 20
    assert any(s <= 10 < e for s, e in halves) and any(s <= 90 < e for s, e in halves)


@pytest.mark.parametrize("marking", ["pair", "all"])
def test_overfitting_and_round_trip(tiny_bert, tmp_path, marking):
    fix_random_seed(0)
    nlp = _nlp(tiny_bert, marking=marking)
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: train)
    rel = nlp.get_pipe("relation_extractor")
    assert rel.labels == ("advise", "effect", "mechanism")
    losses_seen = []
    for _ in range(40):
        losses = {}
        nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer, losses=losses)
        losses_seen.append(losses["relation_extractor"])
    assert losses_seen[-1] < losses_seen[0] / 10
    docs = [copy_gold_entities(eg).predicted for eg in train]
    predicted = list(nlp.pipe(docs))
    for (text, ents, rels), doc in zip(TRAIN_DATA, predicted):
        assert rel_tuples(doc) == sorted((ents[h][0], ents[t][0], label) for h, t, label in rels)
    nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    docs2 = list(nlp2.pipe([copy_gold_entities(eg).predicted for eg in train]))
    for d1, d2 in zip(predicted, docs2):
        assert rel_tuples(d1) == rel_tuples(d2)
        numpy.testing.assert_allclose([r.score for r in d1._.relations], [r.score for r in d2._.relations], rtol=1e-4)
    assert nlp.evaluate([copy_gold_entities(eg) for eg in train])["rel_micro_f"] == 1.0



def test_int8_inference_switched_on_at_load(tiny_bert, tmp_path):
    """`quantize` in spacy.load's config overrides runs the saved float32 pipeline through an int8 copy of its
    encoder (scores close, not equal); the saved weights stay float; training and bad settings are refused."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    fix_random_seed(0)
    nlp = _nlp(tiny_bert)
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: train)
    for _ in range(10):
        nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer)
    nlp.to_disk(tmp_path / "float")
    overrides = {"components": {"relation_extractor": {"model": {"quantize": "dynamic_int8_per_channel"}}}}
    int8 = spacy.load(tmp_path / "float", config=overrides)
    docs = lambda: [copy_gold_entities(eg).predicted for eg in train]  # noqa: E731
    a = [r.score for d in nlp.pipe(docs()) for r in d._.relations]
    b = [r.score for d in int8.pipe(docs()) for r in d._.relations]
    assert len(a) == len(b) > 0 and a != b
    numpy.testing.assert_allclose(a, b, atol=0.1)
    shim = int8.get_pipe("relation_extractor").model.get_ref("features").shims[0]
    assert not any(isinstance(m, DynamicQuantizedLinear) for m in shim._model.modules())  # the float one is kept
    assert any(isinstance(m, DynamicQuantizedLinear) for m in shim._int8[1].modules())  # and used through a copy
    with pytest.raises(ElectraMedError, match=r"\[E061\].*cannot be trained"):
        int8.update([copy_gold_entities(eg) for eg in train])
    with pytest.raises(ElectraMedError, match=r"\[E061\].*use one of dynamic_int8"):
        _nlp(tiny_bert, quantize="int4")
    with pytest.raises(ElectraMedError, match=r"\[E061\].*set autocast = null"):
        _nlp(tiny_bert, quantize="dynamic_int8", autocast="bfloat16")

def test_autocast_switched_at_load(tiny_bert, tmp_path):
    """A pipeline trained in bf16 autocast (configs/rel.cfg) runs in float32 when spacy.load's config
    overrides set autocast = null: the override wins over what was saved (scores close, not equal)."""
    fix_random_seed(0)
    nlp = _nlp(tiny_bert, autocast="bfloat16")
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: train)
    for _ in range(10):
        nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer)
    nlp.to_disk(tmp_path / "bf16")
    docs = lambda: [copy_gold_entities(eg).predicted for eg in train]  # noqa: E731
    scores = lambda p: [r.score for d in p.pipe(docs()) for r in d._.relations]  # noqa: E731
    saved = scores(spacy.load(tmp_path / "bf16"))
    fp32 = scores(spacy.load(tmp_path / "bf16", config={"components": {"relation_extractor": {"model": {"autocast": None}}}}))
    assert saved == scores(nlp) and len(saved) == len(fp32) > 0 and saved != fp32
    numpy.testing.assert_allclose(saved, fp32, atol=0.05)


def test_empty_docs_no_pairs_and_negative_sampling(tiny_bert):
    fix_random_seed(0)
    nlp = _nlp(tiny_bert, batch_size=2)
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    nlp.initialize(lambda: train)
    docs = list(nlp.pipe(["", "No drugs here.", "  "]))
    assert all(d._.relations == [] for d in docs)
    rel = nlp.get_pipe("relation_extractor")
    # an update with no candidate pair does nothing (and does not fail)
    losses = rel.update([Example(nlp.make_doc("No drugs here."), nlp.make_doc("No drugs here."))])
    assert losses["relation_extractor"] == 0.0
    with pytest.raises(ElectraMedError, match="E053"):
        spacy.blank("en").add_pipe("electramed_relation_extractor", config={"negative_sample_rate": 0.0})


def test_bad_settings_are_explained(tiny_bert, tmp_path):
    with pytest.raises(ElectraMedError, match="E052"):
        _nlp(tiny_bert, batch_size=0)
    with pytest.raises(ElectraMedError, match=r"E054.*'levitated'"):
        _nlp(tiny_bert, marking="levitated")
    nlp = _nlp(tiny_bert, max_length=8)
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    with pytest.raises(ElectraMedError, match="E051"):
        nlp.initialize(lambda: train)
    nlp = _nlp(tmp_path / "missing")
    with pytest.raises(ElectraMedError, match="E049"):
        nlp.initialize(lambda: train)


def test_checkpointed_batches_give_the_same_gradients(tiny_bert):
    """More than two batches in a training forward are checkpointed (bounded memory): same outputs
    and the same encoder gradients as one batch holding every pair."""
    import torch
    from transformers import AutoModel

    from electramed_spacy.ml.relations.marked_pair import MarkedPairModule, _batches

    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    docs, cands = [], []
    for text, ents, _ in TRAIN_DATA:
        doc = make_gold(nlp, text, ents, [])
        docs.append(doc)
        cands.append([(doc.ents[0].start, doc.ents[0].end, doc.ents[1].start, doc.ents[1].end)])
    seqs, pos = encode_pairs(tok, docs, cands, max_length=64, context_tokens=8, typed_markers=True)
    module = MarkedPairModule(AutoModel.from_pretrained(tiny_bert)).eval()  # eval: no dropout to replay
    weights = torch.randn(len(seqs), 64)
    results = []
    for batch_size in (len(seqs), 1):  # one batch; four checkpointed batches
        module.zero_grad()
        batches, order = _batches(seqs, pos, tok.pad_token_id, batch_size, "cpu")
        out = module(batches, order, None)
        (out * weights).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}))
    (out1, grads1), (out2, grads2) = results
    torch.testing.assert_close(out1, out2, rtol=1e-4, atol=1e-5)
    assert grads1.keys() == grads2.keys() and len(grads1) > 10
    for name in grads1:
        torch.testing.assert_close(grads1[name], grads2[name], rtol=1e-3, atol=1e-5)


def test_mark_spans_nests_many_mentions():
    text = "sodium valproate and lithium"
    marked, at = mark_spans(text, [(0, 16), (7, 16), (21, 28)], ["@ * drug *", "@ * drug *", "@ * group *"], ["@"] * 3)
    assert marked == " @ * drug * sodium  @ * drug * valproate @  @  and  @ * group * lithium @ "
    assert all(marked[a] == "@" and marked[b] == "@" for a, b in at)
    (o0, c0), (o1, c1), (o2, c2) = at
    assert o0 < o1 < c1 < c0 < o2 < c2  # the outer mention opens first and closes last


def _sentence_doc(nlp, text, mentions):
    doc = nlp(text)
    doc.ents = [doc.char_span(text.index(m), text.index(m) + len(m), label=label) for m, label in mentions]
    return doc


def test_all_marking_is_one_sequence_per_sentence(tiny_bert):
    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    text = "Ketoconazole increases midazolam and lithium. Naloxone reverses clonidine."
    doc = _sentence_doc(nlp, text, [("Ketoconazole", "drug"), ("midazolam", "drug"), ("lithium", "group"),
                                     ("Naloxone", "drug"), ("clonidine", "drug")])
    e = [(s.start, s.end) for s in doc.ents]
    pairs = [(*e[0], *e[1]), (*e[0], *e[2]), (*e[2], *e[1]), (*e[3], *e[4])]
    seqs, index = encode_contexts(tok, [doc], [pairs], max_length=64, context_tokens=8, typed_markers=True)
    assert len(seqs) == 2 and list(index[:, 0]) == [0, 0, 0, 1]
    assert tok.decode(seqs[0]) == ("[CLS] @ * drug * ketoconazole @ increases @ * drug * midazolam @ and "
                                   "@ * group * lithium @. [SEP]")
    for (seq, head, tail, start, end), (text_head, text_tail, between) in zip(index, [
            ("ketoconazole", "midazolam", "increases"), ("ketoconazole", "lithium", "increases @ * drug * midazolam @ and"),
            ("lithium", "midazolam", "and"), ("naloxone", "clonidine", "reverses")]):
        words = tok.convert_ids_to_tokens(seqs[seq])
        assert words[head] == words[tail] == "@"
        assert words[head + 4] == text_head and words[tail + 4] == text_tail  # "@ * type * mention"
        assert tok.decode(seqs[seq][start:end]) == between
    # without sentence boundaries each pair's token window is its own context (no sharing needed to be right)
    doc2 = nlp.make_doc(text)
    doc2.ents = [doc2.char_span(s.start_char, s.end_char, label=s.label_) for s in doc.ents]
    seqs2, index2 = encode_contexts(tok, [doc2], [pairs], max_length=64, context_tokens=1, typed_markers=False)
    assert tok.decode(seqs2[index2[3, 0]]) == "[CLS]. @ naloxone @ reverses @ clonidine @. [SEP]"


def test_all_marking_falls_back_to_pairs_when_the_sentence_is_too_long(tiny_bert):
    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    filler = " ".join(["the plasma"] * 20)
    text = f"Naloxone {filler} clonidine {filler} lithium {filler}."
    doc = _sentence_doc(nlp, text, [("Naloxone", "drug"), ("clonidine", "drug"), ("lithium", "drug")])
    e = [(s.start, s.end) for s in doc.ents]
    pairs = [(*e[0], *e[1]), (*e[1], *e[2]), (*e[0], *e[2])]
    seqs, index = encode_contexts(tok, [doc], [pairs], max_length=48, context_tokens=500, typed_markers=True)
    assert len(seqs) == 3 and sorted(index[:, 0]) == [0, 1, 2]
    for (seq, head, tail, start, end), (a, b) in zip(index, [("naloxone", "clonidine"), ("clonidine", "lithium"),
                                                              ("naloxone", "lithium")]):
        words = tok.convert_ids_to_tokens(seqs[seq])
        assert len(words) <= 48 and words[head] == words[tail] == "@"
        assert words[head + 4] == a and words[tail + 4] == b
        assert sum(w == "@" for w in words) == 4  # only the pair's two mentions are marked
        assert 0 <= start <= end <= len(words)



def test_all_marking_splits_a_crowded_sentence_into_groups_that_fit(tiny_bert):
    """Six mentions do not fit marked together in 40 pieces, but groups of them do: fewer sequences than
    pairs, each within max_length, each pair read from a sequence where both its mentions are marked."""
    from itertools import combinations

    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    names = ["naloxone", "clonidine", "lithium", "aspirin", "warfarin", "midazolam"]
    text = " and ".join(n.capitalize() for n in names) + " interact."
    doc = _sentence_doc(nlp, text, [(n.capitalize(), "drug") for n in names])
    e = [(s.start, s.end) for s in doc.ents]
    pairs = [(*e[a], *e[b]) for a, b in combinations(range(len(e)), 2)]
    one_pass, _ = encode_contexts(tok, [doc], [pairs], max_length=128, context_tokens=500, typed_markers=True)
    assert len(one_pass) == 1  # the reference: everything fits in 128
    seqs, index = encode_contexts(tok, [doc], [pairs], max_length=40, context_tokens=500, typed_markers=True)
    assert 1 < len(seqs) < len(pairs) and len(index) == len(pairs)
    assert max(len(q) for q in seqs) <= 40
    assert max(sum(w == "@" for w in tok.convert_ids_to_tokens(q)) for q in seqs) > 4  # groups, not only pairs
    for (seq, head, tail, start, end), (a, b) in zip(index, combinations(range(len(names)), 2)):
        words = tok.convert_ids_to_tokens(seqs[seq])
        assert words[head] == words[tail] == "@"
        assert words[head + 4] == names[a] and words[tail + 4] == names[b]
        between = tok.decode(seqs[seq][start:end]).split()  # the text between the two mentions only
        assert "interact" not in between and [w for w in between if w in names] == names[a + 1:b]

def test_all_marking_states_are_the_encoders(tiny_bert):
    """The pair vector of `marking = "all"` is [head `@`; tail `@`; mean of the states between], read from
    one encoder pass; checkpointed batches give the same vectors and encoder gradients as one batch."""
    import torch
    from transformers import AutoModel

    from electramed_spacy.ml.relations.marked_pair import MarkedPairModule, _batches

    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    docs, cands = [], []
    for text, ents, _ in TRAIN_DATA:
        doc = _sentence_doc(nlp, text, ents)
        docs.append(doc)
        a, b = doc.ents[:2]
        cands.append([(a.start, a.end, b.start, b.end), (b.start, b.end, a.start, a.end)])
    seqs, index = encode_contexts(tok, docs, cands, max_length=64, context_tokens=8, typed_markers=True)
    assert len(seqs) == len(docs) and len(index) == 2 * len(docs)
    module = MarkedPairModule(AutoModel.from_pretrained(tiny_bert)).eval()
    seq, head, tail, start, end = index[3]
    with torch.no_grad():
        hidden = module.encoder(input_ids=torch.tensor([seqs[seq]])).last_hidden_state[0]
    expected = torch.cat([hidden[head], hidden[tail], hidden[start:end].mean(0)])
    weights = torch.randn(len(index), 96)
    results = []
    for batch_size in (len(seqs), 1):
        module.zero_grad()
        batches, order = _batches(seqs, index, tok.pad_token_id, batch_size, "cpu")
        out = module(batches, order, None, True)
        (out * weights).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}))
    (out1, grads1), (out2, grads2) = results
    torch.testing.assert_close(out1[3], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out1, out2, rtol=1e-4, atol=1e-5)
    for name in grads1:
        torch.testing.assert_close(grads1[name], grads2[name], rtol=1e-3, atol=1e-5)


def test_frozen_encoder_steps_train_only_the_head_first(tiny_bert):
    """electramed.frozen_encoder_steps.v1 on the v3 model, which owns its encoder: for the first `steps` updates the
    encoder keeps every weight (no gradient, no weight decay) while the pair classifier learns; then both learn."""
    import torch

    fix_random_seed(0)
    nlp = _nlp(tiny_bert)
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: train)
    before_update = spacy.util.registry.resolve({"cb": {"@callbacks": "electramed.frozen_encoder_steps.v1", "steps": 2}})["cb"]
    model = nlp.get_pipe("relation_extractor").model
    encoder = model.get_ref("features").shims[0]._model.encoder
    start = {k: v.clone() for k, v in encoder.state_dict().items()}
    head_start = model.get_ref("output_layer").get_param("W").copy()
    for step in range(2):
        before_update(nlp, {"step": step, "epoch": 0})
        nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer)
    assert model.get_ref("features").attrs["frozen_encoder"] is True
    assert all(torch.equal(start[k], v) for k, v in encoder.state_dict().items())
    assert not numpy.array_equal(model.get_ref("output_layer").get_param("W"), head_start)
    before_update(nlp, {"step": 2, "epoch": 0})
    assert model.get_ref("features").attrs["frozen_encoder"] is False
    nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer)
    assert any(not torch.equal(start[k], v) for k, v in encoder.state_dict().items())


@pytest.mark.parametrize("encode", [encode_pairs, encode_contexts])
def test_work_per_pair_is_bounded_by_the_window_not_the_sentence(tiny_bert, encode):
    """1,200 drugs in one sentence: each pair tokenises at most a window's text (plus the context, once),
    every sequence fits max_length, and its markers sit on the pair's mentions."""
    tok = _tokenizer(tiny_bert)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    words = ["naloxone", "clonidine", "warfarin", "aspirin"] * 300
    doc = nlp(" and ".join(words) + " were given.")
    doc.ents = [doc[i:i + 1].char_span(0, len(doc[i]), label="drug") for i in range(0, 2 * len(words), 2)]
    ents = list(doc.ents)
    pairs = [(a.start, a.end, b.start, b.end) for a, b in zip(ents[:-37], ents[37:])][:300]

    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, text, **kwargs):
            calls.append(len(text) if isinstance(text, str) else sum(map(len, text)))
            return self.inner(text, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    seqs, index = encode(Counting(tok), [doc], [pairs], max_length=48, context_tokens=8, typed_markers=True)
    assert len(seqs) == len(pairs) and all(len(s) <= 48 for s in seqs)
    sentence_chars = len(doc.text)
    per_pair = sorted(calls)[:-2]  # the context itself is tokenised once (twice with every mention marked)
    assert len(calls) <= len(pairs) + 2 and max(per_pair) < sentence_chars / 10
    for row, (hs, he, ts, te) in enumerate(pairs):
        seq_row = index[row, 0] if encode is encode_contexts else row
        head, tail = index[row, 1:3] if encode is encode_contexts else index[row]
        pieces = tok.convert_ids_to_tokens(seqs[seq_row])
        assert pieces[head] == "@" and pieces[tail] == ("@" if encode is encode_contexts else "#")
        assert doc[hs].text in pieces[head:head + 8] and doc[ts].text in pieces[tail:tail + 8]


def test_quantize_auto_trains_in_float_and_infers_in_int8_where_it_is_faster(tiny_bert, monkeypatch):
    """On a CPU whose int8 Linear layers measure faster than float32 and bf16 (AVX2 only), `quantize = "auto"`
    picks per-row int8 for inference, trains the float module, and re-quantizes after every update."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    from electramed_spacy import precision

    rates = {"float32": 1e11, "bfloat16": 1e10, "linear_float32": 1.0, "linear_bfloat16": 0.1, "linear_int8": 2.0}
    monkeypatch.setattr(precision, "calibration", lambda device=None: rates)
    fix_random_seed(0)
    nlp = _nlp(tiny_bert, quantize="auto", autocast="auto")
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: train)
    shim = nlp.get_pipe("relation_extractor").model.get_ref("features").shims[0]
    list(nlp.pipe(copy_gold_entities(eg).predicted for eg in train))
    first = shim._int8[1]
    assert any(isinstance(m, DynamicQuantizedLinear) for m in first.modules())
    nlp.update([copy_gold_entities(eg) for eg in train], sgd=optimizer)  # allowed: float weights train
    assert shim._int8 is None
    list(nlp.pipe(copy_gold_entities(eg).predicted for eg in train))
    assert shim._int8[1] is not first and shim._int8[0] is shim._model
