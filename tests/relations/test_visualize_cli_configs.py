"""HTML rendering, the relation commands, and the two relation configs."""
import re
from pathlib import Path

import pytest
import spacy
from re_helpers import RE_FIXTURES, TRAIN_DATA, make_gold
from spacy.tokens import DocBin, Span
from spacy.util import load_config, load_model_from_config
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.doc.relations import Relation, set_relations
from electramed_spacy.doc.render import render_relations

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NLP = spacy.blank("en")


def test_render_relations_html():
    doc = make_gold(NLP, *TRAIN_DATA[0][:2], TRAIN_DATA[0][2])
    for token in doc:
        token.is_sent_start = token.i == 0
    html = render_relations(doc)
    assert html.startswith("<!DOCTYPE html>")
    for needle in ("Ketoconazole", "midazolam", "drug", "mechanism 1.00", "<svg"):
        assert needle in html
    assert "No relations." in render_relations(NLP("No drugs here."), page=False)


def test_each_sentence_is_drawn_once_with_arcs_spaced_for_their_labels():
    """A sentence with relations is one arc diagram (not also an entity view); one without is an entity view;
    words are spaced for the longest label, so short arcs' labels do not run into each other."""
    doc = NLP("Ketoconazole raises the levels of simvastatin. Patients took lithium.")
    for token in doc:
        token.is_sent_start = token.i in (0, 7)
    ents = [Span(doc, 0, 1, "drug"), Span(doc, 5, 6, "drug"), Span(doc, 9, 10, "drug")]
    doc.ents = ents
    set_relations(doc, [Relation(ents[0], ents[1], "mechanism", 0.93), Relation(ents[1], ents[0], "a_much_longer_label", 0.5)])
    html = render_relations(doc, page=False)
    assert html.count(">raises<") == 1 and html.count("raises") == 1  # drawn once, in the arc diagram
    assert html.count("<svg") == 1 and html.count("lithium") == 1  # the second sentence: its entity view only
    assert "Patients took" in html.split("<svg")[1]  # ... drawn after the diagram, as plain highlighted text
    words_x = sorted({float(x) for x in re.findall(r'<text class="displacy-token" fill="currentColor" text-anchor="middle" y="[\d.]+">\s*<tspan class="displacy-word" fill="currentColor" x="([\d.]+)"', html)})
    gaps = {round(b - a) for a, b in zip(words_x, words_x[1:])}
    assert gaps and min(gaps) >= 8 * len("a_much_longer_label 0.50")


def test_cli_convert_and_visualize(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ddi.spacy"
    result = runner.invoke(app, ["convert-ddi", str(RE_FIXTURES / "ddi"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "pairs read" in result.output and "Wrote 1 documents" in result.output
    (doc,) = list(DocBin().from_disk(out).get_docs(NLP.vocab))
    assert len(doc._.relations) == 3
    result = runner.invoke(app, ["convert-chemprot", str(RE_FIXTURES / "chemprot" / "pure_sample.json"), str(tmp_path / "cp.spacy")])
    assert result.exit_code == 0, result.output
    assert "pure form" in result.output
    result = runner.invoke(app, ["convert-chemprot", str(RE_FIXTURES / "chemprot" / "sentences_sample.jsonl"), str(tmp_path / "cs.spacy")])
    assert result.exit_code == 0, result.output
    assert "CPR:4" in result.output
    html = tmp_path / "gold.html"
    result = runner.invoke(app, ["visualize-relations", "-", str(out), "--output", str(html)])
    assert result.exit_code == 0, result.output
    assert "advise" in html.read_text(encoding="utf8") and "Sudafed" in html.read_text(encoding="utf8")


@pytest.mark.parametrize("name,pipeline", [
    ("rel.cfg", ["relation_extractor"]),
    ("rel_pooled.cfg", ["transformer", "relation_extractor"]),
])
def test_configs_are_complete(name, pipeline, tiny_electra):
    config = load_config(CONFIGS / name, overrides={"paths.model": str(tiny_electra)})
    nlp = load_model_from_config(config, auto_fill=False, validate=True)
    assert nlp.pipe_names == pipeline
    assert config["training"]["score_weights"]["rel_micro_f"] > 0
