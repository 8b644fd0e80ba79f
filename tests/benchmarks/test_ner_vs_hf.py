"""benchmarks/ner_speed/ner_vs_hf.py quick: the default NER config on an encoder, timed against the HF pipeline
on the same weights; here on a tiny BERT and three texts (what it reports, not how fast)."""
import json
from pathlib import Path

import spacy
from conftest import load_benchmark, save_tiny_bert
from spacy.tokens import DocBin, Span


def test_quick_reports_both_sides_and_what_auto_chose(tmp_path):
    bench = load_benchmark("ner_vs_hf")
    nlp = spacy.blank("en")
    docs = []
    for text in ["Aspirin causes ulcers .", "Warfarin treats stroke .", "Heparin causes bleeding ."]:
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")]
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "d.spacy")
    words = sorted({t.lower_ for d in docs for t in d})
    encoder = save_tiny_bert(tmp_path / "bert", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
    config = Path(__file__).resolve().parents[2] / "configs" / "ner.cfg"
    bench.quick(encoder, tmp_path / "d.spacy", n_docs=3, repeats=2, threads=1, config=config, output=tmp_path / "q.json")
    result = json.loads((tmp_path / "q.json").read_text())
    assert {"ours", "hf_default", "hf_b8", "hf_b16"} <= set(result["rows"])
    assert result["words"] == 12 and result["auto_chose"]["autocast_auto"] in ("float32", "bfloat16")
    assert all(len(row["seconds"]) == 2 and row["words_per_s_median"] > 0 for row in result["rows"].values())
    assert result["rows"]["ours"]["x_hf_default"] > 0
