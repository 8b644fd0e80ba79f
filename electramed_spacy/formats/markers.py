"""Typed entity markers in text, the input format of the marked-pair relation model: `@ * drug * aspirin @
... # ^ brand ^ coumadin #` (the head between `@`, the tail between `#`, each with its type; Baldini Soares
et al. 2019; Zhou & Chen 2022). Pure text, so the model (`ml/relations/marked_pair.py`) and the
pre-training text tool (`corpora/task_text.py`) mark pairs the same way.
"""
from typing import Dict, List, Optional, Sequence, Tuple

HEAD_OPEN, HEAD_CLOSE, TAIL_OPEN, TAIL_CLOSE = "@", "@", "#", "#"


def marker_type(label: str) -> str:
    """The type words of a marker: the entity label lower-cased, `_` read as a space ("DRUG_N" -> "drug n")."""
    return " ".join(label.lower().replace("_", " ").split()) or "entity"


def mark_spans(text: str, spans: Sequence[Tuple[int, int]], openers: Sequence[str],
               closers: Sequence[str]) -> Tuple[str, List[Tuple[int, int]]]:
    """Insert `openers[i]` before and `closers[i]` after character span `spans[i]`, each with a space on
    either side; returns the marked text and, per span, the offsets of its opener's first symbol and of
    its closer in it. Nested or overlapping spans nest their markers: at one offset a closer comes before
    an opener, an outer span opens first and closes last, and equal spans open in order, close in reverse."""
    events = []
    for i, ((start, end), opener, closer) in enumerate(zip(spans, openers, closers)):
        events.append(((start, 1, -(end - start), i), f" {opener} ", i, 0))
        events.append(((end, 0, end - start, -i), f" {closer} ", i, 1))
    events.sort(key=lambda e: e[0])
    parts: List[str] = []
    cursor, length = 0, 0
    at = [[0, 0] for _ in spans]
    for (offset, *_), marker, i, which in events:
        parts.append(text[cursor:offset])
        length += offset - cursor
        cursor = offset
        at[i][which] = length + 1  # the marker symbol follows one space
        parts.append(marker)
        length += len(marker)
    parts.append(text[cursor:])
    return "".join(parts), [tuple(a) for a in at]


def opener(symbol: str, inner: str, typ: Optional[str]) -> str:
    return f"{symbol} {inner} {typ} {inner}" if typ else symbol


def mark_pair(text: str, head: Tuple[int, int], tail: Tuple[int, int],
              head_type: Optional[str], tail_type: Optional[str]) -> Tuple[str, Dict[str, int]]:
    """Insert typed markers around the head and tail character spans of `text`.

    Returns (marked text, offsets of the marker symbols in it: "head", "head_end", "tail",
    "tail_end" for the head's opening and closing `@` and the tail's `#`).
    Nested or overlapping spans nest their markers (an outer span opens first and closes
    last; at one offset a closing marker comes before an opening one); a head and tail
    with the same span give `@ * t * # ^ t ^ x # @`. `head_type=None` leaves out the type.
    """
    marked, ((h, h_end), (t, t_end)) = mark_spans(
        text, [head, tail], [opener(HEAD_OPEN, "*", head_type), opener(TAIL_OPEN, "^", tail_type)],
        [HEAD_CLOSE, TAIL_CLOSE])
    return marked, {"head": h, "head_end": h_end, "tail": t, "tail_end": t_end}
