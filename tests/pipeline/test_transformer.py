"""electramed.Transformer.v1: loading by path, lowercasing, strided windows, clear errors."""
import json
import shutil

import pytest
import spacy

from electramed_spacy.errors import ElectraMedError
from electramed_spacy.ml.transformer import configure_strided_spans


def _nlp_with(name, **cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(name), **cfg}})
    return nlp


def test_loads_local_dir_and_lowercases(tiny_electra):
    nlp = _nlp_with(tiny_electra)
    nlp.initialize()
    upper, lower = nlp("CISPLATIN NEPHROTOXICITY"), nlp("cisplatin nephrotoxicity")
    assert upper._.trf_data.wordpieces.strings == lower._.trf_data.wordpieces.strings


def test_long_document_gets_a_vector_for_every_token(tiny_electra):
    nlp = _nlp_with(tiny_electra, get_spans={"@misc": "electramed.strided_spans.v1", "window": 16, "stride": 12})
    nlp.initialize()
    doc = nlp(" ".join(["Cisplatin induced nephrotoxicity in patients ."] * 30))  # 180 tokens >> window
    tensors = doc._.trf_data.align
    assert len(doc) == 180
    assert all(tensors[i].data.size > 0 for i in range(len(doc)))
    assert len(nlp("")) == 0  # an empty text goes through without error


def test_strided_spans_cover_the_doc_to_the_end():
    nlp = spacy.blank("en")
    doc = nlp.make_doc(" ".join(str(i) for i in range(23)))
    spans = configure_strided_spans(window=10, stride=7)([doc])[0]
    assert [(s.start, s.end) for s in spans] == [(0, 10), (7, 17), (14, 23)]
    # an empty Doc gets no window: spacy-transformers cannot align an empty span (E1002)
    assert configure_strided_spans(window=10, stride=7)([nlp.make_doc("")]) == [[]]


def test_batches_mixing_empty_and_non_empty_texts(tiny_electra):
    """An empty text next to non-empty ones used to crash the whole batch ([E1002] Span index out of range)."""
    nlp = _nlp_with(tiny_electra)
    nlp.initialize()
    texts = ["", "Cisplatin induced nephrotoxicity.", "   ", "Aspirin"]
    docs = list(nlp.pipe(texts, batch_size=4))
    assert [d.text for d in docs] == texts
    assert len(docs[0]._.trf_data.tensors) == 0
    for doc in (docs[1], docs[3]):
        assert len(doc._.trf_data.tensors[0]) == 1  # one window
        assert all(doc._.trf_data.align[i].data.size > 0 for i in range(len(doc)))  # every token has wordpieces


