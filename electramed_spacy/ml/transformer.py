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
"""
from typing import Callable, Dict, List, Optional

import torch
from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.layers import TransformerModel, split_trf_batch, trfs2arrays
from thinc.api import Model, chain

from ..about import ELECTRAMED_HUB_ID
from ..errors import ElectraMedError, Errors
from .loading import LOAD_ERRORS, encoder_load_error


def _with_clear_load_errors(model: Model) -> Model:
    """Wrap the model's init so a missing/broken checkpoint raises E001.

    Only loading failures are translated: once the transformer is set, an error
    (e.g. in the trial forward pass that infers the width) propagates unchanged.
    """
    original_init = model.init

    def init(model: Model, X=None, Y=None):
        name = model.attrs["name"]
        try:
            return original_init(model, X=X, Y=Y)
        except LOAD_ERRORS as err:
            if isinstance(err, ElectraMedError) or model.attrs["has_transformer"]:
                raise
            raise encoder_load_error(Errors.E001, name, err) from err

    model.init = init
    return model


AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _with_autocast(model: Model, dtype_name: str) -> Model:
    """Run the transformer's forward pass under torch autocast, on CPU or CUDA.

    spacy-transformers' own `mixed_precision` only knows CUDA; on CPUs with bf16
    units (AVX512-BF16, AMX) a bf16 matmul is several times faster than fp32.
    Outputs are cast back to float32 (spaCy/numpy have no bf16); the cast is part of
    the autograd graph, so training works unchanged.
    """
    if dtype_name not in AUTOCAST_DTYPES:
        raise ElectraMedError(Errors.E003.format(value=dtype_name, options=sorted(AUTOCAST_DTYPES)))
    dtype = AUTOCAST_DTYPES[dtype_name]
    inner_forward = model._func

    def forward(model: Model, docs, is_train: bool):
        device_type = "cuda" if model.transformer.device.type == "cuda" else "cpu"
        with torch.autocast(device_type=device_type, dtype=dtype):
            output, backprop = inner_forward(model, docs, is_train)
        hidden = output.model_output
        for key, value in list(hidden.items()):
            if isinstance(value, torch.Tensor) and value.dtype == dtype:
                hidden[key] = value.float()
        return output, backprop

    model._func = forward
    return model


def _with_wordpiece_limit(model: Model) -> Model:
    """Cap the tokenizer's `model_max_length` at the encoder's `max_position_embeddings`.

    spacy-transformers cuts every window to `model_max_length` wordpieces, but a checkpoint
    saved without that setting (the tokenizer then allows ~1e30) let a window of long
    words overflow the position embeddings (RuntimeError in the embedding layer).
    """
    inner_forward = model._func

    def forward(model: Model, docs, is_train: bool):
        max_positions = getattr(model.transformer.config, "max_position_embeddings", None)
        if max_positions and model.tokenizer.model_max_length > max_positions:
            model.tokenizer.model_max_length = max_positions
        return inner_forward(model, docs, is_train)

    model._func = forward
    return model


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
) -> Model:
    """Build the ELECTRAMed encoder as a spacy-transformers `TransformerModel`.

    name (str): hub id or local `save_pretrained` directory.
    get_spans: span getter; defaults to 128-token windows with stride 96.
    tokenizer_config (dict): passed to `AutoTokenizer`; defaults to a fast,
        lowercasing tokenizer, matching ELECTRAMed's uncased SciVocab.
    transformer_config (dict): passed to the transformer's forward pass.
    mixed_precision (bool): CUDA fp16 autocast with a grad scaler (spacy-transformers' own switch).
    autocast (str or None): "bfloat16" or "float16": autocast on whatever device the
        model runs on, CPU included. None keeps float32.
    """
    tok_cfg = {"use_fast": True, "do_lower_case": True}
    tok_cfg.update(tokenizer_config or {})
    model = TransformerModel(
        str(name),
        get_spans if get_spans is not None else configure_strided_spans(),
        tok_cfg,
        transformer_config or {"output_attentions": False},
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config or {},
    )
    model = _with_wordpiece_limit(_with_clear_load_errors(model))
    model.attrs["replace_listener_cfg"] = _replace_listener_cfg
    return _with_autocast(model, autocast) if autocast else model


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
) -> Model:
    """`electramed.Transformer.v1` used directly as one component's tok2vec (token vectors
    pooled from wordpieces, `reduce_mean` by default). Same layer structure as a
    `TransformerListener` after `replace_listeners`, as in spacy-transformers'
    `Tok2VecTransformer.v3`, so replaced listeners can be saved and loaded."""
    from thinc.api import reduce_mean

    transformer = build_electramed_transformer(
        name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config, autocast,
    )
    return chain(chain(transformer, split_trf_batch()), trfs2arrays(pooling or reduce_mean(), grad_factor))
