"""Corpus -> packed token sequences -> memory-mapped `.npy` shards.

Follows ELECTRA's `build_pretraining_dataset.py` (Clark et al. 2020, arXiv:2003.10555):
sentences of one document are packed into `[CLS] A [SEP] B [SEP]` sequences of up to
`max_seq_length` wordpieces, a new document always starts a new sequence, and a small
share of sequences gets a shorter target length. One deliberate difference: a sentence
that does not fit is carried over to the next sequence instead of being cut off, so no
text is lost and ids decode back to the corpus (tested).

Input: text files, one sentence per line and a blank line between documents (the
ELECTRAMed/BERT format), or `format = "raw"` free text split at sentence ends.

Work is streamed: a quick scan validates the files (UTF-8, line length, not empty) and
cuts them into byte ranges of about `shard_chars` at document boundaries; worker
processes then tokenise one range each into `shard_NNNNN.npy` (uint16 when the
vocabulary fits, else int32). Every shard is written to a temporary name and renamed,
and its `.json` marker is written last, so a rerun skips finished shards and a kill
never leaves a half shard behind.
"""
import functools
import glob
import hashlib
import json
import multiprocessing
import os
import random
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from .errors import PretrainError

SHARD_SPEC = "spec.json"
MANIFEST = "manifest.json"
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


# ---------------------------------------------------------------- corpus files
def resolve_corpus(corpus: Union[str, Sequence[str]]) -> List[Path]:
    """Files named by a path, a glob or a list of them, in a stable order."""
    patterns = [corpus] if isinstance(corpus, str) else list(corpus)
    files: List[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern))) if any(c in str(pattern) for c in "*?[") else [str(pattern)]
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
            elif path.exists():
                files.append(path)
            else:
                raise PretrainError(f"Corpus file {path} does not exist (cwd: {Path.cwd()}). Fix [paths] corpus.")
    if not files:
        raise PretrainError(f"[paths] corpus = {corpus!r} matches no files (cwd: {Path.cwd()}).")
    return files


def scan_corpus(files: Sequence[Path], *, max_line_chars: int, shard_chars: int) -> List[Dict[str, Any]]:
    """Validate every file and cut it into byte ranges that end at document boundaries.

    Raises one PretrainError, before any tokenisation, for bytes that are not UTF-8
    (file:line), a line longer than `max_line_chars`, or a corpus without text.
    """
    ranges: List[Dict[str, Any]] = []
    any_text = False
    for path in files:
        start = offset = 0
        size_since = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf8")
                except UnicodeDecodeError as err:
                    raise PretrainError(
                        f"{path}:{lineno}: bytes that are not UTF-8 at column {err.start + 1} "
                        f"({raw[max(0, err.start - 10):err.start + 10]!r}). Convert the file to UTF-8, "
                        f"e.g. `iconv -f latin1 -t utf8 {path} > fixed.txt`."
                    ) from None
                if len(line) > max_line_chars:
                    raise PretrainError(
                        f"{path}:{lineno}: a line of {len(line):,} characters, over [corpus] max_line_chars = "
                        f"{max_line_chars:,}. Is this really text with one sentence (or paragraph) per line? "
                        f"Split it, or raise max_line_chars."
                    )
                offset += len(raw)
                stripped = line.strip()
                any_text = any_text or bool(stripped)
                size_since += len(raw)
                at_doc_end = not stripped
                if size_since >= shard_chars and (at_doc_end or size_since >= 2 * shard_chars):
                    ranges.append({"source": str(path), "start": start, "end": offset})
                    start, size_since = offset, 0
        if offset > start:
            ranges.append({"source": str(path), "start": start, "end": offset})
    if not any_text:
        raise PretrainError(f"The corpus is empty: {', '.join(map(str, files))} contain no text. Fix [paths] corpus.")
    return ranges


