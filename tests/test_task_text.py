"""benchmarks/task_text.py: a document of the pre-training text goes to the benchmark whose train/dev
sources it comes from (BC5CDR by title, DDI-2013 by its sentences); others, and test text, stay out."""
import pytest
import typer
from conftest import load_benchmark

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


def test_documents_go_to_their_benchmark(tmp_path):
    script = load_benchmark("task_text")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    (tmp_path / "train.PubTator.txt").write_text(PUBTATOR, encoding="utf8")
    (tmp_path / "ddi" / "DrugBank").mkdir(parents=True)
    (tmp_path / "ddi" / "DrugBank" / "d1.xml").write_text(DDI, encoding="utf8")
    script.main(tmp_path / "text.txt", tmp_path / "out", pubtator=[tmp_path / "train.PubTator.txt"],
                ddi_dir=[tmp_path / "ddi"], marked=[])
    assert (tmp_path / "out" / "bc5cdr_task.txt").read_text() == "Aspirin causes ulcers.\nUlcers were seen in 3 rats.\n"
    # the last document shares one sentence of three with DDI's train split: under half, so it stays out
    assert (tmp_path / "out" / "ddi_task.txt").read_text() == "Warfarin and aspirin interact.\nThe dose was lowered.\n"


def test_no_sources_is_an_error(tmp_path):
    script = load_benchmark("task_text")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    with pytest.raises(typer.BadParameter, match="--pubtator"):
        script.main(tmp_path / "text.txt", tmp_path / "out", pubtator=[], ddi_dir=[], marked=[])


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
    script = load_benchmark("task_text")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    _docbin_with_entities(tmp_path / "train.spacy")
    script.main(tmp_path / "text.txt", tmp_path / "out", pubtator=[], ddi_dir=[], marked=[tmp_path / "train.spacy"],
                pairs_per_sentence=3, seed=0)
    lines = (tmp_path / "out" / "train_marked.txt").read_text().splitlines()
    # three entities in the first sentence: all 3 pairs, earlier entity as head; the second sentence has none
    assert sorted(lines) == sorted([
        "@ * drug * Warfarin @ and # ^ drug ^ aspirin # interact with Coumadin.",
        "@ * drug * Warfarin @ and aspirin interact with # ^ brand ^ Coumadin # .",
        "Warfarin and @ * drug * aspirin @ interact with # ^ brand ^ Coumadin # .",
    ])
    script.main(tmp_path / "text.txt", tmp_path / "one", pubtator=[], ddi_dir=[], marked=[tmp_path / "train.spacy"],
                pairs_per_sentence=1, seed=0)
    assert len((tmp_path / "one" / "train_marked.txt").read_text().splitlines()) == 1


def test_marked_needs_entities(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    script = load_benchmark("task_text")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf8")
    DocBin(docs=[spacy.blank("en")("No entities here. None.")]).to_disk(tmp_path / "plain.spacy")
    with pytest.raises(typer.BadParameter, match="no sentence with two entities"):
        script.main(tmp_path / "text.txt", tmp_path / "out", pubtator=[], ddi_dir=[],
                    marked=[tmp_path / "plain.spacy"], pairs_per_sentence=2, seed=0)
