"""electramed_qa: overfitting, long contexts with strided windows, serialisation, bad input, CLI scoring."""
import json
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.corpora.bioasq import make_qa_doc
from electramed_spacy.errors import ElectraMedError
from electramed_spacy.ml.qa_model import (
    MASKED_LOGIT,
    QAOutput,
    build_qa_model,
    decode_windows,
    encode_windows,
    window_targets,
)
from electramed_spacy.pipeline.qa import ask, ask_pipe, qa_doc

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "qa"
# small windows so the long context below spans several of them
WINDOW = {"max_length": 24, "overlap": 8, "max_question_tokens": 8}
LONG = ("Aspirin reduces the risk of myocardial infarction and stroke. "
        "Cisplatin induced nephrotoxicity in patients with lung cancer. "
        "Lithium treatment was associated with hypothyroidism and tremor. "
        "Warfarin interacts with fluconazole and increases bleeding.")
SHORT = "Naloxone reverses the antihypertensive effect of clonidine."
CROSSING_QUESTION = "What is the risk of aspirin?"
TRAIN = [
    # TRAIN[0] gets its answer from `crossing_answer`: two words cut by the first window's end
    ("What reverses the effect of clonidine?", SHORT, "Naloxone", "q2_001"),
    ("What interacts with warfarin?", LONG, "fluconazole", "q3_001"),
]


def _windows(tokenizer, question, context):
    nlp = spacy.blank("en")
    _, doc_index, offsets, _, _ = encode_windows(tokenizer, [qa_doc(nlp, question, context)], **WINDOW)
    edges = [(o[o[:, 0] >= 0][0, 0], o[o[:, 0] >= 0][-1, 1]) for o in offsets]
    return doc_index, offsets, edges


def crossing_answer(tokenizer) -> str:
    """The two words of LONG around the first window's end: the answer crosses that boundary
    whatever the (randomly trained) tiny vocabulary is."""
    _, _, edges = _windows(tokenizer, CROSSING_QUESTION, LONG)
    cut = edges[0][1]
    words = [(m.start(), m.end()) for m in re.finditer(r"\w+", LONG)]
    i = max(j for j, (ws, _) in enumerate(words) if ws < cut)  # the word at or just before the cut
    start, end = words[i][0], words[i + 1][1]
    return LONG[start:end]


@pytest.fixture(scope="module")
def train_data(tiny_electra):
    from transformers import AutoTokenizer

    answer = crossing_answer(AutoTokenizer.from_pretrained(str(tiny_electra)))
    return [(CROSSING_QUESTION, LONG, answer, "q1_001")] + TRAIN


def _examples(nlp, data):
    out = []
    for question, context, answer, qa_id in data:
        start = context.index(answer)
        ref, _ = make_qa_doc(nlp.make_doc, question, context, [(start, start + len(answer))], qa_id=qa_id)
        pred, _ = make_qa_doc(nlp.make_doc, question, context, qa_id=qa_id)
        out.append(Example(pred, ref))
    return out


def _make_nlp(model_dir: Path, **cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("electramed_qa", config={"model": {"name": str(model_dir), **WINDOW}, **cfg})
    return nlp


@pytest.fixture(scope="module")
def trained(tiny_electra, tmp_path_factory, train_data):
    """The tiny ELECTRA overfitted on TRAIN; the encoder is loaded from a copy that is then deleted."""
    model_dir = tmp_path_factory.mktemp("qa_encoder") / "encoder"
    shutil.copytree(tiny_electra, model_dir)
    fix_random_seed(0)
    nlp = _make_nlp(model_dir)
    examples = _examples(nlp, train_data)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.002
    history = []
    for _ in range(160):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses["electramed_qa"])
    shutil.rmtree(model_dir)  # a saved pipeline must not need it
    return nlp, history, train_data


def _answers(nlp, question, context):
    doc = nlp(qa_doc(nlp, question, context))
    group = doc.spans["answers"]
    return [(s.text, s.start_char) for s in group], list(group.attrs["scores"])


