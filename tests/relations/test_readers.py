"""DDI-2013 and ChemProt readers: small hand-written fixtures, every bad-input message,
and the official counts on ../shared/data (skipped when absent)."""
import json
from pathlib import Path

import pytest
import spacy
from conftest import require_shared
from hypothesis import given, settings
from hypothesis import strategies as st
from re_helpers import RE_FIXTURES, rel_tuples
from spacy.tokens import DocBin

from electramed_spacy.corpora.chemprot import read_chemprot_pure, read_chemprot_sentences, strip_markers
from electramed_spacy.corpora.common import ConversionSummary, CorpusFormatError, split_dev
from electramed_spacy.corpora.ddi import read_ddi, read_ddi_file
from electramed_spacy.ml.relations.candidates import configure_relation_candidates

DDI_SAMPLE = RE_FIXTURES / "ddi" / "interaction_sample.xml"
NLP = spacy.blank("en")


def _xml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<document id="d">\n' + body + "\n</document>\n", encoding="utf8")
    return path


def test_ddi_fixture():
    summary = ConversionSummary()
    doc = read_ddi_file(DDI_SAMPLE, NLP.make_doc, summary=summary)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Ketoconazole", "drug"), ("midazolam", "drug"), ("beta-", "group"),
        ("alpha-adrenergic blockers", "group"), ("Sudafed", "brand"), ("aspirin", "drug"),
    ]
    assert len(list(doc.sents)) == 3
    assert rel_tuples(doc) == [
        ("Ketoconazole", "midazolam", "mechanism"), ("alpha-adrenergic blockers", "Sudafed", "advise"),
        ("beta-", "Sudafed", "advise"),
    ]
    assert summary.notes["pairs read"] == 4 and summary.notes["positive pairs read"] == 3
    assert summary.notes["discontinuous entity (first)"] == 1
    assert dict(summary.relations) == {"mechanism": 1, "advise": 2}
    # the same-sentence symmetric candidates are exactly the corpus' pairs
    assert len(configure_relation_candidates()(doc)) == 4
    # round trip through DocBin keeps entities, sentences and relations
    back = list(DocBin(docs=[doc], store_user_data=True).get_docs(NLP.vocab))[0]
    assert rel_tuples(back) == rel_tuples(doc) and len(list(back.sents)) == 3


def test_ddi_discontinuous_policies():
    span = ConversionSummary()
    doc = read_ddi_file(DDI_SAMPLE, NLP.make_doc, summary=span, discontinuous="extent")
    # the covering span overlaps alpha-adrenergic blockers, so one of them leaves doc.ents
    assert "beta- and alpha-adrenergic blockers" in [s.text for s in doc.spans["mentions"]]
    assert span.dropped["overlapping mention (kept in doc.spans['mentions'], not in doc.ents)"] == 1
    # DDI's old name for the same policy still works for one release, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="discontinuous='span' is deprecated.*use 'extent'"):
        old = read_ddi_file(DDI_SAMPLE, NLP.make_doc, discontinuous="span")
    assert [s.text for s in old.spans["mentions"]] == [s.text for s in doc.spans["mentions"]]
    # fragments: one mention per fragment, the pair attached to the first
    frag = ConversionSummary()
    doc = read_ddi_file(DDI_SAMPLE, NLP.make_doc, summary=frag, discontinuous="fragments")
    mentions = [s.text for s in doc.spans["mentions"]]
    assert "beta-" in mentions and "adrenergic blockers" in mentions and "alpha-adrenergic blockers" in mentions
    assert ("beta-", "Sudafed", "advise") in rel_tuples(doc) and frag.notes["discontinuous entity (fragments)"] == 1
    drop = ConversionSummary()
    doc = read_ddi_file(DDI_SAMPLE, NLP.make_doc, summary=drop, discontinuous="drop")
    assert drop.dropped["discontinuous entity (policy: drop)"] == 1
    assert drop.dropped["positive pair with a dropped entity"] == 1
    assert len(doc._.relations) == 2
    with pytest.raises(ValueError, match="discontinuous must be one of"):
        read_ddi_file(DDI_SAMPLE, NLP.make_doc, discontinuous="merge")


