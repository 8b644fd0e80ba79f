"""Fixtures for the pre-training tests: a tiny real-text corpus written to tmp_path and
configs derived from configs/pretrain_tiny.cfg with even smaller sizes, so every test runs
in seconds on 2 CPU cores."""
from pathlib import Path
from typing import Any, Dict

import pytest

from electramed_spacy.pretraining.config import load_config

REPO = Path(__file__).resolve().parents[2]
TINY_CFG = REPO / "configs" / "pretrain_tiny.cfg"
SENTENCES = [
    "Naloxone reverses the antihypertensive effect of clonidine.",
    "Cisplatin induced nephrotoxicity in patients with lung cancer.",
    "Aspirin reduces the risk of myocardial infarction and stroke.",
    "Warfarin interacts with fluconazole and increases bleeding.",
    "Metformin lowers hepatic glucose production in type 2 diabetes.",
    "Lithium treatment was associated with hypothyroidism and tremor.",
    "Doxorubicin cardiotoxicity limits the cumulative dose in breast cancer.",
]


def write_corpus(path: Path, n_docs: int = 12) -> Path:
    """Documents of 3-6 sentences, blank line between documents."""
    lines = []
    for d in range(n_docs):
        doc = [SENTENCES[(d + i) % len(SENTENCES)] for i in range(3 + d % 4)]
        lines.extend(doc + [""])
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def tiny_overrides(corpus: Path, output: Path, **extra: Any) -> Dict[str, Any]:
    overrides = {
        "paths.corpus": str(corpus), "paths.output": str(output), "vocab.size": 200, "vocab.min_frequency": 1,
        "corpus.max_seq_length": 32, "corpus.num_workers": 1, "model.embedding_size": 32, "model.hidden_size": 32,
        "model.num_attention_heads": 2, "model.intermediate_size": 64, "model.num_hidden_layers": 2,
        "model.max_position_embeddings": 64, "training.batch_size": 8, "training.max_steps": 12,
        "training.warmup_steps": 2, "training.log_every": 1, "training.progress_bar": False, "training.num_threads": 1,
    }
    overrides.update(extra)
    return overrides


def tiny_config(corpus: Path, output: Path, **extra: Any) -> Dict[str, Dict[str, Any]]:
    return load_config(TINY_CFG, tiny_overrides(corpus, output, **extra))


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus.txt")
