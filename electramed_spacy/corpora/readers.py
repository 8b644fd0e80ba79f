"""One entry point for every corpus format (`FORMATS`), and registered spaCy readers.

`FORMATS` maps each format name to its reader, the options it takes and the unit of its dev split,
as spaCy's `cli/convert.py` maps converters: pubtator, conll, brat (NER, with relations where the
corpus has them), ddi and chemprot (relations), bioasq (QA). `iter_docs(format, paths, nlp, ...)`
yields reference Docs from a file or a directory; `electramed convert` writes them to a DocBin.
Every format shares one `on_error` policy (`common.ON_ERROR`) and one `discontinuous` vocabulary
(`common.DISCONTINUOUS`).

The registered readers (`electramed.PubTatorCorpus.v1`, `electramed.ConllCorpus.v1`,
`electramed.BratCorpus.v1`) let a training config read the raw files directly,
like `spacy.Corpus.v1` reads a DocBin:

    [corpora.train]
    @readers = "electramed.PubTatorCorpus.v1"
    path = "../shared/data/ner/bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt"

Each returns a callable `(nlp) -> Iterator[Example]`, where the reference is the
converted Doc and the predicted Doc is `nlp.make_doc(reference.text)` (as in
`spacy.Corpus`; spaCy aligns the two tokenisations). Used for the ELECTRAMed
(arXiv:2104.09585) NER benchmarks. (Their `on_mismatch` parameter is the v1 name of `on_error`.)

`spacy train` prints no conversion summary, so at the end of the first full pass
over the corpus (spaCy's initialisation reads it once) a reader warns once with
what it dropped and why, and when it read no document at all.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry
from wasabi import msg

from .bioasq import detect_format, golden_to_docs, question_key, read_squad_json
from .brat import read_brat
from .chemprot import detect_form, read_chemprot_pure, read_chemprot_sentences
from .common import DEPRECATED_DISCONTINUOUS, DISCONTINUOUS, ON_ERROR, ConversionSummary, empty_warning, input_files
from .conll import CONLL_PATTERNS, SCHEMES, read_conll
from .ddi import read_ddi
from .policies import FORMAT_DESCRIPTIONS
from .pubtator import PUBTATOR_PATTERNS, read_pubtator

Paths = Sequence[Path]
JSON_PATTERNS = ["*.json", "*.jsonl"]


def _pubtator(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, sentences: bool = True) -> Iterator[Doc]:
    for file in _files(paths, PUBTATOR_PATTERNS):
        yield from read_pubtator(file, nlp.make_doc, summary=summary, on_error=on_error, sentences=sentences)


def _conll(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, scheme: str = "auto", n_sents: int = 10) -> Iterator[Doc]:
    for file in _files(paths, CONLL_PATTERNS):  # tags, not offsets: nothing for on_error to skip
        yield from read_conll(file, nlp.vocab, scheme=scheme, n_sents=n_sents, summary=summary)


def _brat(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, sentences: bool = True,
          discontinuous: str = "drop") -> Iterator[Doc]:
    for path in paths:
        yield from read_brat(path, nlp.make_doc, summary=summary, on_error=on_error, discontinuous=discontinuous, sentences=sentences)


def _ddi(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, discontinuous: str = "first") -> Iterator[Doc]:
    yield from read_ddi(paths, nlp.make_doc, summary=summary, discontinuous=discontinuous, on_error=on_error)


def _chemprot(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, form: str = "auto",
              labels: str = "cpr") -> Iterator[Doc]:
    _check("form", form, ("auto", "sentences", "pure"))
    for file in _files(paths, JSON_PATTERNS):
        file_form = detect_form(file) if form == "auto" else form
        summary.notes[f"chemprot files in the {file_form} form"] += 1
        if file_form == "sentences":
            yield from read_chemprot_sentences(file, nlp.make_doc, label_scheme=labels, summary=summary, on_error=on_error)
        else:
            yield from read_chemprot_pure(file, nlp.make_doc, summary=summary)


def _bioasq(paths: Paths, nlp: Language, summary: ConversionSummary, on_error: str, form: str = "auto",
            unanswerable: str = "drop") -> Iterator[Doc]:
    _check("form", form, ("auto", "squad", "golden"))
    for file in _files(paths, JSON_PATTERNS):
        if (detect_format(file) if form == "auto" else form) == "squad":
            yield from read_squad_json(file, nlp.make_doc, summary=summary, on_error=on_error)
        else:
            yield from golden_to_docs(file, nlp.make_doc, summary=summary, on_error=on_error, unanswerable=unanswerable)


def _files(paths: Paths, patterns: Sequence[str]) -> List[Path]:
    return [f for path in paths for f in input_files(path, patterns)]


@dataclass(frozen=True)
class Format:
    """A corpus format: its reader `(paths, nlp, summary, on_error, **options) -> Docs`, the options it
    takes (their defaults are the reader's), and what one unit of a dev split is (None: a Doc)."""

    read: Callable[..., Iterator[Doc]]
    options: Tuple[str, ...]
    description: str
    group: Optional[Callable[[Doc], Hashable]] = None


FORMATS: Dict[str, Format] = {
    "pubtator": Format(_pubtator, ("sentences",), FORMAT_DESCRIPTIONS["pubtator"]),
    "conll": Format(_conll, ("scheme", "n_sents"), FORMAT_DESCRIPTIONS["conll"]),
    "brat": Format(_brat, ("sentences", "discontinuous"), FORMAT_DESCRIPTIONS["brat"]),
    "ddi": Format(_ddi, ("discontinuous",), FORMAT_DESCRIPTIONS["ddi"]),
    "chemprot": Format(_chemprot, ("form", "labels"), FORMAT_DESCRIPTIONS["chemprot"]),
    "bioasq": Format(_bioasq, ("form", "unanswerable"), FORMAT_DESCRIPTIONS["bioasq"],
                     group=question_key),
}


def check_options(fmt: str, options: Dict[str, Any]) -> None:
    """Fail before reading when the format is unknown or an option does not apply to it."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {tuple(FORMATS)}, got {fmt!r}")
    wrong = [name for name in options if name not in FORMATS[fmt].options]
    if wrong:
        flags = ", ".join("--" + name.replace("_", "-") for name in wrong)
        takes = ", ".join("--" + name.replace("_", "-") for name in FORMATS[fmt].options)
        raise ValueError(f"{flags} does not apply to --format {fmt}, whose options are: {takes}.")
    if "discontinuous" in options:
        _check("discontinuous", options["discontinuous"], DISCONTINUOUS + tuple(DEPRECATED_DISCONTINUOUS))


def iter_docs(
    fmt: str,
    paths: Union[str, Path, Sequence[Union[str, Path]]],
    nlp: Language,
    *,
    summary: Optional[ConversionSummary] = None,
    on_error: str = "error",
    **options: Any,
) -> Iterator[Doc]:
    """Reference Docs from the corpus at `paths` (files or directories) in format `fmt`, with that
    format's options (`FORMATS[fmt].options`; unset ones take the reader's defaults)."""
    check_options(fmt, options)
    _check("on_error", on_error, ON_ERROR)
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    summary = summary if summary is not None else ConversionSummary(source=", ".join(map(str, paths)))
    yield from FORMATS[fmt].read(paths, nlp, summary, on_error, **options)


class DocCorpus:
    """Iterate Examples from a corpus format, like `spacy.training.Corpus` for DocBins."""

    def __init__(self, fmt: str, path: Union[str, Path], *, limit: int = 0, **options):
        check_options(fmt, {k: v for k, v in options.items() if k != "on_error"})
        self.fmt, self.path, self.limit, self.options = fmt, Path(path), limit, options
        self.summary = ConversionSummary(source=str(path))
        self.reported = False  # drops are reported once, not on every epoch

    def __call__(self, nlp: Language) -> Iterator[Example]:
        self.summary = ConversionSummary(source=str(self.path))
        for i, ref in enumerate(iter_docs(self.fmt, self.path, nlp, summary=self.summary, **self.options)):
            if self.limit and i >= self.limit:
                break
            yield Example(nlp.make_doc(ref.text), ref)
        if not self.reported:
            self.reported = True
            self.report()

    def report(self) -> None:
        """Warn about what reading dropped (and about an empty corpus)."""
        if self.summary.dropped:
            n = sum(self.summary.dropped.values())
            msg.warn(f"{self.fmt} corpus {self.path}: {n} item(s) dropped while reading: {self.summary.drops_line()}")
        if not self.summary.documents:
            msg.warn(empty_warning(f"{self.fmt} corpus {self.path}"))


def _check(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


@registry.readers("electramed.PubTatorCorpus.v1")
def create_pubtator_corpus(
    path: Union[str, Path], sentences: bool = True, on_mismatch: str = "error", limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from a PubTator file or directory (BC5CDR, NCBI-disease)."""
    _check("on_mismatch", on_mismatch, ON_ERROR)
    return DocCorpus("pubtator", path, limit=limit, sentences=sentences, on_error=on_mismatch)


@registry.readers("electramed.ConllCorpus.v1")
def create_conll_corpus(
    path: Union[str, Path], scheme: str = "auto", n_sents: int = 10, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from a CoNLL token-per-line file or directory (IOB1/IOB2, any tag set)."""
    _check("scheme", scheme, SCHEMES)
    return DocCorpus("conll", path, limit=limit, scheme=scheme, n_sents=n_sents)


@registry.readers("electramed.BratCorpus.v1")
def create_brat_corpus(
    path: Union[str, Path], sentences: bool = True, on_mismatch: str = "error", discontinuous: str = "drop", limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from a brat standoff directory (.txt + .ann)."""
    _check("on_mismatch", on_mismatch, ON_ERROR)
    _check("discontinuous", discontinuous, DISCONTINUOUS)
    return DocCorpus("brat", path, limit=limit, sentences=sentences, on_error=on_mismatch, discontinuous=discontinuous)
