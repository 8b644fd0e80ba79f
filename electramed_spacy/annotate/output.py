"""Outputs of `electramed annotate`: one record per Doc, shards written atomically.

A JSON-lines record:

    {"id": "31452104", "text": "...",
     "entities": [{"start": 0, "end": 9, "label": "Chemical", "text": "Cisplatin", "kb_id": ""}],
     "relations": [{"head": {"start", "end", "text"}, "tail": {...}, "label": "CID", "score": 0.9731}],
     "answers": [{"start", "end", "text", "score"}]}

`start`/`end` are character offsets into `text` (`text[start:end] == entity["text"]`).
Relations come from `doc._.relations` (electramed_spacy.doc.relations), answers from
`doc.spans["answers"]` (the `electramed_qa` pipe) and appear only when the
pipeline wrote them. Scores are rounded to 4 decimals. The DocBin form keeps the
whole Doc (`DocBin(store_user_data=True)`, id in `doc._.doc_id`) minus
spacy-transformers' `trf_data` (hidden states: megabytes per Doc).

A shard is the output of `shard_size` consecutive input records. It is written
to `.electramed-<pid>-part-NNNNNN.<ext>.tmp`, flushed to disk, then renamed over its
final name (`os.replace`, atomic on POSIX): a shard file is either absent or complete,
so a killed run leaves only such temporary files, which the next run deletes. Only
files with that prefix are ever deleted, and only once the run is known to resume
this folder: a user's own `*.tmp` files are never touched.
"""
import fcntl
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

from spacy.tokens import Doc, DocBin, Span

from ..corpora.common import DOC_ID, install_doc_id

EXTENSIONS = {"jsonl": "jsonl", "docbin": "spacy"}
MANIFEST = "run.json"
LOCK = ".lock"
TMP_PREFIX = ".electramed-"
OUR_TMP = re.compile(r"^\.electramed-\d+-.+\.tmp$")
PART = re.compile(r"^part-\d{6}\.(jsonl|spacy)$")


def as_input(nlp, text: str, question: Optional[str]):
    """What `nlp.pipe` takes for one record: the text, or for a question (QA pipelines) a Doc carrying it."""
    if question is None:
        return text
    from ..doc.qa import install_qa_extensions

    install_qa_extensions()
    doc = nlp.make_doc(text)
    doc._.question = question
    return doc


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
        if group.attrs.get("status"):  # why there is no answer (empty question or context)
            record["answer_status"] = group.attrs["status"]
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


def tmp_path(path: Path) -> Path:
    """The temporary name of `path` while this process writes it: ours by prefix and pid."""
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is never seen incomplete (tmp + fsync + os.replace)."""
    tmp = tmp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def open_output(output_dir: Path, settings: Dict[str, object]):
    """Lock `output_dir` for this run, check (or write) the manifest, then delete a killed run's
    temporary files (ours by name only). A resumed run must have the settings that shaped the shards;
    shard files without a manifest are refused, not trusted. Returns the open lock file; keep it open
    for the whole run. The lock is a POSIX record lock: it dies with this process, and worker processes
    forked from it do not inherit it, so a killed run's stray workers cannot block the rerun."""
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = open(output_dir / LOCK, "a")
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise ValueError(f"{output_dir}: another `electramed annotate` is writing here; wait for it or use another output folder.") from None
    try:
        _check_manifest(output_dir, settings)
    except ValueError:
        lock.close()
        raise
    for tmp in output_dir.iterdir():
        if OUR_TMP.match(tmp.name) and tmp.is_file():
            tmp.unlink()
    return lock


def _check_manifest(output_dir: Path, settings: Dict[str, object]) -> None:
    manifest = output_dir / MANIFEST
    if not manifest.exists():
        parts = sorted(p.name for p in output_dir.iterdir() if PART.match(p.name))
        if parts:
            raise ValueError(
                f"{output_dir} holds shard files ({parts[0]}, ... {len(parts)} in all) but no {MANIFEST}: they cannot "
                f"be matched to a pipeline and input. Write to a new output folder, or move them away."
            )
        write_atomic(manifest, json.dumps(settings, indent=2).encode("utf8"))
        return
    before = json.loads(manifest.read_text(encoding="utf8"))
    changed = [key for key in dict.fromkeys([*settings, *before]) if before.get(key) != settings.get(key)]
    if changed:
        raise ValueError(
            f"{output_dir} holds a run with other {', '.join(changed)}; rerun with the same pipeline, input and "
            f"shard settings to resume it, or write to a new output folder."
        )
