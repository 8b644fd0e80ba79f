"""Task-adaptive pre-training text (Gururangan et al. 2020, TAPT): the documents of the pre-training
text file that come from one benchmark's own train/dev sources, as a corpus for `electramed pretrain`.

`shared/data/pretrain/benchmark_train_dev_text.txt` holds the raw text of every benchmark's train and dev
splits, one sentence per line, a blank line between documents, without saying which benchmark a
document comes from. A document is BC5CDR's when its first line is a title of the given PubTator files,
DDI-2013's when at least half its lines are sentences of the given DDI XML files:

    electramed task-text ../shared/data/pretrain/benchmark_train_dev_text.txt task_text \\
        --pubtator ../shared/data/ner/bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt \\
        --pubtator ../shared/data/ner/bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt \\
        --ddi-dir ../shared/data/re/ddi2013/train

writes task_text/bc5cdr_task.txt and ddi_task.txt (same format as the input) and prints what each
holds. Test splits are never read: give train/dev sources only.

`--marked corpus/ddi_train.spacy` (a DocBin with gold entities, the train split only: its entities are labels)
also writes `ddi_train_marked.txt`: every sentence with two or more entities once per pair of its entities
(at most `--pairs-per-sentence`, drawn with `--seed`), marked as the marked-pair relation model marks its input (`formats/markers.py`)
(`@ * drug * aspirin @ ... # ^ brand ^ coumadin #`), so that pre-training sees the markers the relation head
reads (entity markers in pre-training input: Baldini Soares et al. 2019, "Matching the Blanks").
"""
import itertools
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Union

import spacy
from spacy.tokens import DocBin

from ..formats.markers import mark_pair, marker_type

Document = List[str]  # its sentences, one per line


def benchmark_documents(text: Union[str, Path], pubtator: Iterable[Path] = (), ddi_dirs: Iterable[Path] = ()
                        ) -> Dict[str, List[Document]]:
    """The documents of the pre-training `text` file that are BC5CDR's (first line a title of the `pubtator`
    files) or DDI-2013's (at least half their lines sentences of the XML files under `ddi_dirs`)."""
    titles = {line.split("|t|", 1)[1].strip() for f in pubtator for line in Path(f).open(encoding="utf8") if "|t|" in line}
    ddi = {s.get("text").strip() for d in ddi_dirs for f in sorted(Path(d).rglob("*.xml"))
           for s in ET.parse(f).getroot().iter("sentence")}
    kept: Dict[str, List[Document]] = {"bc5cdr": [], "ddi": []}
    for doc in Path(text).read_text(encoding="utf8").split("\n\n"):
        lines = [line for line in doc.split("\n") if line.strip()]
        if lines and lines[0].strip() in titles:
            kept["bc5cdr"].append(lines)
        elif lines and sum(line.strip() in ddi for line in lines) >= len(lines) / 2:
            kept["ddi"].append(lines)
    return kept


def write_documents(path: Path, docs: List[Document]) -> str:
    """Write `docs` as the pre-training text format (a blank line between documents); a summary line."""
    path.write_text("\n\n".join("\n".join(lines) for lines in docs) + "\n", encoding="utf8")
    words = sum(len(line.split()) for lines in docs for line in lines)
    return f"{path}: {len(docs):,} documents, {sum(map(len, docs)):,} sentences, {words:,} words"


def marked_sentences(docbin: Union[str, Path], pairs_per_sentence: int, rng: random.Random) -> List[List[str]]:
    """Per document of `docbin`, its sentences with two or more entities, once per drawn pair of them,
    the earlier entity marked as head (a document without sentence boundaries is one sentence)."""
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
        raise ValueError(f"{docbin}: no sentence with two entities (a DocBin with gold entities?)")
    return out
