"""How a vocabulary splits biomedical words: entity words and all words of a DocBin, per tokenizer.

For each tokenizer (a model dir, or VOCAB.txt), and for the first one extended by `[vocab] extend`
with N words of the pre-training corpus (`--extend N`, repeatable; `words_to_add`, the same code as
`electramed pretrain`), report the share of entity words split into several wordpieces, wordpieces
per entity word, and the same over all words.

    python benchmarks/pretraining/vocab_coverage.py corpus/bc5cdr_test.spacy MINILM ../shared/data/vocab/scivocab/vocab.txt \
        --corpus ../shared/data/pretrain/pubmed_pmc_independent.txt --extend 5000 --extend 20000 \
        --output benchmarks/pretraining/results/vocab_coverage.json
"""
import json
import sys
import time
from pathlib import Path
from typing import List

import typer


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    from electramed_spacy.pretraining.vocab import load_vocab_file

    return load_vocab_file(path) if path.endswith(".txt") else AutoTokenizer.from_pretrained(path)


def extended(tokenizer, corpus: List[Path], n: int, min_frequency: int):
    from electramed_spacy.pretraining.data import iter_corpus_lines
    from electramed_spacy.pretraining.vocab import _from_tokens, words_to_add

    added = words_to_add(tokenizer, iter_corpus_lines(corpus), n, min_frequency)
    base = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    return _from_tokens(base + list(added), lowercase=True), len(added)


def coverage(tokenizer, words: List[str]) -> dict:
    pieces = [len(ids) for ids in tokenizer(words, add_special_tokens=False)["input_ids"]]
    return {"words": len(words), "split_share": sum(p > 1 for p in pieces) / len(words),
            "pieces_per_word": sum(pieces) / len(words)}


def main(
    docbin: Path = typer.Argument(..., help="DocBin with entities (e.g. corpus/bc5cdr_test.spacy)"),
    tokenizers: List[str] = typer.Argument(..., help="Model dirs or vocab.txt files"),
    corpus: List[Path] = typer.Option([], help="Pre-training text for --extend (repeatable)"),
    extend: List[int] = typer.Option([], help="Also the first tokenizer extended by N corpus words (repeatable)"),
    min_frequency: int = typer.Option(2),
    output: Path = typer.Option(..., help="JSON report"),
) -> None:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))
    entity_words = [t.text for d in docs for e in d.ents for t in e if t.is_alpha]
    all_words = [t.text for d in docs for t in d if t.is_alpha]
    rows = []
    named = [(name, load_tokenizer(name), 0) for name in tokenizers]
    for n in extend:
        start = time.time()
        tok, added = extended(named[0][1], corpus, n, min_frequency)
        print(f"extended {tokenizers[0]} by {added} words in {time.time() - start:.0f}s", flush=True)
        named.append((f"{tokenizers[0]} + {added} corpus words", tok, added))
    for name, tok, added in named:
        row = {"tokenizer": name, "vocab_size": len(tok), "added": added,
               "entity_words": coverage(tok, entity_words), "all_words": coverage(tok, all_words)}
        rows.append(row)
        print(f"{name}: {len(tok)} tokens | entity words split {100 * row['entity_words']['split_share']:.1f}%, "
              f"{row['entity_words']['pieces_per_word']:.2f} pieces | all words split "
              f"{100 * row['all_words']['split_share']:.1f}%, {row['all_words']['pieces_per_word']:.2f}", flush=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"docbin": str(docbin), "corpus": [str(c) for c in corpus], "rows": rows,
                                  "command": sys.argv}, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