def test_long_context_answer_crosses_a_window_boundary(tiny_electra, train_data):
    """Set-up check: the first training answer is cut by a window edge, yet lies whole in another window."""
    from transformers import AutoTokenizer

    question, context, answer, _ = train_data[0]
    doc_index, offsets, edges = _windows(AutoTokenizer.from_pretrained(str(tiny_electra)), question, context)
    start = context.index(answer)
    end = start + len(answer)
    assert len(edges) > 3
    assert any(ws < start < we < end for ws, we in edges), "the answer must cross some window's end"
    whole = [w for w, (ws, we) in enumerate(edges) if ws <= start and end <= we]
    assert whole
    # training targets: the answer in windows that hold it whole, [CLS] (0) elsewhere
    output = QAOutput(1, doc_index, offsets, numpy.zeros(offsets.shape[:2], "f"), numpy.zeros(offsets.shape[:2], "f"), ["ok"])
    starts, ends = window_targets(output, [[(start, end)]])
    assert [w for w in range(len(edges)) if starts[w] > 0] == whole
    for w in whole:
        assert (offsets[w, starts[w], 0], offsets[w, ends[w], 1]) == (start, end)
    # decoding: logits peaked on the answer in one window only give that span, best
    w = whole[-1]
    output.start[w, starts[w]] = output.end[w, ends[w]] = 10.0
    cands, null = decode_windows(output, 0, top_k=3, max_answer_tokens=10, n_best=20, keep=12)
    assert cands[0][:2] == (start, end) and null == 0.0


def test_overfitting_loss_falls_and_right_spans(trained):
    nlp, history, data = trained
    assert history[-1] < history[0] / 4
    for question, context, answer, _ in data:
        answers, scores = _answers(nlp, question, context)
        assert answers[0] == (answer, context.index(answer))  # incl. the window-crossing answer
        assert len(answers) == 5 and scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_disk_round_trip_offline_equal_output(trained, tmp_path):
    nlp, _, data = trained
    nlp.to_disk(tmp_path / "pipeline")
    # the encoder directory named in the config no longer exists: the weights come from the saved pipeline
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert nlp2.get_pipe("electramed_qa").cfg == nlp.get_pipe("electramed_qa").cfg
    for question, context, _, _ in data:
        a1, s1 = _answers(nlp, question, context)
        a2, s2 = _answers(nlp2, question, context)
        assert a1 == a2 and numpy.allclose(s1, s2, atol=1e-5)
    qa3 = spacy.blank("en").add_pipe("electramed_qa", config={"model": {"name": "/nowhere", **WINDOW}})
    qa3.from_bytes(nlp.get_pipe("electramed_qa").to_bytes())
    doc = qa3(qa_doc(nlp, TRAIN[0][0], SHORT))
    assert doc.spans["answers"][0].text == "Naloxone"



def test_int8_inference_switched_on_at_load(trained, tmp_path):
    """quantize in spacy.load's config overrides: the same answers from an int8 copy of the encoder, scores
    close to float32; training through it is refused (E061)."""
    nlp, _, data = trained
    nlp.to_disk(tmp_path / "pipeline")
    int8 = spacy.load(tmp_path / "pipeline", config={"components": {"electramed_qa": {"model": {
        "quantize": "dynamic_int8_per_channel"}}}})
    for question, context, _, _ in data:
        a1, s1 = _answers(nlp, question, context)
        a2, s2 = _answers(int8, question, context)
        assert a1[0] == a2[0] and numpy.allclose(s1[0], s2[0], atol=0.1)
    assert int8.get_pipe("electramed_qa").model.shims[0]._int8 is not None
    with pytest.raises(ElectraMedError, match=r"\[E061\].*cannot be trained"):
        int8.update(_examples(int8, data))
    with pytest.raises(ElectraMedError, match=r"\[E061\].*set autocast = null"):
        spacy.blank("en").add_pipe("electramed_qa", config={"model": {"name": "/nowhere", "quantize": "dynamic_int8",
                                                                      "autocast": "bfloat16"}})

def test_evaluate_returns_bioasq_keys(trained):
    nlp, _, data = trained
    scores = nlp.evaluate(_examples(nlp, data))
    assert {"qa_strict_acc", "qa_lenient_acc", "qa_mrr"} <= set(scores)
    assert scores["qa_strict_acc"] == 1.0 and scores["qa_mrr"] == 1.0


def test_spacy_benchmark_accuracy_sees_the_question(trained, tmp_path):
    """spaCy's evaluate CLI rebuilds predicted Docs from text (no doc._.question); scores must still be right."""
    from spacy.cli.evaluate import evaluate
    from spacy.tokens import DocBin

    nlp, _, data = trained
    nlp.to_disk(tmp_path / "pipeline")
    DocBin(docs=[eg.reference for eg in _examples(nlp, data)], store_user_data=True).to_disk(tmp_path / "dev.spacy")
    scores = evaluate(str(tmp_path / "pipeline"), tmp_path / "dev.spacy", silent=True)
    assert scores["qa_strict_acc"] == 1.0 and scores["qa_mrr"] == 1.0


