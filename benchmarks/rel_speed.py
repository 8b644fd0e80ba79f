"""Words/s, candidate pairs/s and relations/s of relation pipelines (end to end from raw text).

`spacy benchmark speed` reports words/s only; this also counts what the relation pipe did,
and times several pipelines in one run on the same Docs, their repeats interleaved (so
a change in the machine's load hits them alike). Run by hand (numbers go to the README
with this command line):

    python benchmarks/rel_speed.py MODEL [MODEL ...] --data corpus/ddi_test.spacy --n-docs 100 [--gold-entities]

--gold-entities gives the pipe the gold entities and sentences of DATA (NER and sentence
splitting disabled), as in the DDI-2013/ChemProt relation protocol; otherwise the pipeline
predicts its own entities.
"""
import json
import time
from pathlib import Path
from typing import List, Optional

import spacy
import torch
import typer
from spacy.tokens import DocBin
from spacy.training import Example

from electramed_spacy.corpora.gold_entities import copy_gold_entities, gold_input_pipes
from electramed_spacy.relations import install_extensions


def main(
    models: List[str] = typer.Argument(..., help="Pipelines (names or paths) to time"),
    data: Path = typer.Option(..., help="DocBin whose texts (and gold entities) are the input"),
    n_docs: int = typer.Option(100, help="Docs to time (from the start of DATA)"),
    batch_size: int = typer.Option(16),
    repeats: int = typer.Option(2, help="Timed passes per pipeline, interleaved; the best is reported"),
    gold_entities: bool = typer.Option(False, "--gold-entities"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    install_extensions()
    pipelines = {name: spacy.load(name) for name in models}
    gold = list(DocBin().from_disk(data).get_docs(next(iter(pipelines.values())).vocab))[:n_docs]
    n_words = sum(len(d) for d in gold)

    def inputs(nlp):
        if gold_entities:
            return [copy_gold_entities(Example(nlp.make_doc(d.text), d)).predicted for d in gold]
        return [nlp.make_doc(d.text) for d in gold]

    best = {name: float("inf") for name in models}
    outputs = {}
    for nlp in pipelines.values():  # warm-up
        with nlp.select_pipes(disable=gold_input_pipes(nlp) if gold_entities else []):
            list(nlp.pipe(inputs(nlp)[:batch_size], batch_size=batch_size))
    for _ in range(repeats):
        for name, nlp in pipelines.items():
            with nlp.select_pipes(disable=gold_input_pipes(nlp) if gold_entities else []):
                docs = inputs(nlp)
                start = time.perf_counter()
                outputs[name] = list(nlp.pipe(docs, batch_size=batch_size))
                best[name] = min(best[name], time.perf_counter() - start)
    results = []
    for name, nlp in pipelines.items():
        rel_name = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "electramed_relation_extractor")
        rel = nlp.get_pipe(rel_name)
        out, seconds = outputs[name], best[name]
        n_pairs = sum(len(rel.get_candidates(doc)) for doc in out)
        n_rels = sum(len(doc._.relations) for doc in out)
        disabled = gold_input_pipes(nlp) if gold_entities else []
        results.append({
            "model": name, "architecture": rel.model.attrs.get("pair_representation"), "data": str(data),
            "docs": len(out), "words": n_words, "gold_entities": gold_entities,
            "pipes": [n for n in nlp.pipe_names if n not in disabled], "torch_threads": torch.get_num_threads(),
            "seconds": round(seconds, 2), "words_per_s": round(n_words / seconds, 1),
            "pairs_scored": n_pairs, "pairs_per_s": round(n_pairs / seconds, 1),
            "relations": n_rels, "relations_per_s": round(n_rels / seconds, 1),
        })
    print(json.dumps(results, indent=2))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    typer.run(main)