E0_NO_OFFSET = '<entity id="e0" type="drug" text="Aspirin"/>'
SENT = '<sentence id="s0" text="Aspirin and warfarin.">'
E0 = '<entity id="e0" charOffset="0-6" type="drug" text="Aspirin"/>'
E1 = '<entity id="e1" charOffset="12-19" type="drug" text="warfarin"/>'


@pytest.mark.parametrize("body,line,message", [
    (f"{SENT}{E0}{E1}<pair id='p' e1='e0' e2='e1' ddi='true' type='synergy'/></sentence>", 3, "pair type 'synergy' is not a DDI-2013 type"),
    (f"{SENT}{E0}{E1}<pair id='p' e1='e0' e2='e9' ddi='false'/></sentence>", 3, "unknown entity id(s) e9"),
    (f"{SENT}{E0}{E1}<pair id='p' e1='e0' e2='e1' ddi='maybe'/></sentence>", 3, "ddi='maybe'"),
    (f"{SENT}{E0}{E1}<pair id='p' e1='e0' ddi='false'/></sentence>", 3, "<pair> has no e2 attribute"),
    (f"{SENT}\n{E0.replace('0-6', '0-x')}</sentence>", 4, "charOffset '0-x' is malformed"),
    (f"{SENT}\n{E0.replace('0-6', '6-0')}</sentence>", 4, "ends before it starts"),
    (f"{SENT}\n{E0_NO_OFFSET}</sentence>", 4, "<entity> has no charOffset"),
    (f"{SENT}\n{E0.replace('drug', 'protein')}</sentence>", 4, "entity type 'protein' is not a DDI-2013 type"),
    (f"{SENT}\n{E0.replace('0-6', '0-40')}</sentence>", 4, "falls outside its sentence"),
    (f"{SENT}\n{E0.replace('Aspirin', 'Aspirine')}</sentence>", 4, "does not match the sentence"),
    ('<sentence id="s0">\n</sentence>', 3, "<sentence> has no text attribute"),
    (f"{E0}", 3, "<entity> outside a <sentence>"),
    (f"{SENT}\n<entity id='e0' charOffset='0-6' type='drug'>", 5, "not well-formed XML (mismatched tag)"),
])
def test_ddi_bad_input_messages(tmp_path, body, line, message):
    path = _xml(tmp_path, body)
    with pytest.raises(CorpusFormatError) as err:
        read_ddi_file(path, NLP.make_doc)
    assert f"{path}:{line}:" in str(err.value)
    assert message in str(err.value)


def test_ddi_counted_drops_and_missing_inputs(tmp_path):
    path = _xml(tmp_path, f"{SENT}\n{E0.replace('Aspirin', 'Aspirine')}{E1}<pair id='p' e1='e0' e2='e1' ddi='true' type='effect'/></sentence>")
    summary = ConversionSummary()
    doc = read_ddi_file(path, NLP.make_doc, summary=summary, on_error="count")
    assert summary.dropped == {"offset mismatch": 1, "positive pair with a dropped entity": 1}
    assert [e.text for e in doc.ents] == ["warfarin"]
    no_type = _xml(tmp_path, f"{SENT}{E0}{E1}<pair id='p' e1='e0' e2='e1' ddi='true'/></sentence>")
    summary = ConversionSummary()
    read_ddi_file(no_type, NLP.make_doc, summary=summary)
    assert summary.dropped == {"positive pair without type": 1}
    with pytest.raises(CorpusFormatError, match="does not exist"):
        list(read_ddi([tmp_path / "nope"], NLP.make_doc))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusFormatError, match=r"no corpus files found in this directory\. Expected: files matching \*\.xml"):
        list(read_ddi([tmp_path / "empty"], NLP.make_doc))
    no_doc = tmp_path / "nodoc.xml"
    no_doc.write_text("<corpus/>\n", encoding="utf8")
    with pytest.raises(CorpusFormatError, match=r"nodoc.xml:1: no <document> element"):
        read_ddi_file(no_doc, NLP.make_doc)


