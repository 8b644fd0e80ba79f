"""Shared fixtures: tiny ELECTRA models built inside the tests (never downloaded)."""
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_TEXT = [
    "Naloxone reverses the antihypertensive effect of clonidine.",
    "Cisplatin induced nephrotoxicity in patients with lung cancer.",
    "Aspirin reduces the risk of myocardial infarction and stroke.",
    "Warfarin interacts with fluconazole and increases bleeding.",
    "What is the mechanism of action of metformin in diabetes?",
    "Lithium treatment was associated with hypothyroidism and tremor.",
] * 5


def save_tiny_bert(path: Path, vocab: list, *, layers: int = 2, intermediate: int = 64, max_positions: int = 64) -> Path:
    """A random width-32 BERT with `vocab` (whole tokens, one per line), saved like a hub checkpoint."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=intermediate, max_position_embeddings=max_positions)).save_pretrained(path)
    BertTokenizerFast(str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    return path


def load_benchmark(name: str):
    """A script of benchmarks/<question>/ imported as a module (they are scripts, not a package)."""
    import importlib.util

    (path,) = (Path(__file__).resolve().parents[1] / "benchmarks").glob(f"*/{name}.py")
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it lives in ../shared/data next to the repo)")
    return path


def build_tiny_electra(path: Path, *, seed: int = 0) -> Path:
    import re

    from electramed_spacy.pretraining.export import save_random_discriminator
    from electramed_spacy.pretraining.vocab import SPECIAL_TOKENS, load_vocab_file

    # A vocabulary written out deterministically (WordPiece training breaks frequency ties
    # differently between runs, which made the tiny models, and tests on them, vary).
    words = sorted({w for text in TINY_TEXT for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    chars = sorted({c for w in words for c in w})
    vocab = path.parent / f"{path.name}_vocab.txt"
    vocab.parent.mkdir(parents=True, exist_ok=True)
    tokens = list(dict.fromkeys(SPECIAL_TOKENS + chars + ["##" + c for c in chars] + words))  # no duplicates
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf8")
    tokenizer = load_vocab_file(vocab)
    return save_random_discriminator(
        tokenizer, path, seed=seed, embedding_size=32, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
    )


@pytest.fixture(scope="session")
def tiny_electra(tmp_path_factory) -> Path:
    """A 2-layer, width-32 random ELECTRA saved with `save_pretrained` (+ tokenizer)."""
    return build_tiny_electra(tmp_path_factory.mktemp("tiny_electra") / "model")
