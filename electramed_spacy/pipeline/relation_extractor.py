"""`electramed_relation_extractor`: a trainable pipe that types entity pairs.

The task ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) is evaluated on for
DDI-2013 and ChemProt: given two entity mentions, choose a relation label or
"no relation". The pipe scores candidate pairs of `doc.ents` (gold entities at
training time, read from `example.reference`; whatever the NER predicted at
inference), with a softmax over `[no_relation_label] + labels`, and writes the
positive predictions with their probability through
`electramed_spacy.doc.relations.set_relations` (`doc._.relations`, which survives
DocBin and `Doc.to_disk`). The pair model is either `electramed.PooledRelationModel.v1`
(pooled vectors of a shared transformer, `ml/relations/pooled.py`) or `.v3` (each pair
encoded with typed entity markers by the pipe's own encoder, `ml/relations/marked_pair.py`).

Shape follows spaCy's `spancat.py`: keyword-only settings, `self.cfg` holds what
must survive `to_disk`, `predict` never mutates Docs, `set_annotations` writes.
Scoring goes through the registered `electramed.rel_scorer.v1`: micro P/R/F over
the positive labels (no-relation excluded, as the DDI-2013 and ChemProt papers
score) plus per-label figures, as `rel_micro_p/r/f` and `rel_f_per_type`.

The "relations with gold entities" protocol (training and evaluating a pipeline
without NER, configs/rel.cfg) is a reader: `electramed.GoldEntityCorpus.v1` in
`electramed_spacy/corpora/gold_entities.py`.
"""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from ..doc.relations import Relation, install_extensions, set_relations
from ..errors import ElectraMedError, Errors
from ..ml.relations.candidates import Pair

DEFAULT_NO_RELATION = "NONE"

