"""`electramed annotate --engine dask`: the same shards, annotated by a Dask cluster.

Why Dask and not Ray: both give one long-lived pipeline per worker process and a
local mode that is the cluster code path. Dask (`dask[distributed]`) is pure
Python: its wheels are ~2.5 MB and the extra installs ~34 MB with its
dependencies (measured here), and its workers are plain processes started with
`dask worker` (or by any HPC/Kubernetes launcher: dask-jobqueue, dask-kubernetes).
Ray's wheel alone is ~79 MB (ray 2.60, cp311, measured) and runs its own
daemons (raylet, GCS, object store) on every node, which buys nothing for a job
that is independent shards of text. Install with `pip install electramed-spacy[dask]`.

Layout: the client (the `electramed annotate` process) reads the input, groups
records into shards (`run.py`), submits one task per unfinished shard, and
writes each result atomically as it completes. Workers need the pipeline
(installed, or at the same path) but no shared filesystem: texts go out and
serialized shards come back through Dask. At most two shards per worker are in
flight, so client memory stays bounded whatever the corpus size. A task lost
with its worker is rerun by Dask; a finished shard is never redone.

Each worker loads the pipeline once (`PipelinePlugin.setup`), uses the node's GPU
when it has one (`spacy.prefer_gpu`), runs one shard at a time, and gives torch
as many threads as the worker has Dask threads, so
`dask worker ADDRESS --nworkers 4 --nthreads 4` on a 16-core node means 4
pipelines x 4 threads. The local cluster (no `address`) starts `workers` such
processes with `threads` threads each.
"""
import logging
import threading
from typing import Callable, Dict, Iterable, List, Optional, Tuple

try:
    from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker
except ImportError:  # the optional extra is absent: only `run_dask` says so, with the fix
    WorkerPlugin = object

from .output import ShardBuffer, as_input

PLUGIN = "electramed-annotate"
MISSING = "--engine dask needs Dask: pip install 'electramed-spacy[dask]' (or 'dask[distributed]'), or use --engine local."


class PipelinePlugin(WorkerPlugin):
    """One pipeline per worker, loaded when the worker starts (or joins the cluster later)."""

    def __init__(self, pipeline: str, batch_size: int, config: Optional[dict] = None):
        self.pipeline, self.batch_size, self.config = pipeline, batch_size, config
        self.nlp = None
        self.lock = threading.Lock()

    def setup(self, worker) -> None:
        import spacy
        import torch

        torch.set_num_threads(max(1, worker.state.nthreads))
        spacy.prefer_gpu()
        try:
            self.nlp = spacy.load(self.pipeline, config=self.config or {})
        except (OSError, ValueError) as err:
            raise ValueError(f"worker {worker.address}: cannot load the pipeline {self.pipeline!r} ({' '.join(str(err).split())}); "
                             "install it on every worker or put it at the same path there.") from None

    def __getstate__(self):  # sent to workers before setup: no pipeline, no lock
        return {"pipeline": self.pipeline, "batch_size": self.batch_size, "config": self.config}

    def __setstate__(self, state) -> None:
        self.__init__(**state)


def annotate_shard(index: int, items: List[Tuple[str, str, Optional[str]]], output_format: str) -> Tuple[int, bytes, Dict[str, int]]:
    """Task: (text, id, question) of each record of one shard -> (index, serialized shard, counts)."""
    plugin = get_worker().plugins[PLUGIN]
    buffer = ShardBuffer(output_format)
    with plugin.lock:  # one shard at a time: the pipeline is not shared between threads
        inputs = [(as_input(plugin.nlp, text, question), doc_id) for text, doc_id, question in items]
        for doc, doc_id in plugin.nlp.pipe(inputs, as_tuples=True, batch_size=plugin.batch_size):
            buffer.add(doc, doc_id)
    return index, buffer.to_bytes(), dict(buffer.stats)


def run_dask(pipeline: str, shards: Iterable, write: Callable, tick: Callable, *, address: Optional[str], workers: int,
             threads: int, batch_size: int, output_format: str, config: Optional[dict] = None) -> int:
    """Annotate `shards` on the cluster at `address` (or a local one of `workers`); returns the number of workers.
    `config`: `spacy.load` overrides each worker applies (e.g. `--quantize`)."""
    if WorkerPlugin is object:
        raise ValueError(MISSING)
    cluster = None
    if address:
        try:
            client = Client(address)
        except OSError as err:
            raise ValueError(f"cannot reach the Dask scheduler at {address} ({err}); start it with `dask scheduler` "
                             "and give the address it prints, or leave --address out for a local cluster.") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)  # any free port: 8787 may be taken
        client = Client(cluster)
    try:
        client.register_plugin(PipelinePlugin(pipeline, batch_size, config), name=PLUGIN)
        client.wait_for_workers(1)
        in_flight = as_completed()

        def collect(future) -> None:
            index, data, stats = future.result()
            write(index, data, stats)
            tick(stats.get("documents", 0), stats.get("words", 0))

        for index, records in shards:
            in_flight.add(client.submit(annotate_shard, index, [(r.text, r.id, r.question) for r in records], output_format, pure=False))
            while in_flight.count() >= 2 * max(1, len(client.nthreads())):
                collect(next(in_flight))
        for future in in_flight:
            collect(future)
        return len(client.nthreads())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
