"""ELECTRAMed as a spaCy transformer (`electramed.Transformer.v1`).

A thin layer over spacy-transformers' `TransformerModel` with the defaults
ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) was trained with: an uncased
SciVocab WordPiece vocabulary (so inputs are lowercased by the tokenizer) and
documents cut into overlapping strided windows so abstracts longer than the
model's position limit still get a vector for every token.

`name` is either the published hub id or any local `save_pretrained` directory
(what `electramed pretrain` exports). The model is only loaded when the pipeline
is initialised: a packaged pipeline carries its weights and never needs `name`
again. Loading failures are turned into one error (E001) that says what was
tried and how to fix it.

The encoder options (autocast, int8 inference, length-sorted batches, the wordpiece cap)
live in `EncoderOptionsShim`, the shim `ElectraMedTransformerModel` gives spacy-transformers'
`TransformerModel`: they wrap the torch module's forward pass, and no private attribute of
thinc or spacy-transformers is overwritten. Loading goes through `safe_load.SafeHFShim`.
"""
import contextlib
import copy
from typing import Callable, Dict, List, Optional

import torch
from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers import TransformerModel, split_trf_batch, trfs2arrays
from spacy_transformers.layers.transformer_model import set_pytorch_transformer
from thinc.api import Model, chain, get_torch_default_device

from ..about import ELECTRAMED_HUB_ID
from ..errors import ElectraMedError, Errors
from ..precision import AUTO, choose_quantize, resolve_autocast
from .loading import LOAD_ERRORS, encoder_load_error
from .safe_load import SafeHFShim

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
QUANTIZE_MODES = ("dynamic_int8", "dynamic_int8_per_channel")


class EncoderOptionsShim(SafeHFShim):
    """The encoder's run-time options, composed around the torch module it holds (never swapped in it).

    * autocast: the forward pass (training and inference) under torch autocast on whatever device the
      model runs on, CPU included (spacy-transformers' own `mixed_precision` only knows CUDA); the
      outputs are cast back to float32 (spaCy/numpy have no bf16), inside the autograd graph.
    * quantize: inference (never training, E005) through an int8 copy of the Linear layers
      (`_quantize_dynamic_int8`), made on first use and again whenever the float module is replaced
      (a later `from_bytes`); the float module stays the one saved. When `quantize_auto` (the int8 mode
      was chosen by `quantize = "auto"`), training runs the float module and every update drops the int8
      copy, so an evaluation during training quantizes the current weights.
    * sorted_batch_wordpieces: inference through `LengthSortedEncoder` (windows encoded shortest first
      in groups cut to their own length); training is unchanged.
    Loading is `SafeHFShim`'s (checked file names, weights-only), plus the wordpiece cap (`cap_wordpieces`).
    """

    def __init__(self, hf_model: HFObjects, *, mixed_precision: bool, grad_scaler_config: Dict,
                 autocast: Optional[str], quantize: Optional[str], sorted_batch_wordpieces: Optional[int],
                 quantize_auto: bool = False):
        super().__init__(hf_model, mixed_precision=mixed_precision, grad_scaler_config=dict(grad_scaler_config))
        self.autocast = AUTOCAST_DTYPES[autocast] if autocast else None
        self.quantize = quantize
        self.quantize_auto = quantize_auto
        self.sorted_batch_wordpieces = sorted_batch_wordpieces
        self._int8: tuple = (None, None)  # (float module it was made from, int8 copy)

    def from_bytes(self, bytes_data: bytes) -> "EncoderOptionsShim":
        super().from_bytes(bytes_data)
        if self._hfmodel.transformer is not None:
            cap_wordpieces(self._hfmodel.tokenizer, self._hfmodel.transformer)
        return self

    def _autocast(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.device.type == "cuda" else "cpu", dtype=self.autocast)

    def _as_float32(self, output):
        if self.autocast is not None:
            for key, value in list(output.items()):
                if isinstance(value, torch.Tensor) and value.dtype == self.autocast:
                    output[key] = value.float()
        return output

    def _inference_module(self) -> torch.nn.Module:
        module = self._model
        if self.quantize:
            if self._int8[0] is not module:
                self._int8 = (module, _quantize_dynamic_int8(module, per_channel=self.quantize.endswith("per_channel")))
            module = self._int8[1]
        if self.sorted_batch_wordpieces is not None:
            module = LengthSortedEncoder(module, self.sorted_batch_wordpieces)
        return module

    def predict(self, inputs):
        module = self._inference_module()
        module.eval()
        with torch.no_grad(), torch.autocast(device_type="cuda", enabled=self._mixed_precision), self._autocast():
            output = module(*inputs.args, **inputs.kwargs)
        self._model.train()
        return self._as_float32(output)

    def begin_update(self, inputs):
        if self.quantize and not self.quantize_auto:
            raise ElectraMedError(Errors.E005.format(value=self.quantize))
        self._int8 = (None, None)  # the weights are about to change: the next inference quantizes them anew
        with self._autocast():
            output, backprop = super().begin_update(inputs)
        return self._as_float32(output), backprop


