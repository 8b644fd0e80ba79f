"""A downstream probe for pre-training: a linear tagger on frozen encoder states, scored by entity F1.

Whether pre-training made an encoder better for NER costs a fine-tuning run per seed to find out (half
an hour on one CPU thread for BC5CDR at MiniLM-L6's size), and the fine-tuning seed alone moves BC5CDR
test F1 by ~2 points. A linear probe (Alain & Bengio 2016; Hewitt & Liang 2019) measures what the
frozen states already hold, in seconds and without seed noise: the probe sentences are encoded once, a
softmax layer is fitted (full batch, fixed seed) on the last layer's state of each word's first
wordpiece, BIO spans are decoded and scored by exact-match entity F1 on held-out sentences. The same
encoder always gets the same figure, so it can watch a pre-training run at every `[probe] every` steps
(log.jsonl, curves.png) and compare exported encoders (`electramed probe`). It is not what fine-tuning
reaches; it says whether pre-training moves the states towards the task.

Data: token-level CoNLL (`formats/conll.py`: `word<TAB>tag` per line, the tag in the last column, a blank
line between sentences, BIO tags), e.g. BC5CDR's `conll/{train,devel}.tsv`. Words past `max_length` wordpieces are
tagged O (and so cost recall).
"""
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..formats.conll import ConllLineError, conll_sentences
from ..formats.iob import tags_to_spans
from .errors import PretrainError

Sentence = Tuple[List[str], List[str]]


def read_conll(path: Union[str, Path], limit: int = 0) -> List[Sentence]:
    """The first `limit` sentences (0 = all) of a CoNLL file as (words, tags): the corpus reader's format
    (`formats/conll.py`: tab or space separated, the tag last, -DOCSTART- lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainError(f"Probe data {path} does not exist (cwd: {Path.cwd()}).")
    sentences: List[Sentence] = []
    with open(path, encoding="utf-8-sig") as f:
        try:
            for sent in conll_sentences(enumerate(f, 1)):
                if sent is not None:
                    sentences.append(([w for w, _ in sent], [t for _, t in sent]))
                    if limit and len(sentences) == limit:
                        return sentences
        except ConllLineError as err:
            raise PretrainError(f"{path}:{err.line}: {err.problem} Expected {err.expected}") from None
    if not sentences:
        raise PretrainError(f"{path}: no sentences (expected `word<TAB>tag` lines, a blank line between sentences).")
    return sentences


@torch.no_grad()
def word_states(encoder: torch.nn.Module, tokenizer, sentences: Sequence[Sentence], *, max_length: int,
                batch_size: int = 32) -> Tuple[torch.Tensor, torch.Tensor]:
    """(words, hidden) float32 states, the last layer at each word's first wordpiece, for every word of
    `sentences` in order; and a bool (words,) mask of the words that got one (not cut off, not empty)."""
    n_words = sum(len(words) for words, _ in sentences)
    hidden = encoder.config.hidden_size
    states = torch.zeros(n_words, hidden)
    covered = torch.zeros(n_words, dtype=torch.bool)
    offsets = [0]
    for words, _ in sentences:
        offsets.append(offsets[-1] + len(words))
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i][0]))  # similar lengths pad less
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        for b in range(0, len(order), batch_size):
            batch = order[b:b + batch_size]
            enc = tokenizer([sentences[i][0] for i in batch], is_split_into_words=True, truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
            out = encoder(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
            last = out.last_hidden_state.float().cpu()
            for row, i in enumerate(batch):
                seen = set()
                for piece, word in enumerate(enc.word_ids(row)):
                    if word is not None and word not in seen:
                        seen.add(word)
                        states[offsets[i] + word] = last[row, piece]
                        covered[offsets[i] + word] = True
    finally:
        encoder.train(was_training)
    return states, covered


def fit_softmax(x: torch.Tensor, y: torch.Tensor, n_labels: int, *, steps: int, lr: float, seed: int) -> "LinearTagger":
    """A linear softmax tagger on standardised features, full-batch Adam: deterministic for a seed. It draws
    only from its own generator, never torch's global one, so a probe inside pre-training changes no draw
    of the run (dropout, masks): the losses are those of a run without it (tested)."""
    gen = torch.Generator().manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    weight = torch.empty(n_labels, x.shape[1]).normal_(0.0, 0.01, generator=gen).requires_grad_()
    bias = torch.zeros(n_labels, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    z = (x - mean) / std
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(torch.nn.functional.linear(z, weight, bias), y).backward()
            opt.step()
    return LinearTagger(mean, std, weight.detach(), bias.detach())


class LinearTagger:
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        self.mean, self.std, self.weight, self.bias = mean, std, weight, bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear((x - self.mean) / self.std, self.weight, self.bias)


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> List[Tuple[int, int, int]]:
    """(true positive, gold, predicted) entity counts per sentence."""
    out = []
    for g, p in zip(gold, pred):
        g_spans, p_spans = set(tags_to_spans(g)), set(tags_to_spans(p))
        out.append((len(g_spans & p_spans), len(g_spans), len(p_spans)))
    return out


def prf(counts) -> Tuple[float, float, float]:
    """Micro P/R/F of (tp, gold, predicted) rows (a list, or an (n, 3) array)."""
    tp, n_gold, n_pred = (float(sum(col)) for col in zip(*counts)) if len(counts) else (0.0, 0.0, 0.0)
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def paired_bootstrap(a: Sequence[Tuple[int, int, int]], b: Sequence[Tuple[int, int, int]], *, samples: int = 1000,
                     seed: int = 0) -> Dict[str, float]:
    """F1(b) - F1(a) on the same dev sentences, and its 95% interval over `samples` resamplings of the sentences
    (Koehn 2004; Berg-Kirkpatrick et al. 2012): an interval that holds 0 is no evidence of a difference."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)

    def f1(rows):  # rows: (samples, sentences, 3) -> (samples,)
        tp, gold, pred = rows[..., 0].sum(-1), rows[..., 1].sum(-1), rows[..., 2].sum(-1)
        return np.where(gold + pred > 0, 2 * tp / np.maximum(gold + pred, 1), 0.0)

    idx = rng.integers(0, len(a), size=(samples, len(a)))
    diffs = f1(b[idx]) - f1(a[idx])
    return {"diff": round(prf(b)[2] - prf(a)[2], 4), "low": round(float(np.percentile(diffs, 2.5)), 4),
            "high": round(float(np.percentile(diffs, 97.5)), 4), "samples": samples}


