"""The `electramed annotate` run: records -> shards -> a pipeline -> shard files, resumable.

Records from `inputs.read_records` are checked (malformed ones counted with their
location in `OUTPUT/malformed.jsonl`, or the run stops at the first one with
`on_error="stop"`) and grouped into shards of `shard_size` consecutive records.
The record order is fixed by the input, so shard N holds the same records on
every run: a rerun skips the shards whose file exists and annotates the others,
and a run killed at any moment (SIGKILL included) then rerun gives exactly the
records of an uninterrupted run. `OUTPUT/run.json` keeps what shapes the output
(the pipeline's name, meta and a sha256 of its files' contents; each input file's
path below the input, size and a digest of its first and last 64 KiB; format,
shard size, max_length); a rerun with other settings or other weights is refused
rather than mixing outputs, and a corpus moved or copied elsewhere still resumes.
On resume the input is read again from the start (reading is fast next to the
pipeline) and only the finished shards' annotation is skipped.

Engines, each worker holding one pipeline:
* `local` (default): spaCy's `nlp.pipe(n_process=workers)`. Docs come back in
  input order, so a shard is written when its last Doc arrives. Memory is bounded
  by the shard being filled and spaCy's in-flight batches. Each worker gets
  `threads_per_worker` torch/BLAS threads (all cores shared out, or
  OMP_NUM_THREADS when set). A GPU (`gpu_id >= 0`) takes one worker. Workers
  die with the run: on Linux each is forked with a parent-death signal
  (SIGKILL), on Ctrl-C or SIGTERM the run ends them itself, and their process
  ids (with start times) are kept in `OUTPUT/.workers.json`, so a rerun after
  any kill ends a survivor by its pid. The output lock is not inherited by them.
* `dask`: `dask_engine.run_dask`, a local cluster or an existing one (`address`).

Throughput is reported as documents/s and words/s, words being spaCy tokens
(as `spacy benchmark speed` counts them).
"""
import ctypes
import hashlib
import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
from tqdm import tqdm

from .inputs import FORMATS, Item, Malformed, Record, portable, read_records, resolve_input
from .output import EXTENSIONS, ShardBuffer, as_input, open_output, shard_path, tmp_path, write_atomic

ON_ERROR = ("count", "stop")
ENGINES = ("local", "dask")
MALFORMED_LOG = "malformed.jsonl"
SUMMARY = "summary.json"
WORKERS = ".workers.json"
EDGE_BYTES = 65536  # an input file is recognised by its size and a digest of its first and last 64 KiB
Shard = Tuple[int, List[Record]]


@dataclass
class Summary:
    """What a run did. `documents`/`words` count this run; finished shards from an earlier run are `skipped_*`."""

    output: str = ""
    documents: int = 0
    words: int = 0
    entities: int = 0
    relations: int = 0
    shards_written: int = 0
    skipped_shards: int = 0
    skipped_documents: int = 0
    malformed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    workers: int = 1
    engine: str = "local"

    def add(self, stats: Dict[str, int]) -> None:
        self.shards_written += 1
        for key in ("documents", "words", "entities", "relations"):
            setattr(self, key, getattr(self, key) + stats.get(key, 0))

    def as_dict(self) -> Dict[str, object]:
        def rate(n: int) -> float:
            return round(n / self.seconds, 2) if self.seconds else 0.0

        return {**self.__dict__, "malformed": dict(self.malformed), "seconds": round(self.seconds, 2),
                "docs_per_s": rate(self.documents), "words_per_s": rate(self.words)}

    def print(self, examples: List[Malformed]) -> None:
        """The end-of-run summary, one fact per line (no wrapping, so logs grep well)."""
        d = self.as_dict()
        lines = [
            f"✔ Annotated {self.documents:,} documents ({self.words:,} words) in {d['seconds']} s: {d['docs_per_s']:,} docs/s, "
            f"{d['words_per_s']:,} words/s ({self.workers} worker(s), engine {self.engine})",
            f"  {self.entities:,} entities, {self.relations:,} relations; {self.shards_written} shards written, "
            f"{self.skipped_shards} already done ({self.skipped_documents:,} documents) in {self.output}",
        ]
        if self.malformed:
            lines.append(f"⚠ {sum(self.malformed.values()):,} malformed records skipped (all in {Path(self.output) / MALFORMED_LOG}):")
            lines += [f"  {n:,} x {reason}" for reason, n in self.malformed.most_common()]
            lines += [f"  e.g. {item.where}: {item.reason}" for item in examples]
        print("\n".join(lines))