def cap_wordpieces(tokenizer, transformer: torch.nn.Module) -> None:
    """Cap the tokenizer's `model_max_length` at the encoder's `max_position_embeddings`.

    spacy-transformers cuts every window to `model_max_length` wordpieces, but a checkpoint
    saved without that setting (the tokenizer then allows ~1e30) let a window of long
    words overflow the position embeddings (RuntimeError in the embedding layer)."""
    max_positions = getattr(transformer.config, "max_position_embeddings", None)
    if max_positions and tokenizer.model_max_length > max_positions:
        tokenizer.model_max_length = max_positions


def _set_transformer(model: Model, hf_model: HFObjects) -> None:
    """spacy-transformers' `set_transformer` hook (called when the encoder is first loaded), plus the cap."""
    set_pytorch_transformer(model, hf_model)
    cap_wordpieces(hf_model.tokenizer, hf_model.transformer)


class ElectraMedTransformerModel(TransformerModel):
    """spacy-transformers' `TransformerModel` with `EncoderOptionsShim` as its encoder shim.

    The forward pass is spacy-transformers' own; what differs is the shim (options and checked loading),
    the `set_transformer` hook (wordpiece cap) and `initialize`, which turns a failure to load the encoder
    into E001 (what was tried and how to fix it). An error after loading (e.g. in the trial forward pass
    that infers the width) propagates unchanged."""

    def __init__(self, name: str, get_spans: Callable, tokenizer_config: Dict, transformer_config: Dict, *,
                 mixed_precision: bool = False, grad_scaler_config: Optional[Dict] = None, autocast: Optional[str] = None,
                 quantize: Optional[str] = None, sorted_batch_wordpieces: Optional[int] = None,
                 quantize_auto: bool = False):
        options = dict(mixed_precision=mixed_precision, grad_scaler_config=dict(grad_scaler_config or {}),
                       autocast=autocast, quantize=quantize, sorted_batch_wordpieces=sorted_batch_wordpieces,
                       quantize_auto=quantize_auto)
        super().__init__(name, get_spans, tokenizer_config, transformer_config, mixed_precision=mixed_precision,
                         grad_scaler_config=dict(grad_scaler_config or {}))
        self.layers[0].shims[0] = EncoderOptionsShim(HFObjects(None, None, None, tokenizer_config, transformer_config), **options)
        self.attrs["set_transformer"] = _set_transformer
        self.attrs["replace_listener_cfg"] = _replace_listener_cfg
        self._build_args = (name, get_spans, tokenizer_config, transformer_config, options)

    def initialize(self, X=None, Y=None):
        try:
            return super().initialize(X=X, Y=Y)
        except LOAD_ERRORS as err:
            if isinstance(err, ElectraMedError) or self.attrs["has_transformer"]:
                raise
            raise encoder_load_error(Errors.E001, self.attrs["name"], err) from err

    def copy(self):
        """A copy with the same options (TransformerModel.copy would give a plain TransformerModel)."""
        name, get_spans, tok_cfg, trf_cfg, options = self._build_args
        copied = ElectraMedTransformerModel(name, get_spans, tok_cfg, trf_cfg, **options)
        copied.dims = copy.deepcopy(self._dims)
        copied.layers[0] = copy.deepcopy(self.layers[0])
        return copied


def _quantize_dynamic_int8(module: torch.nn.Module, per_channel: bool = False) -> torch.nn.Module:
    """An int8 copy of `module` whose `nn.Linear` layers are dynamically quantized (CPU only).

    per_channel: one int8 scale per output row of each weight matrix instead of one per matrix
    ("dynamic_int8_per_channel"), so a few large rows do not coarsen every other row's steps."""
    import warnings

    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated in favour of torchao, which is not a dependency
        # here; the kernels (fbgemm/x86) are the same ones torch has shipped for years.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        return quantize_dynamic(module, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=False).eval()


