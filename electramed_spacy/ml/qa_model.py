"""Extractive QA model (`electramed.QAModel.v1`): ELECTRA cross-encoder + span start/end head.

As in ELECTRA (Clark et al. 2020, arXiv:2003.10555) and ELECTRAMed's BioASQ
experiments (Miolo et al. 2021, arXiv:2104.09585), the question and the context are
encoded together (`[CLS] question [SEP] context [SEP]`) and a linear layer gives
every context wordpiece a start and an end logit; `[CLS]` stands for "no answer".
Contexts longer than `max_length` are cut into windows that overlap by `overlap`
wordpieces, so an answer cut by one window's edge lies whole in the next.

Work per Doc is bounded: windows of `max_length` wordpieces (their number grows
linearly with the context), questions cut to `max_question_tokens` wordpieces, and
`decode_windows` tries `n_best` starts and ends per window and keeps a bounded pool
of candidate answers.

The thinc Model takes a batch of Docs (the context is `doc.text`, the question
`doc._.question`) and returns a `QAOutput` of per-window logits plus the
wordpiece-to-character offsets needed to turn them into Spans. The PyTorch module
lives in a `QAShim`, which serialises the encoder's config, its tokenizer and all
weights in `to_bytes`, so a saved or packaged pipeline loads offline without the
directory or hub id it was initialised from.
"""
import functools
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, get_torch_default_device, torch2xp, xp2torch

from ..about import ELECTRAMED_HUB_ID
from ..errors import ElectraMedError, Errors
from ..precision import AUTO, resolve_autocast
from .encoder_shim import EncoderShim, check_quantize
from .loading import load_fast_tokenizer_and_encoder

# large negative logit for positions that can never be an answer (question, [SEP], padding)
MASKED_LOGIT = -1e4

