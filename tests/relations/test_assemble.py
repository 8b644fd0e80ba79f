"""scripts/assemble_ner_rel.py: a NER pipeline in front of a relation pipeline trained on gold entities."""
import subprocess
import sys
from pathlib import Path

import spacy
from re_helpers import TRAIN_DATA, make_gold, rel_tuples, tiny_nlp
from spacy.training import Example
from thinc.api import fix_random_seed

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "assemble_ner_rel.py"


def _trained_ner(tiny_electra, path, sentencizer=True):
    nlp = spacy.blank("en")
    if sentencizer:
        nlp.add_pipe("sentencizer")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(tiny_electra)}})
    nlp.add_pipe("ner", config={"model": {
        "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
        "hidden_width": 32, "maxout_pieces": 2, "use_upper": False,
        "tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"}}}})
    return _train(nlp, path)


def _trained_rel(tiny_electra, path):
    return _train(tiny_nlp(tiny_electra), path, gold_entities=True)


def _train(nlp, path, *, gold_entities=False, steps=40):
    train = [Example(nlp.make_doc(t), make_gold(nlp, t, e, r)) for t, e, r in TRAIN_DATA]
    if gold_entities:  # the relation pipe reads doc.ents of the predicted Doc
        for eg in train:
            eg.predicted.ents = [eg.predicted.char_span(e.start_char, e.end_char, label=e.label_) for e in eg.reference.ents]
    optimizer = nlp.initialize(lambda: train)
    for _ in range(steps):
        nlp.update(train, sgd=optimizer)
    nlp.to_disk(path)
    return nlp


def test_assembled_pipeline_equals_ner_then_relations(tiny_electra, tmp_path):
    fix_random_seed(0)
    ner_nlp = _trained_ner(tiny_electra, tmp_path / "ner")
    rel_nlp = _trained_rel(tiny_electra, tmp_path / "rel")
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "ner"), str(tmp_path / "rel"), str(tmp_path / "both")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    both = spacy.load(tmp_path / "both")
    assert both.pipe_names == ["electramed_sentencizer", "transformer", "ner", "relation_extractor"]
    # the NER now owns a copy of its encoder instead of listening to the relation pipe's
    assert "Listener" not in both.get_pipe_config("ner")["model"]["tok2vec"]["@architectures"]
    n_rels = 0
    for text, _, _ in TRAIN_DATA:
        expected_ents = ner_nlp(text)
        doc = rel_nlp.make_doc(text)
        doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_) for e in expected_ents.ents]
        doc = rel_nlp(doc)
        got = both(text)
        assert [(e.text, e.label_) for e in got.ents] == [(e.text, e.label_) for e in expected_ents.ents]
        assert rel_tuples(got) == rel_tuples(doc)
        n_rels += len(got._.relations)
    assert n_rels > 0  # the comparison is not between two empty outputs


def test_assemble_refuses_a_pipeline_without_ner(tiny_electra, tmp_path):
    fix_random_seed(0)
    _trained_rel(tiny_electra, tmp_path / "rel")
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "rel"), str(tmp_path / "rel"), str(tmp_path / "both")],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "has no 'ner' component" in result.stderr


def test_assemble_adds_a_sentencizer_when_neither_pipeline_splits_sentences(tiny_electra, tmp_path):
    fix_random_seed(0)
    _trained_ner(tiny_electra, tmp_path / "ner", sentencizer=False)
    _trained_rel(tiny_electra, tmp_path / "rel")
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "ner"), str(tmp_path / "rel"), str(tmp_path / "both")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    both = spacy.load(tmp_path / "both")
    assert both.pipe_names == ["electramed_sentencizer", "transformer", "ner", "relation_extractor"]
    assert len(list(both("Aspirin was given. Warfarin was not given.").sents)) == 2
