"""`electramed annotate PIPELINE INPUT OUTPUT`: run any spaCy pipeline over a corpus.

The logic lives in `electramed_spacy.annotate`; this command parses options and
turns bad input, options or paths into one line on stderr with exit code 1.
"""
import errno
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ._app import app
from .corpora import _fail


@app.command("annotate", rich_help_panel="Using pipelines")
def annotate_command(
    pipeline: str = typer.Argument(..., help="Installed pipeline name or pipeline folder (any spaCy pipeline)"),
    input_path: Path = typer.Argument(..., help="MEDLINE .xml/.xml.gz, PubTator, .jsonl ({id, text} per line), or a folder of them or of .txt files"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Output folder: part-NNNNNN shards, run.json, malformed.jsonl, summary.json"),
    input_format: str = typer.Option("auto", "--format", help="auto | medline | pubtator | jsonl | txt (a file per document) | lines (a document per line of .txt files)"),
    output_format: str = typer.Option("jsonl", "--output-format", help="jsonl (one record per document) | docbin (.spacy shards)"),
    shard_size: int = typer.Option(1000, "--shard-size", help="Documents per output shard (the unit of resumption)"),
    batch_size: int = typer.Option(64, "--batch-size", help="nlp.pipe batch size"),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with one pipeline (local engine, or a local Dask cluster)"),
    threads: int = typer.Option(0, "--threads", help="Torch threads per worker; 0: OMP_NUM_THREADS if set, else cores / workers"),
    engine: str = typer.Option("local", "--engine", help="local (spaCy's n_process) | dask (needs the package's dask extra)"),
    address: Optional[str] = typer.Option(None, "--address", help="Dask scheduler address (tcp://host:8786); none: a local cluster of --workers"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="Local engine: GPU to use (-1: CPU). Dask workers use their node's GPU when it has one"),
    on_error: str = typer.Option("count", "--on-error", help="Malformed records: count (skip, count and list them) | stop"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary (summary.json is still written)"),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", help="CPU: run the pipeline's encoders (electramed.Transformer.v1, MarkedPairRelationModel.v1, "
        "QAModel.v1) with int8 weights: dynamic_int8_per_channel (BC5CDR NER: F1 77.77 vs 77.82, 1.65x the words/s) "
        "or dynamic_int8 (F1 -0.65); marked-pair relations: 2.03x, micro-F1 -0.33. Not for QA (MRR 0.330 -> 0.294) nor "
        "relations on a shared encoder (v2: micro-F1 56.20 -> 45.79)"),
) -> None:
    """Annotate a corpus: JSON lines {id, text, entities, relations[, answers]} with character offsets, or DocBins.
    Output goes to shards written atomically; rerun the same command to resume after an interruption."""
    from ..annotate import annotate

    try:
        annotate(
            pipeline, input_path, output_dir, input_format=input_format, output_format=output_format,
            shard_size=shard_size, batch_size=batch_size, workers=workers, threads=threads, engine=engine,
            address=address, gpu_id=gpu_id, on_error=on_error, progress=not quiet, quantize=quantize,
        )
    except ValueError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        # the run has ended its workers and released its folder; os._exit skips waiting on the queues'
        # feeder threads of the killed workers (what made a first Ctrl-C hang)
        sys.stderr.write(f"✘ Interrupted; finished shards are kept in {output_dir}: rerun the same command to resume.\n")
        sys.stderr.flush()
        os._exit(130)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            _fail(f"{output_dir}: cannot write the output there ({err.strerror}); finished shards are kept: free space "
                  "(or choose another output folder) and rerun the same command to resume.")
        _fail(f"{err.filename if err.filename is not None else input_path}: cannot read or write it ({err.strerror or err}).")
