"""NER training words/s: `spacy train configs/ner.cfg` settings against the plain transformers recipe.

Issue 13, item 2 (training speed). Every row trains the SAME encoder on the SAME BC5CDR training
abstracts, in one process, one update per row in turn (interleaved, so a change in the machine's
load hits every row alike); words = spaCy tokens of the abstracts in the update.

- ours: the config's own pipeline (transformer + transition-based NER), updated with
  `nlp.update` on batches from the config's batcher, optionally with config overrides per row
  (window/stride, batch size, autocast): `name:dotted.key=json;dotted.key=json`.
- hf: the recipe of transformers' token-classification example: `AutoModelForTokenClassification`
  on the encoder directory, words tokenised with `is_split_into_words`, BIO labels on the first
  wordpiece, texts cut at 512 wordpieces, AdamW (lr 5e-5), fp32 as the example runs by default,
  and the same under bf16 autocast; `--hf-batch` abstracts per update.

    python benchmarks/ner_speed/ner_train_speed.py configs/ner.cfg MINILM corpus/bc5cdr_train.spacy --steps 10 \\
        --variant "bf16_128_96:" --variant "fp32_128_96:components.transformer.model.autocast=null" \\
        --variant "bf16_256_224:components.transformer.model.get_spans.window=256;components.transformer.model.get_spans.stride=224" \\
        --output benchmarks/ner_speed/results/ner_train_speed.json

Speed only: a setting's F1 needs full trainings (README: which ones were run).
"""
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import typer

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def _overrides(spec: str) -> Dict[str, object]:
    out = {}
    for item in filter(None, spec.split(";")):
        key, _, value = item.partition("=")
        out[key.strip()] = json.loads(value)
    return out


def build_pipeline(config: Path, encoder: Path, examples, overrides: Dict[str, object], n_batches: int, seed: int):
    """(nlp, optimizer, batches): a spaCy pipeline from CONFIG initialised on EXAMPLES, its optimizer, and
    `n_batches` batches from its batcher."""
    from spacy.util import fix_random_seed, load_config, load_model_from_config, registry

    cfg = load_config(config, overrides={"paths.model": str(encoder), "paths.train": "", "paths.dev": "", **overrides},
                      interpolate=False)
    fix_random_seed(seed)
    nlp = load_model_from_config(cfg, auto_fill=True, validate=True)
    training = registry.resolve({k: cfg.interpolate()["training"][k] for k in ("batcher", "optimizer")})
    batcher, optimizer = training["batcher"], training["optimizer"]
    nlp.initialize(lambda: examples, sgd=optimizer)
    batches = []
    for batch in batcher(examples):
        batches.append(batch)
        if len(batches) == n_batches:
            break
    return nlp, optimizer, batches


def build_ours(config: Path, encoder: Path, examples, overrides: Dict[str, object], n_batches: int, seed: int):
    """One `nlp.update` per call on the pipeline of `build_pipeline`; returns the words of the batch."""
    nlp, optimizer, batches = build_pipeline(config, encoder, examples, overrides, n_batches, seed)

    def step(i: int) -> int:
        batch = batches[i % len(batches)]
        nlp.update(batch, sgd=optimizer, drop=0.1, losses={})
        return sum(len(eg.reference) for eg in batch)

    return step


def interleave(rows: Dict[str, Callable[[int], int]], warmup: int, steps: int):
    """Call every row's step in turn, `warmup + steps` rounds; (seconds, counts) per row of the timed rounds."""
    times = {n: [] for n in rows}
    counts = {n: [] for n in rows}
    for i in range(warmup + steps):
        for name, step in rows.items():
            start = time.perf_counter()
            n = step(i)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
                counts[name].append(n)
            print(f"step {i} {name}: {n}, {time.perf_counter() - start:.2f}s", flush=True)
    return times, counts


def summarise(times: Dict[str, List[float]], counts: Dict[str, List[int]], unit: str, digits: int) -> List[Dict]:
    """One result row per timed row of `interleave`: `unit`/s over all updates, its median and spread
    over the updates, the median seconds per update and the mean `unit` per update."""
    results = []
    for name in times:
        rates = [n / t for n, t in zip(counts[name], times[name])]
        results.append({"row": name, f"{unit}_per_s": round(sum(counts[name]) / sum(times[name]), digits),
                        f"{unit}_per_s_median": round(statistics.median(rates), digits),
                        f"{unit}_per_s_spread": round(max(rates) - min(rates), digits),
                        "s_per_update_median": round(statistics.median(times[name]), 3),
                        f"{unit}_per_update_mean": round(statistics.mean(counts[name]), 1)})
    return results


