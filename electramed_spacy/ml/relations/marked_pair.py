"""`electramed.MarkedPairRelationModel.v1`: each candidate pair encoded with its two mentions marked in the input.

The relation papers ELECTRAMed follows (BioBERT, BLUE, ELECTRAMed on DDI-2013 and
ChemProt, arXiv:2104.09585) show the encoder one sequence per candidate pair in which the
pair is marked, so every token's vector is computed knowing which two mentions are asked
about. v2 (`relation_model.py`) pools vectors of one pair-agnostic pass over the Doc;
this model is the marked-pair recipe, behind the same interface: `(docs, candidates) ->
(n_pairs, nO)` probabilities, so `electramed_relation_extractor` trains and runs either.

Design, and why:

- **Typed entity markers made of punctuation** (Zhou & Chen 2021, "An Improved Baseline
  for Sentence-level Relation Extraction"): the head becomes `@ * drug * aspirin @`, the
  tail `# ^ brand ^ Coumadin #` (the type is the entity label, lower-cased, `_` read as a
  space). Every marker is a wordpiece the encoder already knows, so nothing starts from
  random embeddings (new `[E1]` tokens need many updates to mean anything, which a CPU
  budget does not have), the type words carry the entity type, and `@`/`#` tell head
  from tail (the order matters for directed relations, e.g. ChemProt). BLUE's target
  replacement (`@DRUG$`, both mentions replaced) is what `benchmarks/relations/rel_hf_anchor.py`
  runs as the plain-transformers anchor; it hides the mention's words, markers keep them.
- **Pair vector = [state of the head's `@`; state of the tail's `#`]** (Zhou & Chen;
  Baldini Soares et al. 2019, "entity start"), then the same layer-normalised Maxout +
  softmax head as v2, which the pipe steps at `head_lr_scale` times the encoder's rate.
- **Markers meet text at character offsets.** The pipe's candidates are token ranges of
  the Doc; the markers are inserted into the *text* of the pair's context at the
  mentions' character offsets, with a space on each side, and the marked text is
  tokenised afresh. So a mention boundary inside a wordpiece (or inside what the
  tokenizer would have merged) is always respected, and `mark_pair` works on any
  character offsets (nested and overlapping mentions included: an inner mention's
  markers sit inside the outer one's).
- **Context = the sentence(s) of the pair** when the Doc has sentence boundaries (the
  DDI-2013 and ChemProt protocol); otherwise `context_tokens` spaCy tokens on each side
  of the pair. Short, sentence-level sequences keep one-pass-per-pair affordable.
- **Longer than `max_length` wordpieces** (documented behaviour, tested): the window
  that centres the two marked mentions is kept; if the marked mentions alone are
  farther apart than the window, the sequence is two half windows, one starting a little
  before each mention, joined. Both markers are always in the input.
- **The pipe owns this encoder**, like the QA pipe: a shared `transformer` computes one
  pass per Doc and cannot give pair-specific vectors. The weights live in an
  `EncoderShim` (config + tokenizer + weights in `to_bytes`: a saved pipeline loads
  offline).
- **Speed**: sequences sorted by length and cut into batches of `batch_size` sequences (little
  padding), `autocast` = bf16 in `configs/rel.cfg` (float32 is the architecture's default; which is faster
  depends on the CPU: `benchmarks/relations/rel_train_speed.py`), backward outside autocast. One pass per
  pair costs more encoder work than v2's one pass per Doc: `benchmarks/relations/rel_speed.py`
  reports both.
- **`marking = "all"`: one pass per sentence.** A DDI-2013 sentence holds 7.5 candidate pairs on
  average (3,344 training sentences, 25,084 pairs) but only 3.4 mentions, so marking every mention
  of the sentence once (`@ * drug * x @`, the same marker for all) and reading each pair from that
  one pass cuts the encoder's work several times. The pass no longer knows which two mentions are
  asked about, so the pair vector adds what v2 showed matters: the mean state of the text between
  the two mentions (ATLOP, Zhou et al. 2021, marks all mentions of a document alike and reads
  pairs from one pass; Wang et al. 2019 encode multiple relations in one pass). A sentence whose
  marked sequence exceeds `max_length` is split into groups of pairs whose mentions fit when marked
  together, one pass per group (the first version fell back to one sequence per pair, which on
  DDI-2013 at 256 pieces kept training as slow as the pair marking: benchmarks/relations). Levitated
  markers (Ye et al. 2022) would keep pair-specific inputs in one pass; not built.
"""
import bisect
import functools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
import torch.utils.checkpoint
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Maxout, Model, Softmax, chain, get_torch_default_device, torch2xp, xp2torch
from thinc.types import Floats2d

