"""ChemProt (BioCreative VI) -> Docs with chemical/gene entities and relations.

ChemProt is ELECTRAMed's (Miolo et al. 2021, arXiv:2104.09585) second relation
benchmark. Two forms are read; they follow different protocols, so figures from
one are not comparable with the other:

- **sentence form** (`scibert_sentences/*.jsonl`, the SciBERT/ELECTRAMed
  protocol): one JSON line per *positive* relation with one of 13 fine labels and
  two marked entities. The data README says gene `<< >>`, chemical `[[ ]]`; in the
  files `<< >>` marks whichever entity comes first (chemical or gene) and `[[ ]]`
  the second, so both are labelled ENTITY. The markers are stripped (with the one
  space that pads them inside) to get character offsets; each line becomes one Doc
  with two entities and one relation (head `<< >>`, tail `[[ ]]`). There are no
  negative pairs, so the task is classifying a known-positive pair and micro-F1
  over the labels equals accuracy.
- **pure_json form** (`pure_json/*.json`, the end-to-end protocol of Zhong &
  Chen's PURE): one JSON line per abstract with tokenised sentences, entities as
  document-global inclusive token offsets, and CPR:3/4/5/6/9 relations. Every
  unrelated CHEMICAL-GENE pair in a sentence is a negative, as in the official
  evaluation. Spacing between tokens is approximate (one space each).

`label_scheme="cpr"` (default) maps the 13 fine labels to the five evaluated CPR
groups (data README): ACTIVATOR, INDIRECT-UPREGULATOR, UPREGULATOR -> CPR:3;
INHIBITOR, INDIRECT-DOWNREGULATOR, DOWNREGULATOR -> CPR:4; AGONIST* -> CPR:5;
ANTAGONIST -> CPR:6; SUBSTRATE, PRODUCT-OF, SUBSTRATE_PRODUCT-OF -> CPR:9.
`label_scheme="fine"` keeps the 13 labels.

Both forms are read through `common.read_lines` and `common.parse_json`: UTF-8, a
leading BOM removed, and every error (bad JSON, bad bytes, wrong field types) a
CorpusFormatError naming file:line.
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc

from ..doc.relations import Relation, set_relations
from .common import ON_ERROR, ConversionSummary, CorpusFormatError, doc_from_offsets, parse_json, read_lines

CPR_GROUPS: Dict[str, str] = {
    "ACTIVATOR": "CPR:3", "INDIRECT-UPREGULATOR": "CPR:3", "UPREGULATOR": "CPR:3",
    "INHIBITOR": "CPR:4", "INDIRECT-DOWNREGULATOR": "CPR:4", "DOWNREGULATOR": "CPR:4",
    "AGONIST": "CPR:5", "AGONIST-ACTIVATOR": "CPR:5", "AGONIST-INHIBITOR": "CPR:5",
    "ANTAGONIST": "CPR:6",
    "SUBSTRATE": "CPR:9", "PRODUCT-OF": "CPR:9", "SUBSTRATE_PRODUCT-OF": "CPR:9",
}
CPR_LABELS = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")
LABEL_SCHEMES = ("cpr", "fine")
CHEMICAL, GENE, ENTITY = "CHEMICAL", "GENE", "ENTITY"
# The sentence form marks the entity that comes first in the text with << >> and the
# second with [[ ]], whatever their types (all 4169 train lines have << before [[;
# train line 1373 marks a chemical with << >>, line 1 a gene), so both get the label
# ENTITY and the relation runs from the << >> entity to the [[ ]] one.
FIRST, SECOND = "<<", "[["
OPENERS = {"<< ": FIRST, "[[ ": SECOND}
CLOSERS = {" >>": FIRST, " ]]": SECOND}


def strip_markers(marked: str) -> Tuple[str, Dict[str, Tuple[int, int]]]:
    """Remove the `<< >>` / `[[ ]]` markers; return the text and {"<<": (start, end), "[[": ...}.

    A marker is an opener followed by a space ("<< ") or a closer preceded by one
    (" >>"), and only while it can open/close: a literal ">>" in the text (e.g.
    "PGE2>>17-phenyl", "peganine >>>parathion") is kept as text. Raises ValueError
    with the reason when an entity is missing, empty or unclosed.
    """
    out: List[str] = []
    opened: Dict[str, int] = {}
    found: Dict[str, Tuple[int, int]] = {}
    i = 0
    while i < len(marked):
        three = marked[i:i + 3]
        if three in OPENERS and OPENERS[three] not in opened and OPENERS[three] not in found:
            opened[OPENERS[three]] = len(out)
            i += 3
            continue
        if three in CLOSERS and CLOSERS[three] in opened:
            found[CLOSERS[three]] = (opened.pop(CLOSERS[three]), len(out))
            i += 3
            continue
        out.append(marked[i])
        i += 1
    if opened:
        raise ValueError(f"unclosed {' and '.join(opened)} marker")
    for marker, pair in ((FIRST, "<< >>"), (SECOND, "[[ ]]")):
        if marker not in found:
            raise ValueError(f"no entity marked with {pair}")
        if found[marker][1] <= found[marker][0]:
            raise ValueError(f"the entity marked {pair} is empty")
    return "".join(out), found


def _map_label(label: object, scheme: str, path: Path, line: int) -> str:
    if scheme not in LABEL_SCHEMES:
        raise ValueError(f"label_scheme must be one of {LABEL_SCHEMES}, got {scheme!r}.")
    if not isinstance(label, str) or label not in CPR_GROUPS:
        raise CorpusFormatError(path, line, f"label {label!r} is not a ChemProt label.", f"one of {', '.join(sorted(CPR_GROUPS))}.")
    return CPR_GROUPS[label] if scheme == "cpr" else label


def _json_lines(path: Path) -> Iterator[Tuple[int, dict]]:
    if not path.is_file():
        raise CorpusFormatError(path, None, "does not exist or is not a file.", "a ChemProt .jsonl/.json file.")
    for line_no, line in read_lines(path):
        if not line.strip():
            continue
        record = parse_json(line, path, line_no)
        if not isinstance(record, dict):
            raise CorpusFormatError(path, line_no, f"a JSON {type(record).__name__}, not an object.", "one JSON object per line.")
        yield line_no, record


def detect_form(path: Union[str, Path]) -> str:
    """"pure" when the first record has a "sentences" key, else "sentences" (the two ChemProt forms)."""
    for _, record in _json_lines(Path(path)):
        return "pure" if "sentences" in record else "sentences"
    return "sentences"


def read_chemprot_sentences(
    path: Union[str, Path], make_doc: Callable[[str], Doc], *, label_scheme: str = "cpr",
    summary: Optional[ConversionSummary] = None, on_error: str = "error",
) -> Iterator[Doc]:
    """SciBERT sentence form: one Doc per line (one relation, << >> entity -> [[ ]] entity).

    on_error="count" drops (and counts) lines whose markers cannot be parsed
    instead of raising.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if label_scheme not in LABEL_SCHEMES:
        raise ValueError(f"label_scheme must be one of {LABEL_SCHEMES}, got {label_scheme!r}.")
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary()
    for line_no, record in _json_lines(path):
        if "text" not in record or "label" not in record:
            raise CorpusFormatError(path, line_no, f"keys {sorted(record)}; 'text' or 'label' is missing.", '{"text": "... << gene >> ... [[ chemical ]] ...", "label": "INHIBITOR"}.')
        label = _map_label(record["label"], label_scheme, path, line_no)
        try:
            text, found = strip_markers(str(record["text"]))
        except ValueError as err:
            if on_error == "error":
                raise CorpusFormatError(path, line_no, f"cannot read the entity markers: {err}.", "exactly one << first entity >> and one [[ second entity ]].") from err
            summary.drop("unreadable entity markers")
            continue
        mentions = [(*found[FIRST], ENTITY), (*found[SECOND], ENTITY)]
        doc, spans = doc_from_offsets(make_doc, text, mentions, summary=summary, where=f"{path}:{line_no}")
        head, tail = spans  # the << >> entity, the [[ ]] entity
        ents = {(e.start, e.end) for e in doc.ents}
        if (head.start, head.end) not in ents or (tail.start, tail.end) not in ents:
            summary.notes["relations with an entity outside doc.ents (kept; never a candidate)"] += 1
        set_relations(doc, [Relation(head, tail, label)])
        summary.add_doc(doc)
        yield doc