def test_ddi_is_read_as_utf8_whatever_it_declares(tmp_path):
    """An unknown or multi-byte encoding declaration escaped as LookupError/ValueError."""
    for declared in ("UTF-215", "UTF-16"):
        path = tmp_path / "x.xml"
        path.write_text(f'<?xml version="1.0" encoding="{declared}"?>\n<document id="d">\n{SENT}{E0}</sentence></document>\n', encoding="utf8")
        doc = read_ddi_file(path, NLP.make_doc)
        assert [e.text for e in doc.ents] == ["Aspirin"]
    path.write_bytes(b'<document id="d">\n<sentence id="s" text="caf\xe9"/>\n</document>\n')
    with pytest.raises(CorpusFormatError, match=r"x\.xml:2: not well-formed XML"):
        read_ddi_file(path, NLP.make_doc)


def test_split_dev_is_seeded_and_keeps_groups_whole():
    docs = [NLP.make_doc(f"doc {i}") for i in range(20)]
    train, dev = split_dev(docs, 0.1, seed=0)
    assert len(train) == 18 and len(dev) == 2
    assert [d.text for d in split_dev(docs, 0.1, seed=0)[1]] == [d.text for d in dev]
    assert [d.text for d in split_dev(docs, 0.1, seed=1)[1]] != [d.text for d in dev]
    # grouped (BioASQ: the snippets of one question): no group on both sides, a fraction of the groups held out
    train, dev = split_dev(docs, 0.5, seed=0, key=lambda d: int(d.text.split()[1]) % 4)
    assert len(dev) == 10 and not {int(d.text.split()[1]) % 4 for d in train} & {int(d.text.split()[1]) % 4 for d in dev}
    with pytest.raises(ValueError, match="dev_fraction"):
        split_dev(docs, 1.0, seed=0)


def test_chemprot_sentences_fixture():
    summary = ConversionSummary()
    docs = list(read_chemprot_sentences(RE_FIXTURES / "chemprot" / "sentences_sample.jsonl", NLP.make_doc, summary=summary))
    assert docs[0].text == "Imatinib is a potent inhibitor of the BCR-ABL tyrosine kinase."
    assert rel_tuples(docs[0]) == [("Imatinib", "BCR-ABL", "CPR:4")]
    # a literal ">>" in the text stays text
    assert docs[1].text.endswith("(rank order A>>B).")
    assert rel_tuples(docs[1]) == [("CYP3A4", "rifampicin", "CPR:3")]
    assert rel_tuples(docs[2]) == [("Dopamine", "D2 receptors", "CPR:5")]
    assert dict(summary.relations) == {"CPR:4": 1, "CPR:3": 1, "CPR:5": 1}
    fine = list(read_chemprot_sentences(RE_FIXTURES / "chemprot" / "sentences_sample.jsonl", NLP.make_doc, label_scheme="fine"))
    assert [r.label for d in fine for r in d._.relations] == ["INHIBITOR", "INDIRECT-UPREGULATOR", "AGONIST-ACTIVATOR"]


@given(st.text(alphabet="ab cd>]", min_size=1, max_size=12), st.text(alphabet="xy z", min_size=1, max_size=6).filter(lambda s: s.strip() == s),
       st.text(alphabet="pq r", min_size=1, max_size=6).filter(lambda s: s.strip() == s))
