"""Words/s of a trained ELECTRAMed NER pipeline with and without bf16 autocast.

Same pipeline, same weights, same docs; only `[components.transformer.model] autocast`
changes. Run by hand (numbers go to the README with this command line):

    python benchmarks/ner_speed/ner_speed.py training/bc5cdr_trf/model-best corpus/bc5cdr_test.spacy --n-docs 200
"""
import json
import time
from pathlib import Path
from typing import Optional

import spacy
import torch
import typer
from spacy.tokens import DocBin


def main(
    model: Path,
    data: Path,
    n_docs: int = typer.Option(200, help="Docs to time (from the start of DATA)"),
    batch_size: int = typer.Option(32),
    repeats: int = typer.Option(3, help="Timed passes per setting; the best is reported"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    probe = spacy.load(model)
    docs = list(DocBin().from_disk(data).get_docs(probe.vocab))[:n_docs]
    texts = [d.text for d in docs]
    n_words = sum(len(d) for d in docs)
    results = {"model": str(model), "data": str(data), "docs": len(texts), "words": n_words, "torch_threads": torch.get_num_threads()}
    for setting in [None, "bfloat16"]:
        nlp = spacy.load(model, config={"components": {"transformer": {"model": {"autocast": setting}}}})
        list(nlp.pipe(texts[:batch_size], batch_size=batch_size))  # warm-up
        best = min(_timed(nlp, texts, batch_size) for _ in range(repeats))
        results[f"words_per_s_{setting or 'float32'}"] = round(n_words / best, 1)
        print(f"autocast={setting or 'float32':9s} {n_words / best:10.1f} words/s ({len(texts)} docs, {n_words} words, best of {repeats})")
    results["speedup"] = round(results["words_per_s_bfloat16"] / results["words_per_s_float32"], 2)
    print(f"bf16 speed-up: {results['speedup']}x")
    if output:
        output.write_text(json.dumps(results, indent=2))


def _timed(nlp, texts, batch_size) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - start


if __name__ == "__main__":
    typer.run(main)
