"""Fine-tune heads first, then the encoder (`electramed.frozen_encoder_steps.v1`, a `[training] before_update`).

Linear probing then fine-tuning (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and
Underperform Out-of-Distribution"): a randomly initialised head sends large, noisy gradients into the encoder in
its first updates and can undo what pre-training built. For the first `steps` updates every transformer
listener of the pipeline passes no gradient back (its `grad_factor` is 0), so only the heads learn, on the
encoder's frozen states; from update `steps` on the listeners pass their configured gradient again and
everything fine-tunes. The learning-rate schedule is the optimizer's own and is not reset. A zero gradient moves
no weight under Adam; decoupled weight decay (`L2_is_weight_decay`) still shrinks the encoder's weights by
lr x L2 per update (1e-6 at lr 1e-4 and L2 0.01), and the encoder's backward pass still runs.

    [training.before_update]
    @callbacks = "electramed.frozen_encoder_steps.v1"
    steps = 100

Give the head its own rate for those updates, or it learns next to nothing (measured on BC5CDR: dev F1 1.5
after 100 head-only updates at <= 1e-4, 44.7 at 2e-3; README "Continued pre-training"). The schedule
`electramed.frozen_then_linear.v1` does: `frozen_rate` for the first `frozen_steps` updates, then spaCy's
`warmup_linear.v1` over the remaining `total_steps - frozen_steps`. `configs/ner.cfg`, `configs/rel.cfg` and
`configs/rel_pooled.cfg` read `frozen_steps` from `[training.before_update] steps`, so one setting switches LP-FT on (`--training.before_update.steps
100`); with 0 the schedule is `warmup_linear.v1` itself:

    [training.optimizer.learn_rate]
    @schedules = "electramed.frozen_then_linear.v1"
    frozen_steps = ${training.before_update.steps}
    frozen_rate = 0.002
    warmup_steps = 30
    total_steps = ${training.max_steps}
    initial_rate = 0.0001

A model that owns its encoder (the v3 relation model) declares the attr `frozen_encoder`; while it is true the
model runs its encoder in inference mode (no dropout, no autograd graph, no backward pass: a frozen update costs
one forward) and sends no gradient into it, so only its head learns. The v3 head already steps at `head_lr_scale`
(20) times the optimizer's rate, so the relation configs' `frozen_rate` is their fine-tuning rate (`initial_rate`).

The QA pipe, which owns its encoder too, does not declare the attr and is not affected.
"""
from typing import Any, Callable, Dict, Iterable

from spacy.language import Language
from spacy.util import registry
from thinc.api import constant_then, warmup_linear

from ..errors import ElectraMedError, Errors

CONFIGURED = "electramed_configured_grad_factor"
FROZEN = "frozen_encoder"  # attr of a layer that owns its encoder and can run it frozen


def _gates(nlp: Language):
    """Where each pipe's encoder gradient is gated: `trfs2arrays` layers (where a transformer listener
    scales its gradient) and layers that own their encoder and declare `frozen_encoder`."""
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            if (node.name == "trfs2arrays" and "grad_factor" in node.attrs) or FROZEN in node.attrs:
                yield node


@registry.callbacks("electramed.frozen_encoder_steps.v1")
def configure_frozen_encoder_steps(steps: int = 0) -> Callable[[Language, Dict[str, Any]], None]:
    """`[training] before_update`: no gradient into any encoder for the first `steps` updates."""
    if not isinstance(steps, int) or steps < 0:
        raise ElectraMedError(Errors.E062.format(key="steps", value=steps))

    def before_update(nlp: Language, args: Dict[str, Any]) -> None:
        if args["step"] > steps:  # the listeners were given back their gradient at update `steps`
            return
        frozen = args["step"] < steps
        for node in _gates(nlp):
            if FROZEN in node.attrs:
                node.attrs[FROZEN] = frozen
            else:
                configured = node.attrs.setdefault(CONFIGURED, node.attrs["grad_factor"])
                node.attrs["grad_factor"] = 0.0 if frozen else configured

    return before_update


@registry.schedules("electramed.frozen_then_linear.v1")
def frozen_then_linear(frozen_steps: int, frozen_rate: float, initial_rate: float, warmup_steps: int,
                       total_steps: int) -> Iterable[float]:
    """`frozen_rate` for the first `frozen_steps` updates (the head-only ones), then `warmup_linear.v1` with
    `initial_rate` and `warmup_steps` over the remaining `total_steps - frozen_steps` (it reaches 0 at `total_steps`)."""
    if not isinstance(frozen_steps, int) or not 0 <= frozen_steps <= total_steps:
        raise ElectraMedError(Errors.E062.format(key="frozen_steps", value=frozen_steps)
                              + f" It must also be at most total_steps ({total_steps}).")
    return constant_then(frozen_rate, frozen_steps, warmup_linear(initial_rate, warmup_steps, total_steps - frozen_steps))
