"""IOB1/IOB2 tag decoding without spaCy, shared by the CoNLL parser (`conll.py`), the corpus reader and the
pre-training probe. One rule decodes both schemes: B- starts a chunk; I-X continues a chunk of type X, else
starts one."""
from typing import List, Sequence, Tuple


def split_tag(tag: str) -> Tuple[str, str]:
    """'B-Chemical' -> ('B', 'Chemical'); 'O' -> ('O', ''); ValueError otherwise."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not label:
        raise ValueError(tag)
    return prefix, label


def tags_to_spans(tags: Sequence[str], *, scheme: str = "iob1") -> List[Tuple[int, int, str]]:
    """Decode IOB1/IOB2 tags into `(start_token, end_token, label)` chunks.

    scheme="iob2" raises ValueError at an I- tag that starts a chunk; "iob1" and
    "auto" accept it (see the module docstring).
    """
    spans: List[Tuple[int, int, str]] = []
    start, label = None, ""
    for i, tag in enumerate(tags):
        prefix, lab = split_tag(tag)
        continues = prefix == "I" and start is not None and lab == label
        if continues:
            continue
        if start is not None:
            spans.append((start, i, label))
            start, label = None, ""
        if prefix == "I" and scheme == "iob2":
            raise ValueError(f"{tag} starts a chunk")
        if prefix != "O":
            start, label = i, lab
    if start is not None:
        spans.append((start, len(tags), label))
    return spans
