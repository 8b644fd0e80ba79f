"""Data preparation for ELECTRA pre-training (arXiv:2003.10555; ELECTRAMed, arXiv:2104.09585):
corpus checks -> vocabulary -> [model] init_from checks -> packed-sequence shards, each step skipped
when its output is already built. Every check that can fail runs before the first tokenisation."""
from pathlib import Path
from typing import Any, Dict, List, Optional

from .checkpoint import latest_checkpoint
from .data import build_shards, resolve_corpus, scan_corpus
from .errors import PretrainError


def prepare_vocab(cfg: Dict[str, Any], files: List[Path], *, locked: Optional[str] = None) -> Path:
    """The run's tokenizer dir (`OUTPUT/vocab`): trained WordPiece, [paths] vocab, or init_from's vocab."""
    from .vocab import build_vocab

    out = Path(cfg["paths"]["output"]) / "vocab"
    vocab_file = cfg["paths"]["vocab"]
    init_from = cfg["model"]["init_from"]
    if init_from and not vocab_file:
        vocab_file = str(Path(init_from) / "vocab.txt")
        if not Path(vocab_file).exists():
            raise PretrainError(f"[model] init_from = {init_from!r} has no vocab.txt; set [paths] vocab to the checkpoint's vocabulary.")
    build_vocab(files, out, vocab_file=vocab_file, lowercase=cfg["corpus"]["lowercase"], size=cfg["vocab"]["size"],
                min_frequency=cfg["vocab"]["min_frequency"], max_seq_length=cfg["corpus"]["max_seq_length"], locked=locked,
                extend=cfg["vocab"]["extend"])
    return out


def prepare_data(cfg: Dict[str, Any], *, progress: bool = True) -> Dict[str, Any]:
    """Checks the corpus (fails fast on bad input), then builds vocab and shards, skipping finished work.

    Once checkpoints exist under [paths] output, its vocabulary is locked: other vocab settings are an error.
    """
    files = resolve_corpus(cfg["paths"]["corpus"])
    ranges = scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
    output = Path(cfg["paths"]["output"])
    ckpt = latest_checkpoint(output)
    locked = None
    if ckpt is not None:
        locked = (f"The vocabulary settings ([paths] vocab/corpus, [vocab], [corpus] lowercase) do not match the checkpoint "
                  f"{ckpt}, which was trained with {output / 'vocab'}. Resume with the original settings, or start a new [paths] output")
    vocab_dir = prepare_vocab(cfg, files, locked=locked)
    if cfg["model"]["init_from"]:
        check_init_from(cfg["model"]["init_from"], vocab_size(vocab_dir), added=added_words(vocab_dir))
    manifest = build_shards(files, vocab_dir, output / "shards", cfg["corpus"], progress=progress, ranges=ranges)
    return {"files": files, "vocab_dir": vocab_dir, "manifest": manifest}


def vocab_size(vocab_dir: Path) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(vocab_dir) / "tokenizer.json")).get_vocab_size()


def added_words(vocab_dir: Path) -> int:
    """How many words [vocab] extend added to the run's vocabulary (0 for none)."""
    from .vocab import read_extension

    extension = read_extension(vocab_dir)
    return len(extension["added"]) if extension else 0


def check_init_from(init_from: str, vocab_size: int, *, added: int = 0) -> None:
    """The one check of [model] init_from (`model.load_init_from` trusts it): a save_pretrained dir whose
    vocabulary has `vocab_size` tokens, less the `added` words of [vocab] extend. Runs before any
    tokenisation, and before an export."""
    from transformers import AutoConfig

    path = Path(init_from)
    if not (path / "config.json").exists():
        raise PretrainError(f"[model] init_from = {init_from!r} is not a save_pretrained directory (no config.json).")
    expected = AutoConfig.from_pretrained(str(path)).vocab_size
    if vocab_size - added != expected:
        raise PretrainError(
            f"The vocabulary ({vocab_size} tokens{f', {added} of them added by [vocab] extend' if added else ''}) "
            f"does not match the checkpoint {path} ({expected}). "
            f"Set [paths] vocab = null to use the checkpoint's own vocab.txt, or point it at {path}/vocab.txt."
        )
