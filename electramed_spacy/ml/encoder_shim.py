"""A PyTorchShim for pipes that own their encoder (`electramed.QAModel.v1`, `electramed.RelationModel.v3`).

Such a pipe fine-tunes its own Hugging Face encoder instead of listening to a shared
`transformer` component, so its thinc Model holds the torch module (encoder + head) in
this shim together with the tokenizer. `to_bytes` stores the encoder's config, the
tokenizer's files and every weight, so a saved or packaged pipeline loads offline,
without the directory or hub id it was initialised from. Weights are read back with
`torch.load(weights_only=True)`: a pipeline's bytes can never run code on load.
"""
import io
import tempfile
from pathlib import Path
from typing import Callable

import srsly
import torch
from thinc.api import PyTorchShim, get_torch_default_device


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
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in msg["files"].items():
                (Path(tmp) / name).write_bytes(data)
            self.tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True)
            encoder = AutoModel.from_config(AutoConfig.from_pretrained(tmp))
        module = type(self).module_class(encoder)
        device = get_torch_default_device()
        module.load_state_dict(torch.load(io.BytesIO(msg["state"]), map_location=device, weights_only=True))
        self._model = module.to(device)
        return self
