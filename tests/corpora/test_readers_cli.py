"""Registered spaCy readers (found through entry points) and `electramed convert`."""
import json
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import registry
from thinc.api import Config
from typer.testing import CliRunner

from conftest import FIXTURES
from electramed_spacy.cli import app

NER = FIXTURES / "ner"


def test_readers_registered_through_entry_points():
    code = (
        "import sys, spacy\n"
        "from spacy.util import registry\n"
        "assert 'electramed_spacy' not in sys.modules\n"
        "for name in ('electramed.PubTatorCorpus.v1', 'electramed.ConllCorpus.v1', 'electramed.BratCorpus.v1'):\n"
        "    print(registry.readers.get(name).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["electramed_spacy.corpora.readers"] * 3


def test_readers_from_config_yield_examples():
    nlp = spacy.blank("en")
    cfg = Config().from_str(f"""
    [pubtator]
    @readers = "electramed.PubTatorCorpus.v1"
    path = "{NER / 'bc5cdr_sample.PubTator.txt'}"

    [conll]
    @readers = "electramed.ConllCorpus.v1"
    path = "{NER / 'ncbi_sample_iob1.conll'}"
    scheme = "iob1"
    n_sents = 1
    limit = 2

    [brat]
    @readers = "electramed.BratCorpus.v1"
    path = "{NER / 'brat'}"
    discontinuous = "extent"
    """)
    readers = registry.resolve(cfg)
    examples = list(readers["pubtator"](nlp))
    assert len(examples) == 2
    eg = examples[0]
    assert eg.predicted.text == eg.reference.text and not eg.predicted.ents
    assert [e.text for e in eg.reference.ents][:2] == ["Lithium", "nephrogenic diabetes insipidus"]
    # gold entities project onto the pipeline's own tokenisation
    assert "Chemical" in [t.split("-")[-1] for t in eg.get_aligned_ner() if t]
    assert len(list(readers["conll"](nlp))) == 2
    (brat,) = list(readers["brat"](nlp))
    assert "renal and hepatic failure" in [s.text for s in brat.reference.spans["mentions"]]


def test_reader_rejects_bad_option():
    cfg = Config().from_str('[c]\n@readers = "electramed.ConllCorpus.v1"\npath = "x.tsv"\nscheme = "bilou"\n')
    with pytest.raises(ValueError, match="scheme must be one of"):
        registry.resolve(cfg)


def test_convert_cli_pubtator_with_summary(tmp_path):
    out, summary = tmp_path / "train.spacy", tmp_path / "summary.json"
    result = CliRunner().invoke(app, [
        "convert", str(NER / "bc5cdr_sample.PubTator.txt"), str(out), "--format", "pubtator",
        "--summary-json", str(summary)])
    assert result.exit_code == 0, result.output
    assert "entities: Chemical" in result.output and "relations: CID" in result.output
    assert "dropped: overlapping mention" in result.output
    data = json.loads(summary.read_text())
    assert data["documents"] == 2 and data["entities"] == {"Chemical": 10, "Disease": 9}
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [(r.head.text, r.tail.text) for r in docs[0]._.relations][0] == ("Lithium", "nephrogenic diabetes insipidus")


def test_convert_cli_conll_and_brat(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(NER / "ncbi_sample_iob1.conll"), str(tmp_path / "c.spacy"),
                                 "--format", "conll", "--scheme", "iob1", "--n-sents", "1"])
    assert result.exit_code == 0, result.output
    assert len(DocBin().from_disk(tmp_path / "c.spacy")) == 3
    result = runner.invoke(app, ["convert", str(NER / "brat"), str(tmp_path / "b.spacy"), "--format", "brat",
                                 "--discontinuous", "fragments", "--no-sentences"])
    assert result.exit_code == 0, result.output
    assert "note: discontinuous mentions (policy: fragments)" in result.output


def test_convert_cli_bad_input_exits_with_file_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("Aspirin\tB-Chemical\nstroke\tX-Disease\n")
    result = CliRunner().invoke(app, ["convert", str(bad), str(tmp_path / "o.spacy"), "--format", "conll"])
    assert result.exit_code == 1
    assert f"{bad}:2:" in result.output and "Expected: O, B-LABEL or I-LABEL" in result.output
    assert not (tmp_path / "o.spacy").exists()