@settings(max_examples=60, deadline=None)
def test_strip_markers_offsets(prefix, first, second):
    # closers (">>", "]]") before any opener are literal text; openers in free text are ambiguous by design
    text, found = strip_markers(f"{prefix}<< {first} >> and [[ {second} ]].")
    assert text[slice(*found["<<"])] == first and text[slice(*found["[["])] == second


@pytest.mark.parametrize("line,message", [
    ('{"text": "<< A >> binds B.", "label": "INHIBITOR"}', "no entity marked with [[ ]]"),
    ('{"text": "<< A binds [[ B ]].", "label": "INHIBITOR"}', "unclosed << marker"),
    ('{"text": "<<  >> binds [[ B ]].", "label": "INHIBITOR"}', "is empty"),
    ('{"text": "<< A >> binds [[ B ]].", "label": "BINDER"}', "label 'BINDER' is not a ChemProt label"),
    ('{"text": "<< A >> binds [[ B ]]."}', "'label' is missing"),
    ('{"text": "<< A >> binds', "not valid JSON"),
    ('["<< A >> binds [[ B ]]."]', "a JSON list, not an object"),
])
def test_chemprot_sentences_bad_input(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "<< A >> binds [[ B ]].", "label": "AGONIST"}\n' + line + "\n", encoding="utf8")
    with pytest.raises(CorpusFormatError) as err:
        list(read_chemprot_sentences(path, NLP.make_doc))
    assert f"{path}:2:" in str(err.value) and message in str(err.value)


def test_chemprot_sentences_counted_drop(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "<< A >> binds B.", "label": "INHIBITOR"}\n{"text": "<< A >> binds [[ B ]].", "label": "ANTAGONIST"}\n', encoding="utf8")
    summary = ConversionSummary()
    docs = list(read_chemprot_sentences(path, NLP.make_doc, summary=summary, on_error="count"))
    assert len(docs) == 1 and summary.dropped == {"unreadable entity markers": 1}
    with pytest.raises(CorpusFormatError, match="does not exist"):
        list(read_chemprot_sentences(tmp_path / "nope.jsonl", NLP.make_doc))


def test_chemprot_sentences_bom_and_bad_options(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "<< A >> binds [[ B ]].", "label": "AGONIST"}\n')
    (doc,) = read_chemprot_sentences(path, NLP.make_doc)
    assert rel_tuples(doc) == [("A", "B", "CPR:5")]
    with pytest.raises(ValueError, match="on_error must be one of"):
        list(read_chemprot_sentences(path, NLP.make_doc, on_error="ignore"))
    with pytest.raises(ValueError, match="label_scheme must be one of"):
        list(read_chemprot_sentences(path, NLP.make_doc, label_scheme="coarse"))


def test_chemprot_pure_fixture():
    summary = ConversionSummary()
    (doc,) = list(read_chemprot_pure(RE_FIXTURES / "chemprot" / "pure_sample.json", NLP.make_doc, summary=summary))
    assert [(e.text, e.label_) for e in doc.ents] == [("Imatinib", "CHEMICAL"), ("BCR - ABL kinase", "GENE"), ("Aspirin", "CHEMICAL"), ("COX - 2", "GENE")]
    assert len(list(doc.sents)) == 2
    assert rel_tuples(doc) == [("Imatinib", "BCR - ABL kinase", "CPR:4")]
    cands = configure_relation_candidates(type_pairs=[["CHEMICAL", "GENE"]], symmetric=False)(doc)
    assert len(cands) == 2  # one per sentence: the positive and a negative


