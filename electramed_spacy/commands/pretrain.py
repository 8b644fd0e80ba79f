"""`electramed vocab | shards | pretrain | export | init-model`: ELECTRA pre-training from a config.

Every command takes a `configs/pretrain_*.cfg` plus `--section.key value` overrides and
works under `[paths] output`: vocab/, shards/, checkpoints/, model/ (the export), log.jsonl,
curves.png, config.cfg. Finished steps are skipped on a rerun. Multi-GPU / multi-node runs use
`accelerate launch -m electramed_spacy.pretraining.train CONFIG ...` (see that module).
The logic lives in `electramed_spacy.pretraining`; this module only parses arguments.
"""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ._app import app
from ..pretraining.errors import PretrainError

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
CONFIG_ARG = typer.Argument(..., help="Pre-training config, e.g. configs/pretrain_tiny.cfg", exists=False, dir_okay=False)


def _load(config: Path, ctx: typer.Context):
    from ..pretraining.config import load_config, parse_overrides

    return load_config(config, parse_overrides(ctx.args))


def _fail(err: PretrainError) -> None:
    msg.fail(str(err))
    raise typer.Exit(1)


@app.command("vocab", context_settings=OVERRIDES)
def vocab_cli(ctx: typer.Context, config: Path = CONFIG_ARG):
    """Train a WordPiece vocabulary on paths.corpus, or wrap paths.vocab (a vocab.txt), into OUTPUT/vocab."""
    from ..pretraining.data import resolve_corpus, scan_corpus
    from ..pretraining.prepare import prepare_vocab

    try:
        cfg = _load(config, ctx)
        files = resolve_corpus(cfg["paths"]["corpus"])
        scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
        out = prepare_vocab(cfg, files)
    except PretrainError as err:
        _fail(err)
    msg.good(f"Vocabulary in {out}")


@app.command("shards", context_settings=OVERRIDES)
def shards_cli(ctx: typer.Context, config: Path = CONFIG_ARG):
    """Tokenise paths.corpus into memory-mapped packed-sequence shards in OUTPUT/shards (vocab first if needed)."""
    from ..pretraining.prepare import prepare_data

    try:
        cfg = _load(config, ctx)
        data = prepare_data(cfg, progress=cfg["training"]["progress_bar"])
    except PretrainError as err:
        _fail(err)
    m = data["manifest"]
    msg.good(f"{m['sequences']:,} sequences, {m['tokens']:,} tokens in {len(m['shards'])} shards under {Path(cfg['paths']['output']) / 'shards'}")


@app.command("pretrain", context_settings=OVERRIDES)
def pretrain_cli(
    ctx: typer.Context, config: Path = CONFIG_ARG,
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint under paths.output"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over: remove an earlier run's vocab, shards, checkpoints, model"),
    resume_or_start: bool = typer.Option(False, "--resume-or-start", help="Resume when paths.output holds a checkpoint, start otherwise: one command for every session of a long run"),
    remap_data_position: bool = typer.Option(False, "--remap-data-position", help="On resume, accept another global batch (batch_size x processes x grad_accum_steps) than the checkpoint's: continue from its data position with the new batch"),
):
    """ELECTRA pre-training (vocab -> shards -> train -> export to OUTPUT/model). Ctrl-C checkpoints and stops."""
    from ..pretraining.checkpoint import latest_checkpoint
    from ..pretraining.train import pretrain

    try:
        cfg = _load(config, ctx)
        if resume_or_start and (resume or overwrite):
            raise PretrainError("--resume-or-start decides by itself whether to resume: drop --resume / --overwrite.")
        if resume_or_start:
            resume = latest_checkpoint(Path(cfg["paths"]["output"])) is not None
            msg.info(f"{'Resuming' if resume else 'Starting'} {cfg['paths']['output']}")
        summary = pretrain(cfg, resume=resume, overwrite=overwrite, remap_data_position=remap_data_position)
    except PretrainError as err:
        _fail(err)
    if "model_dir" in summary:
        msg.good(f"Pre-trained model: {summary['model_dir']}")


@app.command("export", context_settings=OVERRIDES)
def export_cli(
    ctx: typer.Context, config: Path = CONFIG_ARG,
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A checkpoints/step_* dir (default: newest)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Export dir (default: OUTPUT/model)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the export dir if it exists and is not empty"),
):
    """Export a checkpoint as a save_pretrained ElectraModel dir (+ generator/, tokenizer, model card)."""
    from ..pretraining.export import export_checkpoint

    try:
        out = export_checkpoint(_load(config, ctx), checkpoint=checkpoint, output=output, overwrite=overwrite)
    except PretrainError as err:
        _fail(err)
    msg.good(f"Exported to {out}")


@app.command("init-model", context_settings=OVERRIDES)
def init_model_cli(
    ctx: typer.Context, config: Path = CONFIG_ARG,
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the random model"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Default: training.seed"),
):
    """Vocabulary trained on the corpus + a randomly initialised ElectraModel (model.* sizes), for baselines."""
    from ..pretraining.export import init_model

    try:
        out = init_model(_load(config, ctx), output, seed=seed)
    except PretrainError as err:
        _fail(err)
    msg.good(f"Random ELECTRA model in {out}")
