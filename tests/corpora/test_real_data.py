"""Integration: convert the real BC5CDR corpus from ../shared/data (skipped when absent)."""
import pytest
import spacy
from conftest import require_shared

from electramed_spacy.corpora.common import MENTIONS_KEY, ConversionSummary
from electramed_spacy.corpora.readers import iter_docs

pytestmark = pytest.mark.slow

PUBTATOR = {  # split: (file, Chemical, Disease, CID)
    "train": ("CDR_TrainingSet.PubTator.txt", 5203, 4182, 1038),
    "dev": ("CDR_DevelopmentSet.PubTator.txt", 5347, 4244, 1012),
    "test": ("CDR_TestSet.PubTator.txt", 5385, 4424, 1066),
}
CONLL = {"train": 4560, "devel": 4581, "test": 4797}


@pytest.mark.parametrize("split", PUBTATOR)
def test_bc5cdr_pubtator_counts(split):
    name, n_chem, n_dis, n_cid = PUBTATOR[split]
    path = require_shared("ner", "bc5cdr", "pubtator", name)
    summary = ConversionSummary(source=str(path))
    docs = list(iter_docs("pubtator", path, spacy.blank("en"), summary=summary))
    assert summary.documents == len(docs) == 500
    assert summary.entities == {"Chemical": n_chem, "Disease": n_dis}
    assert summary.relations == {"CID": n_cid}  # every CID pair has a mention of both concepts
    assert not [k for k in summary.dropped if not k.startswith("overlapping")], summary.dropped
    for doc in docs:  # no mention crosses a sentence boundary
        for span in doc.spans[MENTIONS_KEY]:
            assert not any(t.is_sent_start for t in span[1:]), (doc._.doc_id, span.text)


@pytest.mark.parametrize("split", CONLL)
def test_bc5cdr_conll_counts(split):
    path = require_shared("ner", "bc5cdr", "conll", f"{split}.tsv")
    summary = ConversionSummary(source=str(path))
    list(iter_docs("conll", path, spacy.blank("en"), summary=summary, n_sents=10))
    assert summary.sentences == CONLL[split]
    assert set(summary.entities) == {"Chemical", "Disease"}
    assert summary.notes["scheme detected: iob2"] == 1
