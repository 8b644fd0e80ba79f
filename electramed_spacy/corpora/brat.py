"""brat standoff reader (`.txt` + `.ann`) -> Docs with mentions and relations.

Many biomedical corpora (BioNLP shared tasks, AnatEM, CRAFT exports) ship as brat
standoff; ELECTRAMed (arXiv:2104.09585) fine-tunes on such NER/RE data after
conversion. Offsets index the characters of the `.txt` file exactly as stored
(read with `newline=""`, so `\\r\\n` counts as two characters, as in brat). Both
files are read through `common.read_text` (UTF-8; an undecodable byte is an error
naming file:line). A leading byte-order mark is removed from the text; brat
counts it as a character, so every offset is then shifted back by one, and a
mention text that starts with the BOM matches (counted as a whitespace/BOM note).

Lines of the `.ann` file:

* `T1<TAB>Label start end<TAB>text` - a mention. Discontinuous mentions
  (`start end;start end`) follow `discontinuous=` (`common.DISCONTINUOUS`, shared with DDI):
  `"drop"` (default: not converted, counted), `"first"` (the first fragment),
  `"extent"` (one span from the first start to the last end, which also covers the
  text in between), or `"fragments"` (one mention per fragment, same label). spaCy
  spans are contiguous, so there is no lossless choice; every case is counted.
* `R1<TAB>Label Arg1:T1 Arg2:T2` - a relation: head = Arg1, tail = Arg2, written
  with `set_relations`. A relation whose argument was dropped is counted.
* `A`/`M` (attributes), `N` (normalisations), `#` (notes), `E` (events), `*`
  (equivalences): not converted; counted per kind in the summary.

Sentences: `sentences.set_sentence_starts` (newlines also end sentences; never
inside a mention).
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc, Span

from ..doc.relations import Relation, set_relations
from .common import (
    DOC_ID,
    ConversionSummary,
    CorpusFormatError,
    as_offset,
    discontinuous_policy,
    doc_from_offsets,
    input_files,
    read_lines,
    read_text_bom,
)
from .sentences import set_sentence_starts

IGNORED = {"A": "attribute", "M": "attribute", "N": "normalisation", "#": "note", "E": "event", "*": "equivalence"}
EXPECTED_T = "'T<id><TAB><Label> <start> <end>[;<start> <end>...]<TAB><text>'."
EXPECTED_R = "'R<id><TAB><Label> Arg1:<T id> Arg2:<T id>'."


def _parse_ann(path: Path) -> Tuple[list, list, Dict[str, int]]:
    """Return (mentions, relations, ignored counts). mentions: (id, label, [(s, e)], text, line)."""
    mentions, relations = [], []
    ignored: Dict[str, int] = {}
    for n, raw in read_lines(path, newline=""):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        kind = line[0]
        if kind in IGNORED:
            ignored[IGNORED[kind]] = ignored.get(IGNORED[kind], 0) + 1
            continue
        cols = line.split("\t")
        if kind == "T":
            if len(cols) < 3:
                raise CorpusFormatError(path, n, f"text-bound annotation with {len(cols)} tab-separated column(s).", EXPECTED_T)
            label, _, locs = cols[1].partition(" ")
            frags = []
            for frag in locs.split(";"):
                parts = frag.split()
                offsets = [as_offset(p) for p in parts]
                if len(offsets) != 2 or None in offsets:
                    raise CorpusFormatError(path, n, f"offsets {locs!r} of {cols[0]} are not 'start end' integer pairs.", EXPECTED_T)
                start, end = offsets
                if start >= end:
                    raise CorpusFormatError(path, n, f"offsets {start}-{end} of {cols[0]} do not increase.", "start < end for every fragment.")
                frags.append((start, end))
            if not label:
                raise CorpusFormatError(path, n, f"{cols[0]} has no label.", EXPECTED_T)
            mentions.append((cols[0], label, frags, cols[2], n))
        elif kind == "R":
            fields = cols[1].split() if len(cols) >= 2 else []
            args = dict(a.split(":", 1) for a in fields[1:] if ":" in a)
            if len(fields) != 3 or set(args) != {"Arg1", "Arg2"}:
                raise CorpusFormatError(path, n, f"relation {cols[0]} has arguments {fields[1:]}.", EXPECTED_R)
            relations.append((cols[0], fields[0], args["Arg1"], args["Arg2"], n))
        else:
            raise CorpusFormatError(path, n, f"unknown annotation line {line[:60]!r}.", "a line starting with T, R, E, A, M, N, # or *.")
    return mentions, relations, ignored


def read_brat(
    path: Union[str, Path],
    make_doc: Callable[[str], Doc],
    *,
    summary: Optional[ConversionSummary] = None,
    on_error: str = "error",
    discontinuous: str = "drop",
    sentences: bool = True,
) -> Iterator[Doc]:
    """Yield one Doc per `.ann` file under `path` (a directory or one `.ann` file),
    with text from the `.txt` file of the same stem."""
    discontinuous = discontinuous_policy(discontinuous)
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    for ann in input_files(path, ["*.ann"]):
        txt = ann.with_suffix(".txt")
        if not txt.exists():
            raise CorpusFormatError(ann, None, f"no text file {txt.name} next to the annotation file.", "a .txt file with the same name for every .ann file.")
        text, bom = read_text_bom(txt, newline="")
        mentions, relations, ignored = _parse_ann(ann)
        if bom:  # brat counted the BOM; the text no longer holds it
            summary.notes["text files with a byte-order mark (removed; offsets shifted by one)"] += 1
            mentions = [(tid, label, [(max(s - 1, 0), e - 1) for s, e in frags], mtext, n) for tid, label, frags, mtext, n in mentions]
        for kind, count in ignored.items():
            summary.drop(f"brat {kind} lines (not converted)", count)
        offsets: List[Tuple[int, int, str]] = []
        claimed: List[str] = []
        where: List[str] = []
        owner: List[str] = []  # T id per entry in offsets
        for tid, label, frags, mtext, n in mentions:
            if len(frags) > 1:
                if discontinuous == "drop":
                    summary.drop("discontinuous mention (policy: drop)")
                    continue
                summary.notes[f"discontinuous mentions (policy: {discontinuous})"] += 1
                if discontinuous == "extent":
                    frags, mtext = [(frags[0][0], frags[-1][1])], None
                elif discontinuous == "first":
                    frags, mtext = frags[:1], (mtext.split(" ")[0] if mtext.count(" ") == len(frags) - 1 else None)
                else:
                    pieces = mtext.split(" ") if mtext.count(" ") == len(frags) - 1 else [None] * len(frags)
                    for (start, end), piece in zip(frags, pieces):
                        offsets.append((start, end, label))
                        claimed.append(piece)
                        where.append(f"{ann}:{n}")
                        owner.append(tid)
                    continue
            offsets.append((frags[0][0], frags[0][1], label))
            claimed.append(mtext)
            where.append(f"{ann}:{n}")
            owner.append(tid)
        doc, spans = doc_from_offsets(
            make_doc, text, offsets, summary=summary, on_error=on_error, where=str(ann),
            mention_texts=claimed, mention_where=where,
        )
        by_id: Dict[str, Span] = {}
        for tid, span in zip(owner, spans):
            if span is not None:
                by_id.setdefault(tid, span)  # with "fragments", the first fragment stands for the mention
        known = {m[0] for m in mentions}
        rels = []
        for rid, label, head, tail, n in relations:
            for arg in (head, tail):
                if arg not in known:
                    raise CorpusFormatError(ann, n, f"relation {rid} refers to {arg}, which is not defined in this file.", "Arg1/Arg2 naming T annotations of the same .ann file.")
            if head in by_id and tail in by_id:
                rels.append(Relation(by_id[head], by_id[tail], label))
            else:
                summary.drop("relation with a dropped argument")
        set_relations(doc, rels)
        doc._.set(DOC_ID, ann.stem)
        if sentences:
            set_sentence_starts(doc, summary=summary)
        summary.add_doc(doc)
        yield doc
