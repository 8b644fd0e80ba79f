"""`electramed_sentencizer`: abbreviations, brackets and lower-case continuations do not end a sentence."""
import pytest
import spacy
from conftest import require_shared

from electramed_spacy.pipeline import sentencizer  # noqa: F401


def _sents(text):
    nlp = spacy.blank("en")
    nlp.add_pipe("electramed_sentencizer")
    return [s.text for s in nlp(text).sents]


@pytest.mark.parametrize("text, expected", [
    ("Patients received 5 mg/kg i.v. of cisplatin (CDDP) vs. placebo. Fig. 2 shows IL-2 levels.",
     ["Patients received 5 mg/kg i.v. of cisplatin (CDDP) vs. placebo.", "Fig. 2 shows IL-2 levels."]),
    ("Smith et al. (2001) found e.g. 2.5-fold rises (see Fig. 3. and Table 2). Doses were approx. 5 mg.",
     ["Smith et al. (2001) found e.g. 2.5-fold rises (see Fig. 3. and Table 2).", "Doses were approx. 5 mg."]),
    ("Candida sp. and Bacillus spp. grew. Then p53 rose! Was it? Yes.",
     ["Candida sp. and Bacillus spp. grew.", "Then p53 rose!", "Was it?", "Yes."]),
    ("(see Drug Interaction Studies.) Rifampin: Rifampin enhances it.",
     ["(see Drug Interaction Studies.)", "Rifampin: Rifampin enhances it."]),
    ("A stray ( bracket here. Next sentence. " + "Word " * 90 + "end. Last one.",
     None),  # an unclosed bracket does not join the rest of the document
])
def test_biomedical_sentences(text, expected):
    got = _sents(text)
    if expected is None:
        assert got[0] == "A stray ( bracket here." and got[-1] == "Last one."
    else:
        assert got == expected


def test_saved_and_loaded_with_a_pipeline(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("electramed_sentencizer")
    nlp.to_disk(tmp_path / "nlp")
    assert [s.text for s in spacy.load(tmp_path / "nlp")("Given i.v. daily. Fig. 1 shows it.").sents] == \
        ["Given i.v. daily.", "Fig. 1 shows it."]
    assert list(nlp.pipe(["", "One."])) and len(nlp("")) == 0


@pytest.mark.slow
def test_beats_spacys_sentencizer_on_ddi_gold_sentences():
    from conftest import load_benchmark

    bench = load_benchmark("sentence_split")
    from electramed_spacy.corpora.ddi import read_ddi

    gold = list(read_ddi([require_shared("re", "ddi2013", "test")], spacy.blank("en").make_doc))
    scores = {}
    for label, factory in bench.SPLITTERS.items():
        nlp = spacy.blank("en")
        nlp.add_pipe(factory)
        scores[label] = bench.score(gold, nlp)
    ours, theirs = scores["electramed_sentencizer"], scores["spacy_sentencizer"]
    assert ours["boundary_f1"] > theirs["boundary_f1"] + 2
    assert ours["interacting_pairs_in_one_sentence"] >= theirs["interacting_pairs_in_one_sentence"]