def probe(encoder: torch.nn.Module, tokenizer, train: Sequence[Sentence], dev: Sequence[Sentence], *,
          max_length: int = 128, steps: int = 300, lr: float = 0.01, seed: int = 0,
          counts: Optional[List[Tuple[int, int, int]]] = None) -> Dict[str, Any]:
    """Fit the linear tagger on `train`, score entity P/R/F on `dev` (words without a state are tagged O).
    A list passed as `counts` receives the (tp, gold, predicted) entities of each dev sentence."""
    t0 = time.time()
    labels = sorted({t for _, tags in train for t in tags} | {"O"})
    index = {t: i for i, t in enumerate(labels)}
    x, covered = word_states(encoder, tokenizer, train, max_length=max_length)
    y = torch.tensor([index[t] for _, tags in train for t in tags])
    tagger = fit_softmax(x[covered], y[covered], len(labels), steps=steps, lr=lr, seed=seed)
    x_dev, covered_dev = word_states(encoder, tokenizer, dev, max_length=max_length)
    with torch.no_grad():
        guess = tagger(x_dev).argmax(-1)
    guess[~covered_dev] = index["O"]
    pred, start = [], 0
    for words, _ in dev:
        pred.append([labels[i] for i in guess[start:start + len(words)].tolist()])
        start += len(words)
    gold = [tags for _, tags in dev]
    per_sentence = sentence_counts(gold, pred)
    if counts is not None:
        counts.extend(per_sentence)
    p, r, f = prf(per_sentence)
    correct = sum(a == b for g, q in zip(gold, pred) for a, b in zip(g, q))
    return {"probe_f": round(f, 4), "probe_p": round(p, 4), "probe_r": round(r, 4),
            "probe_token_acc": round(correct / max(1, len(guess)), 4), "probe_train_words": int(covered.sum()),
            "probe_dev_words": len(guess), "probe_s": round(time.time() - t0, 1)}


class Probe:
    """`[probe]` of a pre-training config: its data read once, then `__call__(encoder, tokenizer)`."""

    def __init__(self, cfg: Dict[str, Any]):
        self.cfg = cfg
        self.train = read_conll(cfg["train"], cfg["train_sentences"])
        self.dev = read_conll(cfg["dev"], cfg["dev_sentences"])

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> Optional["Probe"]:
        return cls(cfg) if cfg["every"] else None

    def due(self, step: int) -> bool:
        return step % self.cfg["every"] == 0

    def __call__(self, encoder: torch.nn.Module, tokenizer) -> Dict[str, Any]:
        return probe(encoder, tokenizer, self.train, self.dev, max_length=self.cfg["max_length"],
                     steps=self.cfg["steps"], lr=self.cfg["lr"], seed=self.cfg["seed"])
