"""The plain Hugging Face token-classification recipe on a NER corpus, as the same-encoder anchor of our NER pipe.

The recipe of transformers' `run_ner.py` example: `AutoModelForTokenClassification` on the encoder, each
sentence one sequence (words tokenised with `is_split_into_words`, cut at `--max-length` wordpieces), the BIO
label on each word's first wordpiece, AdamW with linear warm-up and decay, gradient clipping at 1.0. To compare
at equal budget with `configs/ner.cfg`, an update holds sentences up to `--batch-words` words (ours: batches of
~2,000 padded words) and the run makes `--steps` updates; dev entity F1 every `--eval-every` updates, the test
set scored with the best dev state. Precision: the choice `autocast = "auto"` makes for our pipe on this machine
(bf16 autocast where it measures faster, else float32), so both sides run alike.

Entity F1 is exact match of (first word, last word, label) per document, micro-averaged, as spaCy's NER
scorer counts it. The run checkpoints to RUN_DIR every `--checkpoint-every` updates and on SIGTERM / Ctrl-C;
the same command continues it with the same schedule.

    OMP_NUM_THREADS=1 python benchmarks/ner_accuracy/ner_hf_anchor.py corpus/bc5cdr_train.spacy \\
        corpus/bc5cdr_dev.spacy corpus/bc5cdr_test.spacy ENCODER RUN_DIR --steps 640 --lr 5e-5 --warmup 64 \\
        --eval-every 64 --output benchmarks/ner_accuracy/results/ner_hf_anchor_bc5cdr_mpnet.json
"""
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import typer

Sentence = Tuple[int, List[str], List[str]]  # document index, words, BIO tags


def read_sentences(path: Path, vocab) -> Tuple[List[Sentence], List[set]]:
    """The sentences of a DocBin with BIO tags from its entities, and per document its gold entity set
    {(first word, end word, label)} in document word offsets."""
    from spacy.tokens import DocBin

    sentences, gold = [], []
    for d, doc in enumerate(DocBin().from_disk(path).get_docs(vocab)):
        gold.append({(e.start, e.end, e.label_) for e in doc.ents})
        sents = doc.sents if doc.has_annotation("SENT_START") else [doc[:]]
        for sent in sents:
            tags = [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in sent]
            sentences.append((d, [t.text for t in sent], tags))
    return sentences, gold


def batches_by_words(sentences: Sequence[Sentence], batch_words: int, rng: random.Random) -> List[List[int]]:
    """Sentence indices in a shuffled order, cut into batches of at most `batch_words` words (one sentence
    longer than that is a batch of its own)."""
    order = list(range(len(sentences)))
    rng.shuffle(order)
    batches, batch, words = [], [], 0
    for i in order:
        n = len(sentences[i][1])
        if batch and words + n > batch_words:
            batches.append(batch)
            batch, words = [], 0
        batch.append(i)
        words += n
    if batch:
        batches.append(batch)
    return batches