class LengthSortedEncoder(torch.nn.Module):
    """Encode a right-padded batch of windows shortest-first, in groups cut to their own length.

    spacy-transformers pads every window of a batch to the longest one (29% of the wordpieces
    of BC5CDR test with 128/96 windows are padding). Here rows are sorted by length and encoded
    in groups of at most `max_wordpieces` padded wordpieces, each group cut to its longest row;
    the outputs are put back in the caller's order and padded with zeros to the batch's
    length (padded positions are never read: spacy-transformers aligns tokens to real
    wordpieces only). Attention masks keep padding out of the real positions, so the result
    equals the one-batch forward up to float rounding.
    """

    def __init__(self, encoder: torch.nn.Module, max_wordpieces: int):
        super().__init__()
        self.encoder = encoder
        self.max_wordpieces = max_wordpieces

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
        n_rows, length = input_ids.shape  # (batch, length)
        lengths = attention_mask.sum(dim=1)
        right_padded = torch.arange(length, device=lengths.device)[None, :] < lengths[:, None]
        if n_rows < 2 or not torch.equal(attention_mask.bool(), right_padded):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        order = torch.argsort(lengths, stable=True).tolist()
        groups: List[List[int]] = [[]]
        for row in order:  # ascending lengths: a group's padded size is its size x the row just added
            if groups[-1] and (len(groups[-1]) + 1) * int(lengths[row]) > self.max_wordpieces:
                groups.append([])
            groups[-1].append(row)
        outputs = []
        for rows in groups:
            index, cut = torch.tensor(rows, device=input_ids.device), int(lengths[rows[-1]])
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
            outputs.append(self.encoder(**{k: v[index, :cut] for k, v in inputs.items()}))
        inverse = torch.empty(n_rows, dtype=torch.long, device=input_ids.device)
        inverse[torch.tensor([r for rows in groups for r in rows], device=input_ids.device)] = torch.arange(n_rows, device=input_ids.device)
        merged = {}
        for key, first in outputs[0].items():
            if isinstance(first, torch.Tensor):
                merged[key] = _merge_rows([out[key] for out in outputs], length, inverse)
            elif isinstance(first, tuple) and all(isinstance(t, torch.Tensor) for t in first):
                merged[key] = tuple(_merge_rows([out[key][i] for out in outputs], length, inverse) for i in range(len(first)))
        return type(outputs[0])(**merged)


def _merge_rows(parts: List[torch.Tensor], length: int, inverse: torch.Tensor) -> torch.Tensor:
    """Concatenate per-group outputs (batch first), zero-padding sequence dims back to `length`."""
    padded = []
    for part in parts:
        if part.dim() == 3:  # (rows, cut, hidden)
            part = torch.nn.functional.pad(part, (0, 0, 0, length - part.shape[1]))
        elif part.dim() == 4:  # (rows, heads, cut, cut) attentions
            part = torch.nn.functional.pad(part, (0, length - part.shape[3], 0, length - part.shape[2]))
        padded.append(part)
    return torch.cat(padded)[inverse]


@registry.misc("electramed.strided_spans.v1")
def configure_strided_spans(window: int = 128, stride: int = 96) -> Callable[[List[Doc]], List[List[Span]]]:
    """Overlapping windows of `window` spaCy tokens, `stride` apart.

    Same as `spacy-transformers.strided_spans.v1`, but validated, and the last
    window always reaches the end of the Doc, so no token is left without a vector.
    An empty Doc gets no window. Work per Doc is bounded by these limits: at most
    `window` tokens per window, 1 + ceil((n_tokens - window) / stride) windows (linear
    in the Doc's length), and at most the encoder's `max_position_embeddings`
    wordpieces per window (wordpieces past that are cut, as spacy-transformers does;
    their tokens keep the vectors of the overlapping windows, if any).
    """
    if window <= 0 or stride <= 0 or stride > window:
        raise ElectraMedError(Errors.E002.format(window=window, stride=stride))

    def get_strided_spans(docs: List[Doc]) -> List[List[Span]]:
        spans = []
        for doc in docs:
            doc_spans = []
            start = 0
            while len(doc):  # spacy-transformers cannot align an empty span (E1002)
                end = min(len(doc), start + window)
                doc_spans.append(doc[start:end])
                if end >= len(doc):
                    break
                start += stride
            spans.append(doc_spans)
        return spans

    return get_strided_spans