def iter_documents(text: str, *, fmt: str) -> Iterator[List[str]]:
    """Documents (lists of sentences) from text with blank lines between documents."""
    doc: List[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if doc:
                yield doc
            doc = []
        elif fmt == "raw":
            doc.extend(s for s in _SENT_END.split(line) if s.strip())
        else:
            doc.append(line)
    if doc:
        yield doc


def iter_corpus_lines(files: Sequence[Path]) -> Iterator[str]:
    """Non-blank lines, streamed (for vocabulary training)."""
    for path in files:
        with open(path, encoding="utf8") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line


# ---------------------------------------------------------------- packing
class SequencePacker:
    """ELECTRA's ExampleBuilder: sentences -> `[CLS] A [SEP] B [SEP]`, never crossing documents."""

    def __init__(self, *, max_len: int, cls_id: int, sep_id: int, pad_id: int, short_seq_prob: float, rng: random.Random):
        self.max_len, self.cls_id, self.sep_id, self.pad_id = max_len, cls_id, sep_id, pad_id
        self.short_seq_prob, self.rng = short_seq_prob, rng
        self.sentences: List[List[int]] = []
        self.length = 0
        self.target = self._new_target()

    def _new_target(self) -> int:
        # the body length (without the 3 specials) this sequence aims for
        if self.rng.random() < self.short_seq_prob:
            return self.rng.randint(5, self.max_len) - 3 if self.max_len > 8 else self.max_len - 3
        return self.max_len - 3

    def add_sentence(self, ids: List[int]) -> List[np.ndarray]:
        out = []
        body = self.max_len - 3
        # a sentence longer than a whole sequence is split into sequence-sized pieces
        pieces = [ids[i:i + body] for i in range(0, len(ids), body)] or []
        for piece in pieces:
            if self.sentences and self.length + len(piece) > self.target:
                out.append(self.flush())
            self.sentences.append(piece)
            self.length += len(piece)
        if self.length >= self.target:
            out.append(self.flush())
        return out

    def end_document(self) -> List[np.ndarray]:
        return [self.flush()] if self.sentences else []

    def flush(self) -> np.ndarray:
        first_target = self.target // 2
        first: List[int] = []
        second: List[int] = []
        for i, sentence in enumerate(self.sentences):
            # ELECTRA: first segment while it is empty or under target (or, 50% of the time, just over);
            # sentences stay in order so the sequence is contiguous text
            if not second and (not first or len(first) + len(sentence) < first_target or (len(first) < first_target and self.rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        ids = [self.cls_id] + first + [self.sep_id] + (second + [self.sep_id] if second else [])
        row = np.full(self.max_len, self.pad_id, dtype=np.int64)
        row[: len(ids)] = ids
        self.sentences, self.length = [], 0
        self.target = self._new_target()
        return row


def token_type_ids(input_ids: np.ndarray, sep_id: int) -> np.ndarray:
    """Segment ids derived from the ids: 1 after the first [SEP] (so shards store ids only). (batch, length)"""
    is_sep = input_ids == sep_id
    return ((np.cumsum(is_sep, axis=-1) - is_sep) >= 1).astype(np.int64)


# ---------------------------------------------------------------- shards
def fingerprint(path: Path) -> str:
    """A short sha1 of a file: the vocabulary identity checkpoints and shards are checked against."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def shard_spec(files: Sequence[Path], tokenizer_dir: Path, corpus_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Everything the shards depend on; a rerun with a different spec is refused. Files count by content
    (sha1), not modification time: a corpus copied or re-synced between sessions still resumes."""
    return {
        "files": [{"path": str(p), "bytes": p.stat().st_size, "sha1": fingerprint(p)} for p in files],
        "vocab_sha1": fingerprint(tokenizer_dir / "tokenizer.json"),
        **{k: corpus_cfg[k] for k in ("format", "max_seq_length", "short_seq_prob", "shard_chars", "seed")},
    }


def spec_changes(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """The keys of two shard specs that differ. A spec written before files carried their sha1 (it has their
    mtime instead) matches on path and size: its content cannot be checked, and a new mtime alone is no change."""
    changed = [k for k in sorted(set(old) | set(new)) if k != "files" and old.get(k) != new.get(k)]
    legacy = any("sha1" not in f for f in old.get("files", []))
    fields = ("path", "bytes") if legacy else ("path", "bytes", "sha1")
    if [[f.get(k) for k in fields] for f in old.get("files", [])] != [[f.get(k) for k in fields] for f in new["files"]]:
        changed.append("files")
    return sorted(changed)


def _build_shard(job: Dict[str, Any]) -> Dict[str, Any]:
    """One worker task: tokenise a byte range and write `shard_NNNNN.npy` atomically."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(job["tokenizer"])
    with open(job["source"], "rb") as f:
        f.seek(job["start"])
        text = f.read(job["end"] - job["start"]).decode("utf8")
    special = {t: tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")}
    packer = SequencePacker(
        max_len=job["max_seq_length"], cls_id=special["[CLS]"], sep_id=special["[SEP]"], pad_id=special["[PAD]"],
        short_seq_prob=job["short_seq_prob"], rng=random.Random(job["seed"] * 100003 + job["index"]),
    )
    rows: List[np.ndarray] = []
    for doc in iter_documents(text, fmt=job["format"]):
        for enc in tok.encode_batch(doc, add_special_tokens=False):
            rows.extend(packer.add_sentence(enc.ids))
        rows.extend(packer.end_document())
    dtype = np.uint16 if job["vocab_size"] <= np.iinfo(np.uint16).max + 1 else np.int32
    array = np.stack(rows).astype(dtype) if rows else np.zeros((0, job["max_seq_length"]), dtype=dtype)
    out = Path(job["out"])
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, out)
    meta = {**{k: job[k] for k in ("index", "source", "start", "end")}, "file": out.name,
            "sequences": int(array.shape[0]), "tokens": int((array != special["[PAD]"]).sum())}
    marker = out.with_suffix(".json")
    _atomic_write_text(marker, json.dumps(meta))
    return meta


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf8")
    os.replace(tmp, path)


def build_shards(
    files: Sequence[Path], tokenizer_dir: Union[str, Path], out_dir: Union[str, Path], corpus_cfg: Dict[str, Any],
    *, progress: bool = True, ranges: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """Tokenise the corpus into shards under `out_dir` (skipping finished ones); returns the manifest."""
    tokenizer_dir, out_dir = Path(tokenizer_dir), Path(out_dir)
    spec = shard_spec(files, tokenizer_dir, corpus_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / SHARD_SPEC
    if spec_path.exists():
        old = json.loads(spec_path.read_text(encoding="utf8"))
        changed = spec_changes(old, spec)
        if changed:
            raise PretrainError(
                f"The shards in {out_dir} were built from other input or settings (changed: {', '.join(changed)}). "
                f"Delete {out_dir} to rebuild, or set [paths] output to a new directory."
            )
    if not spec_path.exists() or json.loads(spec_path.read_text(encoding="utf8")) != spec:
        _atomic_write_text(spec_path, json.dumps(spec, indent=2))  # new, or an older spec brought up to date
    if ranges is None:
        ranges = scan_corpus(files, max_line_chars=corpus_cfg["max_line_chars"], shard_chars=corpus_cfg["shard_chars"])
    from tokenizers import Tokenizer

    vocab_size = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).get_vocab_size()
    jobs, done = [], []
    for i, r in enumerate(ranges):
        out = out_dir / f"shard_{i:05d}.npy"
        marker = out.with_suffix(".json")
        if out.exists() and marker.exists():
            done.append(json.loads(marker.read_text(encoding="utf8")))
            continue
        jobs.append({**r, "index": i, "out": str(out), "tokenizer": str(tokenizer_dir / "tokenizer.json"),
                     "vocab_size": vocab_size, **{k: corpus_cfg[k] for k in ("format", "max_seq_length", "short_seq_prob", "seed")}})
    workers = corpus_cfg["num_workers"] or os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs)))
    if jobs:
        from tqdm import tqdm

        bar = tqdm(total=len(ranges), initial=len(done), desc="shards", unit="shard", disable=not progress)
        if workers == 1:
            for job in jobs:
                done.append(_build_shard(job))
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for meta in pool.imap_unordered(_build_shard, jobs):
                    done.append(meta)
                    bar.update()
        bar.close()
    done.sort(key=lambda m: m["index"])
    manifest = {
        "spec": spec, "vocab_size": vocab_size, "max_seq_length": corpus_cfg["max_seq_length"],
        "sequences": sum(m["sequences"] for m in done), "tokens": sum(m["tokens"] for m in done), "shards": done,
    }
    if manifest["sequences"] == 0:
        raise PretrainError(f"The corpus gave no sequences after tokenisation ({out_dir}). Is it empty?")
    _atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def ensure_open_files(n_files: int, *, spare: int = 256) -> None:
    """Each memory-mapped shard keeps a file open: raise this process's soft limit on open files
    (RLIMIT_NOFILE, often 1024) to `n_files + spare` when needed, up to the hard limit. A 26 GB corpus
    at 4 MB shards is about 6,500 files; past the hard limit the error says what to do."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    need = n_files + spare
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise PretrainError(f"{n_files:,} shards need {need:,} open files, but this process may open at most {hard:,} "
                            f"(hard RLIMIT_NOFILE). Raise it (`ulimit -Hn {need}` as root, or LimitNOFILE in a systemd unit), "
                            f"or rebuild the shards with a larger [corpus] shard_chars.")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class PackedSequences:
    """All shards of a directory as one indexable set of (max_seq_length,) id rows, memory-mapped."""

    def __init__(self, shard_dir: Union[str, Path]):
        shard_dir = Path(shard_dir)
        manifest_path = shard_dir / MANIFEST
        if not manifest_path.exists():
            raise PretrainError(f"No {MANIFEST} in {shard_dir}: build the shards first (`electramed shards CONFIG`).")
        self.manifest = json.loads(manifest_path.read_text(encoding="utf8"))
        ensure_open_files(len(self.manifest["shards"]))
        self.arrays = [np.load(shard_dir / m["file"], mmap_mode="r") for m in self.manifest["shards"] if m["sequences"]]
        self.offsets = np.cumsum([0] + [a.shape[0] for a in self.arrays])
        self.max_seq_length = self.manifest["max_seq_length"]
        self.vocab_size = self.manifest["vocab_size"]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Rows for global indices. (len(indices), max_seq_length) int64"""
        indices = np.asarray(indices)
        shard = np.searchsorted(self.offsets, indices, side="right") - 1
        out = np.empty((len(indices), self.max_seq_length), dtype=np.int64)
        for s in np.unique(shard):  # one fancy-indexed read per shard touched, not one per row
            sel = shard == s
            out[sel] = self.arrays[s][indices[sel] - self.offsets[s]]
        return out


@functools.lru_cache(maxsize=2)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(position: int, size: int, n: int, seed: int) -> np.ndarray:
    """Indices of `size` sequences starting at `position` sequences into an endless stream of
    seeded per-epoch permutations of `n` rows. A pure function: the data position is one int."""
    pos = np.arange(position, position + size)
    epochs, within = pos // n, pos % n
    out = np.empty(size, dtype=np.int64)
    for epoch in np.unique(epochs):
        perm = _permutation(seed, int(epoch), n)
        sel = epochs == epoch
        out[sel] = perm[within[sel]]
    return out
