"""The plain Hugging Face relation-classification recipe on DDI-2013, as a reproducible anchor.

This is the anchor beside `configs/rel.cfg` (see README "Relation extraction, DDI-2013"): the standard
recipe of the relation papers with plain transformers, no spaCy. One sequence per official candidate
pair, both targets replaced by `@DRUG$` (BLUE/BioBERT convention; other drugs left as they are),
[CLS] -> linear (AutoModelForSequenceClassification, 5 labels), AdamW 5e-5, weight decay 0.01, linear
schedule with 10% warm-up, batch 32, one epoch over the training pairs, bf16 autocast on CPU.
Dev = 10% of the training *documents* (seeded shuffle); test = the official test set; micro P/R/F over
the four positive types (NONE excluded), as the DDI-2013 scoring does.

Reproduce (MiniLM-L6, 1 thread):

    OMP_NUM_THREADS=1 python benchmarks/rel_hf_anchor.py --train ../shared/data/re/ddi2013/train \
        --test ../shared/data/re/ddi2013/test --encoder $MINILM --seed 0 \
        --output benchmarks/results/rel_hf_anchor_minilm_s0.json

A previous run of this recipe with MiniLM-L6 (1 thread, 57 min) scored test micro-F1 43.08
(P 48.23, R 38.92).
"""
import json
import math
import random
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import typer
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

LABELS = ["NONE", "mechanism", "effect", "advise", "int"]
POSITIVE = LABELS[1:]
MARKER = "@DRUG$"
# (pairs, positive pairs) of the official DDI-2013 release
OFFICIAL_COUNTS = {"train": (27792, 4021), "test": (5716, 979)}


def first_span(char_offset: str) -> Tuple[int, int]:
    """"12-20;30-35" -> (12, 21): the first fragment, end made exclusive (DDI offsets are inclusive)."""
    start, end = char_offset.split(";")[0].split("-")
    return int(start), int(end) + 1


def mask_pair(text: str, span1: Tuple[int, int], span2: Tuple[int, int]) -> str:
    """The sentence with both target spans replaced by @DRUG$.

    Overlapping or identical spans (they exist in DDI-2013, e.g. nested or discontinuous mentions)
    are merged: their union is replaced once, giving a single @DRUG$."""
    (s1, e1), (s2, e2) = sorted([span1, span2])
    if s2 < e1:  # overlap (or the same span): one marker for the union
        return text[:s1] + MARKER + text[max(e1, e2):]
    return text[:s1] + MARKER + text[e1:s2] + MARKER + text[e2:]


def read_ddi(directory: Path) -> Tuple[List[Dict], List[str]]:
    """(instances, document ids): one instance {"doc", "text", "label"} per <pair> element.

    Files are read in sorted path order (as `electramed convert` does), so the seeded document split
    below holds out the same dev documents as `electramed convert --dev-fraction 0.1 --seed 0`."""
    instances, documents = [], []
    for path in sorted(directory.rglob("*.xml")):
        document = ET.parse(path).getroot()
        documents.append(document.get("id"))
        for sentence in document.iter("sentence"):
            text = sentence.get("text")
            spans = {ent.get("id"): first_span(ent.get("charOffset")) for ent in sentence.iter("entity")}
            for pair in sentence.iter("pair"):
                label = "NONE"
                if pair.get("ddi", "false").lower() == "true":
                    # one official train pair is ddi="true" without a type: it counts among the 4,021
                    # positives, so it is kept as "int" (the DDI-2013 type for an interaction stated
                    # without further information)
                    label = pair.get("type") or "int"
                assert label in LABELS, f"{path}: pair {pair.get('id')} has type {label!r}"
                instances.append({"doc": document.get("id"),
                                  "text": mask_pair(text, spans[pair.get("e1")], spans[pair.get("e2")]),
                                  "label": label})
    return instances, documents


def counts(instances: List[Dict]) -> Dict[str, int]:
    return {"pairs": len(instances), "positive": sum(x["label"] != "NONE" for x in instances),
            "documents_with_pairs": len({x["doc"] for x in instances})}


def split_by_document(instances: List[Dict], documents: List[str], dev_fraction: float,
                      seed: int) -> Tuple[List[Dict], List[Dict]]:
    """(train, dev): a seeded shuffle of all documents (pair-less ones included); the first
    round(n * dev_fraction) go to dev."""
    order = list(documents)
    random.Random(seed).shuffle(order)
    dev_docs = set(order[:round(len(order) * dev_fraction)])
    return [x for x in instances if x["doc"] not in dev_docs], [x for x in instances if x["doc"] in dev_docs]


def batches(tokenizer, instances: List[Dict], batch_size: int, generator=None):
    """Tokenized batches (padded to the longest, truncated at 128 tokens); shuffled when a generator is given."""
    order = torch.randperm(len(instances), generator=generator).tolist() if generator else list(range(len(instances)))
    for i in range(0, len(order), batch_size):
        chunk = [instances[j] for j in order[i:i + batch_size]]
        enc = tokenizer([x["text"] for x in chunk], padding=True, truncation=True, max_length=128, return_tensors="pt")
        enc["labels"] = torch.tensor([LABELS.index(x["label"]) for x in chunk])
        yield enc


def predict(model, tokenizer, instances: List[Dict], bf16: bool, batch_size: int = 64, desc: str = "predict") -> List[str]:
    model.eval()
    predictions = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for enc in tqdm(batches(tokenizer, instances, batch_size), desc=desc, total=math.ceil(len(instances) / batch_size)):
            enc.pop("labels")
            predictions += [LABELS[i] for i in model(**enc).logits.argmax(-1).tolist()]
    return predictions