def threads_per_worker(threads: int, workers: int) -> int:
    """`threads` if set, else OMP_NUM_THREADS if set, else the available cores shared out among the workers."""
    if threads > 0:
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def set_threads(n: int) -> None:
    """torch's intra-op threads (the transformer's matmuls) and the BLAS/OpenMP pools of processes started later."""
    import torch

    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def load_pipeline(pipeline: Union[str, Path], gpu_id: int = -1, quantize: Optional[str] = None) -> "spacy.language.Language":
    """The pipeline; with `quantize`, every encoder that can be quantized runs int8 (CPU inference)."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(pipeline)
        if quantize is None:
            return nlp
        return spacy.load(pipeline, config=quantize_overrides(nlp, quantize))
    except (OSError, ValueError) as err:  # spaCy's E050 "Can't find model" is an OSError
        raise ValueError(f"cannot load the pipeline {str(pipeline)!r}: {' '.join(str(err).split())}") from None


def quantize_overrides(nlp: "spacy.language.Language", mode: str) -> Dict[str, object]:
    """`spacy.load(..., config=...)` overrides that run each component whose model takes `quantize`
    (`electramed.Transformer.v1`, `electramed.MarkedPairRelationModel.v1`, `electramed.QAModel.v1`) with `quantize = mode` and float32
    activations (int8 and autocast do not combine). The saved weights stay float; they are quantized
    once, at the first batch."""
    from ..ml.transformer import QUANTIZE_MODES

    if mode not in QUANTIZE_MODES:
        raise ValueError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}; got {mode!r}.")
    names = [name for name, component in nlp.config["components"].items()
             if isinstance(component.get("model"), dict) and "quantize" in component["model"]]
    if not names:
        raise ValueError(f"--quantize: no component of this pipeline ({', '.join(nlp.pipe_names)}) has an encoder "
                         "that can be quantized (electramed.Transformer.v1, MarkedPairRelationModel.v1, QAModel.v1).")
    return {"components": {name: {"model": {"quantize": mode, "autocast": None}} for name in names}}


def _settings(pipeline, input_path, files, fmt, nlp, shard_size, output_format, quantize=None) -> Dict[str, object]:
    """What shapes the shards; a resumed run must match it (see module docstring)."""
    meta = nlp.meta
    folder = Path(pipeline) if Path(pipeline).is_dir() else (Path(nlp.path) if getattr(nlp, "path", None) else None)
    root = Path(input_path) if Path(input_path).is_dir() else Path(input_path).parent
    settings = {
        "pipeline_meta": f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')} {nlp.pipe_names}",
        "pipeline_sha256": _folder_sha256(folder) if folder is not None else None,
        "format": fmt,
        "files": [[portable(f.relative_to(root)), f.stat().st_size, _edges_sha1(f)] for f in files],
        "max_length": nlp.max_length,
        "shard_size": shard_size,
        "output_format": output_format,
    }
    if quantize:  # only when set: runs started without it still resume
        settings["quantize"] = quantize
    return settings


def _folder_sha256(folder: Path) -> str:
    """sha256 over every file's path and contents under a pipeline folder: other weights saved under the
    same name and version (or over the same folder) are another pipeline."""
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(portable(f.relative_to(folder)).encode("utf8") + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _edges_sha1(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(EDGE_BYTES)
        f.seek(max(0, path.stat().st_size - EDGE_BYTES))
        return hashlib.sha1(head + f.read(EDGE_BYTES)).hexdigest()


def _records(items: Iterable[Item], max_length: int, on_error: str, malformed: Callable[[Malformed], None]) -> Iterator[Record]:
    """The well-formed records; the others go to `malformed` (which raises with on_error='stop')."""
    for item in items:
        if isinstance(item, Record) and len(item.text) > max_length:
            item = Malformed(item.where, "text longer than the pipeline's max_length",
                             f"{len(item.text)} > {max_length} characters; split the document or raise nlp.max_length")
        elif isinstance(item, Record) and (surrogate := _lone_surrogate(item.text)) is not None:
            item = Malformed(f"{item.where} (id {item.id})", "text is not valid Unicode (a lone surrogate)",
                             f"U+{ord(item.text[surrogate]):04X} at character {surrogate}")
        if isinstance(item, Record):
            yield item
            continue
        malformed(item)
        if on_error == "stop":
            detail = f" ({item.detail})" if item.detail else ""
            raise ValueError(f"{item.where}: {item.reason}{detail}. Fix the record, or use --on-error count to skip and count such records.")


def _lone_surrogate(text: str) -> Optional[int]:
    """Offset of the first lone surrogate (a JSON escape such as \\ud800 decodes to one), else None."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as err:
        return err.start


