"""Fuzz every corpus reader: random bytes, truncations of a valid fixture, shuffled
columns (fields, attributes) and random offsets.

The invariant: a reader either yields Docs whose every entity, mention, answer and
relation argument is a non-empty span aligned to tokens and to the text, with no
surrounding whitespace, or raises CorpusFormatError (the one documented error
type for bad input, which names file:line or the JSON path). Any other exception
is a bug.

The default run tries a few deterministic examples per reader and mutation; the
long run (`python -m pytest -m fuzz tests/corpora/test_fuzz_readers.py`) tries
many random ones.
"""
import json
import random
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Sequence

import pytest
import spacy
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from electramed_spacy.corpora.bioasq import ANSWERS_KEY, golden_to_docs, read_squad_json
from electramed_spacy.corpora.brat import read_brat
from electramed_spacy.corpora.chemprot import read_chemprot_pure, read_chemprot_sentences
from electramed_spacy.corpora.common import BOM, DISCONTINUOUS, CorpusFormatError
from electramed_spacy.corpora.conll import read_conll
from electramed_spacy.corpora.ddi import read_ddi_file
from electramed_spacy.corpora.pubtator import read_pubtator

NLP = spacy.blank("en")
FAST = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MUTATIONS = ("random_bytes", "truncation", "shuffled_columns", "random_offsets")


# --- mutations: each takes the fixture text and a seeded Random ---------------------------

def _some(n: int, rnd: random.Random) -> set:
    """1 to 3 of n positions: mostly valid input reaches deeper into a reader than garbage."""
    return set(rnd.sample(range(n), min(n, rnd.randint(1, 3)))) if n else set()


def shuffle_tab_columns(text: str, rnd: random.Random) -> str:
    """Permute the tab-separated columns of a few lines."""
    lines = text.split("\n")
    for i in _some(len(lines), rnd):
        cols = lines[i].split("\t")
        rnd.shuffle(cols)
        lines[i] = "\t".join(cols)
    return "\n".join(lines)


def shuffle_space_columns(text: str, rnd: random.Random) -> str:
    """brat: permute the space-separated fields inside the tab columns of a few lines too."""
    lines = shuffle_tab_columns(text, rnd).split("\n")
    for i in _some(len(lines), rnd):
        lines[i] = "\t".join(" ".join(rnd.sample(c.split(" "), len(c.split(" ")))) for c in lines[i].split("\t"))
    return "\n".join(lines)


ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def shuffle_xml_attributes(text: str, rnd: random.Random) -> str:
    """DDI: permute attribute values within each element (a charOffset may become a type...)."""
    def one_line(line: str) -> str:
        values = [m.group(2) for m in ATTRIBUTE.finditer(line)]
        rnd.shuffle(values)
        it = iter(values)
        return ATTRIBUTE.sub(lambda m: f'{m.group(1)}="{next(it)}"', line)
    lines = text.split("\n")
    chosen = _some(len(lines), rnd)
    return "\n".join(one_line(line) if i in chosen else line for i, line in enumerate(lines))


def _shuffle_json_values(obj, rnd: random.Random):
    if isinstance(obj, dict):
        keys, values = list(obj), [_shuffle_json_values(v, rnd) for v in obj.values()]
        if rnd.random() < 0.2:
            rnd.shuffle(values)
        return dict(zip(keys, values))
    if isinstance(obj, list):
        items = [_shuffle_json_values(v, rnd) for v in obj]
        if rnd.random() < 0.2:
            rnd.shuffle(items)
        return items
    return obj


def shuffle_json(text: str, rnd: random.Random) -> str:
    """JSON: swap the values of an object's keys, and list items (an answer_start becomes a text...)."""
    return json.dumps(_shuffle_json_values(json.loads(text), rnd))


def shuffle_json_lines(text: str, rnd: random.Random) -> str:
    return "\n".join(shuffle_json(line, rnd) if line.strip() else line for line in text.split("\n"))


NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