def test_predict_empty_batch_and_does_not_mutate(trained):
    nlp, _, data = trained
    qa = nlp.get_pipe("electramed_qa")
    out = qa.predict([])
    assert out.start.shape[0] == 0
    qa.set_annotations([], out)
    doc = qa_doc(nlp, TRAIN[0][0], SHORT)
    qa.predict([doc])
    assert "answers" not in doc.spans
    losses = qa.update([], losses={})
    assert losses == {"electramed_qa": 0.0}


def test_bad_input_never_crashes_nlp_pipe(trained):
    nlp, _, data = trained
    long_question = " ".join(["what is the mechanism of action of metformin"] * 20) + "?"
    docs = [
        qa_doc(nlp, "", SHORT),                       # empty question
        nlp.make_doc(SHORT),                          # no question set
        qa_doc(nlp, TRAIN[0][0], ""),                 # empty context
        qa_doc(nlp, TRAIN[0][0], "   "),              # whitespace context
        qa_doc(nlp, TRAIN[0][0], "纳洛酮逆转可乐定的降压作用。"),  # non-English context
        qa_doc(nlp, long_question, SHORT),            # question longer than the window
        qa_doc(nlp, "What reverses \ud800?", SHORT),  # lone surrogate: the fast tokenizer raised TypeError
        qa_doc(nlp, TRAIN[0][0], SHORT),
    ]
    done = list(nlp.pipe(docs, batch_size=3))
    status = [d.spans["answers"].attrs["status"] for d in done]
    assert status[:4] == ["empty question", "empty question", "empty context", "empty context"]
    assert all(len(d.spans["answers"]) == 0 for d in done[:4])
    assert status[4:] == ["ok", "ok", "ok", "ok"]
    assert len(done[-2].spans["answers"]) == 5
    assert done[-1].spans["answers"][0].text == "Naloxone"


