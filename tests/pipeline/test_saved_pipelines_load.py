"""A pipeline saved by an earlier release loads and gives the same output, with every encoder option."""
import json
from pathlib import Path

import numpy
import pytest
import spacy

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
EXPECTED = json.loads((FIXTURE / "ner_0.1.0.expected.json").read_text())
OPTIONS = {"plain": {}, "int8": {"quantize": "dynamic_int8_per_channel", "autocast": None},
           "unsorted": {"sorted_batch_wordpieces": None}, "bf16": {"autocast": "bfloat16"}}


@pytest.mark.parametrize("variant", sorted(OPTIONS))
def test_a_0_1_0_ner_pipeline_gives_the_same_entities_and_states(variant):
    config = {"components": {"transformer": {"model": OPTIONS[variant]}}} if OPTIONS[variant] else {}
    nlp = spacy.load(FIXTURE / "ner_0.1.0", config=config)
    docs = list(nlp.pipe(EXPECTED["texts"], batch_size=3))
    want = EXPECTED["variants"][variant]
    assert [[[e.start_char, e.end_char, e.label_] for e in d.ents] for d in docs] == want["ents"]
    sums = [float(numpy.abs(d._.trf_data.model_output.last_hidden_state).sum()) for d in docs]
    numpy.testing.assert_allclose(sums, want["hidden_abs_sum"], rtol=1e-4)
