"""`electramed train CONFIG --output DIR [--section.key value ...]`: `spacy train` that survives a kill.

Same config, overrides and outputs (model-best, model-last) as `spacy train`; in addition the run
checkpoints every `--checkpoint-every` updates and on SIGTERM / Ctrl-C into DIR/checkpoint, and the
same command continues it (`electramed_spacy.training.resumable`).
"""
from pathlib import Path

import typer

from ._app import app
from .corpora import _fail


@app.command("train", rich_help_panel="Training and evaluation", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_command(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training config, e.g. configs/ner.cfg"),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: model-best, model-last, checkpoint"),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Updates between checkpoints (0: only on a signal and at the end)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    trim_heap: bool = typer.Option(True, "--trim-heap/--no-trim-heap", help="Hand freed memory back to the system after every update (glibc)"),
) -> None:
    """Train a pipeline as `spacy train` does; rerun the same command to continue a stopped or killed run."""
    from spacy.cli._util import parse_config_overrides

    from ..training.resumable import train

    if checkpoint_every < 0:
        _fail(f"--checkpoint-every must be 0 or more; got {checkpoint_every}.")
    if gpu_id >= 0:
        import spacy

        spacy.require_gpu(gpu_id)
    try:
        train(config_path, output, overrides=parse_config_overrides(ctx.args), checkpoint_every=checkpoint_every, use_gpu=gpu_id,
              trim=trim_heap)
    except ValueError as err:
        _fail(str(err))
