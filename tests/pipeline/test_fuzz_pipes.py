"""Robustness of the inference pipelines (issue 10): tiny NER, relation and QA pipelines fed
random batches through `nlp.pipe`, and a 100,000-character document through each.

The invariant: every text either comes back as a Doc with the same text whose every
predicted span (entities, relation heads and tails, answers) lies inside the text and
equals its slice, or, for text that is not valid Unicode (a lone surrogate), the batch
raises ElectraMedError [E010] (`electramed.Tokenizer.v1`), the one documented error
for bad text. Any other exception is a bug.

The default run tries a few deterministic batches; the long run
(`python -m pytest -m fuzz tests/pipeline/test_fuzz_pipes.py`) tries many random ones.
"""
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
from conftest import TINY_TEXT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.training import Example
from spacy.util import load_config

from electramed_spacy.errors import ElectraMedError
from electramed_spacy.pipeline.qa import qa_doc
from electramed_spacy.pipeline.tokenizer import SURROGATE

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TOKENIZER = {"@tokenizers": "electramed.Tokenizer.v1"}
QUESTION = "What reduces the risk of stroke?"
DRUGS = ["aspirin", "cisplatin", "warfarin", "fluconazole", "lithium", "naloxone", "clonidine", "metformin"]
LONG_TEXT = ((" ".join(TINY_TEXT) + " ") * 60)[:100_000]

FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _transformer(nlp, model_dir: Path) -> None:
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(model_dir)}})


@pytest.fixture(scope="module")
def pipelines(tiny_electra):
    """NER (configs/ner.cfg), relations (entity ruler + relation extractor, no sentence boundaries)
    and QA, each on the tiny ELECTRA, with output layers that predict something."""
    rng = numpy.random.default_rng(0)
    config = load_config(CONFIGS / "ner.cfg", overrides={"paths.model": str(tiny_electra)}, interpolate=True)
    config["nlp"]["tokenizer"] = TOKENIZER
    config["components"]["transformer"]["model"]["autocast"] = None
    ner = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    gold = ner.make_doc(TINY_TEXT[1])
    gold.ents = [gold.char_span(0, 9, label="Chemical")]
    ner.initialize(lambda: [Example(ner.make_doc(gold.text), gold)])
    lower = ner.get_pipe("ner").model.get_ref("lower")
    lower.set_param("W", rng.normal(0, 1, lower.get_param("W").shape).astype("f"))  # random entities

    rel = spacy.blank("en", config={"nlp": {"tokenizer": TOKENIZER}})
    _transformer(rel, tiny_electra)
    rel.add_pipe("entity_ruler")
    rel.add_pipe("electramed_relation_extractor", config={"model": {"hidden_width": 32}}).add_label("effect")
    rel.initialize()
    rel.get_pipe("entity_ruler").add_patterns(
        [{"label": "drug", "pattern": [{"LOWER": {"IN": DRUGS}}]}, {"label": "drug", "pattern": [{"IS_TITLE": True}]}]
    )
    rel.get_pipe("electramed_relation_extractor").model.get_ref("output_layer").set_param("b", numpy.asarray([-1.0, 1.0], dtype="f"))

    qa = spacy.blank("en", config={"nlp": {"tokenizer": TOKENIZER}})
    qa.add_pipe("electramed_qa", config={"model": {"name": str(tiny_electra), "max_length": 32, "overlap": 8,
                                                   "max_question_tokens": 8}})
    doc = qa_doc(qa, QUESTION, TINY_TEXT[2])
    qa.initialize(lambda: [Example(doc, doc.copy())])
    return {"ner": ner, "relations": rel, "qa": qa}


def predicted_spans(kind: str, doc):
    if kind == "ner":
        return list(doc.ents)
    if kind == "relations":
        return [span for r in doc._.relations for span in (r.head, r.tail)]
    return list(doc.spans["answers"])


def run_pipe(kind: str, nlp, texts):
    if kind == "qa":
        return list(nlp.pipe(qa_doc(nlp, QUESTION, text) for text in texts))
    return list(nlp.pipe(texts, batch_size=4))


def assert_aligned(kind: str, texts, docs) -> int:
    assert [d.text for d in docs] == list(texts)
    n_spans = 0
    for text, doc in zip(texts, docs):
        for span in predicted_spans(kind, doc):
            assert 0 <= span.start_char <= span.end_char <= len(text)
            assert span.text == text[span.start_char:span.end_char]
            n_spans += 1
    return n_spans


@pytest.mark.parametrize("kind", ["ner", "relations", "qa"])
def test_100k_character_document(pipelines, kind):
    """Bounded work per Doc: strided windows, relation candidates limited by distance and
    max_pairs, QA windows and a pruned answer pool. The test only checks it completes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*max_pairs=")  # the cap is reached on this text
        (doc,) = run_pipe(kind, pipelines[kind], [LONG_TEXT])
    assert len(doc) > 14_000
    assert assert_aligned(kind, [LONG_TEXT], [doc]) > 0
    if kind == "relations":
        assert 0 < len(doc._.relations) <= 5000


@pytest.mark.parametrize("kind", ["ner", "relations", "qa"])
def test_lone_surrogate_raises_the_documented_error(pipelines, kind):
    with pytest.raises(ElectraMedError, match=r"\[E010\] .*U\+D800 at character 8"):
        run_pipe(kind, pipelines[kind], ["", "Aspirin \ud800 warfarin"])


CATEGORIES = ["Lu", "Ll", "Lo", "Mn", "Me", "Nd", "Pd", "Po", "Ps", "Sm", "So", "Zs", "Zl", "Cc", "Cf"]
texts = st.one_of(
    st.sampled_from(["", " ", "   ", "\n\t \n", "\u3000", "\u200b", "\ufeff", "\x00"]),
    st.text(st.characters(categories=CATEGORIES), max_size=60),
    st.lists(st.sampled_from(DRUGS + ["and", "with", "the", "Ketoconazole", ".", ",", "İ", "ß", "ﬁ", "\u0301"]), max_size=40)
    .map(" ".join),
    st.builds(lambda word, n: (word + " ") * n, st.text(st.characters(categories=CATEGORIES), min_size=1, max_size=12),
              st.integers(50, 400)),  # long
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=10), st.characters(categories=["Cs"]), st.text(max_size=10)),
)
batches = st.lists(texts, min_size=1, max_size=6)


def fuzz_one(pipelines, batch) -> None:
    for kind, nlp in pipelines.items():
        if any(SURROGATE.search(text) for text in batch):
            with pytest.raises(ElectraMedError, match=r"\[E010\]"):
                run_pipe(kind, nlp, batch)
        else:
            assert_aligned(kind, batch, run_pipe(kind, nlp, batch))


@pytest.mark.filterwarnings("ignore:.*max_pairs=")
@FAST
@given(batch=batches)
def test_fuzz_pipes(pipelines, batch):
    fuzz_one(pipelines, batch)


@pytest.mark.fuzz
@pytest.mark.filterwarnings("ignore:.*max_pairs=")
@LONG
@given(batch=batches)
def test_fuzz_pipes_long(pytestconfig, pipelines, batch):
    if "fuzz" not in (pytestconfig.getoption("-m") or ""):
        pytest.skip("long fuzz run: select it with -m fuzz")
    fuzz_one(pipelines, batch)
