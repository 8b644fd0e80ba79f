"""Which entity pairs of a Doc a relation model scores: registered in spacy.registry.misc.

- `electramed.relation_candidates.v2`: same sentence and/or maximum token distance, allowed head/tail
  type pairs, directed or symmetric, a distance limit for Docs without sentences and a cap on pairs per
  Doc; v1 is the same without limits, kept so that saved pipelines load.
- `electramed.entity_pair_count.v1`: an Example's length in gold entity pairs, for spaCy's batchers.

A candidate is a `Pair`, the `(head start, head end, tail start, tail end)` token offsets; both relation
models (`pooled.py`, `marked_pair.py`) take `(docs, candidates)`, so they never read Doc annotations.
"""
import warnings
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy.util import registry

from ...errors import ElectraMedError, Errors

Pair = Tuple[int, int, int, int]  # head start, head end, tail start, tail end (token offsets)
W_MAX_PAIRS = (
    "[components.<relation pipe>.candidates] max_pairs={max_pairs} reached in a {n_tokens}-token Doc: pairs "
    "with a head from token {token} on are not scored. Raise max_pairs or split the text into smaller Docs."
)


@registry.misc("electramed.relation_candidates.v2")
def configure_relation_candidates_v2(
    same_sentence: bool = True,
    max_distance: int = 0,
    type_pairs: Optional[List[List[str]]] = None,
    symmetric: bool = True,
    max_distance_without_sentences: int = 100,
    max_pairs: int = 5000,
) -> Callable[[Doc], List[Pair]]:
    """Entity pairs of `doc.ents` to classify, with bounded work per Doc.

    same_sentence: only pairs inside one sentence (used when the Doc has sentence
        boundaries; without them the whole Doc counts as one sentence).
    max_distance: if > 0, only pairs whose starts are at most this many tokens apart.
    type_pairs: allowed [head_label, tail_label] pairs, e.g. [["CHEMICAL", "GENE"]];
        None or [] allows all. With symmetric=True a pair matches in either order.
    symmetric: True -> one candidate per unordered pair, head = the entity that comes
        first in the text (DDI-2013 convention); False -> both orders are candidates.
    max_distance_without_sentences: the token distance limit (as max_distance; the smaller
        one wins) for Docs whose pairs are not limited to sentences (no sentence boundaries,
        or same_sentence=false). Without it, pairs grow with the square of the length.
        0 = no limit. Default 100.
    max_pairs: at most this many candidates per Doc, in text order; the rest are dropped
        with a warning (a safety net for very long sentences). 0 = no limit. Default 5000.
    """
    limits = {"max_distance": max_distance, "max_distance_without_sentences": max_distance_without_sentences, "max_pairs": max_pairs}
    for key, value in limits.items():
        if value < 0:
            raise ElectraMedError(Errors.E041.format(key=key, value=value))
    allowed = None
    if type_pairs:
        for tp in type_pairs:
            if len(tp) != 2:
                raise ElectraMedError(Errors.E042.format(value=tp))
        allowed = {tuple(tp) for tp in type_pairs}

    def keep(h: Span, t: Span) -> bool:
        return allowed is None or (h.label_, t.label_) in allowed or (symmetric and (t.label_, h.label_) in allowed)

    def get_candidates(doc: Doc) -> List[Pair]:
        ents = sorted(doc.ents, key=lambda e: (e.start, e.end))
        sent_id = None
        limit = max_distance
        if same_sentence and doc.has_annotation("SENT_START"):
            sent_id = numpy.cumsum(doc.to_array("SENT_START") == 1)  # (n_tokens,) sentence number
        elif max_distance_without_sentences:
            limit = min(limit, max_distance_without_sentences) if limit else max_distance_without_sentences
        pairs: List[Pair] = []
        # ents are sorted, so the first b too far away (or in a later sentence) ends a's pairs
        for i, a in enumerate(ents):
            for j in range(i + 1, len(ents)):
                b = ents[j]
                if (limit and b.start - a.start > limit) or (sent_id is not None and sent_id[b.start] != sent_id[a.start]):
                    break
                for h, t in ([(a, b)] if symmetric else [(a, b), (b, a)]):
                    if not keep(h, t):
                        continue
                    if max_pairs and len(pairs) == max_pairs:
                        warnings.warn(W_MAX_PAIRS.format(max_pairs=max_pairs, token=h.start, n_tokens=len(doc)))
                        return pairs
                    pairs.append((h.start, h.end, t.start, t.end))
        return pairs

    get_candidates.symmetric = symmetric  # type: ignore[attr-defined]
    return get_candidates


@registry.misc("electramed.entity_pair_count.v1")
def configure_entity_pair_count() -> Callable:
    """`get_length` for spaCy's batchers that measures an Example by its gold entity pairs
    (unordered, within a sentence when the Doc has sentences): with `spacy.batch_by_words.v1`,
    training batches of about `size` candidate pairs. The cost of an update of
    the marked-pair model (one encoder pass per pair) grows with its pairs, not its
    words: one DDI-2013 document has 1,818."""

    def entity_pair_count(eg) -> int:
        doc = eg.reference
        if doc.has_annotation("SENT_START"):
            per_sentence = numpy.bincount(numpy.cumsum(doc.to_array("SENT_START") == 1)[[e.start for e in doc.ents]]) if doc.ents else []
        else:
            per_sentence = [len(doc.ents)]
        return int(sum(k * (k - 1) // 2 for k in per_sentence))

    return entity_pair_count


@registry.misc("electramed.relation_candidates.v1")
def configure_relation_candidates(
    same_sentence: bool = True,
    max_distance: int = 0,
    type_pairs: Optional[List[List[str]]] = None,
    symmetric: bool = True,
) -> Callable[[Doc], List[Pair]]:
    """v2 without its limits, kept so that saved pipelines load: on a Doc without sentence
    boundaries the pairs grow with the square of its length. Use v2."""
    return configure_relation_candidates_v2(
        same_sentence, max_distance, type_pairs, symmetric, max_distance_without_sentences=0, max_pairs=0,
    )