from ...about import ELECTRAMED_HUB_ID
from ...errors import ElectraMedError, Errors
from ...formats.markers import HEAD_CLOSE, HEAD_OPEN, mark_pair, mark_spans, marker_type, opener  # noqa: F401 (input format)
from ...precision import AUTO, choose_quantize, resolve_autocast
from ..encoder_shim import EncoderShim, check_quantize
from ..loading import load_fast_tokenizer_and_encoder
from .candidates import Pair

MARKINGS = ("pair", "all")
# wordpieces a marked mention needs beyond its own: "@ * type words * ... @" (type words counted as 3)
MARKER_PIECES = 7


def _piece_at(offsets: Sequence[Tuple[int, int]], char: int) -> int:
    """Index of the wordpiece that covers character `char` (a marker symbol)."""
    for i, (s, e) in enumerate(offsets):
        if s <= char < e:
            return i
    raise ValueError(f"no wordpiece covers character {char}")  # a marker symbol is never dropped by a tokenizer


def fit_window(n: int, head: int, tail: int, head_end: int, tail_end: int, room: int) -> List[Tuple[int, int]]:
    """Ranges of wordpieces [start, end) to keep, in order, at most `room` pieces in all.

    head/tail: indices of the opening markers; head_end/tail_end: indices of the closing markers.
    Everything fits: one range. The two marked mentions fit: one window centred on them.
    Otherwise two half windows, each starting up to a quarter before its mention, so both
    opening markers are always kept.
    """
    if n <= room:
        return [(0, n)]
    lo, hi = min(head, tail), max(head_end, tail_end) + 1
    if hi - lo <= room:
        start = min(max(0, lo - (room - (hi - lo)) // 2), n - room)
        return [(start, start + room)]
    half = room // 2
    first, second = sorted([head, tail])
    a = max(0, first - half // 4)
    b = max(a + half, second - half // 4)
    b = min(b, n - (room - half))
    return [(a, a + half), (b, b + room - half)]


def _sentence_bounds(doc: Doc):
    """(sentence number per token, {sentence number: [first token, end token]}), or None without sentences."""
    if not doc.has_annotation("SENT_START"):
        return None
    sent_id = numpy.cumsum(doc.to_array("SENT_START") == 1)
    bounds: Dict[int, List[int]] = {}
    for i, s in enumerate(sent_id):
        bounds.setdefault(int(s), [i, i + 1])[1] = i + 1
    return sent_id, bounds


def _context(doc: Doc, sentences, pair: Pair, context_tokens: int) -> Tuple[int, int]:
    """Token range of a pair's context: its sentence(s), or `context_tokens` on each side without sentences."""
    hs, he, ts, te = pair
    lo, hi = min(hs, ts), max(he, te)
    if sentences is not None:
        sent_id, bounds = sentences
        return bounds[int(sent_id[lo])][0], bounds[int(sent_id[hi - 1])][1]
    return max(0, lo - context_tokens), min(len(doc), hi + context_tokens)


def _char_span(doc: Doc, start: int, end: int, offset: int) -> Tuple[int, int]:
    return doc[start].idx - offset, doc[end - 1].idx + len(doc[end - 1]) - offset


def _with_specials(tokenizer, ids: List[int], positions: Sequence[int], kept_ranges=None):
    """`ids` cut to `kept_ranges` (all of it if None) with the special tokens added, and `positions`
    (wordpiece indices into `ids`) moved to the output; -1 for a position that was cut."""
    ranges = kept_ranges or [(0, len(ids))]
    prefix_suffix = tokenizer.build_inputs_with_special_tokens([-1])
    n_prefix = prefix_suffix.index(-1)
    kept: List[int] = []
    moved = [-1] * len(positions)
    for start, end in ranges:
        for k, p in enumerate(positions):
            if start <= p < end:
                moved[k] = n_prefix + len(kept) + p - start
        kept.extend(ids[start:end])
    return tokenizer.build_inputs_with_special_tokens(kept), moved


def _room(tokenizer, max_length: int) -> int:
    """Wordpieces of text a sequence of `max_length` holds besides the special tokens."""
    return max_length - (len(tokenizer.build_inputs_with_special_tokens([-1])) - 1)


class ContextPieces:
    """One context's text tokenised once, unmarked, with offsets, so that each of its pairs marks only
    a window of it (`window_text`): a pair's work is bounded by the window, not by the sentence."""

    def __init__(self, tokenizer, text: str):
        self.text = text
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        self.offsets = [o for o in enc["offset_mapping"] if o[1] > o[0]]
        self.starts = [o[0] for o in self.offsets]

    def piece(self, char: int) -> int:
        """Index of the last wordpiece that starts at or before `char` (0 before the first)."""
        return max(0, bisect.bisect_right(self.starts, char) - 1)

    def window_text(self, spans: Sequence[Tuple[int, int]], room: int) -> Tuple[str, List[Tuple[int, int]]]:
        """(text, `spans` moved into it): the whole text when it fits `room` wordpieces, else the pieces
        within `room` of the spans' start and end (one range, or one per far-apart span, joined by a
        space), so the marked text has O(room + mention length) pieces and `fit_window` cuts the rest."""
        if len(self.offsets) <= room:
            return self.text, list(spans)
        n = len(self.offsets)
        ranges = sorted([max(0, self.piece(start) - room), min(n, self.piece(max(start, end - 1)) + room + 1)]
                        for start, end in spans)
        merged = [ranges[0]]
        for lo, hi in ranges[1:]:
            if lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        parts, shifts, length = [], [], 0  # shifts: (char start in text, offset to add) per kept range
        for lo, hi in merged:
            first, last = self.offsets[lo][0], self.offsets[hi - 1][1]
            shifts.append((first, last, length - first))
            parts.append(self.text[first:last])
            length += last - first + 1
        moved = []
        for start, end in spans:
            first, last, shift = next(r for r in shifts if r[0] <= start <= r[1])
            moved.append((start + shift, min(end, last) + shift))
        return " ".join(parts), moved


def _context_pieces(cache: Dict, tokenizer, doc: Doc, lo: int, hi: int) -> Tuple[ContextPieces, int]:
    """The (cached) `ContextPieces` of tokens [lo, hi) of `doc`, and the context's first character."""
    start_char = doc[lo].idx
    key = (id(doc), lo, hi)
    if key not in cache:
        cache[key] = ContextPieces(tokenizer, doc.text[start_char:doc[hi - 1].idx + len(doc[hi - 1])])
    return cache[key], start_char


def encode_pairs(tokenizer, docs: Sequence[Doc], candidates: Sequence[Sequence[Pair]], *, max_length: int,
                 context_tokens: int, typed_markers: bool) -> Tuple[List[List[int]], numpy.ndarray]:
    """Marked, tokenised sequences (with special tokens), one per candidate pair in order, and the
    (n_pairs, 2) positions of the head's `@` and the tail's `#` in them. Each context is tokenised once;
    a pair marks and tokenises only a window of it (`ContextPieces.window_text`)."""
    room = _room(tokenizer, max_length)
    sequences, positions = [], []
    cache: Dict = {}
    for doc, pairs in zip(docs, candidates):
        if not pairs:
            continue
        labels = {(e.start, e.end): e.label_ for e in doc.ents}
        sentences = _sentence_bounds(doc)
        for pair in pairs:
            hs, he, ts, te = pair
            pieces, start_char = _context_pieces(cache, tokenizer, doc, *_context(doc, sentences, pair, context_tokens))
            types = (marker_type(labels.get((hs, he), "")), marker_type(labels.get((ts, te), ""))) if typed_markers else (None, None)
            text, (head, tail) = pieces.window_text(
                [_char_span(doc, hs, he, start_char), _char_span(doc, ts, te, start_char)], room)
            marked, at = mark_pair(text, head, tail, *types)
            # verbose=False: a window longer than the encoder's limit is expected here (`fit_window` cuts it)
            enc = tokenizer(marked, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            ids, offsets = enc["input_ids"], enc["offset_mapping"]
            h, h_end, t, t_end = (_piece_at(offsets, at[k]) for k in ("head", "head_end", "tail", "tail_end"))
            sequence, (new_head, new_tail) = _with_specials(tokenizer, ids, (h, t), fit_window(len(ids), h, t, h_end, t_end, room))
            sequences.append(sequence)
            positions.append((new_head, new_tail))
    if not sequences:
        return [], numpy.zeros((0, 2), dtype="i")
    return sequences, numpy.asarray(positions, dtype="i")


def encode_contexts(tokenizer, docs: Sequence[Doc], candidates: Sequence[Sequence[Pair]], *, max_length: int,
                    context_tokens: int, typed_markers: bool) -> Tuple[List[List[int]], numpy.ndarray]:
    """`marking = "all"`: one sequence per context (sentence) in which every mention of its candidate
    pairs is marked (`@ * type * x @`), so one encoder pass serves all of that context's pairs.

    Returns the sequences and, per candidate pair in order, (sequence, head `@`, tail `@`, start, end)
    wordpiece indices, [start, end) being the text between the two mentions (empty if they touch or
    nest). A context whose marked sequence is longer than `max_length` is split: its pairs are grouped
    (`_group_pairs`, in candidate order) so that each group's mentions fit when marked, one sequence per
    group; a pair whose two mentions alone do not fit gets a window around them (`fit_window`)."""
    n_pairs = sum(len(p) for p in candidates)
    encoder = _AllMarked(tokenizer, n_pairs, _room(tokenizer, max_length))
    if not n_pairs:
        return encoder.sequences, encoder.index
    row = 0
    for doc, pairs in zip(docs, candidates):
        if not pairs:
            continue
        labels = {(e.start, e.end): e.label_ for e in doc.ents}
        sentences = _sentence_bounds(doc)
        contexts: Dict[Tuple[int, int], Tuple[Dict[Tuple[int, int], int], List[Tuple[int, int, int]]]] = {}
        for pair in pairs:
            hs, he, ts, te = pair
            mentions, pairs_here = contexts.setdefault(_context(doc, sentences, pair, context_tokens), ({}, []))
            h = mentions.setdefault((hs, he), len(mentions))
            t = mentions.setdefault((ts, te), len(mentions))
            pairs_here.append((row, h, t))
            row += 1
        for (lo, hi), (mentions, pairs_here) in contexts.items():
            start_char, end_char = doc[lo].idx, doc[hi - 1].idx + len(doc[hi - 1])
            spans = [_char_span(doc, s, e, start_char) for s, e in mentions]
            types = [marker_type(labels.get(m, "")) if typed_markers else None for m in mentions]
            encoder.add_context(doc.text[start_char:end_char], spans, types, pairs_here)
    return encoder.sequences, encoder.index


class _AllMarked:
    """The sequences and pair index `encode_contexts` builds, one context at a time."""

    def __init__(self, tokenizer, n_pairs: int, room: int):
        self.tokenizer, self.room = tokenizer, room
        self.index = numpy.zeros((n_pairs, 5), dtype="i")
        self.sequences: List[List[int]] = []

    def add_context(self, text: str, spans, types, pairs_here) -> None:
        """All of a context's mentions marked in one sequence if it fits; else groups of pairs whose mentions
        fit when marked together; a group that still overflows, one sequence per pair."""
        if self.marked(text, spans, types, pairs_here):
            return
        pieces = ContextPieces(self.tokenizer, text)
        base = len(pieces.offsets)
        if base > self.room:  # no group can fit: one window per pair, each bounded by the window, not the context
            for r, h, t in pairs_here:
                window, moved = pieces.window_text([spans[h], spans[t]], self.room)
                self.marked(window, moved, [types[h], types[t]], [(r, 0, 1)])
            return
        cost = [len(self.tokenizer(f"{opener(HEAD_OPEN, '*', t)} {HEAD_CLOSE}", add_special_tokens=False)["input_ids"])
                for t in types]
        for group, group_pairs in _group_pairs(pairs_here, cost, self.room - base):
            local = {m: i for i, m in enumerate(group)}
            if not self.marked(text, [spans[m] for m in group], [types[m] for m in group],
                               [(r, local[h], local[t]) for r, h, t in group_pairs]):
                for r, h, t in group_pairs:
                    self.marked(text, [spans[h], spans[t]], [types[h], types[t]], [(r, 0, 1)])

    def marked(self, text: str, spans, types, pairs_here) -> bool:
        """Mark `spans` in `text` and add the sequence(s) of `pairs_here`: one shared sequence if it fits,
        one window per pair if only two spans are marked; False (nothing added) for more spans that do not fit."""
        tokenizer, index, sequences = self.tokenizer, self.index, self.sequences
        marked, at = mark_spans(text, spans, [opener(HEAD_OPEN, "*", t) for t in types], [HEAD_CLOSE] * len(spans))
        enc = tokenizer(marked, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        opens = [_piece_at(offsets, a) for a, _ in at]
        closes = [_piece_at(offsets, b) for _, b in at]
        if len(ids) <= self.room:  # one sequence for every pair of the context
            sequence, moved = _with_specials(tokenizer, ids, opens + closes)
            sequences.append(sequence)
            opens, closes = moved[:len(spans)], moved[len(spans):]
            for row, h, t in pairs_here:
                first, second = sorted((h, t), key=lambda m: opens[m])
                start = closes[first] + 1
                index[row] = (len(sequences) - 1, opens[h], opens[t], start, max(start, opens[second]))
            return True
        if len(spans) > 2:
            return False
        for row, h, t in pairs_here:  # the two mentions alone are too long: a window around them
            first, second = sorted((h, t), key=lambda m: opens[m])
            ranges = fit_window(len(ids), opens[h], opens[t], closes[h], closes[t], self.room)
            sequence, (head, tail, start, end) = _with_specials(
                tokenizer, ids, (opens[h], opens[t], closes[first] + 1, max(closes[first] + 1, opens[second])), ranges)
            sequences.append(sequence)
            if start < 0 or end < 0:  # the window cut the text between: none of it
                start = end = 0
            index[row] = (len(sequences) - 1, head, tail, start, max(start, end))
        return True


def _group_pairs(pairs: Sequence[Tuple[int, int, int]], cost: Sequence[int], budget: int):
    """Greedy, in candidate order: a pair joins the current group while the marker pieces of the group's
    mentions (`cost` per mention) stay within `budget`; otherwise it starts the next group.
    pairs: (row, head mention, tail mention). Yields (sorted mentions, pairs) per group."""
    mentions: set = set()
    group: List[Tuple[int, int, int]] = []
    for row, h, t in pairs:
        grown = mentions | {h, t}
        if group and sum(cost[m] for m in grown) > budget:
            yield sorted(mentions), group
            mentions, group, grown = set(), [], {h, t}
        mentions = grown
        group.append((row, h, t))
    if group:
        yield sorted(mentions), group


class MarkedPairModule(torch.nn.Module):
    """The encoder; forward returns per pair the [head marker; tail marker] states, and with `context`
    also the mean state of the text between the two mentions: (n_pairs, 2 or 3 * width), float32."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, batches: List[Tuple[torch.Tensor, ...]], order: torch.Tensor, autocast: Optional[str],
                context: bool = False) -> torch.Tensor:
        # Training on an update with many pairs (one DDI-2013 sentence has 1,818): keep only each
        # batch's inputs and recompute its activations in backward (torch.utils.checkpoint, which
        # replays dropout's RNG), so memory is bounded by `batch_size` sequences, for one more forward.
        checkpoint = torch.is_grad_enabled() and len(batches) > 2
        outputs = []
        for batch in batches:
            if checkpoint:
                outputs.append(torch.utils.checkpoint.checkpoint(
                    self._pair_states, *batch, autocast, context, use_reentrant=False))
            else:
                outputs.append(self._pair_states(*batch, autocast, context))
        return torch.cat(outputs)[order]  # back to the candidates' order

    def _pair_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, index: torch.Tensor,
                     autocast: Optional[str], context: bool) -> torch.Tensor:
        """index: (pairs, 5) rows of (sequence in this batch, head, tail, between start, between end)."""
        dtype = getattr(torch, autocast) if autocast else torch.float32
        with torch.autocast(device_type=input_ids.device.type, dtype=dtype, enabled=autocast is not None):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = hidden.float()
        rows = index[:, 0]
        states = [hidden[rows, index[:, 1]], hidden[rows, index[:, 2]]]
        if context:  # mean over [start, end) from prefix sums: memory (pairs, width), whatever the lengths
            prefix = torch.nn.functional.pad(hidden.cumsum(dim=1), (0, 0, 1, 0))
            total = prefix[rows, index[:, 4]] - prefix[rows, index[:, 3]]
            states.append(total / (index[:, 4] - index[:, 3]).clamp(min=1).unsqueeze(1).to(total.dtype))
        return torch.cat(states, dim=-1)


class MarkedPairShim(EncoderShim):
    module_class = MarkedPairModule


def _batches(sequences: List[List[int]], index: numpy.ndarray, pad_id: int, batch_size: int, device):
    """Length-sorted batches of `batch_size` padded sequences with the rows of `index` that read them
    (their sequence number made local to the batch), and the permutation that restores the pairs' order.

    index: (n_pairs, 5) from `encode_contexts`, or (n_pairs, 2) head/tail positions from `encode_pairs`
    (pair i reads sequence i)."""
    index = numpy.asarray(index, dtype="int64")
    if index.shape[1] == 2:
        index = numpy.concatenate([numpy.arange(len(index))[:, None], index, numpy.zeros((len(index), 2), "int64")], 1)
    order = numpy.argsort([len(s) for s in sequences], kind="stable")
    slot = numpy.empty(len(sequences), dtype="int64")  # sequence -> (batch, row in it), as batch * batch_size + row
    slot[order] = numpy.arange(len(order))
    pair_slot = slot[index[:, 0]]
    pair_order = numpy.argsort(pair_slot, kind="stable")  # pairs grouped by batch, in sequence order
    batches, done = [], 0
    for b in range(0, len(order), batch_size):
        seq_ids = order[b:b + batch_size]
        width = max(len(sequences[i]) for i in seq_ids)
        ids = numpy.full((len(seq_ids), width), pad_id, dtype="int64")
        mask = numpy.zeros((len(seq_ids), width), dtype="int64")
        for row, i in enumerate(seq_ids):
            ids[row, :len(sequences[i])] = sequences[i]
            mask[row, :len(sequences[i])] = 1
        n_here = int(numpy.searchsorted(pair_slot[pair_order], b + batch_size, side="left")) - done
        rows = index[pair_order[done:done + n_here]].copy()
        rows[:, 0] = slot[rows[:, 0]] - b
        done += n_here
        batches.append((torch.as_tensor(ids, device=device), torch.as_tensor(mask, device=device),
                        torch.as_tensor(rows, device=device)))
    restore = numpy.empty_like(pair_order)
    restore[pair_order] = numpy.arange(len(pair_order))
    return batches, torch.as_tensor(restore, dtype=torch.long, device=device)


def _features_forward(model: Model, X, is_train: bool, runtime: Optional[Dict] = None):
    runtime = runtime or {}
    docs, candidates = X
    shim: MarkedPairShim = model.shims[0]
    encode = encode_contexts if model.attrs["marking"] == "all" else encode_pairs
    sequences, positions = encode(
        shim.tokenizer, docs, candidates, max_length=model.attrs["max_length"],
        context_tokens=model.attrs["context_tokens"], typed_markers=model.attrs["typed_markers"],
    )
    width = model.get_dim("nO")
    if not sequences:
        return model.ops.alloc2f(0, width), lambda d: []
    device = shim.device
    pad_id = shim.tokenizer.pad_token_id or 0
    batches, order = _batches(sequences, positions, pad_id, model.attrs["batch_size"], device)
    inputs = ArgsKwargs(args=(batches, order, runtime.get("autocast"), model.attrs["marking"] == "all"), kwargs={})
    if is_train and model.attrs.get("frozen_encoder"):  # head-only updates (frozen_encoder.py): one forward, no grad
        output, _ = shim.run(inputs, False, None)
        return model.ops.asarray2f(torch2xp(output)), lambda d_feats: []
    output, torch_backprop = shim.run(inputs, is_train, runtime.get("quantize"), auto=runtime.get("quantize_auto", False))
    feats = model.ops.asarray2f(torch2xp(output.detach()))

    def backprop(d_feats: Floats2d) -> List:
        grads = xp2torch(model.ops.asarray2f(d_feats), device=device)
        torch_backprop(ArgsKwargs(args=(output,), kwargs={"grad_tensors": grads}))
        return []

    return feats, backprop


def _features_init(model: Model, X=None, Y=None) -> Model:
    name = model.attrs["name"]
    shim: MarkedPairShim = model.shims[0]
    if shim._model is None:  # from_bytes/from_disk fills the shim before a resumed initialize
        tokenizer, encoder = load_fast_tokenizer_and_encoder(name, model.attrs["tokenizer_config"], Errors.E049, Errors.E050)
        max_pos = getattr(encoder.config, "max_position_embeddings", None) or model.attrs["max_length"]
        low = 2 * MARKER_PIECES + 4
        if not low <= model.attrs["max_length"] <= max_pos:
            raise ElectraMedError(Errors.E051.format(max_length=model.attrs["max_length"], low=low, max_pos=max_pos, name=name))
        shim.tokenizer = tokenizer
        shim._model = MarkedPairModule(encoder).to(get_torch_default_device())
    # [head; tail] marker states, and with every mention marked the text between them (pair-specific)
    model.set_dim("nO", (3 if model.attrs["marking"] == "all" else 2) * shim._model.encoder.config.hidden_size)
    return model


def marked_pair_features(name: str, max_length: int, batch_size: int, context_tokens: int, typed_markers: bool,
                         autocast: Optional[str], tokenizer_config: Optional[Dict], marking: str = "pair",
                         quantize: Optional[str] = None) -> Model:
    """(docs, candidates) -> (n_pairs, 2 or 3 * encoder width): the marker states of each marked pair."""
    device = get_torch_default_device()
    quantize_auto = quantize == AUTO
    if quantize_auto:  # the fastest of float32, the autocast choice and per-row int8 on this machine
        autocast = resolve_autocast(autocast, device, what="the relation encoder")
        quantize = choose_quantize(device, autocast=autocast, what="the relation encoder") if autocast in (None, "bfloat16") else None
        autocast = None if quantize else autocast
    autocast = None if quantize and autocast == AUTO else resolve_autocast(autocast, device, what="the relation encoder")
    check_quantize(quantize, autocast)
    if marking not in MARKINGS:
        raise ElectraMedError(Errors.E054.format(value=marking))
    for key, value, low in (("batch_size", batch_size, 1), ("context_tokens", context_tokens, 0)):
        if value < low:
            raise ElectraMedError(Errors.E052.format(key=key, value=value, low=low))
    if autocast not in (None, "bfloat16", "float16"):
        raise ElectraMedError(Errors.E003.format(value=autocast, options="'bfloat16', 'float16'"))
    tok_cfg = {"use_fast": True, **(tokenizer_config or {})}
    # quantize and autocast are not attrs: thinc's from_bytes restores saved attrs over the config's, and a
    # load-time `spacy.load(path, config=...)` override must win over what the pipeline was trained with
    runtime = {"quantize": quantize, "autocast": autocast, "quantize_auto": quantize_auto}
    return Model(
        "electramed_marked_pairs", functools.partial(_features_forward, runtime=runtime), init=_features_init,
        shims=[MarkedPairShim(None)],
        dims={"nO": None},
        attrs={"name": str(name), "max_length": max_length, "batch_size": batch_size, "context_tokens": context_tokens,
               "typed_markers": typed_markers, "tokenizer_config": tok_cfg, "marking": marking,
               "frozen_encoder": False},  # set by electramed.frozen_encoder_steps.v1 (LP-FT)
    )


@registry.architectures("electramed.MarkedPairRelationModel.v1")
def build_marked_pair_relation_model(
    name: str = ELECTRAMED_HUB_ID,
    max_length: int = 256,
    batch_size: int = 32,
    context_tokens: int = 32,
    typed_markers: bool = True,
    autocast: Optional[str] = None,
    hidden_width: int = 128,
    maxout_pieces: int = 3,
    dropout: float = 0.1,
    tokenizer_config: Optional[Dict] = None,
    nO: Optional[int] = None,
    marking: str = "pair",
    quantize: Optional[str] = None,
) -> Model:
    """Classify candidate pairs, each encoded with its mentions marked: (docs, candidates) -> (n_pairs, nO).

    name: hub id or local `save_pretrained` directory of the encoder (fast tokenizer), loaded at
        initialise; a saved pipeline carries the weights.
    max_length: wordpieces per marked sequence, special tokens included (see the module docstring
        for longer contexts).
    batch_size: sequences per encoder call (sorted by length, so batches pad little).
    context_tokens: spaCy tokens of context on each side of the pair when the Doc has no sentences.
    typed_markers: put the entity label in the markers (`@ * drug * x @`) or not (`@ x @`).
    autocast: null for float32 (the architecture's default), "bfloat16" (1.60x the training pairs/s of float32
        on a CPU with bf16 units, far slower on one without; benchmarks/relations), "float16" (GPU), or "auto"
        (configs/rel.cfg: whichever measures faster on the machine, `precision.py`).
    hidden_width, maxout_pieces, dropout: the head, as in the pooled model.
    nO: number of classes (no-relation + labels); set by the pipe at initialize.
    marking: "pair" (one sequence per candidate pair, head `@ ... @` and tail `# ... #` marked; the pair
        vector is [head `@`; tail `#`]) or "all" (one sequence per context with every mention of its
        pairs marked `@ ... @`, one pass for all of them; the pair vector adds the mean state of the text
        between the two mentions). See the module docstring.
    quantize: null, or "dynamic_int8" / "dynamic_int8_per_channel" for CPU inference through an int8 copy of
        the encoder's Linear layers (needs autocast = null; training refuses it; the saved weights stay float);
        "auto": per-row int8 at inference where autocast stays float32 (no bf16 units) and int8 measures
        >= 1.2x float32 on this CPU (`precision.choose_quantize`), training in float.
    """
    features = marked_pair_features(name, max_length, batch_size, context_tokens, typed_markers, autocast,
                                    tokenizer_config, marking, quantize)
    hidden = Maxout(nO=hidden_width, nP=maxout_pieces, normalize=True, dropout=dropout)
    model = chain(features, hidden, Softmax(nO=nO))
    # the pipe reads these refs: "tok2vec" = the encoder (stepped at the plain rate), "features", "output_layer"
    model.set_ref("tok2vec", features)
    model.set_ref("features", features)
    model.set_ref("output_layer", model.layers[-1])
    model.attrs["pair_representation"] = "marked_pair" if marking == "pair" else "marked_all"
    model.attrs["owns_encoder"] = True
    return model


# the name pipelines saved before the rename use
registry.architectures.register("electramed.MarkedPairRelationModel.v1", func=build_marked_pair_relation_model)
