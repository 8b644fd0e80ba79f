"""Corpus conversion as a careless user drives it: outputs over inputs, odd lines and pairs, label maps."""
import pytest
import spacy
from typer.testing import CliRunner

from electramed_spacy.cli import app
from electramed_spacy.corpora.common import ConversionSummary, CorpusFormatError
from electramed_spacy.corpora.ddi import read_ddi_file
from electramed_spacy.corpora.pubtator import read_pubtator

NLP = spacy.blank("en")
PUBTATOR = "5|t|Aspirin and stroke.\n5|a|Aspirin reduces stroke.\n5\t0\t7\tAspirin\tChemical\tD1\n"


def _convert(*args):
    result = CliRunner().invoke(app, ["convert", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("output, dev", [("in", None), ("out", "out"), ("out", "in")])
def test_convert_never_writes_over_its_input_or_its_other_output(tmp_path, output, dev):
    source = tmp_path / "in.PubTator.txt"
    source.write_text(PUBTATOR)
    paths = {"in": source, "out": tmp_path / "out.spacy", "folder": tmp_path}
    args = [source, paths[output], "--format", "pubtator"] + (["--dev-output", paths[dev]] if dev else [])
    code, message = _convert(*args)
    assert code == 1 and ("would be overwritten" in message or "overwrite the other" in message), message
    assert source.read_text() == PUBTATOR


def test_a_label_map_with_a_semicolon_is_refused(tmp_path):
    source = tmp_path / "in.PubTator.txt"
    source.write_text(PUBTATOR)
    code, message = _convert(source, tmp_path / "o.spacy", "--format", "pubtator", "--label-map", "A=B;C=D")
    assert code == 1 and "separated by commas" in message
    assert not (tmp_path / "o.spacy").exists()


def test_a_pubtator_line_with_two_bad_offsets_is_a_bad_mention_not_a_relation(tmp_path):
    path = tmp_path / "x.PubTator.txt"
    path.write_text(PUBTATOR + "5\tabc\tdef\tAspirin\tChemical\tD1\n")
    with pytest.raises(CorpusFormatError, match="mention start offset 'abc' is not an integer"):
        list(read_pubtator(path, NLP.make_doc))
    summary = ConversionSummary()
    doc, = read_pubtator(path, NLP.make_doc, summary=summary, on_error="count")
    assert not doc._.concept_relations and sum(summary.dropped.values()) == 1


def test_a_tab_inside_an_abstract_is_text(tmp_path):
    path = tmp_path / "x.PubTator.txt"
    path.write_text("5|t|Aspirin and stroke.\n5|a|Aspirin\treduces stroke.\n5\t20\t27\tAspirin\tChemical\tD1\n")
    doc, = read_pubtator(path, NLP.make_doc)
    assert doc.text == "Aspirin and stroke. Aspirin\treduces stroke." and [e.text for e in doc.ents] == ["Aspirin"]


DDI = """<?xml version="1.0" encoding="UTF-8"?>
<document id="d1">
  <sentence id="d1.s0" text="Ketoconazole increases midazolam.">
    <entity id="d1.s0.e0" charOffset="0-11" type="drug" text="Ketoconazole"/>
    <entity id="d1.s0.e1" charOffset="23-31" type="drug" text="midazolam"/>
    {pair}
  </sentence>
  <sentence id="d1.s1" text="Aspirin was given.">
    <entity id="d1.s1.e0" charOffset="0-6" type="drug" text="Aspirin"/>
  </sentence>
</document>
"""


@pytest.mark.parametrize("e1, e2, problem", [
    ("d1.s0.e0", "d1.s1.e0", "of another sentence"),
    ("d1.s0.e0", "d1.s0.e0", "with itself"),
    ("d1.s0.e0", "d1.s0.e9", "unknown entity id"),
])
def test_a_ddi_pair_must_join_two_entities_of_its_sentence(tmp_path, e1, e2, problem):
    path = tmp_path / "d.xml"
    path.write_text(DDI.format(pair=f'<pair id="d1.s0.p0" e1="{e1}" e2="{e2}" ddi="true" type="mechanism"/>'))
    with pytest.raises(CorpusFormatError, match=problem):
        read_ddi_file(path, NLP.make_doc)
    summary = ConversionSummary()
    doc = read_ddi_file(path, NLP.make_doc, summary=summary, on_error="count")  # counted, the document kept
    assert not doc._.relations and len(doc.ents) == 3 and sum(summary.dropped.values()) == 1


def test_convert_speaks_annotates_on_error_vocabulary(tmp_path):
    source = tmp_path / "in.PubTator.txt"
    source.write_text(PUBTATOR + "5\t0\t9\tAspirinXX\tChemical\tD1\n")  # offsets that do not match the text
    code, message = _convert(source, tmp_path / "a.spacy", "--format", "pubtator", "--on-error", "stop")
    assert code == 1 and "in.PubTator.txt:4" in message
    assert _convert(source, tmp_path / "b.spacy", "--format", "pubtator", "--on-error", "count")[0] == 0
    code, message = _convert(source, tmp_path / "c.spacy", "--format", "pubtator", "--on-error", "error")
    assert code == 1 and "deprecated" in message and "--on-error stop" in message
