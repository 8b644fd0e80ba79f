"""WordPiece vocabularies for ELECTRA: trained on a corpus, or read from a vocab.txt.

ELECTRAMed used an uncased scientific vocabulary (SciVocab, Beltagy et al. 2019);
`train_wordpiece` builds the same kind of vocabulary from the user's corpus with
Hugging Face `tokenizers`, and `load_vocab_file` wraps either as a fast BERT
tokenizer that `save_pretrained` writes next to the model. The same corpus and
settings always give the same vocab.txt (see `train_wordpiece`).
"""
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Union

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


def build_vocab(
    files, out_dir: Union[str, Path], *, vocab_file=None, lowercase: bool, size: int, min_frequency: int,
    max_seq_length: int, locked: Optional[str] = None,
) -> PreTrainedTokenizerFast:
    """Train WordPiece on `files` (streamed) or wrap `vocab_file`; save the fast tokenizer to `out_dir`.

    A rerun with the same inputs reuses the saved tokenizer (the `vocab_spec.json` marker is written last).
    With `locked` (a message), a saved vocabulary built from other inputs is an error instead of being
    rebuilt: checkpoints were trained with it.
    """
    import json

    from transformers import AutoTokenizer

    from .data import iter_corpus_lines

    out_dir = Path(out_dir)
    spec = {"vocab_file": str(vocab_file) if vocab_file else None, "lowercase": lowercase,
            "size": None if vocab_file else size, "min_frequency": None if vocab_file else min_frequency,
            "files": [f"{p}:{Path(p).stat().st_size}" for p in files] if not vocab_file else None}
    marker = out_dir / "vocab_spec.json"
    if marker.exists():
        old = json.loads(marker.read_text(encoding="utf8"))
        if old == spec:
            return AutoTokenizer.from_pretrained(str(out_dir))
        if locked:
            changed = ", ".join(sorted(k for k in spec if spec[k] != old.get(k)))
            raise PretrainError(f"{locked} (changed since {out_dir} was built: {changed}).")
    if vocab_file:
        if not Path(vocab_file).exists():
            raise PretrainError(f"[paths] vocab = {str(vocab_file)!r} does not exist. Give a vocab.txt (one token per line) or null to train one.")
        tokenizer = load_vocab_file(vocab_file, lowercase=lowercase)
    else:
        tokenizer = train_wordpiece(lambda: iter_corpus_lines(files), size, lowercase=lowercase, min_frequency=min_frequency)
    tokenizer.model_max_length = max_seq_length
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    marker.write_text(json.dumps(spec), encoding="utf8")
    return tokenizer
