"""One way to report an encoder that cannot be loaded, shared by `electramed.Transformer.v1`
(`transformer.py`) and `electramed.QAModel.v1` (`qa_model.py`).

Both load a Hugging Face checkpoint (ELECTRA, arXiv:2003.10555; ELECTRAMed,
arXiv:2104.09585) by hub id or local `save_pretrained` directory when the pipeline is
initialised. A failure becomes one `ElectraMedError` that says what was tried (the
directory's contents, or that it does not exist, or the hub id), the first line of the
cause, and how to fix it (the message, from `errors.Errors`, names the config key).
"""
from pathlib import Path

from ..errors import ElectraMedError

# what `from_pretrained` raises for a missing, incomplete or incompatible checkpoint
LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def describe_source(name: str) -> str:
    """Where `name` was looked for, in words: a local path (and what it holds) or a hub id."""
    path = Path(name)
    if path.exists():
        present = sorted(p.name for p in path.iterdir()) if path.is_dir() else ["<a file>"]
        return f"local path {str(path)!r} (contains: {', '.join(present) or 'nothing'})"
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return f"local path {name!r}, which does not exist (cwd: {Path.cwd()})"
    return f"Hugging Face hub id {name!r} (local directory of that name does not exist)"


def encoder_load_error(message: str, name: str, err: BaseException) -> ElectraMedError:
    """The error to raise (`from err`) when loading the encoder `name` failed with `err`.

    message: an `Errors` entry with `{name}`, `{tried}` and `{cause}` fields (E001, E020).
    """
    text = str(err).strip()
    cause = text.splitlines()[0] if text else type(err).__name__
    return ElectraMedError(message.format(name=name, tried=describe_source(name), cause=cause))


def load_fast_tokenizer_and_encoder(name: str, tokenizer_config: dict, load_error: str, not_fast_error: str):
    """(fast tokenizer, AutoModel) from `name`, for the pipes that own their encoder (QA, marked-pair
    relations): they map wordpieces back to characters, so the tokenizer must be a fast one.

    load_error, not_fast_error: `Errors` entries naming the pipe's config key (E020/E021, E049/E050).
    """
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **tokenizer_config)
        encoder = AutoModel.from_pretrained(name)
    except LOAD_ERRORS as err:
        raise encoder_load_error(load_error, name, err) from err
    if not getattr(tokenizer, "is_fast", False):
        raise ElectraMedError(not_fast_error.format(name=name))
    return tokenizer, encoder
