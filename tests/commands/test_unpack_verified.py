"""`electramed unpack-verified`: a tampered archive never replaces a good file (verify, then move)."""
import gzip
import hashlib

from typer.testing import CliRunner

from electramed_spacy.cli import app

GOOD = b"5|t|Aspirin and stroke.\n5|a|Aspirin reduces stroke.\n\n"


def _unpack(sums):
    result = CliRunner().invoke(app, ["unpack-verified", str(sums)])
    return result.exit_code, " ".join(result.output.split())


def test_unpacks_verifies_and_refuses_a_tampered_archive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt.gz").write_bytes(gzip.compress(GOOD))
    sums = tmp_path / "x.sha256"
    sums.write_text(f"{hashlib.sha256(GOOD).hexdigest()}  a/x.txt\n")
    assert _unpack(sums) == (0, "✔ unpacked a/x.txt")
    assert (tmp_path / "a" / "x.txt").read_bytes() == GOOD
    assert _unpack(sums) == (0, "✔ already verified a/x.txt")

    (tmp_path / "a" / "x.txt.gz").write_bytes(gzip.compress(b"tampered"))  # a later, bad download
    (tmp_path / "a" / "x.txt").write_bytes(GOOD[:-1])  # and the unpacked file edited, so it is unpacked again
    code, message = _unpack(sums)
    assert code == 1 and "damaged" in message and "left as it was" in message
    assert (tmp_path / "a" / "x.txt").read_bytes() == GOOD[:-1]  # not replaced by the tampered content
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.txt", "x.txt.gz"]  # no temp file left

    (tmp_path / "a" / "x.txt.gz").write_bytes(gzip.compress(GOOD)[:20])  # truncated
    code, message = _unpack(sums)
    assert code == 1 and "cannot unpack" in message