def write_report(output: Optional[Path], meta: Dict, results: List[Dict]) -> None:
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf8")


def build_hf(encoder: Path, examples, batch: int, bf16: bool, seed: int):
    """The transformers token-classification recipe on the same abstracts."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder), use_fast=True)
    model = AutoModelForTokenClassification.from_pretrained(str(encoder), num_labels=len(LABELS))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    words, tags = [], []
    for eg in examples:
        doc = eg.reference
        words.append([t.text for t in doc])
        tags.append([LABELS.index(f"{t.ent_iob_}-{t.ent_type_}") if t.ent_iob_ in ("B", "I") else 0 for t in doc])
    order = list(range(len(words)))
    random.Random(seed).shuffle(order)

    def step(i: int) -> int:
        idx = [order[(i * batch + j) % len(order)] for j in range(batch)]
        enc = tokenizer([words[k] for k in idx], is_split_into_words=True, truncation=True, max_length=512,
                        padding=True, return_tensors="pt")
        labels = torch.full(enc["input_ids"].shape, -100)
        for row, k in enumerate(idx):
            previous = None
            for pos, w in enumerate(enc.word_ids(row)):
                if w is not None and w != previous:
                    labels[row, pos] = tags[k][w]
                previous = w
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return sum(len(words[k]) for k in idx)

    return step


def main(
    config: Path = typer.Argument(..., exists=True, help="Our NER training config (configs/ner.cfg)"),
    encoder: Path = typer.Argument(..., exists=True, help="Encoder directory (save_pretrained)"),
    train: Path = typer.Argument(..., exists=True, help="Training DocBin (BC5CDR abstracts)"),
    variant: List[str] = typer.Option(["bf16:"], help="NAME:dotted.key=json;... rows of ours; repeat"),
    hf_batch: int = typer.Option(8, help="Abstracts per update of the transformers recipe (0: no hf rows)"),
    steps: int = typer.Option(10, help="Timed updates per row"),
    warmup: int = typer.Option(2, help="Untimed updates per row first"),
    n_docs: int = typer.Option(400, help="Training abstracts read"),
    seed: int = typer.Option(0),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp0 = spacy.blank("en")
    docs = list(DocBin().from_disk(train).get_docs(nlp0.vocab))[:n_docs]
    examples = [Example(nlp0.make_doc(d.text), d) for d in docs]
    rows = {}
    for spec in variant:
        name, _, body = spec.partition(":")
        rows[f"ours_{name}"] = build_ours(config, encoder, examples, _overrides(body), steps + warmup, seed)
    if hf_batch:
        rows["hf_recipe_fp32"] = build_hf(encoder, examples, hf_batch, False, seed)
        rows["hf_recipe_bf16"] = build_hf(encoder, examples, hf_batch, True, seed)
    times, words = interleave(rows, warmup, steps)
    results = summarise(times, words, "words", 1)
    ref = next((r for r in results if r["row"] == "hf_recipe_fp32"), None)
    for r in results:
        r["vs_hf_recipe_fp32"] = round(r["words_per_s"] / ref["words_per_s"], 2) if ref else None
        print(f"{r['row']:24s} {r['words_per_s']:8.1f} words/s (median {r['words_per_s_median']:.1f}, spread "
              f"{r['words_per_s_spread']:.1f}), {r['s_per_update_median']:.2f} s/update, "
              f"{r['words_per_update_mean']:.0f} words/update, x{r['vs_hf_recipe_fp32']}")
    meta = {"config": str(config), "encoder": str(encoder), "train": str(train), "docs": len(docs), "steps": steps,
            "warmup": warmup, "hf_batch": hf_batch, "torch_threads": torch.get_num_threads(),
            "load_avg_at_end": os.getloadavg(), "variants": variant}
    write_report(output, meta, results)


if __name__ == "__main__":
    typer.run(main)
