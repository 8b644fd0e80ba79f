"""Helpers for the annotate tests: a tiny plain-spaCy NER pipeline saved to disk, and output readers.

`electramed annotate` must work with any spaCy pipeline, so the tests use a
`ner` trained for a few seconds plus an `entity_ruler` whose patterns put
entities on non-ASCII text (offsets are characters, not bytes).
"""
import json
import random
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.training import Example

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "annotate"
MEDLINE = FIXTURES / "medline_sample.xml"

TRAIN = [
    ("Cisplatin induced nephrotoxicity in rats.", [(0, 9, "Chemical"), (18, 32, "Disease")]),
    ("Lithium treatment and hypothyroidism were linked.", [(0, 7, "Chemical"), (22, 36, "Disease")]),
    ("Warfarin interacts with fluconazole.", [(0, 8, "Chemical"), (24, 35, "Chemical")]),
    ("Aspirin reduced the risk of myocardial infarction.", [(0, 7, "Chemical"), (28, 49, "Disease")]),
]
PATTERNS = [
    {"label": "Disease", "pattern": [{"LOWER": "sjögren"}, {"ORTH": "’s"}, {"LOWER": "syndrome"}]},
    {"label": "Chemical", "pattern": "β-blocker"},
]


def build_pipeline(path: Path) -> Path:
    """Train `ner` (20 updates, fixed seed), add the entity_ruler, save to `path`."""
    spacy.util.fix_random_seed(0)
    random.seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    optimizer = nlp.initialize(get_examples=lambda: examples)
    for _ in range(20):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.add_pipe("entity_ruler", before="ner").add_patterns(PATTERNS)  # the ner keeps preset entities
    nlp.to_disk(path)
    return path


_CACHE: Dict[str, Path] = {}


def tiny_pipeline(tmp_path_factory) -> Path:
    """The pipeline folder, built once per test session."""
    if "nlp" not in _CACHE:
        _CACHE["nlp"] = build_pipeline(tmp_path_factory.mktemp("annotate_nlp") / "nlp")
    return _CACHE["nlp"]


def write_jsonl(path: Path, n: int) -> Path:
    """`n` short records cycling through the training sentences, ids doc-00000..."""
    texts = [text for text, _ in TRAIN] + ["Sjögren’s syndrome and a β-blocker.", ""]
    with open(path, "w", encoding="utf8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"doc-{i:05d}", "text": f"{texts[i % len(texts)]} Case {i}."}, ensure_ascii=False) + "\n")
    return path


def shard_files(output: Path, ext: str = "jsonl") -> List[Path]:
    return sorted(output.glob(f"part-*.{ext}"))


def output_bytes(output: Path) -> bytes:
    """All shards concatenated in shard order."""
    return b"".join(p.read_bytes() for p in shard_files(output))


def records(output: Path) -> List[dict]:
    return [json.loads(line) for line in output_bytes(output).decode("utf8").splitlines()]


def annotate_cli(*args):
    """(exit code, output) of `electramed annotate ARGS --quiet`, in this process."""
    from typer.testing import CliRunner

    from electramed_spacy.cli import app

    result = CliRunner().invoke(app, ["annotate", *map(str, args), "--quiet"])
    return result.exit_code, result.output
