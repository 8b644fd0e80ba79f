"""How large are an encoder's hidden states, layer by layer? Mean L2 norm of each layer's token states (the
embeddings are layer 0) and the standard deviation of the last layer's values, on the first sentences of a
text file (one per line), for several encoders side by side. A pre-training run that rescales the last
layer hands a fine-tuned head inputs of another scale at the same learning rate (issue 9's diagnosis):

    python benchmarks/pretraining/layer_norms.py minilm=PATH/TO/MINILM tapt=/runs/tapt_wwm/model \\
        --text /runs/task_text/bc5cdr_task.txt --output benchmarks/pretraining/results/layer_norms_bc5cdr.json

The lever that tests the diagnosis: `--rescale tapt --to minilm --save DIR` writes a copy of `tapt` whose last
LayerNorm gain and bias are multiplied by minilm's last-layer mean norm over tapt's (LayerNorm's output is affine
in them, so the last layer's states scale by exactly that factor and nothing else changes); fine-tune DIR
beside the other two.
"""
import json
from pathlib import Path
from typing import List

import typer


def layer_norms(model_dir: str, sentences: List[str], max_length: int = 128) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        states = model(**batch, output_hidden_states=True).hidden_states
    real = batch["attention_mask"].bool()
    return {"mean_norm": [round(float(h[real].norm(dim=-1).mean()), 3) for h in states],
            "last_std": round(float(states[-1][real].std()), 4), "tokens": int(real.sum())}


def save_rescaled(model_dir: str, factor: float, output: Path) -> None:
    """Copy of a save_pretrained encoder (model and tokenizer) with its last layer's states times `factor`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir)
    norm = model.encoder.layer[-1].output.LayerNorm
    with torch.no_grad():
        norm.weight.mul_(factor)
        norm.bias.mul_(factor)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(output)


def main(encoders: List[str] = typer.Argument(..., help="NAME=DIR of a save_pretrained encoder; repeat"),
         text: Path = typer.Option(..., exists=True, dir_okay=False, help="One sentence per line"),
         sentences: int = typer.Option(200, min=1), output: Path = typer.Option(None),
         rescale: str = typer.Option(None, help="NAME of an encoder above to save rescaled (with --to, --save)"),
         to: str = typer.Option(None, help="NAME of the encoder whose last-layer mean norm to match"),
         save: Path = typer.Option(None, help="Folder for the rescaled copy (must not exist)")):
    if (rescale, to, save).count(None) not in (0, 3):
        raise typer.BadParameter("--rescale, --to and --save go together")
    if save is not None and save.exists():
        raise typer.BadParameter(f"--save {save}: exists; name a new folder")
    lines = [line.strip() for line in text.open(encoding="utf8") if line.strip()][:sentences]
    if not lines:
        raise typer.BadParameter(f"--text {text}: no sentences")
    paths = {}
    for item in encoders:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"{item!r}: write NAME=DIR")
        paths[name] = path
    if rescale is not None and (rescale not in paths or to not in paths):
        raise typer.BadParameter(f"--rescale {rescale} --to {to}: name two of {sorted(paths)}")
    table = {}
    for name, path in paths.items():
        table[name] = layer_norms(path, lines)
        typer.echo(f"{name:<12} " + " ".join(f"L{i} {n:.1f}" for i, n in enumerate(table[name]["mean_norm"]))
                   + f"   last-layer std {table[name]['last_std']:.3f}")
    result = {"text": str(text), "sentences": len(lines), "encoders": table}
    if rescale is not None:
        factor = table[to]["mean_norm"][-1] / table[rescale]["mean_norm"][-1]
        save_rescaled(paths[rescale], factor, save)
        result["rescaled"] = {"encoder": rescale, "to": to, "factor": round(factor, 5), "saved": str(save)}
        typer.echo(f"saved {rescale} x {factor:.4f} (last layer) to {save}")
    if output:
        output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
