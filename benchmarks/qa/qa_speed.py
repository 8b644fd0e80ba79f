"""Questions/s and BioASQ scores of one QA pipeline under several inference settings, side by side.

Same pipeline, same weights, same questions; only `[components.qa.model]` settings change
(`batch_size`: windows per encoder call, length-sorted; `autocast`: bf16 or float32). The
settings' repeats are interleaved in one process, so a change in the machine's load hits them
alike; each setting is also scored (strict / lenient accuracy, MRR over the top 5), so a faster
setting that answers worse shows it. Run by hand (numbers go to the README with this command):

    python benchmarks/qa/qa_speed.py training/bioasq_qa/model-best assets/bioasq/BioASQ-test-factoid-7b.json \\
        assets/bioasq/7B_golden.json --setting 0:none --setting 16:none --setting 16:bfloat16 \\
        --output benchmarks/qa/results/qa_speed.json
"""
import json
import os
import time
from pathlib import Path
from typing import List, Optional

import spacy
import torch
import typer

from electramed_spacy.corpora.bioasq import read_bioasq_golden, read_squad_json
from electramed_spacy.pipeline.qa_metrics import TOP_N, aggregate_docs, bioasq_factoid_scores


def _parse(setting: str):
    """"BATCH_SIZE:AUTOCAST[:QUANTIZE]" -> (batch size, autocast or None, quantize or None)."""
    size, _, rest = setting.partition(":")
    dtype, _, quantize = rest.partition(":")
    none = ("", "none", "null", "float32")
    return int(size), None if dtype in none else dtype, None if quantize in none else quantize


def main(
    model: str = typer.Argument(..., help="QA pipeline (name or path)"),
    test_json: Path = typer.Argument(..., exists=True, dir_okay=False),
    golden_json: Path = typer.Argument(..., exists=True, dir_okay=False),
    setting: List[str] = typer.Option(["0:none", "16:none", "16:bfloat16"],
                                      help="BATCH_SIZE:AUTOCAST[:QUANTIZE], e.g. 8:none:dynamic_int8_per_channel; repeat"),
    pipe_batch_size: int = typer.Option(32, help="Question-snippet pairs per nlp.pipe batch"),
    repeats: int = typer.Option(3, help="Timed passes per setting, interleaved"),
    limit: int = typer.Option(0, help="Time only the first N pairs (0 = all); scores then cover those"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    nlp = spacy.load(model)
    name = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "electramed_qa")
    qa = nlp.get_pipe(name)
    qa.cfg["no_answer"] = False
    qa.cfg["top_k"] = max(int(qa.cfg["top_k"]), TOP_N)
    docs = list(read_squad_json(test_json, nlp.make_doc, on_error="count"))
    docs = docs[:limit] if limit else docs
    gold = {q["id"]: q["synonyms"] for q in read_bioasq_golden(golden_json, on_error="count")}
    settings = [_parse(s) for s in setting]
    # quantize and autocast are read from the config at load: one pipeline per (quantize, autocast), same weights
    pipelines = {}
    for q, a in {(s[2], s[1]) for s in settings}:
        pipelines[q, a] = spacy.load(model, config={"components": {name: {"model": {"quantize": q, "autocast": a}}}})
        pipelines[q, a].get_pipe(name).cfg.update(no_answer=False, top_k=qa.cfg["top_k"])
    seconds = {s: [] for s in settings}
    scores = {}
    for p in pipelines.values():
        with p.select_pipes(enable=[name]):
            list(p.pipe(docs[:pipe_batch_size], batch_size=pipe_batch_size))  # warm-up (and the int8 copies)
    for _ in range(repeats):
        for s in settings:
            p = pipelines[s[2], s[1]]
            pipe = p.get_pipe(name)
            with p.select_pipes(enable=[name]):
                pipe.model.attrs["batch_size"] = s[0]
                start = time.perf_counter()
                done = list(p.pipe(docs, batch_size=pipe_batch_size))
                seconds[s].append(time.perf_counter() - start)
                ranked = aggregate_docs(done, spans_key=pipe.key)
                scores[s] = bioasq_factoid_scores(ranked, {k: v for k, v in gold.items() if k in ranked})
    n_questions = len(ranked)
    rows = []
    for s in settings:
        best, med = min(seconds[s]), sorted(seconds[s])[len(seconds[s]) // 2]
        rows.append({"batch_size": s[0], "autocast": s[1] or "float32", "quantize": s[2],
                     "questions_per_s": round(n_questions / best, 2),
                     "questions_per_s_median": round(n_questions / med, 2), "pairs_per_s": round(len(docs) / best, 2),
                     "seconds": [round(x, 2) for x in seconds[s]],
                     **{k: scores[s][k] for k in ("qa_strict_acc", "qa_lenient_acc", "qa_mrr")}})
        r = rows[-1]
        print(f"batch_size={s[0]:<3d} autocast={r['autocast']:9s} quantize={r['quantize'] or 'none'} {r['questions_per_s']:7.2f} questions/s (median "
              f"{r['questions_per_s_median']:.2f}), {r['pairs_per_s']:7.2f} pairs/s; strict {r['qa_strict_acc']:.4f} "
              f"lenient {r['qa_lenient_acc']:.4f} MRR {r['qa_mrr']:.4f}")
    result = {"model": model, "test": str(test_json), "golden": str(golden_json), "pairs": len(docs),
              "questions": n_questions, "torch_threads": torch.get_num_threads(), "load_avg_at_end": os.getloadavg(),
              "pipe_batch_size": pipe_batch_size, "repeats": repeats, "results": rows}
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