@registry.architectures("electramed.Transformer.v1")
def build_electramed_transformer(
    name: str = ELECTRAMED_HUB_ID,
    get_spans: Optional[Callable] = None,
    tokenizer_config: Optional[Dict] = None,
    transformer_config: Optional[Dict] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[Dict] = None,
    autocast: Optional[str] = None,
    quantize: Optional[str] = None,
    sorted_batch_wordpieces: Optional[int] = None,
) -> Model:
    """Build the ELECTRAMed encoder as a spacy-transformers `TransformerModel`.

    name (str): hub id or local `save_pretrained` directory.
    get_spans: span getter; defaults to 128-token windows with stride 96.
    tokenizer_config (dict): passed to `AutoTokenizer`; defaults to a fast,
        lowercasing tokenizer, matching ELECTRAMed's uncased SciVocab.
    transformer_config (dict): passed to the transformer's forward pass.
    mixed_precision (bool): CUDA fp16 autocast with a grad scaler (spacy-transformers' own switch).
    autocast (str or None): "bfloat16" or "float16": autocast on whatever device the
        model runs on, CPU included. None keeps float32. "auto": whichever of bf16 and float32
        a matmul measures faster on the machine the pipeline is built on (`precision.py`; float32
        with `quantize`).
    quantize (str or None): "dynamic_int8" / "dynamic_int8_per_channel": inference through
        an int8 copy of the encoder's Linear layers, one weight scale per matrix / per output
        row (CPU; `_quantize_dynamic_int8`; per row kept BC5CDR NER F1, benchmarks/ner_speed); needs
        autocast = null (E006). Training with it set is refused (E005). "auto": per-row int8 at
        inference where autocast stays float32 (no bf16 units) and int8 Linear layers measure >= 1.2x
        float32 on this CPU, else off (`precision.choose_quantize`); training runs the float model.
        None (the default) keeps the float model.
    sorted_batch_wordpieces (int or None): at inference, encode a batch's windows sorted
        by length, in groups of at most this many padded wordpieces, instead of one batch
        padded to its longest window (`LengthSortedEncoder`). None: one padded batch.
    """
    if quantize is not None and quantize != AUTO and quantize not in QUANTIZE_MODES:
        raise ElectraMedError(Errors.E004.format(value=quantize, options=list(QUANTIZE_MODES) + [AUTO]))
    device = get_torch_default_device()
    quantize_auto = quantize == AUTO
    if quantize_auto:  # the fastest of float32, the autocast choice and int8 on this machine
        autocast = resolve_autocast(autocast, device)
        quantize = choose_quantize(device, autocast=autocast) if autocast in (None, "bfloat16") else None
        autocast = None if quantize else autocast
    autocast = None if quantize and autocast == AUTO else resolve_autocast(autocast, device)
    if autocast is not None and autocast not in AUTOCAST_DTYPES:
        raise ElectraMedError(Errors.E003.format(value=autocast, options=sorted(AUTOCAST_DTYPES)))
    if quantize is not None and autocast is not None:
        raise ElectraMedError(Errors.E006.format(quantize=quantize, autocast=autocast))
    if sorted_batch_wordpieces is not None and sorted_batch_wordpieces <= 0:
        raise ElectraMedError(Errors.E007.format(value=sorted_batch_wordpieces))
    tok_cfg = {"use_fast": True, "do_lower_case": True}
    tok_cfg.update(tokenizer_config or {})
    return ElectraMedTransformerModel(
        str(name), get_spans if get_spans is not None else configure_strided_spans(), tok_cfg,
        transformer_config or {"output_attentions": False}, mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config, autocast=autocast, quantize=quantize,
        sorted_batch_wordpieces=sorted_batch_wordpieces, quantize_auto=quantize_auto,
    )


def _replace_listener_cfg(tok2vec_model_cfg: Dict, listener_model_cfg: Dict) -> Dict:
    """Config of a listener replaced by its own copy of this transformer (`nlp.replace_listeners`,
    e.g. to move a trained NER into another pipeline): `electramed.Tok2VecTransformer.v1`.
    spacy-transformers' version only recognises its own architecture name."""
    result = dict(tok2vec_model_cfg)
    if "TransformerListener" in listener_model_cfg.get("@architectures", ""):
        result["@architectures"] = "electramed.Tok2VecTransformer.v1"
        for key in ("pooling", "grad_factor"):
            if key in listener_model_cfg:
                result[key] = listener_model_cfg[key]
    return result


@registry.architectures("electramed.Tok2VecTransformer.v1")
def build_electramed_tok2vec_transformer(
    name: str = ELECTRAMED_HUB_ID,
    get_spans: Optional[Callable] = None,
    tokenizer_config: Optional[Dict] = None,
    transformer_config: Optional[Dict] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[Dict] = None,
    autocast: Optional[str] = None,
    pooling: Optional[Model] = None,
    grad_factor: float = 1.0,
    quantize: Optional[str] = None,
    sorted_batch_wordpieces: Optional[int] = None,
) -> Model:
    """`electramed.Transformer.v1` used directly as one component's tok2vec (token vectors
    pooled from wordpieces, `reduce_mean` by default). Same layer structure as a
    `TransformerListener` after `replace_listeners`, as in spacy-transformers'
    `Tok2VecTransformer.v3`, so replaced listeners can be saved and loaded."""
    from thinc.api import reduce_mean

    transformer = build_electramed_transformer(
        name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config, autocast,
        quantize, sorted_batch_wordpieces,
    )
    return chain(chain(transformer, split_trf_batch()), trfs2arrays(pooling or reduce_mean(), grad_factor))
