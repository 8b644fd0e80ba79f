"""Words/s, candidate pairs/s and relations/s of relation pipelines (end to end from raw text).

`spacy benchmark speed` reports words/s only; this also counts what the relation pipe did,
and times several pipelines in one run on the same Docs, their repeats interleaved (so
a change in the machine's load hits them alike). Run by hand (numbers go to the README
with this command line):

    python benchmarks/relations/rel_speed.py MODEL [MODEL ...] --data corpus/ddi_test.spacy --n-docs 100 [--gold-entities]

--gold-entities gives the pipe the gold entities and sentences of DATA (NER and sentence
splitting disabled), as in the DDI-2013/ChemProt relation protocol, and scores each pipeline's
relations on the timed Docs (micro P/R/F), so a faster setting that finds fewer relations shows it;
otherwise the pipeline predicts its own entities. A MODEL may carry inference-only config
overrides after `@`, e.g. `PATH@components.transformer.model.quantize="dynamic_int8";components.transformer.model.autocast=null`
(values JSON): the same weights timed under another setting.
"""
import json
import os
import time
from pathlib import Path
from typing import List, Optional

import spacy
import torch
import typer
from spacy.tokens import DocBin
from spacy.training import Example

from electramed_spacy.corpora.gold_entities import copy_gold_entities, gold_input_pipes
from electramed_spacy.doc.relations import install_extensions


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
    pipelines = {name: _load(name) for name in models}
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
        scores = {}
        if gold_entities:
            scored = rel.score([Example(pred, ref) for pred, ref in zip(out, gold)])
            scores = {k: round(100 * scored[k], 2) for k in ("rel_micro_p", "rel_micro_r", "rel_micro_f") if k in scored}
        disabled = gold_input_pipes(nlp) if gold_entities else []
        results.append({
            "model": name, "architecture": rel.model.attrs.get("pair_representation"), "data": str(data),
            "docs": len(out), "words": n_words, "gold_entities": gold_entities,
            "pipes": [n for n in nlp.pipe_names if n not in disabled], "torch_threads": torch.get_num_threads(),
            "seconds": round(seconds, 2), "words_per_s": round(n_words / seconds, 1),
            "pairs_scored": n_pairs, "pairs_per_s": round(n_pairs / seconds, 1),
            "relations": n_rels, "relations_per_s": round(n_rels / seconds, 1), **scores,
            "load_avg_at_end": os.getloadavg(),
        })
    print(json.dumps(results, indent=2))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))


def _load(spec: str):
    """`PATH` or `PATH@dotted.key=json;dotted.key=json` (config overrides for spacy.load)."""
    path, _, body = spec.partition("@")
    overrides = {}
    for item in filter(None, body.split(";")):
        key, _, value = item.partition("=")
        overrides[key.strip()] = json.loads(value)
    return spacy.load(path, config=overrides)


if __name__ == "__main__":
    typer.run(main)
