"""How large are an encoder's hidden states, layer by layer? Mean L2 norm of each layer's token states (the
embeddings are layer 0) and the standard deviation of the last layer's values, on the first sentences of a
text file (one per line), for several encoders side by side. A pre-training run that rescales the last
layer hands a fine-tuned head inputs of another scale at the same learning rate (issue 9's diagnosis):

    python benchmarks/layer_norms.py minilm=PATH/TO/MINILM tapt=/runs/tapt_wwm/model \\
        --text /runs/task_text/bc5cdr_task.txt --output benchmarks/results/layer_norms_bc5cdr.json
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


def main(encoders: List[str] = typer.Argument(..., help="NAME=DIR of a save_pretrained encoder; repeat"),
         text: Path = typer.Option(..., exists=True, dir_okay=False, help="One sentence per line"),
         sentences: int = typer.Option(200, min=1), output: Path = typer.Option(None)):
    lines = [line.strip() for line in text.open(encoding="utf8") if line.strip()][:sentences]
    if not lines:
        raise typer.BadParameter(f"--text {text}: no sentences")
    table = {}
    for item in encoders:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"{item!r}: write NAME=DIR")
        table[name] = layer_norms(path, lines)
        typer.echo(f"{name:<12} " + " ".join(f"L{i} {n:.1f}" for i, n in enumerate(table[name]["mean_norm"]))
                   + f"   last-layer std {table[name]['last_std']:.3f}")
    if output:
        output.write_text(json.dumps({"text": str(text), "sentences": len(lines), "encoders": table}, indent=2) + "\n",
                          encoding="utf8")


if __name__ == "__main__":
    typer.run(main)
