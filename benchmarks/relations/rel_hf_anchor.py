"""The plain Hugging Face relation-classification recipe on DDI-2013 and ChemProt, as a reproducible anchor.

This is the anchor beside `configs/rel.cfg` (see README "Relation extraction"): the standard
recipe of the relation papers with plain transformers, no spaCy. One sequence per candidate
pair with its targets replaced (BLUE/BioBERT convention): DDI-2013's official pairs, both drugs
`@DRUG$` (other drugs left as they are); ChemProt (`--corpus chemprot`, the PURE form of
`pure_json/`) every CHEMICAL -> GENE pair of a sentence, `@CHEMICAL$` and `@GENE$`, labelled with its
CPR group or NONE (the negative pairs of ELECTRAMed's protocol). [CLS] -> linear
(AutoModelForSequenceClassification), AdamW 5e-5, weight decay 0.01, linear schedule with 10%
warm-up, batch 32, one epoch over the training pairs, bf16 autocast on CPU.
Dev = 10% of the training *documents* (seeded shuffle, the same documents `electramed convert
--dev-fraction 0.1 --seed 0` holds out); test = the official test set; micro P/R/F over the positive
types (NONE excluded), as the DDI-2013 and ChemProt scorings do; a gold relation no pair carries
(ChemProt: across sentences or between overlapping mentions) counts as a miss.

Reproduce (MiniLM-L6, 1 thread):

    OMP_NUM_THREADS=1 python benchmarks/relations/rel_hf_anchor.py --train ../shared/data/re/ddi2013/train \
        --test ../shared/data/re/ddi2013/test --encoder $MINILM --seed 0 \
        --output benchmarks/relations/results/rel_hf_anchor_minilm_s0.json
    OMP_NUM_THREADS=1 python benchmarks/relations/rel_hf_anchor.py --corpus chemprot \
        --train ../shared/data/re/chemprot/pure_json/dev.json --test ../shared/data/re/chemprot/pure_json/test.json \
        --encoder $MINILM --seed 0 --output benchmarks/relations/results/rel_hf_anchor_chemprot_minilm_s0.json

A previous run of this recipe with MiniLM-L6 (1 thread, 57 min) scored test micro-F1 43.08
(P 48.23, R 38.92).

End to end (DDI): `--ner NER_PIPELINE --e2e-docs corpus/ddi_test.spacy` also puts the trained classifier behind a
spaCy NER, as a user chaining the two would: every pair of predicted mentions of a sentence (the NER pipeline's
sentence boundaries, else spaCy's rule-based sentencizer, as `scripts/assemble_ner_rel.py` does) is masked and
classified, and the relations are scored by the pipe's own scorer (character offsets, head/tail order ignored),
the figure `electramed evaluate-relations E2E corpus/ddi_test.spacy --predicted-entities` gives for our pipes.
"""
import json
import math
import random
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import typer
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

