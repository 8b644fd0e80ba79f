"""Outputs of `electramed annotate`: one record per Doc, shards written atomically.

A JSON-lines record:

    {"id": "31452104", "text": "...",
     "entities": [{"start": 0, "end": 9, "label": "Chemical", "text": "Cisplatin", "kb_id": ""}],
     "relations": [{"head": {"start", "end", "text"}, "tail": {...}, "label": "CID", "score": 0.9731}],
     "answers": [{"start", "end", "text", "score"}]}

`start`/`end` are character offsets into `text` (`text[start:end] == entity["text"]`).
Relations come from `doc._.relations` (electramed_spacy.relations), answers from
`doc.spans["answers"]` (the `electramed_qa` pipe) and appear only when the
pipeline wrote them. Scores are rounded to 4 decimals. The DocBin form keeps the
whole Doc (`DocBin(store_user_data=True)`, id in `doc._.doc_id`) minus
spacy-transformers' `trf_data` (hidden states: megabytes per Doc).

A shard is the output of `shard_size` consecutive input records. It is written
to `part-NNNNNN.<ext>.tmp`, flushed to disk, then renamed over its final name
(`os.replace`, atomic on POSIX): a shard file is either absent or complete, so a
killed run leaves only `.tmp` files, which the next run deletes.
"""
import fcntl
import json
import os
from collections import Counter
from pathlib import Path
from typing import Dict, List

from spacy.tokens import Doc, DocBin, Span

from ..corpora.common import DOC_ID, install_doc_id

EXTENSIONS = {"jsonl": "jsonl", "docbin": "spacy"}
MANIFEST = "run.json"
LOCK = ".lock"


def _span(span: Span, **extra) -> Dict[str, object]:
    return {"start": span.start_char, "end": span.end_char, "text": span.text, **extra}


def doc_to_record(doc: Doc, doc_id: str) -> Dict[str, object]:
    """The JSON-lines record of one annotated Doc."""
    record: Dict[str, object] = {
        "id": doc_id,
        "text": doc.text,
        "entities": [_span(e, label=e.label_, kb_id=e.kb_id_) for e in doc.ents],
        "relations": [],
    }
    if Doc.has_extension("relations"):
        record["relations"] = [
            {"head": _span(r.head), "tail": _span(r.tail), "label": r.label, "score": round(float(r.score), 4)}
            for r in doc._.relations
        ]
    if "answers" in doc.spans:
        group = doc.spans["answers"]
        scores = group.attrs.get("scores") or [None] * len(group)
        record["answers"] = [
            _span(span, score=None if score is None else round(float(score), 4)) for span, score in zip(group, scores)
        ]
    return record


class ShardBuffer:
    """The serialized output of one shard, built one Doc at a time (Docs are not kept)."""

    def __init__(self, output_format: str):
        self.output_format = output_format
        self.lines: List[bytes] = []
        self.docbin = DocBin(store_user_data=True) if output_format == "docbin" else None
        self.stats: Counter = Counter()

    def add(self, doc: Doc, doc_id: str) -> None:
        record = doc_to_record(doc, doc_id)
        self.stats.update(documents=1, words=len(doc), entities=len(record["entities"]), relations=len(record["relations"]))
        if self.docbin is None:
            self.lines.append(json.dumps(record, ensure_ascii=False).encode("utf8") + b"\n")
            return
        install_doc_id()
        for key in [k for k in doc.user_data if isinstance(k, tuple) and k[:2] == ("._.", "trf_data")]:
            del doc.user_data[key]
        doc._.set(DOC_ID, doc_id)
        self.docbin.add(doc)

    def to_bytes(self) -> bytes:
        return b"".join(self.lines) if self.docbin is None else self.docbin.to_bytes()


def shard_path(output_dir: Path, index: int, output_format: str) -> Path:
    return output_dir / f"part-{index:06d}.{EXTENSIONS[output_format]}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is never seen incomplete (tmp + fsync + os.replace)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def open_output(output_dir: Path, settings: Dict[str, object]):
    """Lock `output_dir` for this run, delete a killed run's .tmp files, and check (or
    write) the manifest: a resumed run must have the settings that shaped the shards.
    Returns the open lock file; keep it open for the whole run (the lock dies with the process)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = open(output_dir / LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ValueError(f"{output_dir}: another `electramed annotate` is writing here; wait for it or use another output folder.") from None
    for tmp in output_dir.glob("*.tmp"):
        tmp.unlink()
    manifest = output_dir / MANIFEST
    if manifest.exists():
        before = json.loads(manifest.read_text(encoding="utf8"))
        changed = [key for key in dict.fromkeys([*settings, *before]) if before.get(key) != settings.get(key)]
        if changed:
            lock.close()
            raise ValueError(
                f"{output_dir} holds a run with other {', '.join(changed)}; rerun with the same pipeline, input and "
                f"shard settings to resume it, or write to a new output folder."
            )
    else:
        write_atomic(manifest, json.dumps(settings, indent=2, ensure_ascii=False).encode("utf8"))
    return lock

