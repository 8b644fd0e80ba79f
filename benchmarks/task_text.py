"""Task-adaptive pre-training text (Gururangan et al. 2020, TAPT): the documents of the pre-training
text file that come from one benchmark's own train/dev sources, as a corpus for `electramed pretrain`.

`shared/data/pretrain/benchmark_train_dev_text.txt` holds the raw text of every benchmark's train and dev
splits, one sentence per line, a blank line between documents, without saying which benchmark a
document comes from. A document is BC5CDR's when its first line is a title of the given PubTator files,
DDI-2013's when at least half its lines are sentences of the given DDI XML files:

    python benchmarks/task_text.py ../shared/data/pretrain/benchmark_train_dev_text.txt /runs/task_text \\
        --pubtator ../shared/data/ner/bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt \\
        --pubtator ../shared/data/ner/bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt \\
        --ddi-dir ../shared/data/re/ddi2013/train

writes /runs/task_text/bc5cdr_task.txt and ddi_task.txt (same format as the input) and prints what each
holds. Test splits are never read: give train/dev sources only.

`--marked corpus/ddi_train.spacy` (a DocBin with gold entities, the train split only: its entities are labels)
also writes `ddi_train_marked.txt`: every sentence with two or more entities once per pair of its entities
(at most `--pairs-per-sentence`, drawn with `--seed`), marked as the v3 relation model marks its input
(`@ * drug * aspirin @ ... # ^ brand ^ coumadin #`), so that pre-training sees the markers the relation head
reads (entity markers in pre-training input: Baldini Soares et al. 2019, "Matching the Blanks").
"""
import itertools
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

import typer


def main(text: Path = typer.Argument(..., exists=True, dir_okay=False),
         output: Path = typer.Argument(..., file_okay=False),
         pubtator: List[Path] = typer.Option([], exists=True, dir_okay=False, help="BC5CDR train/dev PubTator file"),
         ddi_dir: List[Path] = typer.Option([], exists=True, file_okay=False, help="DDI-2013 train folder (XML)"),
         marked: List[Path] = typer.Option([], exists=True, dir_okay=False,
                                           help="DocBin with gold entities (train split): write its sentences "
                                                "with marked entity pairs"),
         pairs_per_sentence: int = typer.Option(2, min=1, help="Marked copies of a sentence at most"),
         seed: int = typer.Option(0)):
    if not pubtator and not ddi_dir and not marked:
        raise typer.BadParameter("give --pubtator and/or --ddi-dir (the sources whose documents to keep) "
                                 "and/or --marked")
    titles = {line.split("|t|", 1)[1].strip() for f in pubtator for line in f.open(encoding="utf8") if "|t|" in line}
    ddi = {s.get("text").strip() for d in ddi_dir for f in sorted(d.rglob("*.xml"))
           for s in ET.parse(f).getroot().iter("sentence")}
    kept = {"bc5cdr": [], "ddi": []}
    for doc in text.read_text(encoding="utf8").split("\n\n"):
        lines = [line for line in doc.split("\n") if line.strip()]
        if lines and lines[0].strip() in titles:
            kept["bc5cdr"].append(lines)
        elif lines and sum(line.strip() in ddi for line in lines) >= len(lines) / 2:
            kept["ddi"].append(lines)
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in kept.items():
        if not docs:
            continue
        path = output / f"{name}_task.txt"
        path.write_text("\n\n".join("\n".join(lines) for lines in docs) + "\n", encoding="utf8")
        words = sum(len(line.split()) for lines in docs for line in lines)
        typer.echo(f"{path}: {len(docs):,} documents, {sum(map(len, docs)):,} sentences, {words:,} words")
    for docbin in marked:
        docs = marked_sentences(docbin, pairs_per_sentence, random.Random(seed))
        path = output / f"{docbin.stem}_marked.txt"
        path.write_text("\n\n".join("\n".join(lines) for lines in docs) + "\n", encoding="utf8")
        words = sum(len(line.split()) for lines in docs for line in lines)
        typer.echo(f"{path}: {len(docs):,} documents, {sum(map(len, docs)):,} marked sentences, {words:,} words")


def marked_sentences(docbin: Path, pairs_per_sentence: int, rng: random.Random) -> List[List[str]]:
    """Per document of `docbin`, its sentences with two or more entities, once per drawn pair of them,
    the earlier entity marked as head (a document without sentence boundaries is one sentence)."""
    import spacy
    from spacy.tokens import DocBin

    from electramed_spacy.ml.marked_pair_model import mark_pair, marker_type

    out = []
    for doc in DocBin().from_disk(docbin).get_docs(spacy.blank("en").vocab):
        lines = []
        for sent in doc.sents if doc.has_annotation("SENT_START") else [doc[:]]:
            ents = sorted((e for e in doc.ents if sent.start <= e.start and e.end <= sent.end),
                          key=lambda e: (e.start_char, e.end_char))
            pairs = list(itertools.combinations(ents, 2))
            for head, tail in rng.sample(pairs, min(pairs_per_sentence, len(pairs))):
                marked, _ = mark_pair(sent.text, (head.start_char - sent.start_char, head.end_char - sent.start_char),
                                      (tail.start_char - sent.start_char, tail.end_char - sent.start_char),
                                      marker_type(head.label_), marker_type(tail.label_))
                lines.append(" ".join(marked.split()))
        if lines:
            out.append(lines)
    if not out:
        raise typer.BadParameter(f"{docbin}: no sentence with two entities (a DocBin with gold entities?)")
    return out


if __name__ == "__main__":
    typer.run(main)
