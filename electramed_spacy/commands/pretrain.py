"""`electramed vocab | shards | pretrain | export | init-model | probe`: ELECTRA pre-training from a config.

Every command takes a `configs/pretrain_*.cfg` plus `--section.key value` overrides and
works under `[paths] output`: vocab/, shards/, checkpoints/, model/ (the export), log.jsonl,
curves.png, config.cfg. Finished steps are skipped on a rerun. Multi-GPU / multi-node runs use
`accelerate launch -m electramed_spacy.pretraining.train CONFIG ...` (see that module).
The logic lives in `electramed_spacy.pretraining`; this module only parses arguments.
"""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..pretraining.errors import PretrainError
from ._app import app

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
CONFIG_ARG = typer.Argument(..., help="Pre-training config, e.g. configs/pretrain_tiny.cfg", exists=False, dir_okay=False)


def _load(config: Path, ctx: typer.Context):
    from ..pretraining.config import load_config, parse_overrides

    return load_config(config, parse_overrides(ctx.args))


def _fail(err: PretrainError) -> None:
    msg.fail(str(err))
    raise typer.Exit(1)


@app.command("vocab", rich_help_panel="Pre-training", context_settings=OVERRIDES)
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


@app.command("shards", rich_help_panel="Pre-training", context_settings=OVERRIDES)
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


@app.command("pretrain", rich_help_panel="Pre-training", context_settings=OVERRIDES)
def pretrain_cli(
    ctx: typer.Context, config: Path = CONFIG_ARG,
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint under paths.output"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over: remove an earlier run's vocab, shards, checkpoints, model"),
    resume_or_start: bool = typer.Option(False, "--resume-or-start", help="Resume when paths.output holds a checkpoint, start otherwise: one command for every stint of a long run"),
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


@app.command("export", rich_help_panel="Pre-training", context_settings=OVERRIDES)
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


@app.command("init-model", rich_help_panel="Pre-training", context_settings=OVERRIDES)
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


@app.command("probe", rich_help_panel="Pre-training")
def probe_cli(
    encoders: List[str] = typer.Argument(..., help="Encoder dirs (save_pretrained: BERT, ELECTRA, our exports), as PATH or NAME=PATH; the first is the reference"),
    train: Path = typer.Option(..., "--train", help="Token-level CoNLL (word<TAB>BIO tag) the linear tagger is fitted on"),
    dev: Path = typer.Option(..., "--dev", help="Token-level CoNLL it is scored on (entity P/R/F, exact spans)"),
    train_sentences: int = typer.Option(1000, help="First N sentences of --train; 0 = all"),
    dev_sentences: int = typer.Option(1000, help="First N sentences of --dev; 0 = all"),
    max_length: int = typer.Option(128, help="Wordpieces per sentence; words past it are tagged O"),
    steps: int = typer.Option(300, help="Full-batch Adam steps of the tagger"),
    lr: float = typer.Option(0.01),
    seed: int = typer.Option(0),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the scores (and the command) as JSON"),
):
    """Downstream probe of frozen encoders: a linear NER tagger on each one's last layer, entity F1 on --dev, and
    for each encoder after the first the F1 difference with a 95% paired-bootstrap interval over the dev sentences."""
    import json
    import sys

    from transformers import AutoModel, AutoTokenizer

    from ..pretraining.probe import paired_bootstrap, probe, read_conll

    try:
        train_data, dev_data = read_conll(train, train_sentences), read_conll(dev, dev_sentences)
    except PretrainError as err:
        _fail(err)
    results, counts = {}, {}
    for item in encoders:
        name, _, path = item.rpartition("=") if "=" in item else (item, "", item)
        if not Path(path).is_dir():
            msg.fail(f"{path} is not a directory: give a save_pretrained encoder dir (config.json, weights, vocab).")
            raise typer.Exit(1)
        msg.text(f"probing {name} ...")
        counts[name] = []
        results[name] = probe(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), train_data, dev_data,
                              max_length=max_length, steps=steps, lr=lr, seed=seed, counts=counts[name])
    reference = next(iter(results))
    for name in list(results)[1:]:
        results[name]["vs_" + reference] = paired_bootstrap(counts[reference], counts[name], seed=seed)
    rows = [(name, f"{100 * r['probe_f']:.2f}", f"{100 * r['probe_p']:.2f}", f"{100 * r['probe_r']:.2f}",
             "-" if name == reference else "{diff:+.2f} [{low:+.2f}, {high:+.2f}]".format(
                 **{k: 100 * v for k, v in r["vs_" + reference].items() if k != "samples"}))
            for name, r in results.items()]
    msg.table(rows, header=("encoder", "F1", "P", "R", f"F1 - {reference} [95%]"), divider=True)
    if output:
        output.write_text(json.dumps({"train": str(train), "dev": str(dev), "train_sentences": train_sentences,
                                      "dev_sentences": dev_sentences, "encoders": results, "command": sys.argv},
                                     indent=1) + "\n", encoding="utf8")


@app.command("interpolate", rich_help_panel="Pre-training")
def interpolate_command(
    start: str = typer.Argument(..., help="save_pretrained folder (or hub id) of the checkpoint at alpha = 0"),
    end: str = typer.Argument(..., help="The checkpoint at alpha = 1; the result has its architecture and tokenizer"),
    output: Path = typer.Argument(..., help="Folder for the interpolated encoder (must not exist)"),
    alpha: float = typer.Option(0.5, help="Weight of END, in [0, 1]"),
):
    """Average two encoders of one shape: every weight (1 - alpha) x START + alpha x END (WiSE-FT)."""
    from ..pretraining.interpolate import interpolate

    if output.exists():
        raise typer.BadParameter(f"{output}: exists; name a new folder")
    try:
        interpolate(start, end, alpha, output)
    except PretrainError as err:
        _fail(err)
    msg.good(f"{output}: {1 - alpha:g} x {start} + {alpha:g} x {end}")
