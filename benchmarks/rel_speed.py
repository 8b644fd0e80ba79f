"""Words/s, candidate pairs/s and relations/s of a relation pipeline (end to end from raw text).

`spacy benchmark speed` reports words/s only; this also counts what the relation pipe did.
Run by hand (numbers go to the README with this command line):

    python benchmarks/rel_speed.py MODEL corpus/ddi_test.spacy --n-docs 100 [--gold-entities]

--gold-entities gives the pipe the gold entities and sentences of DATA (NER and sentence
splitting disabled), as in the DDI-2013/ChemProt relation protocol; otherwise the pipeline
predicts its own entities.
"""
import json
import time
from pathlib import Path
from typing import Optional

import spacy
import torch
import typer
from spacy.tokens import DocBin
from spacy.training import Example

from electramed_spacy.corpora.gold_entities import copy_gold_entities, gold_input_pipes
from electramed_spacy.relations import install_extensions


def main(
    model: str,
    data: Path,
    n_docs: int = typer.Option(100, help="Docs to time (from the start of DATA)"),
    batch_size: int = typer.Option(16),
    repeats: int = typer.Option(2, help="Timed passes; the best is reported"),
    gold_entities: bool = typer.Option(False, "--gold-entities"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    install_extensions()
    nlp = spacy.load(model)
    rel_name = next(name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "electramed_relation_extractor")
    gold = list(DocBin().from_disk(data).get_docs(nlp.vocab))[:n_docs]
    disabled = gold_input_pipes(nlp) if gold_entities else []

    def inputs():
        if gold_entities:
            return [copy_gold_entities(Example(nlp.make_doc(d.text), d)).predicted for d in gold]
        return [nlp.make_doc(d.text) for d in gold]

    n_words = sum(len(d) for d in gold)
    best, out = float("inf"), []
    with nlp.select_pipes(disable=disabled):
        list(nlp.pipe(inputs()[:batch_size], batch_size=batch_size))  # warm-up
        for _ in range(repeats):
            docs = inputs()
            start = time.perf_counter()
            out = list(nlp.pipe(docs, batch_size=batch_size))
            best = min(best, time.perf_counter() - start)
    rel = nlp.get_pipe(rel_name)
    n_pairs = sum(len(rel.get_candidates(doc)) for doc in out)
    n_rels = sum(len(doc._.relations) for doc in out)
    results = {
        "model": model, "data": str(data), "docs": len(out), "words": n_words, "gold_entities": gold_entities,
        "pipes": [n for n in nlp.pipe_names if n not in disabled], "torch_threads": torch.get_num_threads(),
        "seconds": round(best, 2), "words_per_s": round(n_words / best, 1),
        "pairs_scored": n_pairs, "pairs_per_s": round(n_pairs / best, 1),
        "relations": n_rels, "relations_per_s": round(n_rels / best, 1),
    }
    print(json.dumps(results, indent=2))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    typer.run(main)
