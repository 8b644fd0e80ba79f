"""`electramed task-text`: a document of the pre-training text goes to the benchmark whose train/dev
sources it comes from (BC5CDR by title, DDI-2013 by its sentences); others, and test text, stay out."""
from typer.testing import CliRunner

from electramed_spacy.cli import app

TEXT = """Aspirin causes ulcers.
Ulcers were seen in 3 rats.

Warfarin and aspirin interact.
The dose was lowered.

An unrelated PubMed sentence.
Another one.

Warfarin and aspirin interact.
A test sentence nobody gave.
A second test sentence.
"""

PUBTATOR = "123|t|Aspirin causes ulcers.\n123|a|Ulcers were seen in 3 rats.\n123\t0\t7\tAspirin\tChemical\tD001241\n"

DDI = """<document id="d1"><sentence id="d1.s0" text="Warfarin and aspirin interact."/>
<sentence id="d1.s1" text="The dose was lowered."/></document>"""


def _run(*args, code=0):
    result = CliRunner().invoke(app, ["task-text", *map(str, args)])
    assert result.exit_code == code, result.output
    return result


def test_documents_go_to_their_benchmark(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    (tmp_path / "train.PubTator.txt").write_text(PUBTATOR, encoding="utf8")
    (tmp_path / "ddi" / "DrugBank").mkdir(parents=True)
    (tmp_path / "ddi" / "DrugBank" / "d1.xml").write_text(DDI, encoding="utf8")
    _run(tmp_path / "text.txt", tmp_path / "out", "--pubtator", tmp_path / "train.PubTator.txt", "--ddi-dir", tmp_path / "ddi")
    assert (tmp_path / "out" / "bc5cdr_task.txt").read_text() == "Aspirin causes ulcers.\nUlcers were seen in 3 rats.\n"
    # the last document shares one sentence of three with DDI's train split: under half, so it stays out
    assert (tmp_path / "out" / "ddi_task.txt").read_text() == "Warfarin and aspirin interact.\nThe dose was lowered.\n"


def test_no_sources_is_an_error(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    result = _run(tmp_path / "text.txt", tmp_path / "out", code=2)
    assert "--pubtator" in result.output and not (tmp_path / "out").exists()


def _docbin_with_entities(path):
    import spacy
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("en")
    doc = nlp("Warfarin and aspirin interact with Coumadin. The dose was lowered.")
    doc.ents = [Span(doc, 0, 1, "DRUG"), Span(doc, 2, 3, "DRUG"), Span(doc, 5, 6, "BRAND")]
    for token in doc:
        token.is_sent_start = token.i in (0, 7)
    DocBin(docs=[doc]).to_disk(path)


def test_marked_pairs_are_written_as_the_relation_model_marks_them(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    _docbin_with_entities(tmp_path / "train.spacy")
    _run(tmp_path / "text.txt", tmp_path / "out", "--marked", tmp_path / "train.spacy", "--pairs-per-sentence", 3)
    lines = (tmp_path / "out" / "train_marked.txt").read_text().splitlines()
    # three entities in the first sentence: all 3 pairs, earlier entity as head; the second sentence has none
    assert sorted(lines) == sorted([
        "@ * drug * Warfarin @ and # ^ drug ^ aspirin # interact with Coumadin.",
        "@ * drug * Warfarin @ and aspirin interact with # ^ brand ^ Coumadin # .",
        "Warfarin and @ * drug * aspirin @ interact with # ^ brand ^ Coumadin # .",
    ])
    _run(tmp_path / "text.txt", tmp_path / "one", "--marked", tmp_path / "train.spacy", "--pairs-per-sentence", 1)
    assert len((tmp_path / "one" / "train_marked.txt").read_text().splitlines()) == 1


def test_marked_needs_entities(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    DocBin(docs=[spacy.blank("en")("No entities here. None.")]).to_disk(tmp_path / "plain.spacy")
    result = _run(tmp_path / "text.txt", tmp_path / "out", "--marked", tmp_path / "plain.spacy", code=1)
    assert "no sentence with two entities" in " ".join(result.output.split()) and not (tmp_path / "out").exists()