def random_numbers(text: str, rnd: random.Random) -> str:
    """Replace a few integers (offsets) with random ones, negative and past the end included."""
    chosen = _some(len(NUMBER.findall(text)), rnd)
    seen = iter(range(10**9))

    def one(m: re.Match) -> str:
        if next(seen) not in chosen:
            return m.group(0)
        return str(rnd.choice([rnd.randint(-3, 3), rnd.randint(0, 400), int(m.group(0)) + rnd.randint(-2, 2)]))
    return NUMBER.sub(one, text)


MARKERS = ("<< ", " >>", "[[ ", " ]]")


def move_markers(text: str, rnd: random.Random) -> str:
    """ChemProt sentences (markers, no numeric offsets): move the entity markers around."""
    def one_line(line: str) -> str:
        if not line.strip():
            return line
        record = json.loads(line)
        marked = str(record.get("text", ""))
        for marker in MARKERS:
            if marker in marked and rnd.random() < 0.5:
                marked = marked.replace(marker, "", 1)
                at = rnd.randint(0, len(marked))
                marked = marked[:at] + marker + marked[at:]
        record["text"] = marked
        return json.dumps(record)
    return "\n".join(one_line(line) for line in text.split("\n"))


# --- the readers --------------------------------------------------------------------------

class Target(NamedTuple):
    fixture: Path
    read: Callable[..., Iterable[Doc]]  # (path, **option) -> Docs
    shuffle: Callable[[str, random.Random], str]
    offsets: Callable[[str, random.Random], str]
    options: Sequence[dict]  # reader options to draw from
    name: str


def _modes(key: str, values: Sequence[str], **more: Sequence[str]) -> List[dict]:
    """Every combination of the option values: [{key: v, ...}, ...]."""
    out = [{key: v} for v in values]
    for other, choices in more.items():
        out = [dict(o, **{other: c}) for o in out for c in choices]
    return out


TARGETS: Dict[str, Target] = {
    "pubtator": Target(FIXTURES / "ner" / "bc5cdr_sample.PubTator.txt", lambda p, **o: read_pubtator(p, NLP.make_doc, **o),
                       shuffle_tab_columns, random_numbers, _modes("on_error", ["error", "count"], sentences=[True, False]),
                       "input.PubTator.txt"),
    "conll": Target(FIXTURES / "ner" / "ncbi_sample_iob1.conll", lambda p, **o: read_conll(p, NLP.vocab, **o),
                    shuffle_tab_columns, random_numbers, _modes("scheme", ["auto", "iob1", "iob2"], n_sents=[0, 2]), "input.conll"),
    "brat": Target(FIXTURES / "ner" / "brat" / "metformin.ann", lambda p, **o: read_brat(p.parent, NLP.make_doc, **o),
                   shuffle_space_columns, random_numbers,
                   _modes("on_error", ["error", "count"], discontinuous=list(DISCONTINUOUS)), "doc.ann"),
    "ddi": Target(FIXTURES / "re" / "ddi" / "interaction_sample.xml", lambda p, **o: [read_ddi_file(p, NLP.make_doc, **o)],
                  shuffle_xml_attributes, random_numbers,
                  _modes("on_error", ["error", "count"], discontinuous=list(DISCONTINUOUS)), "input.xml"),
    "chemprot_sentences": Target(FIXTURES / "re" / "chemprot" / "sentences_sample.jsonl",
                                 lambda p, **o: read_chemprot_sentences(p, NLP.make_doc, **o), shuffle_json_lines, move_markers,
                                 _modes("on_error", ["error", "count"], label_scheme=["cpr", "fine"]), "input.jsonl"),
    "chemprot_pure": Target(FIXTURES / "re" / "chemprot" / "pure_sample.json", lambda p, **o: read_chemprot_pure(p, NLP.make_doc, **o),
                            shuffle_json_lines, random_numbers, [{}], "input.json"),
    "bioasq_squad": Target(FIXTURES / "qa" / "bioasq_squad_sample.json", lambda p, **o: read_squad_json(p, NLP.make_doc, **o),
                           shuffle_json, random_numbers, _modes("on_error", ["error", "count"]), "input.json"),
    "bioasq_golden": Target(FIXTURES / "qa" / "bioasq_golden_sample.json", lambda p, **o: golden_to_docs(p, NLP.make_doc, **o),
                            shuffle_json, random_numbers, _modes("on_error", ["error", "count"], unanswerable=["drop", "keep"]),
                            "input.json"),
}