DEFAULT_REL_MODEL = """
[model]
@architectures = "electramed.PooledRelationModel.v1"
pair_representation = "mean_context"
hidden_width = 128
maxout_pieces = 3
dropout = 0.1

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""
DEFAULT_CANDIDATES = {
    "@misc": "electramed.relation_candidates.v2",
    "same_sentence": True,
    "max_distance": 0,
    "type_pairs": None,
    "symmetric": True,
    "max_distance_without_sentences": 100,
    "max_pairs": 5000,
}


def _key(span_pair, label: str, symmetric: bool) -> Tuple:
    (hs, he), (ts, te) = span_pair
    if symmetric and (ts, te) < (hs, he):
        (hs, he), (ts, te) = (ts, te), (hs, he)
    return (hs, he, ts, te, label)


def score_relations(
    examples: Iterable[Example], *, symmetric: bool = False,
    exclude_labels: Iterable[str] = (DEFAULT_NO_RELATION,), **kwargs,
) -> Dict[str, object]:
    """Micro P/R/F over positive relation labels, plus per label.

    A predicted relation is right when its head and tail have the gold character
    offsets (so differences in tokenisation do not count) and the same label.
    symmetric=True ignores the order of head and tail (DDI-2013).
    Returns rel_micro_p, rel_micro_r, rel_micro_f and rel_f_per_type
    ({label: {"p", "r", "f"}}).
    """
    install_extensions()
    excluded = set(exclude_labels)
    micro = PRFScore()
    per_label: Dict[str, PRFScore] = {}
    for eg in examples:
        gold = {
            _key(((r.head.start_char, r.head.end_char), (r.tail.start_char, r.tail.end_char)), r.label, symmetric)
            for r in eg.reference._.relations if r.label not in excluded
        }
        pred = {
            _key(((r.head.start_char, r.head.end_char), (r.tail.start_char, r.tail.end_char)), r.label, symmetric)
            for r in eg.predicted._.relations if r.label not in excluded
        }
        for label in {k[4] for k in gold | pred}:
            g = {k for k in gold if k[4] == label}
            p = {k for k in pred if k[4] == label}
            score = per_label.setdefault(label, PRFScore())
            score.score_set(p, g)
        micro.score_set(pred, gold)
    return {
        "rel_micro_p": micro.precision,
        "rel_micro_r": micro.recall,
        "rel_micro_f": micro.fscore,
        "rel_f_per_type": {label: s.to_dict() for label, s in sorted(per_label.items())},
    }


class HeadScaledOptimizer:
    """An optimizer that steps the parameters keyed in `head` ((node id, param name), thinc's keys) at `scale`
    times the rate of `sgd` (thinc's `lr_scale`), everything else (shims' torch parameters included) as `sgd`
    does; other attributes are `sgd`'s."""

    def __init__(self, sgd: Optimizer, head: set, scale: float):
        self._sgd, self._head, self._scale = sgd, head, scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        if key in self._head:
            lr_scale *= self._scale
        return self._sgd(key, weights, gradient, lr_scale=lr_scale)

    def __getattr__(self, name):
        return getattr(self._sgd, name)


@registry.scorers("electramed.rel_scorer.v1")
def make_rel_scorer() -> Callable:
    return score_relations


@Language.factory(
    "electramed_relation_extractor",
    assigns=["doc._.relation_data"],
    requires=["doc.ents"],
    default_config={
        "model": Config().from_str(DEFAULT_REL_MODEL)["model"],
        "candidates": DEFAULT_CANDIDATES,
        "no_relation_label": DEFAULT_NO_RELATION,
        "threshold": 0.0,
        "negative_weight": 1.0,
        "negative_sample_rate": 1.0,
        "head_lr_scale": 20.0,
        "scorer": {"@scorers": "electramed.rel_scorer.v1"},
    },
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0, "rel_f_per_type": None},
)
def make_relation_extractor(
    nlp: Language, name: str, model: Model, candidates: Callable[[Doc], List[Pair]],
    no_relation_label: str, threshold: float, negative_weight: float, negative_sample_rate: float,
    head_lr_scale: float, scorer: Optional[Callable],
) -> "RelationExtractor":
    """Relation extractor over `doc.ents`.

    model: `electramed.PooledRelationModel.v1` (pooled vectors of a shared transformer),
        `electramed.MarkedPairRelationModel.v1` (each pair encoded with its mentions marked, own encoder),
        or any model (docs, candidates) -> probabilities.
    candidates: pair generator, e.g. `electramed.relation_candidates.v2`, whose
        max_distance_without_sentences (100) and max_pairs (5000) bound the pairs, and
        so the work and memory, per Doc.
    no_relation_label: name of the explicit no-relation class (never written to the Doc).
    threshold: a positive label is written only if its probability is >= threshold
        (0.0 = plain argmax).
    negative_weight: weight of the no-relation pairs in the training loss (< 1 counters
        the imbalance of DDI-2013, where 85% of the pairs are negative).
    negative_sample_rate: the share of no-relation pairs each training update keeps (a
        fresh random draw per update, all positives kept); in (0, 1], 1.0 = all. Fewer
        pairs make an update cheaper, which pays with `electramed.MarkedPairRelationModel.v1`
        (one encoder pass per pair). Prediction always scores every candidate.
    head_lr_scale: the pair classifier's learning rate is the optimizer's times this. A
        fine-tuning rate suits the encoder (5e-5) but leaves a freshly initialised head at
        the class prior for thousands of steps (on DDI-2013 it predicted only the
        no-relation class); the encoder, through its listener, keeps the optimizer's rate.
    """
    return RelationExtractor(
        nlp.vocab, model, candidates, name,
        no_relation_label=no_relation_label, threshold=threshold, negative_weight=negative_weight,
        negative_sample_rate=negative_sample_rate, head_lr_scale=head_lr_scale, scorer=scorer,
    )


