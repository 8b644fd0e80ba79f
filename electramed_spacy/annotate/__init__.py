"""Annotate a corpus with any spaCy pipeline: streaming, sharded, resumable, one machine or a Dask cluster.

`inputs` reads MEDLINE XML / PubTator / JSON lines / .txt folders as records,
`output` turns Docs into JSON-lines records or DocBins and writes shards
atomically, `run` drives a run (`annotate`), `dask_engine` runs it on Dask.
The `electramed annotate` command (electramed_spacy/commands/annotate.py) is a
thin wrapper. Built for running the ELECTRAMed pipelines (arXiv:2104.09585) over
PubMed, but nothing here depends on them.
"""
from .run import Summary, annotate

__all__ = ["annotate", "Summary"]
