"""Does the shard builder stream? Throughput and peak memory of `electramed pretrain`'s data step
on a synthetic corpus N times the real one (issue 13, "scale on paper, checked small").

The corpus (../shared/data/pretrain, 31 MB) is repeated N times into ONE file outside the repository
(streamed in 1 MiB blocks; one big file is the hard case for `scan_corpus`, like a PubMed dump
concatenated into one text file). Each measurement runs the real code path of `prepare_data`
(`scan_corpus` -> `build_shards`, the vocabulary wrapped from SciVocab once beforehand) in a fresh
subprocess with `[corpus] num_workers` = 1 or 2, and records:

- wall time of the scan and of the tokenisation, MB of text (1e6 bytes) per second, per worker,
  and per CPU-second (user + system of the whole process tree: the fair "per core" figure on a
  machine that other jobs share);
- peak RSS: VmHWM of the builder's main process (read by itself at the end) and of its largest
  worker, and the peak of the summed VmRSS of the whole process tree, both sampled from /proc
  every 0.1 s (not ru_maxrss: Linux carries the parent's peak across fork + exec into it);
- shards, sequences and tokens written, and the load average before and after.

Memory should stay flat from 1x to 20x: a worker holds one byte range (~`shard_chars`) and its
rows; the main process holds only the list of ranges.

    python benchmarks/pretraining/shard_scale.py --factors 1,5,20 --workers 1,2 [--large-workers 1] \\
        [--workdir /tmp/electramed_shard_scale] [--config configs/pretrain_small.cfg] \\
        [--out benchmarks/pretraining/results/shard_scale.json] [--keep]

The synthetic corpus and the shards are deleted after each measurement unless `--keep`.
Run by hand; numbers go to the README, never into asserts.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
MB = 1e6


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _status(pid: str) -> Dict[str, str]:
    """/proc/PID/status as a dict (raises OSError once the process is gone)."""
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)


def _kb(fields: Dict[str, str], key: str) -> int:
    return int(fields.get(key, "0 kB").split()[0]) * 1024


def _tree_memory(root: int, hwm: Dict[int, int]) -> int:
    """Sum of VmRSS (bytes) over `root` and its descendants, read from /proc; updates `hwm`
    (pid -> largest VmHWM seen) for each of them."""
    children: Dict[int, List[int]] = {}
    rss: Dict[int, int] = {}
    peaks: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _status(entry)
        except OSError:
            continue
        pid, ppid = int(entry), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        rss[pid], peaks[pid] = _kb(fields, "VmRSS"), _kb(fields, "VmHWM")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        hwm[pid] = max(hwm.get(pid, 0), peaks.get(pid, 0))
        stack.extend(children.get(pid, []))
    return total


def make_corpus(sources: List[Path], factor: int, out: Path) -> int:
    """`factor` copies of the source files, one after the other, in one file; a blank line between
    copies keeps every document whole. Streamed: never more than 1 MiB in memory."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as dst:
        for _ in range(factor):
            for src in sources:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, dst, 1 << 20)
                dst.write(b"\n\n")
    return out.stat().st_size


def child(args: argparse.Namespace) -> None:
    """One measurement, in its own process: the code path of `prepare_data` after the vocabulary."""
    sys.path.insert(0, str(REPO))
    from electramed_spacy.pretraining.config import load_config
    from electramed_spacy.pretraining.data import build_shards, scan_corpus

    cfg = load_config(args.config, {"corpus.num_workers": args.num_workers})
    files = [Path(args.corpus_file)]
    t0 = time.perf_counter()
    ranges = scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
    t1 = time.perf_counter()
    manifest = build_shards(files, args.vocab_dir, args.shard_dir, cfg["corpus"], progress=False, ranges=ranges)
    t2 = time.perf_counter()
    print(json.dumps({
        "scan_s": t1 - t0, "build_s": t2 - t1, "ranges": len(ranges),
        "shards": len(manifest["shards"]), "sequences": manifest["sequences"], "tokens": manifest["tokens"],
        "shard_bytes": sum((Path(args.shard_dir) / m["file"]).stat().st_size for m in manifest["shards"]),
        "main_peak_rss_mb": _kb(_status("self"), "VmHWM") / MB,
    }))


