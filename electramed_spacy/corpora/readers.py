"""One entry point for every NER/RE corpus format, and registered spaCy readers.

`iter_docs(format, path, nlp, ...)` yields reference Docs from PubTator, CoNLL or
brat input (a file or a directory); `electramed convert` writes them to a DocBin.
The registered readers (`electramed.PubTatorCorpus.v1`, `electramed.ConllCorpus.v1`,
`electramed.BratCorpus.v1`) let a training config read the raw files directly,
like `spacy.Corpus.v1` reads a DocBin:

    [corpora.train]
    @readers = "electramed.PubTatorCorpus.v1"
    path = "../shared/data/ner/bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt"

Each returns a callable `(nlp) -> Iterator[Example]`, where the reference is the
converted Doc and the predicted Doc is `nlp.make_doc(reference.text)` (as in
`spacy.Corpus`; spaCy aligns the two tokenisations). Used for the ELECTRAMed
(arXiv:2104.09585) NER benchmarks.

`spacy train` prints no conversion summary, so at the end of the first full pass
over the corpus (spaCy's initialisation reads it once) a reader warns once with
what it dropped and why, and when it read no document at all.
"""
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry
from wasabi import msg

from .brat import DISCONTINUOUS, read_brat
from .common import ON_MISMATCH, ConversionSummary, empty_warning, input_files
from .conll import CONLL_PATTERNS, SCHEMES, read_conll
from .pubtator import PUBTATOR_PATTERNS, read_pubtator

FORMATS = ("pubtator", "conll", "brat")


def iter_docs(
    fmt: str,
    path: Union[str, Path],
    nlp: Language,
    *,
    summary: Optional[ConversionSummary] = None,
    on_mismatch: str = "error",
    sentences: bool = True,
    scheme: str = "auto",
    n_sents: int = 10,
    discontinuous: str = "drop",
) -> Iterator[Doc]:
    """Reference Docs from the corpus at `path` (file or directory) in format `fmt`.

    `sentences` applies to pubtator and brat (CoNLL sentences come from the file);
    `scheme`/`n_sents` to conll; `discontinuous` to brat; `on_mismatch` to the
    character-offset formats.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}")
    summary = summary if summary is not None else ConversionSummary(source=str(path))
    if fmt == "brat":
        yield from read_brat(path, nlp.make_doc, summary=summary, on_mismatch=on_mismatch, discontinuous=discontinuous, sentences=sentences)
    elif fmt == "pubtator":
        for file in input_files(path, PUBTATOR_PATTERNS):
            yield from read_pubtator(file, nlp.make_doc, summary=summary, on_mismatch=on_mismatch, sentences=sentences)
    else:
        for file in input_files(path, CONLL_PATTERNS):
            yield from read_conll(file, nlp.vocab, scheme=scheme, n_sents=n_sents, summary=summary)


class DocCorpus:
    """Iterate Examples from a corpus format, like `spacy.training.Corpus` for DocBins."""

    def __init__(self, fmt: str, path: Union[str, Path], *, limit: int = 0, **options):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
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
    _check("on_mismatch", on_mismatch, ON_MISMATCH)
    return DocCorpus("pubtator", path, limit=limit, sentences=sentences, on_mismatch=on_mismatch)


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
    _check("on_mismatch", on_mismatch, ON_MISMATCH)
    _check("discontinuous", discontinuous, DISCONTINUOUS)
    return DocCorpus("brat", path, limit=limit, sentences=sentences, on_mismatch=on_mismatch, discontinuous=discontinuous)