def test_window_longer_than_the_position_embeddings(tiny_electra, tmp_path):
    """A checkpoint whose tokenizer sets no model_max_length: a window of long words has more
    wordpieces than the 512 positions; they are cut instead of crashing the embedding layer."""
    model_dir = tmp_path / "no_max_length"
    shutil.copytree(tiny_electra, model_dir)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("model_max_length", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    nlp = _nlp_with(model_dir)
    nlp.initialize()
    doc = nlp(" ".join(["aspirinwarfarinlithiumcisplatin"] * 200))  # ~16 wordpieces per token
    assert doc._.trf_data.wordpieces.input_ids.shape == (2, 512)


@pytest.mark.parametrize("window,stride", [(0, 1), (10, 0), (10, 11)])
def test_strided_spans_reject_bad_settings(window, stride):
    with pytest.raises(ElectraMedError, match=r"\[E002\].*window=%d, stride=%d" % (window, stride)):
        configure_strided_spans(window=window, stride=stride)


def test_missing_model_dir_gives_one_clear_error(tmp_path):
    nlp = _nlp_with(tmp_path / "no_such_model")
    with pytest.raises(ElectraMedError) as err:
        nlp.initialize()
    text = str(err.value)
    assert "[E001]" in text and "no_such_model" in text and "does not exist" in text and "save_pretrained" in text


def test_broken_model_dir_says_what_it_contains(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    nlp = _nlp_with(broken)
    with pytest.raises(ElectraMedError, match=r"\[E001\].*contains: config\.json"):
        nlp.initialize()


def test_bf16_autocast_outputs_float32_close_to_fp32(tiny_electra):
    fp32, bf16 = _nlp_with(tiny_electra), _nlp_with(tiny_electra, autocast="bfloat16")
    fp32.initialize()
    bf16.initialize()
    bf16.get_pipe("transformer").model.from_bytes(fp32.get_pipe("transformer").model.to_bytes())
    text = "Cisplatin induced nephrotoxicity in patients with lung cancer."
    a = fp32(text)._.trf_data.model_output.last_hidden_state
    b = bf16(text)._.trf_data.model_output.last_hidden_state
    assert b.dtype == a.dtype == "float32"
    assert abs(a - b).max() < 0.1 * abs(a).max()


def test_unknown_autocast_dtype_is_rejected(tiny_electra):
    with pytest.raises(ElectraMedError, match=r"\[E003\].*'bf61'.*bfloat16"):
        _nlp_with(tiny_electra, autocast="bf61")


@pytest.fixture(scope="module")
def tiny_bert(tiny_electra, tmp_path_factory):
    """A 2-layer, width-32 random BERT (MiniLM's architecture) with the tiny ELECTRA's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert") / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_electra)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_dynamic_int8_inference_is_close_to_fp32_and_saves_float_weights(tiny_bert):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    fp32, int8 = _nlp_with(tiny_bert), _nlp_with(tiny_bert, quantize="dynamic_int8")
    fp32.initialize()
    int8.initialize()
    text = "Cisplatin induced nephrotoxicity in patients with lung cancer."
    int8(text)  # quantizes the weights loaded by initialize ...
    trf_bytes = fp32.get_pipe("transformer").model.to_bytes()
    int8.get_pipe("transformer").model.from_bytes(trf_bytes)  # ... and again once from_bytes replaces them
    a = fp32(text)._.trf_data.model_output.last_hidden_state
    b = int8(text)._.trf_data.model_output.last_hidden_state
    assert b.dtype == a.dtype == "float32" and b.shape == a.shape
    assert abs(a - b).max() < 0.1 * abs(a).max()
    assert abs(a - b).max() > 0  # the int8 path did run
    shim = int8.get_pipe("transformer").model.layers[0].shims[0]
    assert not any(isinstance(m, DynamicQuantizedLinear) for m in shim._model.modules())  # float model kept ...
    reloaded = _nlp_with(tiny_bert)  # ... and saved as it was loaded
    reloaded.initialize()
    reloaded.get_pipe("transformer").model.from_bytes(int8.get_pipe("transformer").model.to_bytes())
    assert (reloaded(text)._.trf_data.model_output.last_hidden_state == a).all()


def test_per_channel_int8_is_closer_to_fp32_when_rows_differ_in_scale(tiny_bert, tmp_path):
    """One row per weight matrix 30x larger than the rest (as trained encoders have): one int8 scale per
    matrix rounds the other rows coarsely, one scale per row ("dynamic_int8_per_channel") does not."""
    import torch
    from transformers import AutoTokenizer, BertModel

    model = BertModel.from_pretrained(tiny_bert)
    with torch.no_grad():
        for module in model.encoder.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight[0] *= 30.0
    path = tmp_path / "outlier_rows"
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(path)
    text = "Cisplatin induced nephrotoxicity in patients with lung cancer."
    outputs = {}
    for mode in (None, "dynamic_int8", "dynamic_int8_per_channel"):
        nlp = _nlp_with(path, quantize=mode)
        nlp.initialize()
        outputs[mode] = nlp(text)._.trf_data.model_output.last_hidden_state
    per_tensor = abs(outputs["dynamic_int8"] - outputs[None]).mean()
    per_channel = abs(outputs["dynamic_int8_per_channel"] - outputs[None]).mean()
    assert 0 < per_channel < 0.5 * per_tensor


def test_training_with_quantize_is_refused(tiny_bert):
    from spacy.training import Example

    nlp = _nlp_with(tiny_bert, quantize="dynamic_int8")
    nlp.initialize()
    doc = nlp.make_doc("Aspirin reduces the risk of stroke.")
    with pytest.raises(ElectraMedError, match=r"\[E005\] .*quantize = 'dynamic_int8'.* inference only.*quantize = null"):
        nlp.update([Example(doc, doc.copy())])


def test_unknown_quantize_mode_or_quantize_with_autocast_is_rejected(tiny_bert):
    with pytest.raises(ElectraMedError, match=r"\[E004\] Unknown quantize mode 'int4'.*dynamic_int8"):
        _nlp_with(tiny_bert, quantize="int4")
    with pytest.raises(ElectraMedError, match=r"\[E006\] .*'dynamic_int8'.* autocast = 'bfloat16'.*autocast = null"):
        _nlp_with(tiny_bert, quantize="dynamic_int8", autocast="bfloat16")


def test_length_sorted_windows_give_the_same_vectors(tiny_bert):
    """Windows of very different lengths, encoded in length-sorted groups of at most 64 padded wordpieces,
    give each token the vector of the one padded batch (up to float rounding)."""
    import numpy

    window = {"@misc": "electramed.strided_spans.v1", "window": 12, "stride": 8}
    plain = _nlp_with(tiny_bert, get_spans=window)
    grouped = _nlp_with(tiny_bert, get_spans=window, sorted_batch_wordpieces=64)
    plain.initialize()
    grouped.get_pipe("transformer").model.from_bytes(plain.get_pipe("transformer").model.to_bytes())
    texts = ["Aspirin .", " ".join(["Cisplatin induced nephrotoxicity in patients ."] * 5), "Lithium and tremor ."]
    for a, b in zip(plain.pipe(texts), grouped.pipe(texts)):
        assert b._.trf_data.model_output.last_hidden_state.shape == a._.trf_data.model_output.last_hidden_state.shape
        rows_a = a._.trf_data.model_output.last_hidden_state.reshape(-1, 32)
        rows_b = b._.trf_data.model_output.last_hidden_state.reshape(-1, 32)
        real = numpy.concatenate([a._.trf_data.align[i].data.ravel() for i in range(len(a))])
        assert numpy.allclose(rows_a[real], rows_b[real], atol=1e-5)
        assert numpy.allclose(a._.trf_data.model_output.pooler_output, b._.trf_data.model_output.pooler_output, atol=1e-5)


def test_sorted_batch_wordpieces_must_be_positive(tiny_bert):
    with pytest.raises(ElectraMedError, match=r"\[E007\] .*sorted_batch_wordpieces` must be > 0.*got 0"):
        _nlp_with(tiny_bert, sorted_batch_wordpieces=0)


def _calibrated(monkeypatch, **linear):
    """precision.calibration as measured on a CPU where the Linear layers run at `linear` rows/s."""
    from electramed_spacy import precision

    rates = {"float32": 1e11, "bfloat16": 1e10, **{f"linear_{k}": v for k, v in linear.items()}}
    monkeypatch.setattr(precision, "calibration", lambda device=None: rates)


@pytest.mark.parametrize("linear,autocast,expected", [
    ({"float32": 1.0, "bfloat16": 0.1, "int8": 1.7}, "auto", "dynamic_int8_per_channel"),  # AVX2 only: int8 wins
    ({"float32": 1.0, "bfloat16": 0.1, "int8": 1.1}, "auto", None),  # int8 not clearly faster: float32
    ({"float32": 1.0, "bfloat16": 3.0, "int8": 3.3}, "bfloat16", None),  # bf16 units: bf16 stays (attention too)
    ({"float32": 1.0, "bfloat16": 3.0, "int8": 4.0}, "bfloat16", None),
    ({"float32": 1.0, "bfloat16": 3.0, "int8": 4.0}, None, "dynamic_int8_per_channel"),  # float32 asked: int8
])
def test_quantize_auto_picks_the_fastest_measured(tiny_bert, monkeypatch, linear, autocast, expected):
    _calibrated(monkeypatch, **linear)
    shim = _nlp_with(tiny_bert, quantize="auto", autocast=autocast).get_pipe("transformer").model.layers[0].shims[0]
    assert shim.quantize == expected and shim.quantize_auto
    assert shim.autocast is None if expected else (shim.autocast is None) == (autocast == "auto")


def test_quantize_auto_trains_in_float_and_quantizes_the_current_weights(tiny_bert, monkeypatch):
    """With int8 chosen by auto, an update is allowed (float weights) and drops the int8 copy, so the next
    inference quantizes the updated weights, not the ones of the first evaluation."""
    from spacy.training import Example
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    _calibrated(monkeypatch, float32=1.0, bfloat16=0.1, int8=2.0)
    nlp = _nlp_with(tiny_bert, quantize="auto", autocast="auto")
    nlp.add_pipe("ner", config={"model": {"tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1",
                                                      "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}}}})
    doc = nlp.make_doc("Aspirin reduces the risk of stroke.")
    doc.ents = [spacy.tokens.Span(doc, 0, 1, "Chemical")]
    examples = [Example(nlp.make_doc(doc.text), doc)]
    optimizer = nlp.initialize(lambda: examples)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    nlp(doc.text)
    first = shim._int8[1]
    assert any(isinstance(m, DynamicQuantizedLinear) for m in first.modules())
    nlp.update(examples, sgd=optimizer)
    assert shim._int8 == (None, None)
    nlp(doc.text)
    assert shim._int8[1] is not first and shim._int8[0] is shim._model