def measure(corpus_file: Path, vocab_dir: Path, shard_dir: Path, config: str, num_workers: int) -> Dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = _loadavg()
    cmd = [sys.executable, __file__, "--child", "--corpus-file", str(corpus_file), "--vocab-dir", str(vocab_dir),
           "--shard-dir", str(shard_dir), "--config", config, "--num-workers", str(num_workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    tree_peak, hwm = 0, {}
    while proc.poll() is None:
        tree_peak = max(tree_peak, _tree_memory(proc.pid, hwm))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"the shard builder failed (exit {proc.returncode}): {' '.join(cmd)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.strip().splitlines()[-1])
    worker_hwm = [v for pid, v in hwm.items() if pid != proc.pid]
    text_mb = corpus_file.stat().st_size / MB
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.update({
        "num_workers": num_workers, "text_mb": round(text_mb, 1), "wall_s": round(wall, 1),
        "cpu_s": round(cpu_s, 1),
        "mb_per_s": round(text_mb / (result["scan_s"] + result["build_s"]), 2),
        "mb_per_s_per_worker": round(text_mb / (result["scan_s"] + result["build_s"]) / min(num_workers, result["ranges"]), 2),
        "mb_per_cpu_s": round(text_mb / cpu_s, 2),
        "scan_mb_per_s": round(text_mb / result["scan_s"], 1),
        # null with num_workers = 1: the main process tokenises itself, no worker is started
        "worker_peak_rss_mb": round(max(worker_hwm) / MB, 1) if worker_hwm else None,
        "tree_peak_rss_mb": round(tree_peak / MB, 1),
        "loadavg_before": load_before, "loadavg_after": _loadavg(),
    })
    for key in ("scan_s", "build_s", "main_peak_rss_mb"):
        result[key] = round(result[key], 1)
    result["shard_mb"] = round(result.pop("shard_bytes") / MB, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factors", default="1,20", help="corpus sizes, as multiples of the real corpus")
    p.add_argument("--workers", default="1,2", help="[corpus] num_workers values to measure")
    p.add_argument("--large-workers", default=None, help="num_workers values for the factors above the smallest "
                   "(default: --workers; on a busy machine, 1 keeps the big runs short)")
    p.add_argument("--corpus", default=str(SHARED / "pretrain"), help="the real corpus (a directory of .txt files)")
    p.add_argument("--vocab", default=str(SHARED / "vocab" / "electramed_scivocab_uncased.txt"))
    p.add_argument("--config", default="configs/pretrain_small.cfg", help="its [corpus] section is used")
    p.add_argument("--workdir", default="/tmp/electramed_shard_scale", help="outside the repository")
    p.add_argument("--out", default="benchmarks/pretraining/results/shard_scale.json")
    p.add_argument("--keep", action="store_true", help="keep the synthetic corpora and shards")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--corpus-file", help=argparse.SUPPRESS)
    p.add_argument("--vocab-dir", help=argparse.SUPPRESS)
    p.add_argument("--shard-dir", help=argparse.SUPPRESS)
    p.add_argument("--num-workers", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    workdir = Path(args.workdir).resolve()
    if workdir == REPO or REPO in workdir.parents:
        raise SystemExit(f"--workdir {workdir} is inside the repository; give a path outside it (e.g. /tmp/...).")
    sys.path.insert(0, str(REPO))
    from electramed_spacy.pretraining.config import load_config
    from electramed_spacy.pretraining.data import resolve_corpus
    from electramed_spacy.pretraining.vocab import build_vocab

    cfg = load_config(args.config)
    sources = resolve_corpus(args.corpus)
    vocab_dir = workdir / "vocab"
    build_vocab(sources, vocab_dir, vocab_file=args.vocab, lowercase=cfg["corpus"]["lowercase"], size=cfg["vocab"]["size"],
                min_frequency=cfg["vocab"]["min_frequency"], max_seq_length=cfg["corpus"]["max_seq_length"])
    factors = [int(f) for f in args.factors.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    large_workers = [int(w) for w in (args.large_workers or args.workers).split(",")]
    free_gb = shutil.disk_usage(workdir).free / 1e9
    need_gb = max(factors) * sum(s.stat().st_size for s in sources) * 2 / 1e9  # text + shards (uint16 rows ~ text size)
    if need_gb > free_gb * 0.8:
        raise SystemExit(f"{workdir} has {free_gb:.1f} GB free; the {max(factors)}x run needs about {need_gb:.1f} GB.")

    runs = []
    for factor in factors:
        corpus_file = workdir / f"corpus_{factor}x" / "pubmed.txt"
        t0 = time.perf_counter()
        size = make_corpus(sources, factor, corpus_file)
        print(f"{factor}x: {size / MB:.1f} MB of text written in {time.perf_counter() - t0:.1f} s -> {corpus_file}", flush=True)
        for n in workers if factor == min(factors) else large_workers:
            shard_dir = workdir / f"shards_{factor}x_w{n}"
            if shard_dir.exists():
                shutil.rmtree(shard_dir)  # a rerun must tokenise, not skip finished shards
            r = {"factor": factor, **measure(corpus_file, vocab_dir, shard_dir, args.config, n)}
            runs.append(r)
            print(json.dumps(r), flush=True)
            if not args.keep:
                shutil.rmtree(shard_dir)
        if not args.keep:
            shutil.rmtree(corpus_file.parent)
    if not args.keep:
        shutil.rmtree(vocab_dir)
        if not any(workdir.iterdir()):
            workdir.rmdir()

    corpus_keys = ("format", "max_seq_length", "short_seq_prob", "shard_chars", "lowercase")
    result = {
        "what": "scan_corpus + build_shards (the data step of `electramed pretrain`) on N x the real corpus, one file",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "config": args.config, "corpus_settings": {k: cfg["corpus"][k] for k in corpus_keys},
        "vocab": args.vocab, "source_mb": round(sum(s.stat().st_size for s in sources) / MB, 1),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": runs,
    }
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
