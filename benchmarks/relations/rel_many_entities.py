"""Time and peak memory of marking and tokenising the candidate pairs of one sentence with N entities.

The marked-pair relation model (`electramed.MarkedPairRelationModel.v1`) encodes each candidate pair as its own
marked sequence; this measures that input side (the encoder's cost is per sequence of at most
`max_length` wordpieces, the same for any sentence length). Usage:

    python benchmarks/relations/rel_many_entities.py ENCODER_DIR --entities 200 --entities 2000 --output out.json
"""
import json
import resource
import time
from pathlib import Path
from typing import List

import spacy
import typer
from transformers import AutoTokenizer

from electramed_spacy.ml.relations.candidates import configure_relation_candidates_v2
from electramed_spacy.ml.relations.marked_pair import encode_pairs

DRUGS = ["naloxone", "clonidine", "warfarin", "aspirin", "cisplatin"]


def one_sentence(nlp, n_entities: int):
    doc = nlp(" and ".join(DRUGS[i % len(DRUGS)] for i in range(n_entities)) + " were given together.")
    doc.ents = [doc[i:i + 1].char_span(0, len(doc[i]), label="DRUG") for i in range(0, 2 * n_entities, 2)]
    return doc


def main(encoder: Path, entities: List[int] = typer.Option(..., "--entities"), max_pairs: int = 5000,
         max_length: int = 128, output: Path = typer.Option(None)):
    tokenizer = AutoTokenizer.from_pretrained(str(encoder), use_fast=True)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    get_candidates = configure_relation_candidates_v2(max_pairs=max_pairs)
    rows = []
    for n in entities:
        doc = one_sentence(nlp, n)
        start = time.perf_counter()
        pairs = [get_candidates(doc)]
        seqs, _ = encode_pairs(tokenizer, [doc], pairs, max_length=max_length, context_tokens=32, typed_markers=True)
        rows.append({"entities": n, "tokens": len(doc), "pairs": len(seqs), "seconds": round(time.perf_counter() - start, 2),
                     "longest_sequence": max(map(len, seqs)),
                     "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
        print(json.dumps(rows[-1]))
    if output:
        output.write_text(json.dumps({"encoder": str(encoder), "max_pairs": max_pairs, "max_length": max_length, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
