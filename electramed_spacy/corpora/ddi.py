"""DDI-2013 XML -> Docs with drug entities and typed drug-drug interactions.

The DDI-2013 corpus (Herrero-Zazo et al. 2013; SemEval-2013 Task 9.2), one of the
two relation benchmarks of ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585): one
XML file per document, `<sentence id text>` holding `<entity id charOffset type
text>` (types drug, brand, group, drug_n; `charOffset="a-b"` with an inclusive end,
relative to the sentence) and `<pair id e1 e2 ddi="true|false" type>` (type
mechanism, effect, advise or int when ddi="true").

One Doc per XML document: the sentence texts joined with one space (a space is
added only when a sentence does not already end in whitespace), sentence
boundaries set from the XML, `doc.ents` and `doc.spans["mentions"]` from the
entities (see `common.doc_from_offsets` for the tokenisation and overlap
policies), and the positive pairs as relations (`doc._.relations`, head = e1,
tail = e2, label = type). Negative pairs are not stored: every same-sentence
entity pair that is not a relation is a negative, which reproduces the corpus'
pair set (every sentence's pairs are all unordered entity pairs).

Discontinuous entities (`charOffset="a-b;c-d"`, 0.5% of the mentions, e.g.
"beta- and alpha-adrenergic blockers") follow `discontinuous=` (`common.DISCONTINUOUS`,
shared with brat): "first" (default) keeps the first fragment, which overlaps no
other mention, so the pair survives in `doc.ents`; "extent" (called "span" before
0.3) takes the covering span from the first start to the last end (often overlapping
another mention, which then leaves `doc.ents`); "fragments" makes one mention per
fragment (pairs use the first); "drop" drops the entity and its pairs. Each case is
counted in the summary.

Files are parsed as UTF-8 whatever their XML declaration says (the corpus is
UTF-8; a declared encoding Python cannot decode used to escape as LookupError),
so a wrong byte is a "not well-formed" error naming file:line.
"""
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union
from xml.parsers import expat

from spacy.tokens import Doc

from ..doc.relations import Relation, set_relations
from .common import ConversionSummary, CorpusFormatError, as_offset, discontinuous_policy, doc_from_offsets, input_files

DDI_ENTITY_TYPES = ("drug", "brand", "group", "drug_n")
DDI_RELATION_TYPES = ("mechanism", "effect", "advise", "int")


def _parse_xml(path: Path) -> List[Dict]:
    """Sentences of one DDI file, each with its line number, entities and pairs."""
    sentences: List[Dict] = []
    state = {"document": False}
    # UTF-8 whatever the file declares (the corpus is UTF-8): a wrong byte is an error with its line
    parser = expat.ParserCreate("utf-8")

    def start(name: str, attrs: Dict[str, str]) -> None:
        line = parser.CurrentLineNumber
        if name == "document":
            state["document"] = True
        elif name == "sentence":
            if "text" not in attrs:
                raise CorpusFormatError(path, line, "<sentence> has no text attribute.", '<sentence id="..." text="...">')
            sentences.append({"id": attrs.get("id", f"s{len(sentences)}"), "text": attrs["text"], "line": line, "entities": [], "pairs": []})
        elif name in ("entity", "pair"):
            if not sentences:
                raise CorpusFormatError(path, line, f"<{name}> outside a <sentence>.", f"<{name}> elements inside <sentence>.")
            sentences[-1]["entities" if name == "entity" else "pairs"].append(dict(attrs, _line=line))

    parser.StartElementHandler = start
    try:
        with open(path, "rb") as fh:
            parser.ParseFile(fh)
    except expat.ExpatError as err:
        raise CorpusFormatError(path, err.lineno, f"not well-formed XML ({expat.errors.messages[err.code]}).", "a DDI-2013 XML file.") from err
    if not state["document"]:
        raise CorpusFormatError(path, 1, "no <document> element.", "a DDI-2013 XML file with a <document> root.")
    return sentences