def read_chemprot_pure(
    path: Union[str, Path], make_doc: Optional[Callable[[str], Doc]] = None, *, vocab=None,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """PURE document form: one Doc per abstract, tokens as given, sentence
    boundaries, CHEMICAL/GENE entities and CPR relations (head CHEMICAL, tail GENE)."""
    from spacy.vocab import Vocab

    path = Path(path)
    summary = summary if summary is not None else ConversionSummary()
    vocab = vocab if vocab is not None else (make_doc("").vocab if make_doc is not None else Vocab())
    for line_no, record in _json_lines(path):
        for key in ("sentences", "ner", "relations"):
            if key not in record:
                raise CorpusFormatError(path, line_no, f"key {key!r} is missing.", '{"doc_key", "sentences", "ner", "relations"} (PURE format).')
        sentences = record["sentences"]
        if not isinstance(sentences, list) or not all(isinstance(s, list) and s for s in sentences):
            raise CorpusFormatError(path, line_no, "'sentences' is not a list of non-empty token lists.", '"sentences": [["tok", ...], ...].')
        words = [str(t) for s in sentences for t in s]
        if not all(w.strip() for w in words):
            raise CorpusFormatError(path, line_no, "'sentences' holds an empty or whitespace-only token.", "tokens with text.")
        for key in ("ner", "relations"):
            if not isinstance(record[key], list) or not all(isinstance(s, list) for s in record[key]):
                raise CorpusFormatError(path, line_no, f"{key!r} is not a list of per-sentence lists.", f'"{key}": [[...], ...], one list per sentence.')
        if len(record["ner"]) != len(sentences) or len(record["relations"]) != len(sentences):
            raise CorpusFormatError(path, line_no, f"{len(sentences)} sentences but {len(record['ner'])} 'ner' and {len(record['relations'])} 'relations' lists.", "one ner and one relations list per sentence.")
        starts_tok, n = [], 0
        for s in sentences:
            starts_tok.append(n)
            n += len(s)
        char_start, pos = [], 0
        for w in words:
            char_start.append(pos)
            pos += len(w) + 1
        text = " ".join(words)

        def tok_doc(_text: str, words=words) -> Doc:
            return Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])

        mentions, index = [], {}
        for sent_ner in record["ner"]:
            for item in sent_ner:
                if not (isinstance(item, list) and len(item) == 3 and all(type(i) is int for i in item[:2])):
                    raise CorpusFormatError(path, line_no, f"entity {item!r} is malformed.", "[start_token, end_token (inclusive), label].")
                s, e, label = item
                if not (0 <= s <= e < len(words)):
                    raise CorpusFormatError(path, line_no, f"entity {item!r} is outside the document's {len(words)} tokens.", "document-global inclusive token offsets.")
                index[(s, e)] = len(mentions)
                mentions.append((char_start[s], char_start[e] + len(words[e]), str(label)))
        doc, spans = doc_from_offsets(tok_doc, text, mentions, summary=summary, where=f"{path}:{line_no}")
        first = set(starts_tok)
        for token in doc:
            token.is_sent_start = token.i in first
        ents = {(e.start, e.end) for e in doc.ents}
        relations = []
        for sent_rels in record["relations"]:
            for item in sent_rels:
                if not (isinstance(item, list) and len(item) == 5 and all(type(i) is int for i in item[:4])):
                    raise CorpusFormatError(path, line_no, f"relation {item!r} is malformed.", "[head_start, head_end, tail_start, tail_end, label] (integer token offsets).")
                hs, he, ts, te, label = item
                if label not in CPR_LABELS:
                    raise CorpusFormatError(path, line_no, f"relation label {label!r} is not evaluated in ChemProt.", f"one of {', '.join(CPR_LABELS)}.")
                if (hs, he) not in index or (ts, te) not in index:
                    summary.drop("relation whose head or tail is not an annotated entity")
                    continue
                head, tail = spans[index[(hs, he)]], spans[index[(ts, te)]]
                if (head.start, head.end) not in ents or (tail.start, tail.end) not in ents:
                    summary.notes["relations with an entity outside doc.ents (kept; never a candidate)"] += 1
                relations.append(Relation(head, tail, label))
        set_relations(doc, relations)
        summary.add_doc(doc)
        yield doc
