"""Inputs of `electramed annotate`: each format is a generator of `Record(id, text, where)`.

Formats (`resolve_input` picks one from the file names unless told):

* **medline**: MEDLINE/PubMed XML, `.xml` or `.xml.gz` (the PubMed baseline is
  ~1,200 such files of ~30,000 records). One record per `PubmedArticle`: id =
  `MedlineCitation/PMID`, text = `ArticleTitle`, a space, then the
  `Abstract/AbstractText` sections joined by spaces, each prefixed `LABEL: ` when
  it has a `Label` attribute (structured abstracts), as PubMed displays them.
  Inline markup (`<i>`, `<sup>`) is flattened and runs of whitespace become one
  space. A record without an abstract is its title. Other elements
  (`PubmedBookArticle`, `DeleteCitation` of update files) are not read.
  Files are parsed with `iterparse` and each article is cleared once read, so
  memory holds one article, not the file.
* **pubtator**: `PMID|t|title` / `PMID|a|abstract` blocks; text = title + " " +
  abstract (the convention PubTator offsets assume); annotation lines are ignored.
* **jsonl**: one `{"id": ..., "text": ...}` object per line (`.jsonl`, `.jsonl.gz`); for a QA
  pipeline, a `"question"` field is the question asked about `text`.
* **lines**: one document per non-empty line of `.txt` files (e.g. one abstract per line); id =
  `path:line`. Chosen only with `--format lines`.
* **txt**: a folder of `.txt` files, one document each; id = the path under the
  folder without `.txt`.

A folder is read file by file in sorted order, so the record order (and with it
the output shards) is the same on every run. A malformed record is yielded as
`Malformed(where, reason, detail)` rather than raised, so the runner decides
whether to count it or stop; `where` is `file:line`, or `file: PubmedArticle #n`
for XML.
"""
import fnmatch
import gzip
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Iterator, List, NamedTuple, Optional, Tuple, Union

FORMATS = {
    "medline": ("*.xml", "*.xml.gz"),
    "pubtator": ("*.pubtator", "*.pubtator.txt", "*.pubtator.gz", "*.pubtator.txt.gz"),
    "jsonl": ("*.jsonl", "*.jsonl.gz"),
    "txt": ("*.txt",),
    "lines": ("*.txt",),
}
EXPLICIT_ONLY = ("lines",)  # never picked by --format auto
PUBTATOR_TEXT = re.compile(r"^([^\t|]+)\|([ta])\|(.*)$")


class Record(NamedTuple):
    id: str
    text: str
    where: str
    question: Optional[str] = None  # for QA pipelines: a jsonl record's "question" field


class Malformed(NamedTuple):
    where: str
    reason: str
    detail: str = ""


Item = Union[Record, Malformed]


def _matches(path: Path, fmt: str) -> bool:
    return any(fnmatch.fnmatch(path.name.lower(), pattern) for pattern in FORMATS[fmt])


def _format_of(path: Path) -> str:
    """The format a file name says; a `.pubtator.txt` file is PubTator, not plain text."""
    for fmt in FORMATS:
        if fmt not in EXPLICIT_ONLY and _matches(path, fmt):
            return fmt
    return ""


def resolve_input(path: Union[str, Path], fmt: str = "auto", exclude: Optional[Path] = None) -> Tuple[List[Path], str]:
    """(input files in reading order, format). Raises ValueError with the fix when it cannot tell.
    Files under `exclude` (the run's output folder, when it lies inside the input folder) are not input."""
    path = Path(path)
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"--format must be auto, {', '.join(FORMATS)}; got {fmt!r}.")
    if not path.exists():
        raise ValueError(f"{path}: the input does not exist; give a file or a folder.")
    if path.is_file():
        fmt = fmt if fmt != "auto" else _format_of(path)
        if not fmt:
            raise ValueError(f"{path}: cannot tell the format from the name; pass --format {'|'.join(FORMATS)}.")
        return [path], fmt
    skip = exclude.resolve() if exclude is not None else None
    files = sorted(f for f in path.rglob("*") if f.is_file() and (skip is None or skip not in f.resolve().parents))
    if fmt == "auto":
        found = sorted({_format_of(f) for f in files} - {""})
        if len(found) != 1:
            what = f"files of several formats ({', '.join(found)})" if found else "no .xml(.gz), .jsonl(.gz), PubTator or .txt files"
            raise ValueError(f"{path}: the folder holds {what}; pass --format {'|'.join(FORMATS)}.")
        fmt = found[0]
    files = [f for f in files if _matches(f, fmt)]
    if not files:
        raise ValueError(f"{path}: no {fmt} files ({', '.join(FORMATS[fmt])}) in this folder.")
    return files, fmt


def portable(path: Union[str, Path]) -> str:
    """A path as text that JSON can hold, whatever bytes the file system gave (undecodable ones as \\xNN)."""
    return os.fsencode(Path(path).as_posix()).decode("utf-8", "backslashreplace")


