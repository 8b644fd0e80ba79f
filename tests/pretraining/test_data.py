"""Corpus checks, packing and shards: round trip, rerun skipping, parallel == serial."""
import json
import re

import numpy as np
import pytest
from transformers import AutoTokenizer

from electramed_spacy.pretraining.data import (
    PackedSequences,
    batch_indices,
    build_shards,
    resolve_corpus,
    scan_corpus,
    token_type_ids,
)
from electramed_spacy.pretraining.errors import PretrainError
from electramed_spacy.pretraining.prepare import prepare_data

from .conftest import tiny_config


def test_shard_round_trip(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "run")
    data = prepare_data(cfg, progress=False)
    tok = AutoTokenizer.from_pretrained(str(data["vocab_dir"]))
    assert tok.is_fast and tok.do_lower_case
    rows = PackedSequences(tmp_path / "run" / "shards")
    ids = rows.get(np.arange(len(rows)))  # (n, 32)
    assert ids.shape[1] == 32
    assert (ids[:, 0] == tok.cls_token_id).all()
    special = set(tok.all_special_ids)
    flat = [i for row in ids for i in row if i not in special]
    lines = [line for line in corpus.read_text().splitlines() if line.strip()]
    expected = [i for line in lines for i in tok(line, add_special_tokens=False)["input_ids"]]
    assert flat == expected, "packing must keep every wordpiece, in order"
    assert tok.decode(flat) == tok.decode(expected)
    # ids back to text == the corpus up to normalisation (lowercase, spacing around punctuation)
    words = re.findall(r"\w+", tok.decode(flat))
    assert words == re.findall(r"\w+", " ".join(lines).lower())
    # every row is [CLS] A [SEP] (B [SEP]) then padding
    for row in ids:
        body = row[row != tok.pad_token_id]
        assert body[-1] == tok.sep_token_id and 1 <= (body == tok.sep_token_id).sum() <= 2


