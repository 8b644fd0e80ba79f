"""Relation training pairs/s: `spacy train configs/rel.cfg` settings against the plain transformers anchor.

Issue 12 (the anchor trained ~2x the pairs per minute of v3 in the equal-budget runs). Every row
trains the SAME encoder on DDI-2013 training pairs, in one process, one update per row in turn
(interleaved, so a change in the machine's load hits every row alike); pairs = candidate pairs
encoded and classified in the update.

- ours: the config's pipeline (the relation extractor), updated with `nlp.update` on batches from
  the config's batcher, with config overrides per row (`name:dotted.key=json;dotted.key=json`).
  `negative_sample_rate` is set to 1.0 in every row so that each row encodes every candidate pair
  of its batch (the config's 0.5 would make the pair count a random draw); per-pair cost is what is
  compared.
- anchor: `benchmarks/relations/rel_hf_anchor.py`'s training step (`@DRUG$` pairs of the official XML,
  AutoModelForSequenceClassification, AdamW, batch 32, texts cut at 128 pieces), fp32 and bf16 autocast.

    OMP_NUM_THREADS=1 python benchmarks/relations/rel_train_speed.py configs/rel.cfg MINILM corpus/ddi_train.spacy \\
        ../shared/data/re/ddi2013/train --variant "fp32:components.relation_extractor.model.autocast=null" \\
        --variant 'bf16:components.relation_extractor.model.autocast="bfloat16"' --steps 7 --warmup 1 \\
        --output benchmarks/relations/results/rel_train_speed_ddi.json

Speed only: a setting's F1 needs full trainings (README: which ones were run).
"""
import importlib.util
import os
import random
from pathlib import Path
from typing import List, Optional

import torch
import typer

BENCHMARKS = Path(__file__).resolve().parents[1]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, next(BENCHMARKS.glob(f"*/{name}.py")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ner_speed = _module("ner_train_speed")  # its pipeline building, timing loop and report


def build_ours(config: Path, encoder: Path, examples, overrides, n_batches: int, seed: int):
    """One `nlp.update` per call of the relation config's pipeline; returns the candidate pairs it encoded."""
    overrides = {"components.relation_extractor.negative_sample_rate": 1.0, **overrides}
    nlp, optimizer, batches = ner_speed.build_pipeline(config, encoder, examples, overrides, n_batches, seed)
    pipe = nlp.get_pipe("relation_extractor")

    def step(i: int) -> int:
        batch = batches[i % len(batches)]
        nlp.update(batch, sgd=optimizer, drop=0.1, losses={})
        return sum(len(pipe._gold_candidates(eg)[0]) for eg in batch)

    return step


def build_anchor(encoder: Path, xml_dir: Path, bf16: bool, seed: int, batch_size: int = 32):
    """The anchor's training step on its own pairs of the official training XML."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    anchor = _module("rel_hf_anchor")
    instances, _ = anchor.read_ddi(xml_dir)
    random.Random(seed).shuffle(instances)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    model = AutoModelForSequenceClassification.from_pretrained(str(encoder), num_labels=len(anchor.DDI_LABELS))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)

    def epochs():
        while True:  # pass after pass over the pairs, as the anchor's training loop does
            yield from anchor.batches(tokenizer, instances, batch_size, anchor.DDI_LABELS)

    batches = epochs()

    def step(i: int) -> int:
        enc = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**enc).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return len(enc["labels"])

    return step


def main(
    config: Path = typer.Argument(..., exists=True, help="Our relation training config (configs/rel.cfg)"),
    encoder: Path = typer.Argument(..., exists=True, help="Encoder directory (save_pretrained)"),
    train: Path = typer.Argument(..., exists=True, help="Training DocBin with gold entities and relations (DDI-2013)"),
    xml_dir: Optional[Path] = typer.Argument(None, help="DDI-2013 training XML for the anchor rows (none: no anchor rows)"),
    variant: List[str] = typer.Option(["default:"], help="NAME:dotted.key=json;... rows of ours; repeat"),
    steps: int = typer.Option(10, help="Timed updates per row"),
    warmup: int = typer.Option(2, help="Untimed updates per row first"),
    n_docs: int = typer.Option(300, help="Training documents read (ours)"),
    seed: int = typer.Option(0),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp0 = spacy.blank("en")
    docs = list(DocBin().from_disk(train).get_docs(nlp0.vocab))
    random.Random(seed).shuffle(docs)
    docs = docs[:n_docs]
    # the gold-entity protocol (electramed.GoldEntityCorpus.v1): the predicted side carries the gold entities and sentences
    examples = [Example(d.copy(), d) for d in docs]
    rows = {}
    for spec in variant:
        name, _, body = spec.partition(":")
        rows[f"ours_{name}"] = build_ours(config, encoder, examples, ner_speed._overrides(body), steps + warmup, seed)
    if xml_dir is not None:
        rows["anchor_fp32"] = build_anchor(encoder, xml_dir, False, seed)
        rows["anchor_bf16"] = build_anchor(encoder, xml_dir, True, seed)
    times, pairs = ner_speed.interleave(rows, warmup, steps)
    results = ner_speed.summarise(times, pairs, "pairs", 2)
    for r in results:
        print(f"{r['row']:24s} {r['pairs_per_s']:7.2f} pairs/s (median {r['pairs_per_s_median']:.2f}, spread "
              f"{r['pairs_per_s_spread']:.2f}), {r['s_per_update_median']:.2f} s/update, {r['pairs_per_update_mean']:.0f} pairs/update")
    meta = {"cpu": _module("ner_vs_hf")._cpu_name(), "config": str(config), "encoder": str(encoder), "train": str(train), "xml": str(xml_dir), "docs": len(docs),
            "steps": steps, "warmup": warmup, "torch_threads": torch.get_num_threads(),
            "load_avg_at_end": os.getloadavg(), "variants": variant}
    ner_speed.write_report(output, meta, results)


if __name__ == "__main__":
    typer.run(main)