def read_records(files: List[Path], fmt: str) -> Iterator[Item]:
    """Every record of `files`, in order, as Record or Malformed."""
    reader = {"medline": read_medline, "pubtator": read_pubtator, "jsonl": read_jsonl, "txt": None, "lines": read_lines_file}[fmt]
    if reader is None:
        yield from read_txt_files(files)
        return
    for path in files:
        yield from reader(path)


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _lines(path: Path) -> Iterator[Tuple[int, Union[str, Malformed]]]:
    """(line number, decoded line without its ending) of a UTF-8 (optionally gzipped) file, BOM removed."""
    with _open(path) as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                yield number, Malformed(f"{path}:{number}", "not UTF-8", f"byte {raw[err.start]:#x} at column {err.start + 1}")
                continue
            yield number, line.lstrip("\ufeff") if number == 1 else line


def _flat(element) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _medline_record(article, where: str) -> Item:
    pmid = _flat(article.find("MedlineCitation/PMID"))
    if not pmid:
        return Malformed(where, "PubmedArticle without MedlineCitation/PMID")
    title = _flat(article.find("MedlineCitation/Article/ArticleTitle"))
    sections = []
    for part in article.iterfind("MedlineCitation/Article/Abstract/AbstractText"):
        body, label = _flat(part), part.get("Label")
        sections.append(f"{label}: {body}" if label else body)
    text = " ".join(s for s in [title, *sections] if s)
    if not text:
        return Malformed(f"{where} (PMID {pmid})", "PubmedArticle without ArticleTitle or AbstractText text")
    return Record(pmid, text, f"{where} (PMID {pmid})")


def read_medline(path: Path) -> Iterator[Item]:
    """The PubmedArticle records of one MEDLINE XML file (.xml or .xml.gz)."""
    n = 0
    with _open(path) as f:
        try:
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            if root.tag not in ("PubmedArticleSet", "PubmedArticle"):
                yield Malformed(str(path), "not MEDLINE/PubMed XML, file not read",
                                f"root element <{root.tag}>, expected <PubmedArticleSet>; pass the right --format")
                return
            for event, element in events:
                if event == "end" and element.tag == "PubmedArticle":
                    n += 1
                    yield _medline_record(element, f"{path}: PubmedArticle #{n}")
                    root.clear()  # drop the articles read so far: memory holds one article
        except ET.ParseError as err:
            line, column = err.position
            reason = " ".join(str(err).split(":")[0].split())  # expat's reason, e.g. "limit on input amplification factor (from DTD and entities) breached"
            yield Malformed(f"{path}:{line}", "XML syntax error, rest of the file not read",
                            f"{reason}; column {column + 1} ({n} articles read before it)")
        except (OSError, EOFError) as err:  # a truncated or corrupt .gz
            yield Malformed(str(path), "unreadable file, rest of the file not read", str(err))


def read_pubtator(path: Path) -> Iterator[Item]:
    """(PMID, title + " " + abstract) of each PubTator block; annotation lines are skipped."""
    block: dict = {}

    def finish() -> Iterator[Item]:
        if not block:
            return
        where = f"{path}:{block['line']}"
        if block.get("problem"):
            yield Malformed(where, block["problem"])
        elif "t" not in block:
            yield Malformed(where, "PubTator block without a 'PMID|t|title' line")
        else:
            text = block["t"] if "a" not in block else f"{block['t']} {block['a']}"
            yield Record(block["pmid"], text, where)
        block.clear()

    for number, line in _lines(path):
        if isinstance(line, Malformed):
            yield line
            continue
        if not line.strip():
            yield from finish()
            continue
        block.setdefault("line", number)
        match = PUBTATOR_TEXT.match(line)
        if match:
            pmid, kind, text = match.groups()
            if block.setdefault("pmid", pmid) != pmid:
                block["problem"] = f"PMID {pmid} at line {number} inside the block of PMID {block['pmid']} (missing blank line?)"
            block[kind] = text
        elif "\t" not in line:
            block["problem"] = f"line {number} is neither 'PMID|t|title', 'PMID|a|abstract' nor a tab-separated annotation"
    yield from finish()


def read_jsonl(path: Path) -> Iterator[Item]:
    """One `{"id", "text"}` object per line; blank lines are skipped."""
    for number, line in _lines(path):
        if isinstance(line, Malformed):
            yield line
            continue
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield Malformed(where, "invalid JSON", err.msg)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            yield Malformed(where, 'no string "text" field', 'expected {"id": ..., "text": "..."}')
        elif not isinstance(obj.get("id"), (str, int)) or isinstance(obj.get("id"), bool):
            yield Malformed(where, 'no string or integer "id" field', 'expected {"id": ..., "text": "..."}')
        elif obj.get("question") is not None and not isinstance(obj["question"], str):
            yield Malformed(where, 'a "question" field that is not a string', 'expected {"id", "text", "question": "..."}')
        else:
            yield Record(str(obj["id"]), obj["text"], where, obj.get("question"))


def read_lines_file(path: Path) -> Iterator[Item]:
    """One record per non-empty line (one abstract per line); id = `path:line`."""
    name = portable(path)
    for number, line in _lines(path):
        if isinstance(line, Malformed):
            yield line
        elif line.strip():
            yield Record(f"{name}:{number}", line, f"{name}:{number}")


def read_txt_files(files: List[Path]) -> Iterator[Item]:
    """One record per file; id = the path below the files' common folder, without `.txt`."""
    base = Path(os.path.commonpath([f.parent for f in files])) if files else Path()
    for path in files:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            yield Malformed(f"{path}:{line}", "not UTF-8", f"byte {data[err.start]:#x}")
            continue
        yield Record(portable(path.relative_to(base).with_suffix("")), text, portable(path))