def test_documents_never_share_a_sequence(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Aspirin works.\n\nWarfarin bleeds.\n\nLithium tremor.\n", encoding="utf8")
    cfg = tiny_config(corpus, tmp_path / "run", **{"corpus.short_seq_prob": 0.0})
    prepare_data(cfg, progress=False)
    assert len(PackedSequences(tmp_path / "run" / "shards")) == 3


def test_rerun_skips_and_parallel_matches_serial(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "run", **{"corpus.shard_chars": 300})
    first = prepare_data(cfg, progress=False)["manifest"]
    assert len(first["shards"]) > 2
    shard = tmp_path / "run" / "shards" / "shard_00000.npy"
    mtime = shard.stat().st_mtime_ns
    assert prepare_data(cfg, progress=False)["manifest"]["sequences"] == first["sequences"]
    assert shard.stat().st_mtime_ns == mtime, "a finished shard is not rebuilt"
    # a shard whose marker is missing (killed mid-way) is rebuilt
    shard.with_suffix(".json").unlink()
    prepare_data(cfg, progress=False)
    assert shard.with_suffix(".json").exists()
    # two worker processes give the same shards
    cfg2 = tiny_config(corpus, tmp_path / "run2", **{"corpus.shard_chars": 300, "corpus.num_workers": 2})
    build_shards(resolve_corpus(str(corpus)), tmp_path / "run" / "vocab", tmp_path / "run2" / "shards", cfg2["corpus"], progress=False)
    for a, b in zip(sorted((tmp_path / "run" / "shards").glob("*.npy")), sorted((tmp_path / "run2" / "shards").glob("*.npy"))):
        assert np.array_equal(np.load(a), np.load(b))
    assert np.load(shard).dtype == np.uint16


def test_changed_settings_refused(corpus, tmp_path):
    prepare_data(tiny_config(corpus, tmp_path / "run"), progress=False)
    with pytest.raises(PretrainError, match=r"built from other input or settings \(changed: max_seq_length\).*Delete"):
        prepare_data(tiny_config(corpus, tmp_path / "run", **{"corpus.max_seq_length": 16}), progress=False)


def test_corpus_counts_by_content_not_mtime(corpus, tmp_path):
    """A corpus copied or re-synced between sessions (new mtime, same bytes) still resumes; new content does not."""
    import json
    import os

    cfg = tiny_config(corpus, tmp_path / "run")
    first = prepare_data(cfg, progress=False)["manifest"]
    os.utime(corpus, (1_000_000_000, 1_000_000_000))
    assert prepare_data(cfg, progress=False)["manifest"]["sequences"] == first["sequences"]
    # a spec from before the content hash (mtime, no sha1) matches on path and size, and is brought up to date
    spec_path = tmp_path / "run" / "shards" / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec["files"] = [{"path": f["path"], "bytes": f["bytes"], "mtime": 123} for f in spec["files"]]
    spec_path.write_text(json.dumps(spec))
    prepare_data(cfg, progress=False)
    assert "sha1" in json.loads(spec_path.read_text())["files"][0]
    text = corpus.read_text(encoding="utf8")
    corpus.write_text(text.replace("Aspirin", "Asprin!"), encoding="utf8")  # same size, other text
    with pytest.raises(PretrainError, match=r"\(changed: files\)"):
        prepare_data(cfg, progress=False)


def test_non_utf8_says_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("Aspirin works.\n\nFine line.\n".encode() + b"caf\xe9 au lait\n")
    with pytest.raises(PretrainError, match=r"bad.txt:4: bytes that are not UTF-8 at column 4.*iconv"):
        scan_corpus([bad], max_line_chars=1000, shard_chars=100)


def test_long_line_and_empty_corpus(tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("short\n" + "x" * 5000 + "\n", encoding="utf8")
    with pytest.raises(PretrainError, match=r"long.txt:2: a line of 5,001 characters, over \[corpus\] max_line_chars = 1,000"):
        scan_corpus([long], max_line_chars=1000, shard_chars=100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n\n", encoding="utf8")
    with pytest.raises(PretrainError, match="The corpus is empty"):
        scan_corpus([empty], max_line_chars=1000, shard_chars=100)
    with pytest.raises(PretrainError, match="matches no files"):
        resolve_corpus(str(tmp_path / "nothing*.txt"))
    with pytest.raises(PretrainError, match="does not exist"):
        resolve_corpus(str(tmp_path / "missing.txt"))


def test_token_types_and_batch_order():
    ids = np.array([[2, 7, 3, 8, 9, 3, 0, 0]])
    assert token_type_ids(ids, 3).tolist() == [[0, 0, 0, 1, 1, 1, 1, 1]]
    n = 10
    stream = batch_indices(0, 30, n, seed=1)
    assert sorted(stream[:10]) == list(range(n)) and sorted(stream[10:20]) == list(range(n))
    assert not np.array_equal(stream[:10], stream[10:20]), "each epoch is reshuffled"
    assert np.array_equal(batch_indices(7, 5, n, seed=1), stream[7:12]), "a position is all the state the order needs"


def test_manifest_written(corpus, tmp_path):
    prepare_data(tiny_config(corpus, tmp_path / "run"), progress=False)
    manifest = json.loads((tmp_path / "run" / "shards" / "manifest.json").read_text())
    assert manifest["tokens"] > 0 and manifest["vocab_size"] <= 200


def test_open_file_limit_is_raised_or_explained(monkeypatch):
    """One open file per memory-mapped shard: the soft limit is raised as needed, up to the hard one."""
    import resource

    from electramed_spacy.pretraining.data import ensure_open_files

    calls = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: calls.append(limits))
    ensure_open_files(500)
    assert calls == []
    ensure_open_files(3000)
    assert calls == [(3256, 4096)]
    with pytest.raises(PretrainError, match=r"6,500 shards need 6,756 open files.*at most 4,096"):
        ensure_open_files(6500)