def _pending(records: Iterable[Record], shard_size: int, output_dir: Path, output_format: str, summary: Summary) -> Iterator[Shard]:
    """Consecutive `shard_size` records numbered from 0, less the shards an earlier run finished."""
    for index, batch in enumerate(spacy.util.minibatch(records, shard_size)):
        if shard_path(output_dir, index, output_format).exists():
            summary.skipped_shards += 1
            summary.skipped_documents += len(batch)
        else:
            yield index, batch


def run_local(nlp, shards: Iterable[Shard], write: Callable, tick: Callable, *, workers: int, batch_size: int,
              output_format: str, output_dir: Optional[Path] = None) -> None:
    """spaCy's own worker processes; Docs return in input order, so a shard ends at its last record.
    Workers are recorded in OUTPUT/.workers.json and ended on any exception (Ctrl-C and SIGTERM included)."""
    def texts():
        for index, records in shards:
            for i, record in enumerate(records, start=1):
                yield as_input(nlp, record.text, record.question), (index, i == len(records), record.id)

    buffer = ShardBuffer(output_format)
    recorded = workers == 1 or output_dir is None
    try:
        with _workers_die_with_us(workers > 1):
            for doc, (index, last, doc_id) in nlp.pipe(texts(), as_tuples=True, n_process=workers, batch_size=batch_size):
                if not recorded:
                    recorded = _record_workers(output_dir)
                buffer.add(doc, doc_id)
                tick(1, len(doc))
                if last:
                    write(index, buffer.to_bytes(), buffer.stats)
                    buffer = ShardBuffer(output_format)
    except BaseException:
        end_workers()
        raise


_DEATH_SIGNAL = {"parent": None}


def _die_with_parent() -> None:
    """Runs in each process forked while a run has workers: SIGKILL it when the run's process dies
    (Linux `prctl(PR_SET_PDEATHSIG)`), and leave at once if the run died before this line."""
    parent = _DEATH_SIGNAL["parent"]
    if parent is None:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (AttributeError, OSError):  # not Linux: the rerun ends survivors by their recorded pids
        return
    if os.getppid() != parent:
        os._exit(1)


class _workers_die_with_us:
    """While active, processes forked by this one get the parent-death signal (`_die_with_parent`)."""

    registered = False

    def __init__(self, active: bool):
        self.active = active

    def __enter__(self):
        if self.active:
            if not _workers_die_with_us.registered and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_die_with_parent)
                _workers_die_with_us.registered = True
            _DEATH_SIGNAL["parent"] = os.getpid()
        return self

    def __exit__(self, *exc):
        _DEATH_SIGNAL["parent"] = None


def _record_workers(output_dir: Path) -> bool:
    """Write the live worker processes' (pid, start time) to OUTPUT/.workers.json; True once written."""
    import psutil

    rows = []
    for proc in multiprocessing.active_children():
        try:
            rows.append([proc.pid, psutil.Process(proc.pid).create_time()])
        except psutil.Error:
            continue
    write_atomic(output_dir / WORKERS, json.dumps(rows).encode("utf8"))
    return True


def end_stale_workers(output_dir: Path) -> int:
    """End the worker processes a killed run left (by the pid and start time it recorded); how many."""
    import psutil

    path = output_dir / WORKERS
    if not path.exists():
        return 0
    ended = 0
    for pid, started in json.loads(path.read_text(encoding="utf8") or "[]"):
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - started) < 0.01:  # the same process, not a reused pid
                proc.kill()
                proc.wait(5)
                ended += 1
        except psutil.Error:
            continue
    path.unlink()
    return ended


def end_workers() -> None:
    """Kill this process's worker processes now (they hold no output; their shards are rewritten on resume)."""
    for proc in multiprocessing.active_children():
        proc.kill()
    for proc in multiprocessing.active_children():
        proc.join(5)