def test_decoding_memory_does_not_grow_with_windows():
    """decode_windows prunes its candidate pool (at most 16 * top_k spans kept between windows)
    without changing the answers: same result as decoding with a pool too large to prune."""
    rng = numpy.random.default_rng(0)
    n_windows, length = 300, 24
    offsets = numpy.tile(numpy.arange(length, dtype="i")[:, None] * 2 + [0, 1], (n_windows, 1, 1))
    offsets += (numpy.arange(n_windows, dtype="i") * 16)[:, None, None]
    offsets[:, :4] = -1  # [CLS] and question
    start, end = rng.normal(size=(2, n_windows, length)).astype("f")
    output = QAOutput(1, numpy.zeros((n_windows,), dtype="i"), offsets, start, end, ["ok"])
    tracemalloc.start()
    pruned, null = decode_windows(output, 0, top_k=5, max_answer_tokens=10, n_best=20, keep=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    unpruned, null2 = decode_windows(output, 0, top_k=10 ** 6, max_answer_tokens=10, n_best=20, keep=4 * 10 ** 6)
    assert len(unpruned) > 16 * 5 * 10 and null == null2
    assert pruned == unpruned[:20]
    assert peak < 1e6  # the unpruned pool of this context alone holds ~30,000 spans


def test_ask_helpers(trained):
    nlp, _, data = trained
    doc = ask(nlp, TRAIN[0][0], SHORT)
    answers = doc.spans["answers"]
    assert answers[0].text == "Naloxone" and len(answers.attrs["scores"]) == len(answers)
    docs = list(ask_pipe(nlp, [(q, c) for q, c, _, _ in data], batch_size=2))
    assert [d.spans["answers"][0].text for d in docs] == [a for _, _, a, _ in data]
    with pytest.raises(ElectraMedError, match=r"\[E025\] ask\(\) needs a non-empty question"):
        ask(nlp, " ", SHORT)
    with pytest.raises(ElectraMedError, match=r"\[E025\] ask\(\) needs a non-empty context text"):
        ask(nlp, "What?", "")


def test_no_answer_when_null_score_wins(trained):
    nlp, _, data = trained
    qa = nlp.get_pipe("electramed_qa")
    doc = qa_doc(nlp, TRAIN[0][0], SHORT)
    out = qa.predict([doc])
    out.start[:, 0] = out.end[:, 0] = 1e3  # make [CLS] win
    qa.set_annotations([doc], out)
    group = doc.spans["answers"]
    assert len(group) == 0 and group.attrs["status"] == "no answer" and group.attrs["no_answer_score"] > 0.99
    qa.cfg["no_answer"] = False
    try:
        qa.set_annotations([doc], out)
        assert len(doc.spans["answers"]) == 5
    finally:
        qa.cfg["no_answer"] = True


def test_qa_score_command(trained, tmp_path):
    nlp, _, data = trained
    nlp.to_disk(tmp_path / "pipeline")
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, [
        "qa-score", str(tmp_path / "pipeline"), str(FIXTURES / "bioasq_squad_sample.json"),
        str(FIXTURES / "bioasq_golden_sample.json"), "--block-size", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    asked = CliRunner().invoke(app, ["ask", str(tmp_path / "pipeline"), "-q", TRAIN[0][0], "-c", SHORT])
    assert asked.exit_code == 0 and asked.output.splitlines()[0].endswith("\tNaloxone"), asked.output
    scores = json.loads(out.read_text())["scores"]
    assert scores["all"]["qa_questions"] == 2
    assert set(scores) == {"all", "block 1", "block 2"}
    assert {"qa_strict_acc", "qa_lenient_acc", "qa_mrr"} <= set(scores["all"])


def test_config_and_load_errors(tmp_path, train_data):
    with pytest.raises(ElectraMedError, match=r"\[E022\] max_length=20"):
        build_qa_model(name="x", max_length=20, overlap=8, max_question_tokens=12)
    nlp = _make_nlp(tmp_path / "missing")
    with pytest.raises(ElectraMedError, match=r"\[E020\] Could not load the QA encoder .*does not exist"):
        nlp.initialize(lambda: _examples(nlp, train_data))


def test_config_errors_batch_size_and_autocast():
    with pytest.raises(ElectraMedError, match=r"\[E028\]"):
        build_qa_model(name="x", batch_size=-1)
    with pytest.raises(ElectraMedError, match=r"\[E029\] Unknown autocast dtype 'int8'"):
        build_qa_model(name="x", autocast="int8")


def test_length_sorted_chunks_and_bf16_keep_the_logits(trained, tmp_path):
    """batch_size > 0 encodes windows in length-sorted chunks cut to their own longest window:
    same logits as one padded call (v1) up to float noise; bf16 autocast (set at load, where the
    machine decides it) stays close."""
    nlp, _, data = trained
    nlp.to_disk(tmp_path / "pipeline")
    pipelines = {None: nlp, "bfloat16": spacy.load(tmp_path / "pipeline", config={"components": {"electramed_qa": {
        "model": {"autocast": "bfloat16"}}}})}
    docs = [qa_doc(nlp, q, c) for q, c, _, _ in data] + [qa_doc(nlp, "Which?", SHORT)]
    outputs = {}
    for setting in [(0, None), (2, None), (1, None), (2, "bfloat16")]:
        qa = pipelines[setting[1]].get_pipe("electramed_qa")
        qa.model.attrs["batch_size"] = setting[0]
        outputs[setting] = qa.model.predict(docs)
    nlp.get_pipe("electramed_qa").model.attrs["batch_size"] = 0
    base = outputs[(0, None)]
    context = base.start > MASKED_LOGIT / 2
    assert len(set(len(d.text) for d in docs)) > 1 and base.start.shape[0] >= len(docs)
    for setting in [(2, None), (1, None)]:  # padding past a chunk's longest window is blocked, not encoded
        for got, want in ((outputs[setting].start, base.start), (outputs[setting].end, base.end)):
            assert numpy.array_equal(got > MASKED_LOGIT / 2, context)
            numpy.testing.assert_allclose(got[context], want[context], atol=1e-4)
    bf16 = outputs[(2, "bfloat16")]
    assert numpy.array_equal(bf16.start > MASKED_LOGIT / 2, context)
    assert numpy.abs(bf16.start[context] - base.start[context]).max() < 0.25


def test_initialize_needs_questions(tiny_electra):
    nlp = _make_nlp(tiny_electra)
    doc = nlp.make_doc(SHORT)
    with pytest.raises(ElectraMedError, match=r"\[E024\]"):
        nlp.initialize(lambda: [Example(doc, doc.copy())])


def test_qa_cfg_is_complete():
    """What `spacy debug config configs/qa.cfg` checks, in-process."""
    from spacy.cli.debug_config import debug_config

    debug_config(ROOT / "configs" / "qa.cfg", overrides={"paths.train": "x.spacy", "paths.dev": "y.spacy"})
