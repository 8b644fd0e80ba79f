"""Relations "with gold entities": the reader `electramed.GoldEntityCorpus.v1` and its helpers.

DDI-2013 and ChemProt score relation extraction given the gold entity mentions, the
protocol ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) reports. This reader reads a
DocBin like `spacy.Corpus.v1` but copies the gold entities and sentence boundaries onto
each predicted Doc, so a pipeline without NER trains and evaluates on them (configs/rel.cfg).
`gold_input_pipes` names the components to disable when a pipeline that has NER or a
sentence splitter is given gold entities (`electramed evaluate-relations`, benchmarks).
"""
from typing import Callable, Iterable, List

from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.util import registry

# components that would overwrite gold entities or sentences copied onto a Doc
ENTITY_AND_SENTENCE_FACTORIES = ("ner", "spancat", "entity_ruler", "sentencizer", "senter", "parser")


def copy_gold_entities(eg: Example) -> Example:
    """An Example whose predicted Doc carries the reference's entities and sentence starts."""
    pred, ref = eg.predicted, eg.reference
    ents, taken = [], set()
    for ent in ref.ents:
        span = pred.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
        if span is None or len(span) == 0 or any(i in taken for i in range(span.start, span.end)):
            continue
        taken.update(range(span.start, span.end))
        ents.append(span)
    pred.ents = ents
    if ref.has_annotation("SENT_START"):
        starts = {s.start_char for s in ref.sents}
        for token in pred:
            token.is_sent_start = token.idx in starts or token.i == 0
    return eg


def gold_input_pipes(nlp: Language) -> List[str]:
    """Names of `nlp`'s components to disable when the relation pipe gets gold entities."""
    return [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in ENTITY_AND_SENTENCE_FACTORIES]


@registry.readers("electramed.GoldEntityCorpus.v1")
def create_gold_entity_corpus(
    path: str, gold_preproc: bool = False, max_length: int = 0, limit: int = 0,
) -> Callable[[Language], Iterable[Example]]:
    """Like `spacy.Corpus.v1`, plus the gold entities and sentences on the predicted Doc
    (relation extraction "with gold entities")."""
    corpus = Corpus(path, gold_preproc=gold_preproc, max_length=max_length, limit=limit)

    def read(nlp: Language) -> Iterable[Example]:
        for eg in corpus(nlp):
            yield copy_gold_entities(eg)

    return read
