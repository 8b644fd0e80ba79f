"""Put a trained NER pipeline in front of a relation pipeline trained on gold entities, for
relation extraction end to end (entities predicted by the NER, relations read from them).

    python scripts/assemble_ner_rel.py NER_MODEL REL_MODEL OUTPUT
    electramed evaluate-relations OUTPUT corpus/ddi_test.spacy --predicted-entities

The NER keeps its own encoder (its listener is replaced by a copy of the transformer it
listened to, spaCy's `replace_listeners`). Relation candidates are limited to a sentence, so
the result splits sentences: with a trained `senter`/`parser` if either pipeline has one, else with
`electramed_sentencizer` (rules for biomedical text: i.v., vs., Fig., et al. and brackets do not end a
sentence; benchmarks/sentences/sentence_split.py).
"""
import sys
from pathlib import Path

import spacy
import typer

from electramed_spacy.pipeline import sentencizer  # noqa: F401  (registers electramed_sentencizer)

KEEP = ("ner", "senter", "transformer", "tok2vec")
SPLITTERS = ("senter", "parser", "electramed_sentencizer")


def main(ner_model: str, rel_model: str, output: Path) -> None:
    # only what the NER needs is loaded from NER_MODEL (it may be a joint NER + relations pipeline)
    config = Path(ner_model) / "config.cfg"
    components = spacy.util.load_config(config)["components"] if config.exists() else {}
    ner_nlp = spacy.load(ner_model, exclude=[n for n, c in components.items() if c.get("factory") not in KEEP])
    rel_nlp = spacy.load(rel_model)
    if "ner" not in ner_nlp.pipe_names:
        sys.exit(f"{ner_model} has no 'ner' component (pipes: {ner_nlp.pipe_names}).")
    if "relation_extractor" not in rel_nlp.pipe_names:
        sys.exit(f"{rel_model} has no 'relation_extractor' component (pipes: {rel_nlp.pipe_names}).")
    tok2vec = ner_nlp.get_pipe_config("ner")["model"].get("tok2vec", {})
    if "Listener" in str(tok2vec.get("@architectures", "")):
        upstream = [name for name in ner_nlp.pipe_names if ner_nlp.get_pipe_meta(name).factory in ("transformer", "tok2vec")][0]
        ner_nlp.replace_listeners(upstream, "ner", ["model.tok2vec"])
    first = rel_nlp.pipe_names[0]
    for name in ner_nlp.pipe_names:
        if ner_nlp.get_pipe_meta(name).factory == "senter" and name not in rel_nlp.pipe_names:
            rel_nlp.add_pipe(name, source=ner_nlp, before=first)
    rel_nlp.add_pipe("ner", source=ner_nlp, before="relation_extractor")
    if not any(rel_nlp.get_pipe_meta(n).factory in SPLITTERS for n in rel_nlp.pipe_names):
        # relation candidates are limited to a sentence: without boundaries a whole document counts as one
        rel_nlp.add_pipe("electramed_sentencizer", first=True)
    rel_nlp.to_disk(output)
    print(f"{output}: {rel_nlp.pipe_names}")


if __name__ == "__main__":
    typer.run(main)
