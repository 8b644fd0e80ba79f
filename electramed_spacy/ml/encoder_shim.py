"""A PyTorchShim for pipes that own their encoder (`electramed.QAModel.v1`, `electramed.MarkedPairRelationModel.v1`).

Such a pipe fine-tunes its own Hugging Face encoder instead of listening to a shared
`transformer` component, so its thinc Model holds the torch module (encoder + head) in
this shim together with the tokenizer. `to_bytes` stores the encoder's config, the
tokenizer's files and every weight, so a saved or packaged pipeline loads offline,
without the directory or hub id it was initialised from. Loading checks every stored
file name and reads weights with the weights-only loader (`safe_load`): a pipeline's
bytes never write outside our temporary folder and never run code.
"""
import io
import tempfile
from pathlib import Path
from typing import Callable, Optional

import srsly
import torch
from thinc.api import PyTorchShim, get_torch_default_device

from .safe_load import load_state, private_dir, write_files


class EncoderShim(PyTorchShim):
    """PyTorchShim whose module has an `.encoder` (an `AutoModel`) and that carries `tokenizer`.

    Subclasses set `module_class`: called with the encoder, it builds the full module."""

    tokenizer = None
    module_class: Callable[[torch.nn.Module], torch.nn.Module]

    def to_bytes(self) -> bytes:
        if self._model is None:
            return srsly.msgpack_dumps({"empty": True})
        with tempfile.TemporaryDirectory() as tmp:
            self._model.encoder.config.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        state = io.BytesIO()
        torch.save(self._model.state_dict(), state)
        return srsly.msgpack_dumps({"files": files, "state": state.getvalue()})

    def from_bytes(self, bytes_data: bytes) -> "EncoderShim":
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        msg = srsly.msgpack_loads(bytes_data)
        if msg.get("empty"):
            return self
        where = f"the {type(self).__name__} model file"
        with private_dir() as tmp:
            write_files(Path(tmp), msg["files"], where)
            self.tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True)
            encoder = AutoModel.from_config(AutoConfig.from_pretrained(tmp))
        module = type(self).module_class(encoder)
        module.load_state_dict(load_state(msg["state"], where))
        self._model = module.to(get_torch_default_device())
        return self

    def run(self, inputs, is_train: bool, quantize: Optional[str], auto: bool = False):
        """`self(inputs, is_train)`, or with `quantize` naming a mode, inference through an int8 copy of
        the module (`transformer._quantize_dynamic_int8`; CPU only). The copy is made on first use and again
        whenever the float module is replaced (from_bytes); the float module stays the one saved. With `auto`
        (the mode chosen by `quantize = "auto"`) training runs the float module and drops the int8 copy."""
        if is_train and auto:
            self._int8 = None  # the weights are about to change: the next inference quantizes them anew
            return self(inputs, is_train)
        if not quantize:
            return self(inputs, is_train)
        from ..errors import ElectraMedError, Errors
        from .transformer import _quantize_dynamic_int8

        if is_train:
            raise ElectraMedError(Errors.E061.format(value=quantize, reason="int8 weights are for inference; they cannot be trained."))
        cached = getattr(self, "_int8", None)
        if cached is None or cached[0] is not self._model:
            self._int8 = (self._model, _quantize_dynamic_int8(self._model, per_channel=quantize.endswith("per_channel")))
        with torch.no_grad():
            output = self._int8[1](*inputs.args, **inputs.kwargs)
        return output, lambda d_output: None


def check_quantize(quantize: Optional[str], autocast: Optional[str]) -> None:
    """E061 for a `quantize` setting an EncoderShim model cannot run (see `EncoderShim.run`)."""
    from ..errors import ElectraMedError, Errors
    from .transformer import QUANTIZE_MODES

    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ElectraMedError(Errors.E061.format(value=quantize, reason=f"use one of {', '.join(QUANTIZE_MODES)} or null."))
    if quantize is not None and autocast is not None:
        raise ElectraMedError(Errors.E061.format(value=quantize, reason=f"int8 kernels take float32 activations: set autocast = null (not {autocast!r})."))