def encode(tokenizer, sentences: Sequence[Sentence], labels: List[str], max_length: int):
    """Padded input tensors and first-wordpiece labels (-100 elsewhere), and the word of each position."""
    enc = tokenizer([s[1] for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length,
                    padding=True, return_tensors="pt")
    target = torch.full(enc["input_ids"].shape, -100)
    firsts = []
    for row, (_, _, tags) in enumerate(sentences):
        previous, first = None, {}
        for pos, w in enumerate(enc.word_ids(row)):
            if w is not None and w != previous:
                target[row, pos] = labels.index(tags[w]) if tags[w] in labels else 0
                first[w] = pos
            previous = w
        firsts.append(first)
    return enc, target, firsts


def decode(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """BIO tags to (start, end, label) spans; an I- tag that starts a chunk starts one (as seqeval's default)."""
    spans, start, label = [], None, ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, lab = tag.partition("-")
        if start is not None and not (prefix == "I" and lab == label):
            spans.append((start, i, label))
            start = None
        if prefix in ("B", "I") and start is None:
            start, label = i, lab
    return spans


@torch.no_grad()
def evaluate(model, tokenizer, sentences, gold, labels, max_length: int, autocast, batch_size: int = 32) -> Dict:
    """Micro entity P/R/F (percent) and F per label over the documents of `sentences`."""
    model.eval()
    predicted = [set() for _ in gold]
    offsets, seen = [], Counter()
    for d, words, _ in sentences:  # each sentence's first word in its document
        offsets.append(seen[d])
        seen[d] += len(words)
    for lo in range(0, len(sentences), batch_size):
        chunk = sentences[lo:lo + batch_size]
        enc, _, firsts = encode(tokenizer, chunk, labels, max_length)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast is not None):
            logits = model(**enc).logits
        best = logits.argmax(-1)
        for row, (d, words, _) in enumerate(chunk):
            tags = [labels[int(best[row, firsts[row][w]])] if w in firsts[row] else "O" for w in range(len(words))]
            for s, e, lab in decode(tags):
                predicted[d].add((offsets[lo + row] + s, offsets[lo + row] + e, lab))
    model.train()
    tp, fp, fn = Counter(), Counter(), Counter()
    for pred, ref in zip(predicted, gold):
        for span in pred:
            (tp if span in ref else fp)[span[2]] += 1
        for span in ref - pred:
            fn[span[2]] += 1

    def f(t, p, n):
        return 200.0 * t / (2 * t + p + n) if t else 0.0

    T, P, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    return {"ents_p": round(100.0 * T / (T + P), 2) if T + P else 0.0, "ents_r": round(100.0 * T / (T + N), 2) if T + N else 0.0,
            "ents_f": round(f(T, P, N), 2),
            "per_type_f": {lab: round(f(tp[lab], fp[lab], fn[lab]), 2) for lab in sorted(set(tp) | set(fn))}}


class Stop(Exception):
    pass


def main(train: Path = typer.Argument(..., exists=True), dev: Path = typer.Argument(..., exists=True),
         test: Path = typer.Argument(..., exists=True), encoder: str = typer.Argument(...),
         run_dir: Path = typer.Argument(..., help="checkpoint and best weights; rerun to continue"),
         steps: int = typer.Option(640, min=1), lr: float = typer.Option(5e-5), warmup: int = typer.Option(64, min=0),
         batch_words: int = typer.Option(1700, min=1, help="words per update (ours: ~1,700 in 2,000 padded)"),
         max_length: int = typer.Option(128), eval_every: int = typer.Option(64, min=1),
         checkpoint_every: int = typer.Option(50, min=1), seed: int = typer.Option(0),
         precision: str = typer.Option("auto", help="auto (as our pipe decides), float32 or bfloat16"),
         output: Optional[Path] = typer.Option(None)):
    import spacy
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from electramed_spacy.precision import resolve_autocast

    vocab = spacy.blank("en").vocab
    train_s, _ = read_sentences(train, vocab)
    dev_s, dev_gold = read_sentences(dev, vocab)
    test_s, test_gold = read_sentences(test, vocab)
    types = sorted({t[2:] for _, _, tags in train_s for t in tags if t != "O"})
    labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    autocast = resolve_autocast(precision if precision != "float32" else None, what="the anchor")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder, use_fast=True)
    model = AutoModelForTokenClassification.from_pretrained(encoder, num_labels=len(labels))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    rng = random.Random(seed)
    state = {"step": 0, "epoch": 0, "batch": 0, "curve": [], "best": None, "seconds": 0.0}
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)  # our own file, written below
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        print(f"continuing at update {state['step']}", flush=True)
    epoch_batches = batches_by_words(train_s, batch_words, random.Random(seed + state["epoch"]))

    def save():
        tmp = run_dir / f".checkpoint-{os.getpid()}.tmp"
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "state": state}, tmp)
        os.replace(tmp, ckpt)

    def on_signal(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    model.train()
    start = time.perf_counter() - state["seconds"]
    try:
        while state["step"] < steps:
            if state["batch"] >= len(epoch_batches):
                state["epoch"] += 1
                state["batch"] = 0
                epoch_batches = batches_by_words(train_s, batch_words, random.Random(seed + state["epoch"]))
            batch = [train_s[i] for i in epoch_batches[state["batch"]]]
            enc, target, _ = encode(tokenizer, batch, labels, max_length)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast is not None):
                loss = model(**enc, labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            state["step"] += 1
            state["batch"] += 1
            state["seconds"] = time.perf_counter() - start
            if state["step"] % eval_every == 0 or state["step"] == steps:
                scores = evaluate(model, tokenizer, dev_s, dev_gold, labels, max_length, autocast)
                row = {"step": state["step"], "epoch": state["epoch"], "dev_f": scores["ents_f"],
                       "dev_p": scores["ents_p"], "dev_r": scores["ents_r"], "minutes": round(state["seconds"] / 60, 1)}
                state["curve"].append(row)
                print(json.dumps(row), flush=True)
                if state["best"] is None or row["dev_f"] > state["best"]["dev_f"]:
                    state["best"] = row
                    torch.save(model.state_dict(), run_dir / ".best.tmp")
                    os.replace(run_dir / ".best.tmp", run_dir / "best.pt")
                save()
            elif state["step"] % checkpoint_every == 0:
                save()
    except (Stop, KeyboardInterrupt):
        save()
        print(f"stopped at update {state['step']}: rerun the same command to continue", flush=True)
        sys.exit(130)
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True))
    t0 = time.perf_counter()
    test_scores = evaluate(model, tokenizer, test_s, test_gold, labels, max_length, autocast)
    words = sum(len(s[1]) for s in test_s)
    test_scores["words_per_s"] = round(words / (time.perf_counter() - t0))
    result = {"recipe": "transformers token classification (run_ner.py): sentence sequences, first-wordpiece BIO, AdamW, "
                        "linear warm-up/decay, clip 1.0",
              "encoder": encoder, "command": " ".join(sys.argv), "steps": steps, "lr": lr, "warmup": warmup,
              "batch_words": batch_words, "max_length": max_length, "seed": seed,
              "precision": autocast or "float32", "threads": torch.get_num_threads(), "train_minutes": round(state["seconds"] / 60, 1),
              "dev_curve": state["curve"], "best_dev": state["best"], "test": test_scores}
    print(json.dumps(result["test"]), flush=True)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
