"""An encoder between two checkpoints of the same shape: every weight (1 - alpha) x START + alpha x END.

Issue 9's lever for relations: continued pre-training moves all-MiniLM-L6-v2 away from what its sentence-level
tuning gave it, and on DDI-2013 the continued encoders lose to it (README, issue 9). Interpolating the weights back
towards the starting checkpoint (WiSE-FT, Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", applied
here to continued pre-training) keeps part of each at no training cost: alpha = 1 is END, 0 is START.

    python benchmarks/interpolate_encoders.py MINILM /work/pretrain_runs/tapt_wwm/model --alpha 0.5 \\
        --save /work/pretrain_runs/tapt_half

The result has END's architecture, config and tokenizer (the two must share the vocabulary, which is checked) and
an `interpolation.json` naming START, END and alpha; fine-tune it like any encoder (`--paths.model DIR`).
"""
import json
from pathlib import Path

import typer


def interpolate(start: str, end: str, alpha: float, output: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if AutoTokenizer.from_pretrained(start).get_vocab() != AutoTokenizer.from_pretrained(end).get_vocab():
        raise ValueError(f"{start} and {end} have different vocabularies: their embeddings do not line up")
    model = AutoModel.from_pretrained(end)
    other = AutoModel.from_pretrained(start).state_dict()  # (a BERT START may add a pooler END lacks: unused)
    state = model.state_dict()
    differ = [k for k, v in state.items() if k not in other or other[k].shape != v.shape]
    if differ:
        raise ValueError(f"{start} lacks or shapes differently {len(differ)} weights of {end}, e.g. {differ[:3]}")
    with torch.no_grad():  # state_dict() tensors are the model's own: written in place
        for name, weight in state.items():
            if weight.is_floating_point():
                weight.copy_((1.0 - alpha) * other[name] + alpha * weight)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(end).save_pretrained(output)
    (output / "interpolation.json").write_text(json.dumps({"start": str(start), "end": str(end), "alpha": alpha}) + "\n",
                                               encoding="utf8")


def main(start: str = typer.Argument(..., help="save_pretrained dir (or hub id) of the checkpoint at alpha = 0"),
         end: str = typer.Argument(..., help="the checkpoint at alpha = 1; the result has its architecture"),
         alpha: float = typer.Option(0.5, help="weight of END"),
         save: Path = typer.Option(..., help="Folder for the interpolated encoder (must not exist)")):
    if save.exists():
        raise typer.BadParameter(f"--save {save}: exists; name a new folder")
    try:
        interpolate(start, end, alpha, save)
    except ValueError as err:
        raise typer.BadParameter(str(err))
    print(f"{save}: {1 - alpha:g} x {start} + {alpha:g} x {end}")


if __name__ == "__main__":
    typer.run(main)