def _parse_offsets(value: Optional[str], path: Path, line: int) -> List[Tuple[int, int]]:
    if not value:
        raise CorpusFormatError(path, line, "<entity> has no charOffset.", 'charOffset="start-end" (inclusive end), or "a-b;c-d".')
    fragments = []
    for part in value.split(";"):
        bits = [as_offset(b.strip()) for b in part.strip().split("-")]
        if len(bits) != 2 or None in bits:
            raise CorpusFormatError(path, line, f"charOffset {value!r} is malformed.", 'charOffset="start-end" (inclusive end), or "a-b;c-d".')
        start, last = bits
        if last < start:
            raise CorpusFormatError(path, line, f"charOffset {value!r} ends before it starts.", "start <= end.")
        fragments.append((start, last + 1))
    return fragments


def read_ddi_file(
    path: Union[str, Path], make_doc: Callable[[str], Doc], *, summary: Optional[ConversionSummary] = None,
    discontinuous: str = "first", on_error: str = "error",
) -> Doc:
    """One DDI-2013 XML file -> one Doc (see the module docstring)."""
    discontinuous = discontinuous_policy(discontinuous)
    path = Path(path)
    summary = summary if summary is not None else ConversionSummary()
    sentences = _parse_xml(path)
    text = ""
    sent_starts: List[int] = []
    mentions: List[Tuple[int, int, str]] = []
    entity_index: Dict[str, int] = {}
    pairs: List[Tuple[Dict, int]] = []  # (pair attributes, sentence number)
    for sent_no, sent in enumerate(sentences):
        if text and not text[-1].isspace():
            text += " "
        offset = len(text)
        stext = sent["text"]
        if not stext.strip():
            summary.notes["empty sentences (no tokens, not counted as sentences)"] += 1
        text += stext
        sent_starts.append(offset + len(stext) - len(stext.lstrip()))
        for ent in sent["entities"]:
            pieces = _entity_pieces(ent, stext, path, discontinuous=discontinuous, on_error=on_error, summary=summary)
            if pieces is None:
                continue
            entity_index[ent["id"]] = len(mentions)  # with "fragments", the first fragment stands for the entity
            mentions.extend((offset + start, offset + end, ent["type"]) for start, end in pieces)
        pairs.extend((p, sent_no) for p in sent["pairs"])
    doc, spans = doc_from_offsets(make_doc, text, mentions, summary=summary, on_error=on_error, where=str(path),
                                  mention_texts=[None] * len(mentions))
    starts = set(sent_starts)
    for token in doc:
        token.is_sent_start = token.i == 0 or token.idx in starts
    pair_check = _PairCheck(path, on_error, summary, doc, spans, entity_index,
                            {e.get("id"): n for n, s in enumerate(sentences) for e in s["entities"]})
    set_relations(doc, [rel for pair, sent_no in pairs if (rel := pair_check.relation(pair, sent_no)) is not None])
    summary.add_doc(doc)
    return doc


def _entity_pieces(ent: Dict, stext: str, path: Path, *, discontinuous: str, on_error: str,
                   summary: ConversionSummary) -> Optional[List[Tuple[int, int]]]:
    """The character spans (in its sentence) an <entity> becomes under the `discontinuous` policy, or None
    when it is dropped (counted); CorpusFormatError for what cannot be read, and under on_error='error' for
    offsets that do not fit the sentence."""
    line = ent["_line"]
    etype = ent.get("type")
    if etype not in DDI_ENTITY_TYPES:
        raise CorpusFormatError(path, line, f"entity type {etype!r} is not a DDI-2013 type.", f"type one of {', '.join(DDI_ENTITY_TYPES)}.")
    if "id" not in ent:
        raise CorpusFormatError(path, line, "<entity> has no id.", '<entity id="..." charOffset="..." type="..." text="...">')
    fragments = _parse_offsets(ent.get("charOffset"), path, line)
    check: Optional[str] = ent.get("text")
    pieces = fragments
    if len(fragments) > 1:
        summary.notes[f"discontinuous entity ({discontinuous})"] += 1
        if discontinuous == "drop":
            summary.drop("discontinuous entity (policy: drop)")
            return None
        pieces = {"first": fragments[:1], "extent": [(fragments[0][0], fragments[-1][1])]}.get(discontinuous, fragments)
        check = None  # the corpus' text attribute joins the fragments
    start, end = pieces[0]
    if max(e for _, e in pieces) > len(stext):
        problem = f"entity {ent['id']} charOffset {ent.get('charOffset')} falls outside its sentence of length {len(stext)}."
        expected = "offsets inside the sentence text (or on_error='count')."
    elif check is not None and stext[start:end] != check:
        problem = f"entity {ent['id']} text {check!r} does not match the sentence at {ent.get('charOffset')}: {stext[start:end]!r}."
        expected = "charOffset that indexes the sentence text (or on_error='count')."
    else:
        return pieces
    if on_error == "error":
        raise CorpusFormatError(path, line, problem, expected)
    summary.drop("offset mismatch")
    return None


