"""Loading a pipeline folder someone else made: nothing written outside our temp dir, no code run.

A saved encoder (ours in `encoder_shim.py`, spacy-transformers' in the `transformer`
component) stores its tokenizer and config files as a name -> bytes table inside the
model file, and they are written to a temporary directory to be read back by
`from_pretrained`. A name is data from the file, so it is checked before anything is
written: a bare file name, never absolute, never climbing out (`..`), no separators
(E008). Weights are read with `torch.load(weights_only=True)` passed explicitly, so
`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` cannot turn unpickling back on, and a weights blob
that is not a plain tensor table is refused (E009). The tokenizer's load options are
limited to `use_fast`: `trust_remote_code` (a stored option) would import Python from the folder.
setup.cfg asks for torch >= 2.6, whose `weights_only` loader has no known escape
(CVE-2025-32434 ran code through it in torch <= 2.5.1).
"""
import io
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Mapping

import torch
from spacy.util import SimpleFrozenDict
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import get_torch_default_device

from ..errors import ElectraMedError, Errors

TOKENIZER_OPTIONS = {"use_fast": bool}


def checked_name(name: object, where: str) -> str:
    """`name` if it is a plain file name; E008 if it is absolute, has a separator or is `.`/`..`."""
    text = name if isinstance(name, str) else repr(name)
    plain = isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name
    if not plain or "\\" in text or "\x00" in text:
        raise ElectraMedError(Errors.E008.format(name=text, where=where))
    return text


def write_files(folder: Path, files: Mapping[str, bytes], where: str) -> None:
    """Write `files` (name -> bytes, read from a model file) into `folder`, every name checked first."""
    names = [checked_name(name, where) for name in files]  # all checked before the first write
    for name in names:
        target = folder / name
        if target.exists() or target.is_symlink():
            raise ElectraMedError(Errors.E008.format(name=name, where=f"{where} (stored twice)"))
        target.write_bytes(files[name])


def load_state(data: bytes, where: str) -> Dict[str, torch.Tensor]:
    """A state dict from `torch.save` bytes, with the weights-only loader (never a full unpickle)."""
    try:
        state = torch.load(io.BytesIO(data), map_location=get_torch_default_device(), weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or others for foreign bytes
        raise ElectraMedError(Errors.E009.format(where=where, cause=" ".join(str(err).split())[:300])) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ElectraMedError(Errors.E009.format(where=where, cause="not a table of tensors"))
    return state


def tokenizer_options(kwargs: object, where: str) -> Dict[str, object]:
    """The stored tokenizer options we accept (`use_fast`); any other one is E008."""
    kwargs = kwargs or {}
    bad = [k for k, v in dict(kwargs).items() if not isinstance(v, TOKENIZER_OPTIONS.get(k, ()))]
    if not isinstance(kwargs, dict) or bad:
        raise ElectraMedError(Errors.E008.format(name=f"tokenizer option(s) {bad or kwargs!r}", where=where))
    return dict(kwargs)


def private_dir() -> tempfile.TemporaryDirectory:
    """A fresh temporary directory of ours (mode 0700), removed on leaving the `with`."""
    return tempfile.TemporaryDirectory(prefix="electramed-load-")


class SafeHFShim(HFShim):
    """spacy-transformers' `HFShim` whose `from_bytes` checks what it writes and reads (module docstring).

    The bytes are spacy-transformers' own format, so pipelines saved with the plain shim load unchanged."""

    def from_bytes(self, bytes_data: bytes) -> "SafeHFShim":
        import srsly

        msg = srsly.msgpack_loads(bytes_data)
        if not msg.get("config"):  # saved before initialisation: no files, no weights
            self._hfmodel = HFObjects(None, None, None, msg["_init_tokenizer_config"], msg["_init_transformer_config"])
            return self
        where = "the transformer component's model file"
        tok_dict = dict(msg["tokenizer"])
        options = tokenizer_options(tok_dict.pop("kwargs", {}), where)
        with private_dir() as tmp:
            folder = Path(tmp)
            srsly.write_json(folder / "config.json", msg["config"])
            write_files(folder, tok_dict, where)
            config = self.config_cls.from_pretrained(str(folder / "config.json"))
            tokenizer = self.tokenizer_cls.from_pretrained(str(folder), **options)
            vocab_file = getattr(tokenizer, "vocab_files_names", {}).get("vocab_file")
            vocab = (folder / vocab_file).read_bytes() if hasattr(tokenizer, "vocab_file") and (folder / str(vocab_file)).is_file() else None
        transformer = self.model_cls.from_config(config)
        self._hfmodel = HFObjects(tokenizer, transformer, vocab, SimpleFrozenDict(), SimpleFrozenDict())
        self._model = transformer
        state = load_state(msg["state"], where)
        try:
            transformer.load_state_dict(state)
        except RuntimeError:  # spacy-transformers' own fallback: a checkpoint saved by another transformers version
            warnings.warn("The transformer's saved weights do not match its config exactly (saved with another "
                          "transformers version?); loading with strict=False. Retrain or re-save if results degrade.")
            transformer.load_state_dict(state, strict=False)
        transformer.to(get_torch_default_device())
        return self
