"""`electramed unpack-verified SUMS`: unpack downloaded `.gz` assets, verified before they replace anything.

SUMS lists `sha256  path` lines (the `sha256sum` format, e.g. configs/bc5cdr.sha256). For each path,
`path.gz` is decompressed into a temporary file of ours beside it (`.electramed-<pid>-NAME.tmp`), its
SHA-256 checked, and only a matching file is moved over `path` (`os.replace`, atomic). A tampered or
truncated archive leaves the good file, if any, as it was, and the command fails naming the file.
"""
import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import List, Tuple

import typer

from ._app import app
from .corpora import _fail


def read_sums(path: Path) -> List[Tuple[str, Path]]:
    """(sha256, path) per line of a `sha256sum` file; paths are relative to the current folder."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise ValueError(f"{path}:{number}: expected 'SHA256<two spaces>PATH', got {line[:80]!r}.")
        rows.append((digest.lower(), Path(name)))
    return rows


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_verified(digest: str, target: Path) -> bool:
    """Make `target` the verified content of `target.gz`; False if it already was (nothing written)."""
    if target.exists() and sha256_of(target) == digest:
        return False
    archive = target.with_name(target.name + ".gz")
    if not archive.exists():
        raise ValueError(f"{archive}: not found; run `spacy project assets` first (or put the file there).")
    tmp = target.with_name(f".electramed-{os.getpid()}-{target.name}.tmp")
    try:
        with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        got = sha256_of(tmp)
        if got != digest:
            raise ValueError(f"{archive}: unpacks to SHA-256 {got}, expected {digest}: the download is damaged or not "
                             f"the published file; {target} was left as it was. Delete {archive} and fetch it again.")
        os.replace(tmp, target)
    except (OSError, EOFError) as err:
        raise ValueError(f"{archive}: cannot unpack it ({err}); {target} was left as it was.") from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


@app.command("unpack-verified", rich_help_panel="Corpora")
def unpack_verified_command(
    sums: Path = typer.Argument(..., exists=True, dir_okay=False, help="sha256sum-style file: 'SHA256  PATH' per line; PATH.gz is unpacked"),
) -> None:
    """Unpack each PATH.gz listed in SUMS to PATH, replacing PATH only once the SHA-256 matches."""
    try:
        for digest, target in read_sums(sums):
            typer.echo(f"{'✔ unpacked' if unpack_verified(digest, target) else '✔ already verified'} {target}")
    except ValueError as err:
        _fail(str(err))