@pytest.mark.parametrize("record,message", [
    ({"sentences": [["A"]], "ner": [[]]}, "key 'relations' is missing"),
    ({"sentences": [[]], "ner": [[]], "relations": [[]]}, "not a list of non-empty token lists"),
    ({"sentences": [["A"]], "ner": [], "relations": [[]]}, "1 sentences but 0 'ner'"),
    ({"sentences": [["A"]], "ner": [[[0, 3, "GENE"]]], "relations": [[]]}, "outside the document's 1 tokens"),
    ({"sentences": [["A"]], "ner": [[[0, "GENE"]]], "relations": [[]]}, "is malformed"),
    ({"sentences": [["A", "B"]], "ner": [[[0, 0, "CHEMICAL"], [1, 1, "GENE"]]], "relations": [[[0, 0, 1, 1, "CPR:1"]]]}, "label 'CPR:1' is not evaluated"),
    ({"sentences": [["A", "B"]], "ner": [[]], "relations": [[[0, 0]]]}, "relation [0, 0] is malformed"),
    # wrong field types used to escape as TypeError tracebacks
    ({"sentences": [["A"]], "ner": 5, "relations": [[]]}, "'ner' is not a list of per-sentence lists"),
    ({"sentences": [["A"]], "ner": [[]], "relations": "x"}, "'relations' is not a list of per-sentence lists"),
    ({"sentences": [["A", "B"]], "ner": [[[0, 0, "CHEMICAL"]]], "relations": [[[[0], 0, 1, 1, "CPR:4"]]]}, "is malformed"),
    ({"sentences": [["A", " "]], "ner": [[]], "relations": [[]]}, "empty or whitespace-only token"),
])
def test_chemprot_pure_bad_input(tmp_path, record, message):
    path = tmp_path / "bad.json"
    good = {"doc_key": "ok", "sentences": [["A"]], "ner": [[]], "relations": [[]]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(record, doc_key="bad")) + "\n", encoding="utf8")
    with pytest.raises(CorpusFormatError) as err:
        list(read_chemprot_pure(path, NLP.make_doc))
    assert f"{path}:2:" in str(err.value) and message in str(err.value)


def test_chemprot_pure_counted_drop(tmp_path):
    path = tmp_path / "x.json"
    record = {"doc_key": "x", "sentences": [["A", "B"]], "ner": [[[0, 0, "CHEMICAL"]]], "relations": [[[0, 0, 1, 1, "CPR:4"]]]}
    path.write_text(json.dumps(record) + "\n", encoding="utf8")
    summary = ConversionSummary()
    (doc,) = list(read_chemprot_pure(path, NLP.make_doc, summary=summary))
    assert summary.dropped == {"relation whose head or tail is not an annotated entity": 1}
    assert not doc._.relations


@pytest.mark.slow
def test_ddi_official_counts():
    root = require_shared("re", "ddi2013")
    for split, n_docs, n_pairs, n_pos in (("train", 714, 27792, 4021), ("test", 191, 5716, 979)):
        summary = ConversionSummary()
        docs = list(read_ddi([root / split], NLP.make_doc, summary=summary))
        assert len(docs) == summary.documents == n_docs
        assert summary.notes["pairs read"] == n_pairs
        assert summary.notes["positive pairs read"] == n_pos
        # every positive is kept except DDI's one typeless positive in train
        assert sum(summary.relations.values()) + summary.dropped["positive pair without type"] == n_pos
        assert set(summary.relations) == {"mechanism", "effect", "advise", "int"}
        # candidates reproduce the pair set, bar the pairs of mentions that leave doc.ents by overlapping
        n_cands = sum(len(configure_relation_candidates()(d)) for d in docs)
        assert n_pairs - 5 <= n_cands <= n_pairs


@pytest.mark.slow
def test_chemprot_counts():
    root = require_shared("re", "chemprot")
    summary = ConversionSummary()
    docs = list(read_chemprot_sentences(root / "scibert_sentences" / "test.jsonl", NLP.make_doc, summary=summary))
    assert len(docs) == 3469 and sum(summary.relations.values()) == 3469
    summary = ConversionSummary()
    docs = list(read_chemprot_pure(root / "pure_json" / "test.json", NLP.make_doc, summary=summary))
    assert len(docs) == 800 and sum(summary.relations.values()) == 3424