DDI_LABELS = ["NONE", "mechanism", "effect", "advise", "int"]
CHEMPROT_LABELS = ["NONE", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"]
MARKER = "@DRUG$"
# (pairs, positive pairs) of the official DDI-2013 release
OFFICIAL_COUNTS = {"train": (27792, 4021), "test": (5716, 979)}


def first_span(char_offset: str) -> Tuple[int, int]:
    """"12-20;30-35" -> (12, 21): the first fragment, end made exclusive (DDI offsets are inclusive)."""
    start, end = char_offset.split(";")[0].split("-")
    return int(start), int(end) + 1


def mask_pair(text: str, span1: Tuple[int, int], span2: Tuple[int, int], marker1: str = MARKER,
              marker2: str = MARKER) -> str:
    """The sentence with target span1 replaced by marker1 and span2 by marker2.

    Overlapping or identical spans (they exist in DDI-2013, e.g. nested or discontinuous mentions)
    are merged: their union is replaced once, by `marker1`."""
    (s1, e1, m1), (s2, e2, m2) = sorted([(*span1, marker1), (*span2, marker2)])
    if s2 < e1:  # overlap (or the same span): one marker for the union
        return text[:s1] + marker1 + text[max(e1, e2):]
    return text[:s1] + m1 + text[e1:s2] + m2 + text[e2:]


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
                assert label in DDI_LABELS, f"{path}: pair {pair.get('id')} has type {label!r}"
                instances.append({"doc": document.get("id"),
                                  "text": mask_pair(text, spans[pair.get("e1")], spans[pair.get("e2")]),
                                  "label": label})
    return instances, documents


def read_chemprot(path: Path) -> Tuple[List[Dict], List[str], List[Dict]]:
    """ChemProt in the PURE document form (`pure_json/{dev,test}.json`): one instance per CHEMICAL -> GENE
    pair of a sentence, chemical replaced by @CHEMICAL$ and gene by @GENE$ (BLUE's ChemProt form), label
    the pair's CPR group or NONE: the negative pairs of ELECTRAMed's protocol.

    Returns (instances, document ids in file order, the gold relations no instance carries as
    {"doc", "label"}: a relation across sentences, between overlapping mentions or not CHEMICAL -> GENE;
    scoring counts them as misses)."""
    instances, documents, unreachable = [], [], []
    for line in path.read_text(encoding="utf8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        documents.append(record["doc_key"])
        gold = {(hs, he, ts, te): label for sent in record["relations"] for hs, he, ts, te, label in sent}
        carried = set()
        start = 0
        for words, mentions in zip(record["sentences"], record["ner"]):
            starts, pos = [], 0
            for w in words:
                starts.append(pos)
                pos += len(w) + 1
            text = " ".join(words)

            def chars(s: int, e: int) -> Tuple[int, int]:  # PURE offsets: document-global, end inclusive
                return starts[s - start], starts[e - start] + len(words[e - start])

            chemicals = [(s, e) for s, e, t in mentions if t == "CHEMICAL"]
            genes = [(s, e) for s, e, t in mentions if t.startswith("GENE")]
            for c in chemicals:
                for g in genes:
                    if c[0] <= g[1] and g[0] <= c[1]:
                        continue  # overlapping mentions: no sentence can show both replaced
                    key = (*c, *g)
                    carried.add(key)
                    instances.append({"doc": record["doc_key"], "label": gold.get(key, "NONE"),
                                      "text": mask_pair(text, chars(*c), chars(*g), "@CHEMICAL$", "@GENE$")})
            start += len(words)
        for key, label in gold.items():
            if key not in carried:
                unreachable.append({"doc": record["doc_key"], "label": label})
    return instances, documents, unreachable


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


def batches(tokenizer, instances: List[Dict], batch_size: int, labels: List[str], generator=None):
    """Tokenized batches (padded to the longest, truncated at 128 tokens); shuffled when a generator is given."""
    order = torch.randperm(len(instances), generator=generator).tolist() if generator else list(range(len(instances)))
    for i in range(0, len(order), batch_size):
        chunk = [instances[j] for j in order[i:i + batch_size]]
        enc = tokenizer([x["text"] for x in chunk], padding=True, truncation=True, max_length=128, return_tensors="pt")
        enc["labels"] = torch.tensor([labels.index(x["label"]) for x in chunk])
        yield enc


def predict(model, tokenizer, instances: List[Dict], labels: List[str], bf16: bool, batch_size: int = 64,
            desc: str = "predict") -> List[str]:
    model.eval()
    predictions = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for enc in tqdm(batches(tokenizer, instances, batch_size, labels), desc=desc, total=math.ceil(len(instances) / batch_size)):
            enc.pop("labels")
            predictions += [labels[i] for i in model(**enc).logits.argmax(-1).tolist()]
    return predictions


def score(gold: List[str], pred: List[str], positive: List[str] = DDI_LABELS[1:], missed: Counter = Counter()) -> Dict:
    """Micro P/R/F over the positive types (NONE excluded) and per-type F1, as in DDI-2013 and ChemProt;
    `missed`: gold relations per type that no instance carries, counted as false negatives."""
    def prf(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def tally(labels):
        tp = sum(g == p and p in labels for g, p in zip(gold, pred))
        fp = sum(p in labels and p != g for g, p in zip(gold, pred))
        fn = sum(g in labels and p != g for g, p in zip(gold, pred)) + sum(missed[t] for t in labels)
        return tp, fp, fn

    p, r, f = prf(*tally(set(positive)))
    return {"p": p, "r": r, "f": f, "per_type_f": {t: prf(*tally({t}))[2] for t in positive},
            "missed": sum(missed[t] for t in positive)}


def load_ner(ner: str):
    """The spaCy NER pipeline for end-to-end scoring, with a sentencizer if it has no sentence boundaries.
    Loaded before training, so a bad --ner fails in seconds, not after the training run."""
    import spacy

    nlp = spacy.load(ner)
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"--ner {ner}: the pipeline has no 'ner' component (pipes: {nlp.pipe_names})")
    if not any(nlp.get_pipe_meta(n).factory in ("sentencizer", "senter", "parser") for n in nlp.pipe_names):
        nlp.add_pipe("sentencizer", first=True)
    return nlp


def end_to_end(model, tokenizer, nlp, ner: str, docs_path: Path, bf16: bool) -> Dict:
    """DDI relations from the entities a spaCy NER pipeline predicts (see the module docstring):
    {"p", "r", "f", "per_type_f", "ents_f", "pairs"}."""
    from spacy.scorer import get_ner_prf
    from spacy.training import Corpus, Example

    from electramed_spacy.doc.relations import Relation, set_relations
    from electramed_spacy.pipeline.relation_extractor import score_relations

    examples = list(Corpus(str(docs_path))(nlp))
    docs = list(tqdm(nlp.pipe(eg.predicted for eg in examples), desc="ner", total=len(examples)))
    instances, pairs = [], []
    for i, doc in enumerate(docs):
        for sent in doc.sents:
            offset = sent.start_char
            for a, b in combinations(sent.ents, 2):
                instances.append({"text": mask_pair(sent.text, (a.start_char - offset, a.end_char - offset),
                                                    (b.start_char - offset, b.end_char - offset)), "label": "NONE"})
                pairs.append((i, a, b))
    labels = list(model.config.id2label[i] for i in range(len(model.config.id2label)))
    predicted = predict(model, tokenizer, instances, labels, bf16, desc="pairs") if instances else []
    relations: Dict[int, List] = {i: [] for i in range(len(docs))}
    for (i, a, b), label in zip(pairs, predicted):
        if label != "NONE":
            relations[i].append(Relation(a, b, label))
    for i, doc in enumerate(docs):
        set_relations(doc, relations[i])
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    scores = score_relations(scored, symmetric=True)
    return {"p": scores["rel_micro_p"], "r": scores["rel_micro_r"], "f": scores["rel_micro_f"],
            "per_type_f": {k: v["f"] for k, v in scores["rel_f_per_type"].items()},
            "ents_f": get_ner_prf(scored)["ents_f"], "pairs": len(instances),
            "ner": str(ner), "docs": str(docs_path)}


def run(train: Path, test: Path, encoder: str, output: Path, seed: int = 0, epochs: float = 1.0,
        max_minutes: float = 0.0, dev_fraction: float = 0.1, lr: float = 5e-5, batch_size: int = 32,
        bf16: bool = True, check_counts: bool = True, corpus: str = "ddi", ner: Optional[str] = None,
        e2e_docs: Optional[Path] = None) -> Dict:
    if corpus not in ("ddi", "chemprot"):
        raise ValueError(f"corpus must be 'ddi' or 'chemprot', got {corpus!r}")
    if (ner is None) != (e2e_docs is None) or (ner is not None and corpus != "ddi"):
        raise ValueError("end to end needs both --ner and --e2e-docs, and --corpus ddi")
    if corpus == "ddi":
        labels = DDI_LABELS
        (train_all, train_docs), (test_set, test_docs) = read_ddi(train), read_ddi(test)
        train_missed, test_missed = [], []
    else:
        labels = CHEMPROT_LABELS
        (train_all, train_docs, train_missed), (test_set, test_docs, test_missed) = read_chemprot(train), read_chemprot(test)
    for name, data, docs in [("train", train_all, train_docs), ("test", test_set, test_docs)]:
        c = counts(data)
        official = f" (official: {OFFICIAL_COUNTS[name][0]} / {OFFICIAL_COUNTS[name][1]})" if corpus == "ddi" else ""
        print(f"{name}: {len(docs)} documents, {c['pairs']} pairs, {c['positive']} positive{official}")
        if check_counts and corpus == "ddi":
            assert (c["pairs"], c["positive"]) == OFFICIAL_COUNTS[name], f"{name} counts differ from the official ones"
    train_set, dev_set = split_by_document(train_all, train_docs, dev_fraction, seed)
    missed = {"dev": Counter(x["label"] for x in split_by_document(train_missed, train_docs, dev_fraction, seed)[1]),
              "test": Counter(x["label"] for x in test_missed)}
    n_dev = round(len(train_docs) * dev_fraction)
    print(f"train: {len(train_docs) - n_dev} documents, {counts(train_set)}; dev: {n_dev} documents, {counts(dev_set)}; "
          f"gold relations no pair carries: dev {sum(missed['dev'].values())}, test {sum(missed['test'].values())}")

    nlp = load_ner(ner) if ner is not None else None
    torch.manual_seed(seed)  # after the NER pipeline, whose loading draws from torch's generator: same init with or without --ner
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
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
            for enc in batches(tokenizer, train_set, batch_size, labels, generator):
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
        results[name] = score([x["label"] for x in data], predict(model, tokenizer, data, labels, bf16, desc=name),
                              labels[1:], missed[name])
    report = {"corpus": corpus, "encoder": str(encoder), "seed": seed, "epochs": epochs, "max_minutes": max_minutes, "lr": lr,
              "weight_decay": 0.01, "weight_decay_excludes": list(no_decay), "warmup": 0.1, "batch_size": batch_size, "max_length": 128,
              "dev_fraction": dev_fraction, "threads": torch.get_num_threads(), "bf16": bf16,
              "counts": {"train": counts(train_set), "dev": counts(dev_set), "test": counts(test_set)},
              "train_steps": steps, "planned_steps": total_steps, "train_seconds": train_seconds,
              "train_pairs_per_second": pairs_seen / train_seconds if train_seconds else 0.0,
              **results, "command": sys.argv}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")  # the gold scores, kept if what follows fails
    if nlp is not None:
        report["test_end_to_end"] = end_to_end(model, tokenizer, nlp, ner, e2e_docs, bf16)
        output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    e2e = report.get("test_end_to_end")
    print(f"steps {steps}/{total_steps} in {train_seconds:.0f}s | dev F {100 * results['dev']['f']:.2f} | "
          f"test P/R/F {100 * results['test']['p']:.2f} / {100 * results['test']['r']:.2f} / "
          f"{100 * results['test']['f']:.2f}" + (f" | end to end F {100 * e2e['f']:.2f} (NER F {100 * e2e['ents_f']:.2f})"
                                                 if e2e else "") + f" -> {output}")
    return report


def main(
    train: Path = typer.Option(..., help="DDI-2013 train directory (DrugBank/ and MedLine/ *.xml), or a ChemProt "
                                         "PURE-form file (pure_json/dev.json) with --corpus chemprot"),
    test: Path = typer.Option(..., help="DDI-2013 test directory, or ChemProt pure_json/test.json"),
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
    corpus: str = typer.Option("ddi", help="ddi (DDI-2013 XML) or chemprot (PURE form, CHEMICAL -> GENE pairs "
                                           "with negatives, CPR:3/4/5/6/9)"),
    ner: Optional[str] = typer.Option(None, help="DDI: also score end to end behind this spaCy NER pipeline "
                                                 "(e.g. the relations workflow's train-re-ner output)"),
    e2e_docs: Optional[Path] = typer.Option(None, exists=True, help="DocBin with the gold entities and relations "
                                                                     "of the test documents (corpus/ddi_test.spacy)"),
) -> None:
    run(train, test, encoder, output, seed=seed, epochs=epochs, max_minutes=max_minutes, dev_fraction=dev_fraction,
        lr=lr, batch_size=batch_size, bf16=bf16, check_counts=check_counts, corpus=corpus, ner=ner, e2e_docs=e2e_docs)


if __name__ == "__main__":
    typer.run(main)
