"""benchmarks/relations/rel_train_speed.py on the anchor test's three DDI-like XML documents and a random 1-layer
BERT built here: every row trains, counts the pairs it encoded, and the JSON carries the machine."""
import json

import spacy
from conftest import load_benchmark
from spacy.tokens import DocBin
from test_rel_hf_anchor import bert_dir, ddi_dir  # noqa: F401 (fixtures)

from electramed_spacy.corpora.ddi import read_ddi

CONFIG = __import__("pathlib").Path(__file__).resolve().parents[2] / "configs" / "rel.cfg"


def test_rows_train_and_count_pairs(ddi_dir, bert_dir, tmp_path):  # noqa: F811
    speed = load_benchmark("rel_train_speed")
    docs = list(read_ddi([ddi_dir], spacy.blank("en").make_doc))
    train = tmp_path / "ddi_train.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(train)
    output = tmp_path / "speed.json"
    speed.main(CONFIG, bert_dir, train, ddi_dir, variant=["fp32:", 'bf16:components.relation_extractor.model.autocast="bfloat16"'],
               steps=2, warmup=0, n_docs=10, seed=0, output=output)
    report = json.loads(output.read_text(encoding="utf8"))
    rows = {r["row"]: r for r in report["results"]}
    assert set(rows) == {"ours_fp32", "ours_bf16", "anchor_fp32", "anchor_bf16"}
    # the batcher puts the 3 documents in one batch and every row encodes all their candidate pairs
    # (negative sampling is off in the benchmark): 5, the nested "Calcium" being left out of doc.ents
    assert rows["ours_fp32"]["pairs_per_update_mean"] == rows["ours_bf16"]["pairs_per_update_mean"] == 5
    assert rows["anchor_fp32"]["pairs_per_update_mean"] == 7  # batch 32 > the 7 pairs of the XML, each step
    assert all(r["pairs_per_s"] > 0 for r in rows.values())
    assert report["meta"]["cpu"] and report["meta"]["docs"] == 3