def _check_options(input_format, output_format, shard_size, batch_size, workers, threads, engine, on_error, gpu_id) -> None:
    checks = [
        (input_format == "auto" or input_format in FORMATS, f"--format must be auto, {', '.join(FORMATS)}; got {input_format!r}."),
        (output_format in EXTENSIONS, f"--output-format must be {' or '.join(EXTENSIONS)}; got {output_format!r}."),
        (shard_size >= 1, f"--shard-size must be at least 1; got {shard_size}."),
        (batch_size >= 1, f"--batch-size must be at least 1; got {batch_size}."),
        (workers >= 1, f"--workers must be at least 1; got {workers}."),
        (threads >= 0, f"--threads must be 0 (automatic) or more; got {threads}."),
        (engine in ENGINES, f"--engine must be {' or '.join(ENGINES)}; got {engine!r}."),
        (on_error in ON_ERROR, f"--on-error must be {' or '.join(ON_ERROR)}; got {on_error!r}."),
        (gpu_id < 0 or workers == 1 or engine != "local",
         "--gpu-id with --workers > 1: spaCy's worker processes share one GPU badly; use --workers 1, or --engine dask with a worker per GPU."),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def annotate(
    pipeline: Union[str, Path],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    input_format: str = "auto",
    output_format: str = "jsonl",
    shard_size: int = 1000,
    batch_size: int = 64,
    workers: int = 1,
    threads: int = 0,
    engine: str = "local",
    address: Optional[str] = None,
    gpu_id: int = -1,
    on_error: str = "count",
    progress: bool = True,
    quantize: Optional[str] = None,
) -> Summary:
    """Annotate every record of `input_path` with `pipeline` into shards under `output_dir` (see the module docstring)."""
    _check_options(input_format, output_format, shard_size, batch_size, workers, threads, engine, on_error, gpu_id)
    output_dir = Path(output_dir)
    files, fmt = resolve_input(input_path, input_format, exclude=output_dir)
    n_threads = threads_per_worker(threads, workers)
    set_threads(n_threads)
    if quantize is not None and gpu_id >= 0:
        raise ValueError("--quantize is for CPU inference (torch's dynamic int8 kernels); leave out --gpu-id or --quantize.")
    nlp = load_pipeline(pipeline, gpu_id if engine == "local" else -1, quantize)
    settings = _settings(pipeline, input_path, files, fmt, nlp, shard_size, output_format, quantize)
    lock = open_output(output_dir, settings)
    end_stale_workers(output_dir)
    summary = Summary(output=str(output_dir), workers=workers, engine=engine)
    examples: List[Malformed] = []
    log_path = tmp_path(output_dir / MALFORMED_LOG)
    bar = tqdm(unit=" docs", desc="annotate", disable=not progress, mininterval=1.0)
    start = time.perf_counter()

    def malformed(item: Malformed) -> None:
        summary.malformed[item.reason] += 1
        log.write(json.dumps(item._asdict(), ensure_ascii=False) + "\n")
        if len(examples) < 5:
            examples.append(item)

    def write(index: int, data: bytes, stats: Dict[str, int]) -> None:
        write_atomic(shard_path(output_dir, index, output_format), data)
        summary.add(stats)

    def tick(documents: int, words: int) -> None:
        nonlocal n_words
        n_words += words
        bar.update(documents)
        bar.set_postfix_str(f"{n_words / max(time.perf_counter() - start, 1e-9):,.0f} words/s", refresh=False)

    n_words = 0
    previous_sigterm = _sigterm_raises()
    try:
        with open(log_path, "w", encoding="utf8") as log:
            records = _records(read_records(files, fmt), nlp.max_length, on_error, malformed)
            shards = _pending(records, shard_size, output_dir, output_format, summary)
            if engine == "local":
                run_local(nlp, shards, write, tick, workers=workers, batch_size=batch_size, output_format=output_format,
                          output_dir=output_dir)
            else:
                from .dask_engine import run_dask

                overrides = quantize_overrides(nlp, quantize) if quantize else None
                del nlp  # the workers hold the pipelines
                summary.workers = run_dask(str(Path(pipeline).resolve()) if Path(pipeline).exists() else str(pipeline), shards, write, tick, address=address, workers=workers,
                                           threads=n_threads, batch_size=batch_size, output_format=output_format,
                                           config=overrides)
        os.replace(log_path, output_dir / MALFORMED_LOG)
        summary.seconds = time.perf_counter() - start
        write_atomic(output_dir / SUMMARY, json.dumps(summary.as_dict(), indent=2).encode("utf8"))
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        bar.close()
        lock.close()
    if progress:
        summary.print(examples)
    if summary.documents + summary.skipped_documents == 0:
        found = f"{sum(summary.malformed.values()):,} malformed records (see {output_dir / MALFORMED_LOG})" if summary.malformed else "no records"
        raise ValueError(f"{input_path}: nothing was annotated: {found} in {len(files)} {fmt} file(s). Check --format "
                         f"({', '.join(FORMATS)}) and that the records have text.")
    return summary


def _sigterm_raises():
    """In the main thread, SIGTERM raises KeyboardInterrupt (so the run ends its workers and releases its
    lock, as on Ctrl-C); returns the handler to restore, or None elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)
