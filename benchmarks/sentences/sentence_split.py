"""Sentence boundaries against DDI-2013's gold sentences: `electramed_sentencizer` beside spaCy's `sentencizer`.

For each document of the given DDI-2013 folders, the text (gold sentences joined by a space) is
split again by each splitter. Reported per splitter: boundary precision / recall / F1 (a boundary is
the character offset where a sentence starts, the first excluded), and the share of the gold
interacting pairs whose two drugs still fall in one sentence: relation candidates are drawn within
sentences, so this is the recall ceiling the splitter leaves the relation model end to end. Usage:

    python benchmarks/sentences/sentence_split.py ../shared/data/re/ddi2013/test --output results.json
"""
import json
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import typer

from electramed_spacy.corpora.ddi import read_ddi
from electramed_spacy.pipeline import sentencizer  # noqa: F401  (registers electramed_sentencizer)

SPLITTERS = {"spacy_sentencizer": "sentencizer", "electramed_sentencizer": "electramed_sentencizer"}


def starts(doc) -> set:
    return {s.start_char for s in doc.sents} - {0}


def score(gold_docs, nlp) -> Dict[str, float]:
    tp = fp = fn = kept = pairs = 0
    for gold in gold_docs:
        doc = nlp(gold.text)
        want, got = starts(gold), starts(doc)
        tp, fp, fn = tp + len(want & got), fp + len(got - want), fn + len(want - got)
        sentence_of = {}
        for i, sent in enumerate(doc.sents):
            for token in sent:
                sentence_of[token.idx] = i
        for rel in gold._.relations:
            pairs += 1
            a = doc.char_span(rel.head.start_char, rel.head.end_char, alignment_mode="expand")
            b = doc.char_span(rel.tail.start_char, rel.tail.end_char, alignment_mode="expand")
            kept += a is not None and b is not None and a.sent.start == b.sent.start
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"boundary_precision": round(100 * p, 2), "boundary_recall": round(100 * r, 2),
            "boundary_f1": round(200 * p * r / max(p + r, 1e-9), 2), "gold_boundaries": tp + fn,
            "predicted_boundaries": tp + fp, "interacting_pairs_in_one_sentence": round(100 * kept / max(pairs, 1), 2),
            "interacting_pairs": pairs}


def main(ddi_dirs: List[Path], output: Optional[Path] = typer.Option(None)):
    blank = spacy.blank("en")
    gold_docs = list(read_ddi(ddi_dirs, blank.make_doc, on_error="count"))
    rows = {}
    for label, factory in SPLITTERS.items():
        nlp = spacy.blank("en")
        nlp.add_pipe(factory)
        rows[label] = score(gold_docs, nlp)
        print(label, json.dumps(rows[label]))
    if output:
        output.write_text(json.dumps({"data": [str(d) for d in ddi_dirs], "documents": len(gold_docs),
                                      "command": "python benchmarks/sentences/sentence_split.py " + " ".join(map(str, ddi_dirs)),
                                      "note": "rules were read off misses on DDI-2013 (train and test); both splits reported",
                                      "splitters": rows}, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
