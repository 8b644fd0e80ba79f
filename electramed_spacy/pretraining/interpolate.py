"""An encoder between two checkpoints of the same shape: every weight (1 - alpha) x START + alpha x END.

Continued pre-training moves a general encoder away from what its own training gave it, and on some tasks
the continued encoder loses to its start. Interpolating the weights back towards the starting checkpoint
(WiSE-FT, Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", applied to continued
pre-training) keeps part of each at no training cost: alpha = 1 is END, 0 is START. `electramed interpolate`.
"""
import json
from pathlib import Path

import torch

from .errors import PretrainError


def interpolate(start: str, end: str, alpha: float, output: Path) -> None:
    """Write to `output` the encoder whose every floating-point weight is (1 - alpha) x START + alpha x END,
    with END's config and tokenizer and an `interpolation.json` naming both ends (PretrainError when the two
    do not share vocabulary and weight shapes, or alpha is outside [0, 1])."""
    from transformers import AutoModel, AutoTokenizer

    if not 0.0 <= alpha <= 1.0:
        raise PretrainError(f"alpha must be in [0, 1], got {alpha}")
    if AutoTokenizer.from_pretrained(start).get_vocab() != AutoTokenizer.from_pretrained(end).get_vocab():
        raise PretrainError(f"{start} and {end} have different vocabularies: their embeddings do not line up")
    model = AutoModel.from_pretrained(end)
    other = AutoModel.from_pretrained(start).state_dict()  # (a BERT START may add a pooler END lacks: unused)
    state = model.state_dict()
    differ = [k for k, v in state.items() if k not in other or other[k].shape != v.shape]
    if differ:
        raise PretrainError(f"{start} lacks or shapes differently {len(differ)} weights of {end}, e.g. {differ[:3]}")
    with torch.no_grad():  # state_dict() tensors are the model's own: written in place
        for name, weight in state.items():
            if weight.is_floating_point():
                weight.copy_((1.0 - alpha) * other[name] + alpha * weight)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(end).save_pretrained(output)
    (output / "interpolation.json").write_text(json.dumps({"start": str(start), "end": str(end), "alpha": alpha}) + "\n",
                                               encoding="utf8")
