"""Load time, memory and on-disk size of our pipelines (NER, relations, QA), each in a fresh process.

For each pipeline: seconds for `import spacy, electramed_spacy` and for `spacy.load`, resident
memory after loading (VmRSS), peak resident memory (VmHWM) after annotating the first N Docs of
a DocBin once (the pipeline's own input: texts for NER and relations, question-snippet Docs read
with `electramed.QACorpus.v1` for QA), and the directory's size. Run by hand:

    python benchmarks/pipelines/load_stats.py NER_MODEL=corpus/bc5cdr_test.spacy RE_MODEL=corpus/ddi_test.spacy \\
        QA_MODEL=corpus/bioasq_dev.spacy --n-docs 50 --output benchmarks/pipelines/results/load_stats.json
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False)


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


@app.command("probe", hidden=True)
def probe(model: str, data: Path, n_docs: int = 50, threads: int = 2) -> None:
    """(internal) One pipeline in this fresh process; prints one JSON line."""
    start = time.perf_counter()
    import spacy
    import torch

    import electramed_spacy  # noqa: F401  (registers the factories, as an installed package's entry points do)

    torch.set_num_threads(threads)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    nlp = spacy.load(model)
    load_s = time.perf_counter() - start
    rss_loaded = _status_mb("VmRSS")
    factories = {nlp.get_pipe_meta(n).factory for n in nlp.pipe_names}
    if "electramed_qa" in factories:
        from electramed_spacy.corpora.bioasq import create_qa_corpus

        docs = [eg.predicted for _, eg in zip(range(n_docs), create_qa_corpus(data)(nlp))]
    else:
        from spacy.tokens import DocBin

        docs = [nlp.make_doc(d.text) for d in list(DocBin().from_disk(data).get_docs(nlp.vocab))[:n_docs]]
    start = time.perf_counter()
    list(nlp.pipe(docs, batch_size=16))
    print(json.dumps({"import_s": round(import_s, 2), "load_s": round(load_s, 2), "rss_mb_after_load": rss_loaded,
                      "peak_rss_mb": _status_mb("VmHWM"), "docs": len(docs),
                      "first_pass_s": round(time.perf_counter() - start, 2), "pipes": nlp.pipe_names}))


def _dir_mb(model: str) -> Optional[float]:
    path = Path(model)
    if not path.is_dir():
        return None
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


@app.command()
def main(
    pairs: List[str] = typer.Argument(..., help="MODEL=DOCBIN, one per pipeline"),
    n_docs: int = typer.Option(50, help="Docs annotated once after loading (for the peak)"),
    threads: int = typer.Option(2),
    output: Optional[Path] = typer.Option(None),
) -> None:
    rows = []
    for pair in pairs:
        model, sep, data = pair.rpartition("=")
        if not sep:
            raise typer.BadParameter(f"expected MODEL=DOCBIN, got {pair!r}")
        done = subprocess.run([sys.executable, __file__, "probe", model, data, "--n-docs", str(n_docs),
                               "--threads", str(threads)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{model}: probe failed\n{done.stderr[-3000:]}")
        row = {"model": model, "data": data, "dir_mb": _dir_mb(model), **json.loads(done.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(f"{model}: load {row['load_s']} s (+ import {row['import_s']} s), RSS {row['rss_mb_after_load']} MB after "
              f"load, peak {row['peak_rss_mb']} MB after {row['docs']} docs; {row['dir_mb']} MB on disk", flush=True)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"threads": threads, "load_avg_at_end": os.getloadavg(), "results": rows}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        app()
    else:
        typer.run(main)