class _PairCheck:
    """A <pair> of one file to a Relation (or None): its attributes read, its entities checked (known, two of
    them, in the pair's own sentence, kept in the Doc), negatives and drops counted."""

    def __init__(self, path: Path, on_error: str, summary: ConversionSummary, doc: Doc, spans, entity_index: Dict[str, int],
                 sentence_of: Dict[str, int]):
        self.path, self.on_error, self.summary, self.spans = path, on_error, summary, spans
        self.entity_index, self.sentence_of = entity_index, sentence_of
        self.ent_set = {(e.start, e.end) for e in doc.ents}

    def _bad(self, line: int, problem: str, drop: str) -> None:
        if self.on_error == "error":
            raise CorpusFormatError(self.path, line, problem, "e1/e2: the ids of two different <entity> elements of the pair's own sentence (or on_error='count').")
        self.summary.drop(drop)

    def relation(self, pair: Dict, sent_no: int) -> Optional[Relation]:
        path, summary, line = self.path, self.summary, pair["_line"]
        for key in ("e1", "e2", "ddi"):
            if key not in pair:
                raise CorpusFormatError(path, line, f"<pair> has no {key} attribute.", '<pair id="..." e1="..." e2="..." ddi="true|false" type="...">')
        ddi = pair["ddi"].strip().lower()
        if ddi not in ("true", "false"):
            raise CorpusFormatError(path, line, f"ddi={pair['ddi']!r}.", 'ddi="true" or ddi="false".')
        summary.notes["pairs read"] += 1
        if ddi == "true":
            summary.notes["positive pairs read"] += 1
        missing = [pair[k] for k in ("e1", "e2") if pair[k] not in self.sentence_of]
        if missing:
            return self._bad(line, f"<pair> refers to unknown entity id(s) {', '.join(missing)}.", "pair with an unknown entity id")
        if pair["e1"] == pair["e2"]:
            return self._bad(line, f"<pair> pairs entity {pair['e1']} with itself.", "pair of an entity with itself")
        elsewhere = [pair[k] for k in ("e1", "e2") if self.sentence_of[pair[k]] != sent_no]
        if elsewhere:
            return self._bad(line, f"<pair> refers to entity id(s) {', '.join(elsewhere)} of another sentence.",
                             "pair with an entity of another sentence")
        if ddi == "false":
            return None
        rtype = pair.get("type")
        if rtype is None:
            return summary.drop("positive pair without type")
        if rtype not in DDI_RELATION_TYPES:
            raise CorpusFormatError(path, line, f"pair type {rtype!r} is not a DDI-2013 type.", f"type one of {', '.join(DDI_RELATION_TYPES)}.")
        if pair["e1"] not in self.entity_index or pair["e2"] not in self.entity_index:
            return summary.drop("positive pair with a dropped entity")
        head, tail = self.spans[self.entity_index[pair["e1"]]], self.spans[self.entity_index[pair["e2"]]]
        if head is None or tail is None:
            return summary.drop("positive pair with a dropped entity")
        if (head.start, head.end) not in self.ent_set or (tail.start, tail.end) not in self.ent_set:
            summary.notes["positive pairs with an entity outside doc.ents (kept; never a candidate)"] += 1
        return Relation(head, tail, rtype)


def ddi_files(inputs: Iterable[Union[str, Path]]) -> List[Path]:
    """The .xml files under the given files/directories (`common.input_files`), sorted per input."""
    return [f for item in inputs for f in input_files(item, ["*.xml"])]


def read_ddi(
    inputs: Iterable[Union[str, Path]], make_doc: Callable[[str], Doc], *,
    summary: Optional[ConversionSummary] = None, discontinuous: str = "first", on_error: str = "error",
) -> Iterator[Doc]:
    for path in ddi_files(inputs):
        yield read_ddi_file(path, make_doc, summary=summary, discontinuous=discontinuous, on_error=on_error)