class RelationExtractor(TrainablePipe):
    """Pipe that labels entity pairs; see the module docstring."""

    def __init__(
        self, vocab: Vocab, model: Model, candidates: Callable[[Doc], List[Pair]],
        name: str = "electramed_relation_extractor", *, no_relation_label: str = DEFAULT_NO_RELATION,
        threshold: float = 0.0, negative_weight: float = 1.0, negative_sample_rate: float = 1.0,
        head_lr_scale: float = 20.0, scorer: Optional[Callable] = score_relations,
    ) -> None:
        if not 0 < negative_sample_rate <= 1:
            raise ElectraMedError(Errors.E053.format(name=name, value=negative_sample_rate))
        if negative_weight <= 0:
            raise ElectraMedError(Errors.E044.format(name=name, key="negative_weight", value=negative_weight))
        if head_lr_scale <= 0:
            raise ElectraMedError(Errors.E044.format(name=name, key="head_lr_scale", value=head_lr_scale))
        install_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.get_candidates = candidates
        self.scorer = scorer
        self.cfg = {"labels": [], "no_relation_label": no_relation_label, "threshold": float(threshold),
                    "negative_weight": float(negative_weight), "negative_sample_rate": float(negative_sample_rate),
                    "head_lr_scale": float(head_lr_scale)}

    # labels -------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def classes(self) -> List[str]:
        """Output classes of the softmax: the no-relation class first."""
        return [self.cfg["no_relation_label"]] + list(self.cfg["labels"])

    @property
    def symmetric(self) -> bool:
        return bool(getattr(self.get_candidates, "symmetric", False))

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ElectraMedError(Errors.E045.format(label=label, type=type(label).__name__))
        if label == self.cfg["no_relation_label"]:
            raise ElectraMedError(Errors.E046.format(label=label))
        if label in self.cfg["labels"]:
            return 0
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ElectraMedError(Errors.E047.format(label=label, labels=self.labels))
        self.cfg["labels"] = list(self.cfg["labels"]) + [label]
        self.vocab.strings.add(label)
        return 1

    # prediction ---------------------------------------------------------
    def predict(self, docs: Iterable[Doc]):
        """(candidates per doc, (n_pairs, n_classes) probabilities). Does not touch the Docs."""
        docs = list(docs)
        candidates = [self.get_candidates(doc) for doc in docs]
        if not any(candidates):
            return candidates, self.model.ops.alloc2f(0, len(self.classes))
        return candidates, self.model.predict((docs, candidates))

    def set_annotations(self, docs: Iterable[Doc], predictions) -> None:
        candidates, scores = predictions
        scores = self.model.ops.to_numpy(scores)
        classes = self.classes
        threshold = self.cfg["threshold"]
        row = 0
        for doc, pairs in zip(docs, candidates):
            rels = []
            for hs, he, ts, te in pairs:
                probs = scores[row]
                row += 1
                best = int(probs.argmax())
                if best == 0 or probs[best] < threshold:
                    continue
                rels.append(Relation(doc[hs:he], doc[ts:te], classes[best], float(probs[best])))
            set_relations(doc, rels)

    # training -----------------------------------------------------------
    def _gold_candidates(self, eg: Example) -> Tuple[List[Pair], List[int]]:
        """Candidates from the gold entities of `eg.reference`, as token ranges of
        `eg.predicted`, with the index of their gold class."""
        ref, pred = eg.reference, eg.predicted
        class_index = {label: i for i, label in enumerate(self.classes)}
        gold: Dict[Tuple, int] = {}
        for r in ref._.relations:
            idx = class_index.get(r.label)
            if idx is None:
                continue
            gold[(r.head.start, r.head.end, r.tail.start, r.tail.end)] = idx
            if self.symmetric:
                gold.setdefault((r.tail.start, r.tail.end, r.head.start, r.head.end), idx)
        same_tokens = len(ref) == len(pred) and all(a.idx == b.idx for a, b in zip(ref, pred))
        pairs, truths = [], []
        for hs, he, ts, te in self.get_candidates(ref):
            if same_tokens:
                mapped = (hs, he, ts, te)
            else:
                h = pred.char_span(ref[hs:he].start_char, ref[hs:he].end_char, alignment_mode="expand")
                t = pred.char_span(ref[ts:te].start_char, ref[ts:te].end_char, alignment_mode="expand")
                if h is None or t is None or len(h) == 0 or len(t) == 0:
                    continue
                mapped = (h.start, h.end, t.start, t.end)
            pairs.append(mapped)
            truths.append(gold.get((hs, he, ts, te), 0))
        return pairs, truths

    def _loss(self, scores, truths: List[int]):
        """Weighted cross-entropy (no-relation rows weighted by cfg["negative_weight"]) and its
        gradient with respect to the softmax input (thinc's Softmax backprop expects that).

        Summed over pairs, not averaged, like spaCy's own losses (NER sums over tokens): in a
        pipeline where NER and relations share one encoder, a mean would make the relation
        gradient hundreds of times smaller than NER's."""
        n = scores.shape[0]
        if n == 0:
            return 0.0, scores
        xp = self.model.ops.xp
        rows = xp.arange(n)
        gold = xp.asarray(truths, dtype="i")
        weights = xp.where(gold == 0, self.cfg["negative_weight"], 1.0).astype("f")
        target = self.model.ops.alloc2f(*scores.shape)
        target[rows, gold] = 1.0
        d_scores = (scores - target) * weights[:, None]
        loss = float(-(weights * xp.log(scores[rows, gold] + 1e-9)).sum())
        return loss, d_scores

    def get_loss(self, examples: Iterable[Example], scores) -> Tuple[float, object]:
        """Cross-entropy of `scores` against the gold classes of the gold candidates of `examples`."""
        validate_examples(examples, "RelationExtractor.get_loss")
        truths = [t for eg in examples for t in self._gold_candidates(eg)[1]]
        return self._loss(scores, truths)

    def update(
        self, examples: Iterable[Example], *, drop: float = 0.0,
        sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        examples = list(examples)
        validate_examples(examples, "RelationExtractor.update")
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        candidates, truths = [], []
        rate = self.cfg.get("negative_sample_rate", 1.0)  # pipelines saved before it existed
        for eg in examples:
            pairs, gold = self._gold_candidates(eg)
            if rate < 1.0:  # numpy's global RNG: seeded by [system] seed through spaCy's fix_random_seed
                keep = [t != 0 or numpy.random.random() < rate for t in gold]
                pairs = [p for p, k in zip(pairs, keep) if k]
                gold = [t for t, k in zip(gold, keep) if k]
            candidates.append(pairs)
            truths.extend(gold)
        set_dropout_rate(self.model, drop)
        # Even with zero candidates the encoder is run and given a zero gradient, so a
        # shared transformer still receives its backprop call from this listener.
        if not truths:  # no pair in the batch: only the encoder's zero gradient (Maxout cannot take 0 rows)
            if self.model.attrs.get("owns_encoder"):
                return losses  # nothing listens for a backprop call: no work at all
            feats, backprop = self.model.get_ref("features").begin_update((docs, candidates))
            backprop(self.model.ops.alloc2f(*feats.shape))
            loss = 0.0
        else:
            scores, backprop = self.model.begin_update((docs, candidates))
            loss, d_scores = self._loss(scores, truths)
            backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """`Model.finish_update` with the head's parameters stepped at `head_lr_scale` times the optimizer's
        rate (the tok2vec's and every shim's at the plain rate), through `HeadScaledOptimizer`."""
        encoder = {node.id for node in self.model.get_ref("tok2vec").walk()}
        head = {(node.id, name) for node in self.model.walk() if node.id not in encoder for name in node.param_names}
        self.model.finish_update(HeadScaledOptimizer(sgd, head, self.cfg["head_lr_scale"]))

    def initialize(
        self, get_examples: Callable[[], Iterable[Example]], *,
        nlp: Optional[Language] = None, labels: Optional[List[str]] = None,
    ) -> None:
        """Labels from `labels` or, if None, from the gold relations of the examples."""
        validate_get_examples(get_examples, "RelationExtractor.initialize")
        if labels is not None:
            for label in labels:
                self.add_label(label)
        else:
            found = sorted({r.label for eg in get_examples() for r in eg.reference._.relations})
            for label in found:
                self.add_label(label)
        if not self.labels:
            raise ElectraMedError(Errors.E048.format(name=self.name))
        self.model.get_ref("output_layer").set_dim("nO", len(self.classes))
        sample = list(islice(get_examples(), 10))
        docs = [eg.predicted for eg in sample]
        candidates = [self._gold_candidates(eg)[0] for eg in sample]
        self.model.initialize(X=(docs, candidates))

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, object]:
        validate_examples(examples, "RelationExtractor.score")
        kwargs.setdefault("symmetric", self.symmetric)
        kwargs.setdefault("exclude_labels", (self.cfg["no_relation_label"],))
        return self.scorer(examples, **kwargs)
