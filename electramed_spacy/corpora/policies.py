"""The converters' names and policies, free of spaCy so the `electramed` CLI can list them at start-up
(`electramed pretrain --help` must not import spaCy). `readers.FORMATS` attaches a reader to each format."""

FORMAT_DESCRIPTIONS = {
    "pubtator": "PubTator (BC5CDR, NCBI-disease): mentions, MeSH ids, CID relations",
    "conll": "CoNLL token-per-line, IOB1/IOB2 (BLURB NER sets)",
    "brat": "brat standoff directory (.txt + .ann): mentions, relations",
    "ddi": "DDI-2013 XML files or directories: drugs and interactions",
    "chemprot": "ChemProt, sentences (.jsonl) or pure (.json) form: relations",
    "bioasq": "BioASQ QA, SQuAD-style or golden JSON: one Doc per (question, snippet)",
}
ON_ERROR = ("error", "count")  # bad input: fail at file:line, or drop it and count it in the summary
# Discontinuous mentions (brat `a b;c d`, DDI `a-b;c-d`), one vocabulary for every reader: spaCy spans are
# contiguous, so no choice is lossless. drop: not converted; first: the first fragment; extent: one span from
# the first start to the last end (covering the text between); fragments: one mention per fragment.
DISCONTINUOUS = ("drop", "first", "extent", "fragments")
DEPRECATED_DISCONTINUOUS = {"span": "extent"}  # DDI's name before 0.3