class QAModule(torch.nn.Module):
    """Encoder + linear start/end head. Forward returns (start, end) logits, each (windows, length).

    Windows are encoded in length-sorted chunks of at most `batch_size` (0: all at once), each cut
    to its own longest window, so short question-snippet pairs are not padded to the longest one of
    the nlp.pipe batch; `autocast` ("bfloat16"/"float16") runs the encoder and head under torch
    autocast, and the logits come back as float32."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = torch.nn.Linear(encoder.config.hidden_size, 2)
        self.qa_outputs.weight.data.normal_(0.0, getattr(encoder.config, "initializer_range", 0.02))
        self.qa_outputs.bias.data.zero_()

    def forward(self, answer_mask: torch.Tensor, batch_size: int = 0, autocast: Optional[str] = None,
                **inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = inputs["attention_mask"]
        n, length = mask.shape
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True)
        size = batch_size if batch_size > 0 else max(n, 1)
        logits = torch.zeros(n, length, 2, device=mask.device)
        for i in range(0, n, size):
            idx = order[i:i + size]
            width = int(lengths[idx[0]])  # right-padded: the chunk's longest window
            chunk = {k: v[idx, :width] for k, v in inputs.items()}
            with torch.autocast(device_type=mask.device.type, dtype=getattr(torch, autocast or "float32"),
                                enabled=autocast is not None):
                hidden = self.encoder(**chunk).last_hidden_state  # (chunk, width, hidden)
                out = self.qa_outputs(hidden)
            logits = logits.index_put((idx[:, None], torch.arange(width, device=mask.device)[None, :]), out.float())
        blocked = (1.0 - answer_mask) * MASKED_LOGIT  # (windows, length)
        return logits[..., 0] + blocked, logits[..., 1] + blocked


class QAShim(EncoderShim):
    """Carries the QA module and its tokenizer; serialised by `EncoderShim` (config + tokenizer + weights)."""

    module_class = QAModule


@dataclass
class QAOutput:
    """Per-window logits for a batch of Docs.

    doc_index: (windows,) which Doc each window belongs to.
    offsets: (windows, length, 2) character offsets in `doc.text` of each context
        wordpiece; -1 for [CLS], question, [SEP] and padding.
    start, end: (windows, length) logits; non-context positions other than [CLS] hold MASKED_LOGIT.
    status: per Doc, "ok" or why it got no windows ("empty question", "empty context").
    """

    n_docs: int
    doc_index: numpy.ndarray
    offsets: numpy.ndarray
    start: numpy.ndarray
    end: numpy.ndarray
    status: List[str] = field(default_factory=list)

    def windows_of(self, i: int) -> numpy.ndarray:
        return numpy.nonzero(self.doc_index == i)[0]


def truncate_question(tokenizer, question: str, max_tokens: int) -> str:
    """Cut the question to at most `max_tokens` wordpieces (BERT's max_query_length)."""
    text, cut_at = question, max_tokens
    while cut_at > 0:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= max_tokens:
            return text
        # re-tokenising a cut word can add pieces, so shrink until it fits
        text = text[: enc["offset_mapping"][cut_at - 1][1]].rstrip()
        cut_at -= 1
    return text


def encode_windows(tokenizer, docs: Sequence[Doc], *, max_length: int, overlap: int, max_question_tokens: int):
    """Tokenise (question, context) pairs into overlapping windows.

    Returns (tensors dict, doc_index (windows,), offsets (windows, length, 2), answer_mask (windows, length),
    status per doc).
    """
    status, questions, contexts, kept = [], [], [], []
    for i, doc in enumerate(docs):
        question = doc._.question if Doc.has_extension("question") else None
        if not isinstance(question, str) or not question.strip():
            status.append("empty question")
        elif not doc.text.strip():
            status.append("empty context")
        else:
            status.append("ok")
            # the question is model input only: a lone surrogate (which the tokenizer rejects) becomes "?"
            question = question.strip().encode("utf-8", "replace").decode("utf-8")
            questions.append(truncate_question(tokenizer, question, max_question_tokens))
            contexts.append(doc.text)
            kept.append(i)
    if not kept:
        return None, numpy.zeros((0,), dtype="i"), numpy.zeros((0, 0, 2), dtype="i"), None, status
    enc = tokenizer(
        questions, contexts, truncation="only_second", max_length=max_length, stride=overlap,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest", return_tensors="np",
    )
    doc_index = numpy.asarray([kept[j] for j in enc["overflow_to_sample_mapping"]], dtype="i")
    offsets = numpy.asarray(enc["offset_mapping"], dtype="i").copy()  # (windows, length, 2)
    answer_mask = numpy.zeros(offsets.shape[:2], dtype="f")
    for w in range(offsets.shape[0]):
        is_context = numpy.asarray([s == 1 for s in enc.sequence_ids(w)], dtype=bool)
        offsets[w][~is_context] = -1
        answer_mask[w] = is_context
        answer_mask[w, 0] = 1.0  # [CLS]: the no-answer position
    tensors = {k: torch.as_tensor(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    return tensors, doc_index, offsets, answer_mask, status


def window_targets(output: QAOutput, gold: Sequence[Sequence[Tuple[int, int]]]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Gold start/end positions per window: the first gold answer lying whole in the window's
    context, else 0 ([CLS], no answer in this window). `gold[i]` holds (start_char, end_char) for Doc i."""
    n = output.offsets.shape[0]
    starts, ends = numpy.zeros((n,), dtype="i"), numpy.zeros((n,), dtype="i")
    for w in range(n):
        offs = output.offsets[w]
        ctx = numpy.nonzero(offs[:, 0] >= 0)[0]
        if not len(ctx):
            continue
        window_start, window_end = offs[ctx[0], 0], offs[ctx[-1], 1]
        for gs, ge in gold[output.doc_index[w]]:
            if not (window_start <= gs and ge <= window_end):
                continue  # not whole in this window: [CLS] is the target here
            s = ctx[offs[ctx, 1] > gs][0]
            e = ctx[offs[ctx, 0] < ge][-1]
            if s <= e:
                starts[w], ends[w] = s, e
                break
    return starts, ends


def decode_windows(
    output: QAOutput, i: int, *, top_k: int, max_answer_tokens: int, n_best: int, keep: int,
) -> Tuple[List[Tuple[int, int, float]], Optional[float]]:
    """Best answer candidates of Doc i over all its windows.

    Returns ([(start_char, end_char, logit score)] best first, at most `keep` (>= top_k)
    so that callers can drop duplicates, and the null score: the lowest [CLS]
    score over the windows, as in SQuAD 2.0 BERT). Null is None for a Doc without windows.
    Bounded work: `n_best` ** 2 (start, end) pairs per window, answers of at most
    `max_answer_tokens` wordpieces, and a pool of candidates pruned to the best
    `keep` once it holds 4 * `keep`, so memory does not grow with the number of windows.
    The settings come from the `electramed_qa` factory (`n_best`, `top_k * candidates_per_answer`).
    """
    keep = max(keep, top_k)
    best: Dict[Tuple[int, int], float] = {}
    null: Optional[float] = None
    for w in output.windows_of(i):
        start, end, offs = output.start[w], output.end[w], output.offsets[w]
        ctx = offs[:, 0] >= 0
        null_w = float(start[0] + end[0])
        null = null_w if null is None else min(null, null_w)
        s_order = [j for j in numpy.argsort(-start) if ctx[j]][:n_best]
        e_order = [j for j in numpy.argsort(-end) if ctx[j]][:n_best]
        for s in s_order:
            for e in e_order:
                if e < s or e - s + 1 > max_answer_tokens:
                    continue
                key = (int(offs[s, 0]), int(offs[e, 1]))
                score = float(start[s] + end[e])
                if score > best.get(key, -numpy.inf):
                    best[key] = score
        if len(best) > 4 * keep:
            # a pruned span scored below the kept ones, so it can never make the final list
            best = dict(sorted(best.items(), key=lambda kv: -kv[1])[:keep])
    ranked = sorted(best.items(), key=lambda kv: -kv[1])[:keep]
    return [(s, e, score) for (s, e), score in ranked], null


def _forward(model: Model, docs: List[Doc], is_train: bool, runtime: Optional[Dict] = None):
    shim: QAShim = model.shims[0]
    tensors, doc_index, offsets, answer_mask, status = encode_windows(
        shim.tokenizer, docs, max_length=model.attrs["max_length"], overlap=model.attrs["overlap"],
        max_question_tokens=model.attrs["max_question_tokens"],
    )
    if tensors is None:
        empty = numpy.zeros((0, 0), dtype="f")
        return QAOutput(len(docs), doc_index, offsets, empty, empty, status), lambda d: []
    device = shim.device
    inputs = {k: v.to(device) for k, v in tensors.items()}
    inputs["answer_mask"] = torch.as_tensor(answer_mask, device=device)
    inputs["batch_size"], inputs["autocast"] = model.attrs["batch_size"], (runtime or {}).get("autocast")
    (start_t, end_t), torch_backprop = shim.run(ArgsKwargs(args=(), kwargs=inputs), is_train, (runtime or {}).get("quantize"))
    out = QAOutput(
        len(docs), doc_index, offsets, model.ops.to_numpy(torch2xp(start_t.detach())),
        model.ops.to_numpy(torch2xp(end_t.detach())), status,
    )

    def backprop(d_out: Tuple[numpy.ndarray, numpy.ndarray]) -> List:
        d_start, d_end = d_out
        grads = (xp2torch(model.ops.asarray(d_start), device=device), xp2torch(model.ops.asarray(d_end), device=device))
        torch_backprop(ArgsKwargs(args=((start_t, end_t),), kwargs={"grad_tensors": grads}))
        return []

    return out, backprop


def _init(model: Model, X=None, Y=None) -> Model:
    name = model.attrs["name"]
    shim: QAShim = model.shims[0]
    tokenizer, encoder = load_fast_tokenizer_and_encoder(name, model.attrs["tokenizer_config"], Errors.E020, Errors.E021)
    max_pos = getattr(encoder.config, "max_position_embeddings", None)
    if max_pos is not None and model.attrs["max_length"] > max_pos:
        raise ElectraMedError(Errors.E023.format(max_length=model.attrs["max_length"], max_pos=max_pos, name=name))
    shim.tokenizer = tokenizer
    shim._model = QAModule(encoder).to(get_torch_default_device())
    return model


@registry.architectures("electramed.QAModel.v1")
def build_qa_model(
    name: str = ELECTRAMED_HUB_ID,
    max_length: int = 384,
    overlap: int = 128,
    max_question_tokens: int = 64,
    tokenizer_config: Optional[Dict] = None,
    batch_size: int = 0,
    autocast: Optional[str] = None,
    quantize: Optional[str] = None,
) -> Model[List[Doc], QAOutput]:
    """ELECTRA (any `AutoModel`) cross-encoder with a span start/end head.

    name (str): hub id or local `save_pretrained` directory (with a fast tokenizer).
        Loaded when the pipeline is initialised; a saved pipeline carries its weights.
    max_length (int): wordpieces per window, [CLS] question [SEP] context [SEP].
    overlap (int): wordpieces shared by consecutive windows of a long context.
    max_question_tokens (int): longer questions are cut to this many wordpieces.
    tokenizer_config (dict): extra `AutoTokenizer.from_pretrained` arguments.
    batch_size (int): windows per encoder call, length-sorted, each call cut to its longest
        window; 0 = all windows of the nlp.pipe batch in one call padded to the longest (v1's behaviour).
    autocast (str or None): "bfloat16" or "float16" autocast for the encoder; None keeps float32; "auto"
        picks what a matmul measures fastest on the machine the pipeline runs on (`precision.py`).
    quantize (str or None): "dynamic_int8" / "dynamic_int8_per_channel": CPU inference through an int8 copy
        of the encoder's Linear layers (needs autocast = null; training refuses it; the saved weights stay
        float). Not an attr, so `spacy.load(path, config=...)` can switch it on for a trained pipeline.
    """
    if max_length <= max_question_tokens + overlap + 3 or overlap < 0 or max_question_tokens < 1:
        raise ElectraMedError(Errors.E022.format(max_length=max_length, max_question_tokens=max_question_tokens, overlap=overlap))
    if batch_size < 0:
        raise ElectraMedError(Errors.E028.format(value=batch_size))
    autocast = None if quantize and autocast == AUTO else resolve_autocast(autocast, get_torch_default_device(), what="the QA encoder")
    if autocast not in (None, "bfloat16", "float16"):
        raise ElectraMedError(Errors.E029.format(value=autocast))
    check_quantize(quantize, autocast)
    tok_cfg = {"use_fast": True}
    tok_cfg.update(tokenizer_config or {})
    return Model(
        # quantize and autocast are runtime settings, not attrs: thinc's from_bytes restores saved attrs over
        # the config's, and the machine a pipeline runs on (or a spacy.load override) must decide them
        "electramed_qa_model", functools.partial(_forward, runtime={"quantize": quantize, "autocast": autocast}),
        init=_init, shims=[QAShim(None)],
        attrs={"name": str(name), "max_length": max_length, "overlap": overlap,
               "max_question_tokens": max_question_tokens, "tokenizer_config": tok_cfg,
               "batch_size": batch_size},
    )
