"""WordPiece vocabularies for ELECTRA: trained on a corpus, or read from a vocab.txt.

ELECTRAMed used an uncased scientific vocabulary (SciVocab, Beltagy et al. 2019);
`train_wordpiece` builds the same kind of vocabulary from the user's corpus with
Hugging Face `tokenizers`, and `load_vocab_file` wraps either as a fast BERT
tokenizer that `save_pretrained` writes next to the model. The same corpus and
settings always give the same vocab.txt (see `train_wordpiece`).
"""
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .errors import PretrainError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _normalizer(lowercase: bool):
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase)


def train_wordpiece(
    texts: Callable[[], Iterable[str]], vocab_size: int, *, lowercase: bool = True, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece vocabulary on the texts `texts()` yields (read twice).

    `tokenizers` numbers the `##c` pieces in hash-map order and breaks ties between equally
    frequent merges by id, so one corpus gave different vocabularies from run to run
    (huggingface/tokenizers#1794). A first pass finds the `##c` pieces; the second gives
    them fixed, sorted ids by listing them after the special tokens.
    """
    pieces = sorted(t for t in _train(texts(), 0, lowercase, min_frequency, SPECIAL_TOKENS) if t.startswith("##"))
    vocab = _train(texts(), vocab_size, lowercase, min_frequency, SPECIAL_TOKENS + pieces)
    return _from_tokens(sorted(vocab, key=vocab.get), lowercase=lowercase)


def _train(texts: Iterable[str], vocab_size: int, lowercase: bool, min_frequency: int, special: List[str]) -> dict:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = _normalizer(lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special,
                                        continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok.get_vocab(with_added_tokens=True)


def wrap_tokenizer(tok: Tokenizer, *, lowercase: bool) -> PreTrainedTokenizerFast:
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    from transformers import BertTokenizerFast

    return BertTokenizerFast(
        tokenizer_object=tok, do_lower_case=lowercase, unk_token="[UNK]", sep_token="[SEP]",
        pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )


def load_vocab_file(path: Union[str, Path], *, lowercase: bool = True) -> PreTrainedTokenizerFast:
    """A fast BERT tokenizer over an existing vocab.txt (e.g. ELECTRAMed's SciVocab)."""
    path = Path(path)
    tokens = [line.rstrip("\n") for line in path.open(encoding="utf8")]
    first_line: Dict[str, int] = {}
    for number, token in enumerate(tokens, start=1):
        if token in first_line:
            raise PretrainError(f"{path}:{number}: {token!r} is already on line {first_line[token]}; a vocab.txt holds each "
                                f"piece once (its line number is its id). Remove the repeated lines.")
        first_line[token] = number
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise PretrainError(f"{path}: the vocabulary lacks the special tokens {missing}; a BERT/ELECTRA vocab.txt needs all of {SPECIAL_TOKENS}.")
    return _from_tokens(tokens, lowercase=lowercase)


def _from_tokens(tokens: List[str], *, lowercase: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tok.normalizer = _normalizer(lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return wrap_tokenizer(tok, lowercase=lowercase)


EXTENSION_FILE = "vocab_extension.json"


def words_to_add(tokenizer: PreTrainedTokenizerFast, lines: Iterable[str], n: int, min_frequency: int) -> Dict[str, List[int]]:
    """Up to `n` words of `lines` that `tokenizer` splits into several pieces, as {word: its piece ids}.

    Words are what the tokenizer's own normaliser and pre-tokeniser make of the text (lower-cased,
    punctuation apart), seen at least `min_frequency` times, with a letter, without [UNK] pieces.
    Ranked by pieces saved (frequency x (pieces - 1)), then alphabetically: the same corpus always
    gives the same words."""
    backend = tokenizer.backend_tokenizer
    counts: Counter = Counter()
    for line in lines:
        text = backend.normalizer.normalize_str(line) if backend.normalizer else line
        counts.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text))
    known = tokenizer.get_vocab()
    words = sorted(w for w, c in counts.items() if c >= min_frequency and w not in known and any(ch.isalpha() for ch in w))
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    unk = tokenizer.unk_token_id
    scored = [(-(counts[w] * (len(ids) - 1)), w, ids) for w, ids in zip(words, pieces) if len(ids) > 1 and unk not in ids]
    return {w: ids for _, w, ids in sorted(scored)[:n]}


def read_extension(vocab_dir: Union[str, Path]) -> Optional[dict]:
    """The `vocab_extension.json` of a built vocabulary dir, or None when nothing was added."""
    import json

    path = Path(vocab_dir) / EXTENSION_FILE
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else None


def build_vocab(
    files, out_dir: Union[str, Path], *, vocab_file=None, lowercase: bool, size: int, min_frequency: int,
    max_seq_length: int, locked: Optional[str] = None, extend: int = 0,
) -> PreTrainedTokenizerFast:
    """Train WordPiece on `files` (streamed) or wrap `vocab_file`; save the fast tokenizer to `out_dir`.

    With `extend` (and a `vocab_file`), the `words_to_add` of `files` are appended to the vocabulary: old
    tokens keep their ids, and `vocab_extension.json` lists each new word's old piece ids, from which
    `model.load_init_from` initialises its embedding.
    A rerun with the same inputs reuses the saved tokenizer (the `vocab_spec.json` marker is written last).
    With `locked` (a message), a saved vocabulary built from other inputs is an error instead of being
    rebuilt: checkpoints were trained with it.
    """
    import json

    from transformers import AutoTokenizer

    from .data import iter_corpus_lines

    out_dir = Path(out_dir)
    if extend and not vocab_file:
        raise PretrainError("[vocab] extend adds words to a given vocabulary (init_from's vocab.txt or [paths] vocab); "
                            "a WordPiece vocabulary trained on the corpus already fits it.")
    uses_corpus = not vocab_file or extend > 0
    spec = {"vocab_file": str(vocab_file) if vocab_file else None, "lowercase": lowercase,
            "size": None if vocab_file else size, "min_frequency": min_frequency if uses_corpus else None,
            "files": [f"{p}:{Path(p).stat().st_size}" for p in files] if uses_corpus else None}
    if extend:  # absent otherwise, so vocabularies built before the option existed still match
        spec["extend"] = extend
    marker = out_dir / "vocab_spec.json"
    if marker.exists():
        old = json.loads(marker.read_text(encoding="utf8"))
        if old == spec:
            return AutoTokenizer.from_pretrained(str(out_dir))
        if locked:
            changed = ", ".join(sorted(k for k in set(spec) | set(old) if spec.get(k) != old.get(k)))
            raise PretrainError(f"{locked} (changed since {out_dir} was built: {changed}).")
    if vocab_file:
        if not Path(vocab_file).exists():
            raise PretrainError(f"[paths] vocab = {str(vocab_file)!r} does not exist. Give a vocab.txt (one token per line) or null to train one.")
        tokenizer = load_vocab_file(vocab_file, lowercase=lowercase)
        if extend:
            added = words_to_add(tokenizer, iter_corpus_lines(files), extend, min_frequency)
            base = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
            extension = {"base_vocab": str(vocab_file), "base_size": len(base), "added": added}
            tokenizer = _from_tokens(base + list(added), lowercase=lowercase)
    else:
        tokenizer = train_wordpiece(lambda: iter_corpus_lines(files), size, lowercase=lowercase, min_frequency=min_frequency)
    tokenizer.model_max_length = max_seq_length
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / EXTENSION_FILE).unlink(missing_ok=True)
    if extend:
        (out_dir / EXTENSION_FILE).write_text(json.dumps(extension, indent=1), encoding="utf8")
    marker.write_text(json.dumps(spec), encoding="utf8")
    return tokenizer