def score(gold: List[str], pred: List[str]) -> Dict:
    """Micro P/R/F over the four positive types (NONE excluded) and per-type F1, as in DDI-2013."""
    def prf(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def tally(labels):
        tp = sum(g == p and p in labels for g, p in zip(gold, pred))
        fp = sum(p in labels and p != g for g, p in zip(gold, pred))
        fn = sum(g in labels and p != g for g, p in zip(gold, pred))
        return tp, fp, fn

    p, r, f = prf(*tally(set(POSITIVE)))
    return {"p": p, "r": r, "f": f, "per_type_f": {t: prf(*tally({t}))[2] for t in POSITIVE}}


def run(train: Path, test: Path, encoder: str, output: Path, seed: int = 0, epochs: float = 1.0,
        max_minutes: float = 0.0, dev_fraction: float = 0.1, lr: float = 5e-5, batch_size: int = 32,
        bf16: bool = True, check_counts: bool = True) -> Dict:
    torch.manual_seed(seed)
    (train_all, train_docs), (test_set, test_docs) = read_ddi(train), read_ddi(test)
    for name, data, docs in [("train", train_all, train_docs), ("test", test_set, test_docs)]:
        c = counts(data)
        print(f"{name}: {len(docs)} documents, {c['pairs']} pairs, {c['positive']} positive "
              f"(official: {OFFICIAL_COUNTS[name][0]} / {OFFICIAL_COUNTS[name][1]})")
        if check_counts:
            assert (c["pairs"], c["positive"]) == OFFICIAL_COUNTS[name], f"{name} counts differ from the official ones"
    train_set, dev_set = split_by_document(train_all, train_docs, dev_fraction, seed)
    n_dev = round(len(train_docs) * dev_fraction)
    print(f"train: {len(train_docs) - n_dev} documents, {counts(train_set)}; dev: {n_dev} documents, {counts(dev_set)}")

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)})
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")  # no weight decay there, as in the HF Trainer
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    total_steps = max(1, math.ceil(epochs * math.ceil(len(train_set) / batch_size)))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total_steps), total_steps)

    generator = torch.Generator().manual_seed(seed)
    steps, pairs_seen, start = 0, 0, time.time()
    model.train()
    with tqdm(total=total_steps, desc="train") as bar:
        while steps < total_steps and not (max_minutes and time.time() - start > 60 * max_minutes):
            for enc in batches(tokenizer, train_set, batch_size, generator):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(**enc).loss
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                steps, pairs_seen = steps + 1, pairs_seen + len(enc["labels"])
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if steps >= total_steps or (max_minutes and time.time() - start > 60 * max_minutes):
                    break
    train_seconds = time.time() - start

    results = {}
    for name, data in [("dev", dev_set), ("test", test_set)]:
        results[name] = score([x["label"] for x in data], predict(model, tokenizer, data, bf16, desc=name))
    report = {"encoder": str(encoder), "seed": seed, "epochs": epochs, "max_minutes": max_minutes, "lr": lr,
              "weight_decay": 0.01, "weight_decay_excludes": list(no_decay), "warmup": 0.1, "batch_size": batch_size, "max_length": 128,
              "dev_fraction": dev_fraction, "threads": torch.get_num_threads(), "bf16": bf16,
              "counts": {"train": counts(train_set), "dev": counts(dev_set), "test": counts(test_set)},
              "train_steps": steps, "planned_steps": total_steps, "train_seconds": train_seconds,
              "train_pairs_per_second": pairs_seen / train_seconds if train_seconds else 0.0,
              **results, "command": sys.argv}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    print(f"steps {steps}/{total_steps} in {train_seconds:.0f}s | dev F {100 * results['dev']['f']:.2f} | "
          f"test P/R/F {100 * results['test']['p']:.2f} / {100 * results['test']['r']:.2f} / "
          f"{100 * results['test']['f']:.2f} -> {output}")
    return report


def main(
    train: Path = typer.Option(..., help="DDI-2013 train directory (DrugBank/ and MedLine/ *.xml)"),
    test: Path = typer.Option(..., help="DDI-2013 test directory"),
    encoder: str = typer.Option(..., help="Hugging Face model name or local path"),
    output: Path = typer.Option(..., help="Write the settings and scores as JSON"),
    seed: int = typer.Option(0),
    epochs: float = typer.Option(1.0, help="Epochs over the training pairs (may be fractional)"),
    max_minutes: float = typer.Option(0.0, help="Stop training once the wall clock passes this (0 = no limit)"),
    dev_fraction: float = typer.Option(0.1, help="Share of the training documents held out for dev"),
    lr: float = typer.Option(5e-5),
    batch_size: int = typer.Option(32),
    bf16: bool = typer.Option(True, "--bf16/--no-bf16", help="bf16 autocast around the forward passes"),
    check_counts: bool = typer.Option(True, "--check-counts/--no-check-counts",
                                      help="Assert the official DDI-2013 pair counts"),
) -> None:
    run(train, test, encoder, output, seed=seed, epochs=epochs, max_minutes=max_minutes, dev_fraction=dev_fraction,
        lr=lr, batch_size=batch_size, bf16=bf16, check_counts=check_counts)


if __name__ == "__main__":
    typer.run(main)