def assert_aligned(doc: Doc) -> None:
    """Every span is non-empty, on token boundaries, equal to the text it covers, and trimmed."""
    spans = list(doc.ents) + [s for key in doc.spans for s in doc.spans[key]]
    spans += [s for rel in (doc._.relations if doc.has_extension("relations") else []) for s in (rel.head, rel.tail)]
    for span in spans:
        assert span.doc is doc and 0 <= span.start < span.end <= len(doc), span
        assert span.text == doc.text[span.start_char:span.end_char]
        assert span.text and span.text == span.text.strip() and not span.text.startswith(BOM), repr(span.text)
        again = doc.char_span(span.start_char, span.end_char)
        assert again is not None and (again.start, again.end) == (span.start, span.end)
    if doc.has_extension("relations"):
        mentions = {(s.start, s.end) for s in doc.spans.get("mentions", doc.ents)}
        for rel in doc._.relations:
            assert (rel.head.start, rel.head.end) in mentions and (rel.tail.start, rel.tail.end) in mentions


def _payload(target: Target, mutation: str, data) -> bytes:
    text = target.fixture.read_text(encoding="utf8")
    if mutation == "random_bytes":
        return data.draw(st.one_of(
            st.binary(max_size=400),
            st.text(max_size=400).map(lambda t: t.encode("utf8")),
            # the format's own characters reach deeper into the parsers than arbitrary text
            st.text(alphabet="\t\n |:-;<>[]{}\",0123456789tabeIOBT-RCID" + BOM, max_size=400).map(lambda t: t.encode("utf8")),
        ), label="payload")
    if mutation == "truncation":
        data_bytes = text.encode("utf8")
        return data_bytes[: data.draw(st.integers(0, len(data_bytes)), label="cut")]
    rnd = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    mutate = target.shuffle if mutation == "shuffled_columns" else target.offsets
    return mutate(text, rnd).encode("utf8")


def fuzz_one(workdir: Path, name: str, mutation: str, data) -> None:
    target = TARGETS[name]
    folder = workdir / name
    folder.mkdir(exist_ok=True)
    path = folder / target.name
    path.write_bytes(_payload(target, mutation, data))
    if name == "brat":
        text = (target.fixture.with_suffix(".txt")).read_bytes()
        if data.draw(st.booleans(), label="mutate the .txt instead"):
            path.write_bytes(target.fixture.read_bytes())
            text = text[: data.draw(st.integers(0, len(text)), label="txt cut")] if mutation != "random_bytes" else data.draw(st.binary(max_size=200))
        path.with_suffix(".txt").write_bytes(text)
    options = data.draw(st.sampled_from(list(target.options)), label="options")
    try:
        docs: List[Doc] = list(target.read(path, **options))
    except CorpusFormatError as err:
        assert str(err).startswith(str(folder)), f"the message does not name the file: {err}"
        return
    for doc in docs:
        assert_aligned(doc)
        if name.startswith("bioasq"):
            assert all(s.label_ == "ANSWER" for s in doc.spans[ANSWERS_KEY])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("name", list(TARGETS))
@FAST
@given(data=st.data())
def test_fuzz_readers(workdir, name, mutation, data):
    fuzz_one(workdir, name, mutation, data)


@pytest.mark.fuzz
@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("name", list(TARGETS))
@LONG
@given(data=st.data())
def test_fuzz_readers_long(pytestconfig, workdir, name, mutation, data):
    if "fuzz" not in (pytestconfig.getoption("-m") or ""):
        pytest.skip("long fuzz run: select it with -m fuzz")
    fuzz_one(workdir, name, mutation, data)


def test_fixtures_read_cleanly():
    """The unmutated fixtures are valid, so every mutation starts from good input."""
    for name, target in TARGETS.items():
        for options in target.options[:2]:  # conll: scheme auto (an IOB1 fixture fails under iob2)
            docs = list(target.read(target.fixture, **options))
            assert docs, name
            for doc in docs:
                assert_aligned(doc)
