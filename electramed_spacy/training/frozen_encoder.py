"""Fine-tune heads first, then the encoder (`electramed.frozen_encoder_steps.v1`, a `[training] before_update`).

Linear probing then fine-tuning (Kumar et al. 2022, arXiv:2202.10054): a random head's first, noisy gradients can
undo what pre-training built. For the first `steps` updates every transformer listener passes no gradient back
(`grad_factor` 0), so only the heads learn on frozen encoder states; then everything fine-tunes. A model that
owns its encoder (the marked-pair relation model) declares the attr `frozen_encoder` and runs its encoder in
inference mode meanwhile (one forward, no backward). The head needs its own, higher rate for those updates:
`electramed.frozen_then_linear.v1` holds `frozen_rate` for `frozen_steps` updates, then is spaCy's
`warmup_linear.v1` over the rest; the configs read `frozen_steps` from `[training.before_update] steps`, so one
setting switches it on, and 0 leaves `warmup_linear.v1` itself.
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
