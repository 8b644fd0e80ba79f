"""The annotate input readers: MEDLINE XML(.gz), PubTator, JSON lines, .txt folders; malformed records located."""
import gzip
import json

import pytest
from annotate_helpers import MEDLINE

from electramed_spacy.annotate.inputs import Malformed, Record, read_medline, read_records, resolve_input

PUBTATOR = MEDLINE.parents[1] / "ner" / "bc5cdr_sample.PubTator.txt"


def _read(path, fmt="auto"):
    return list(read_records(*resolve_input(path, fmt)))


def test_medline_title_structured_abstract_no_abstract_non_ascii(tmp_path):
    items = _read(MEDLINE)
    assert all(isinstance(item, Record) for item in items)
    assert [r.id for r in items] == ["9000201", "9000202", "9000203", "9000204"]
    structured = items[0].text
    assert structured.startswith(
        "Cisplatin nephrotoxicity and magnesium supplementation in patients with lung cancer. "
        "BACKGROUND: Cisplatin induced nephrotoxicity limits the dose in lung cancer. "
        "METHODS: Forty patients received magnesium before each cycle"  # <i>magnesium</i> flattened
    )
    assert "with magnesium (12% versus 35%). CONCLUSIONS: Magnesium" in structured  # line break inside the text collapsed
    assert items[1].text == "Lithium treatment and hypothyroidism: a letter."  # no Abstract: the title alone
    assert "Sjögren’s syndrome; the β-blocker propranolol did not (p ≥ 0.05)." in items[2].text
    assert items[2].text.startswith("[Syndrome de Sjögren et β-bloquants : étude de cohorte]. Aspirin 100 µg/kg")
    assert items[3].text.startswith("Warfarin interacts with fluconazole. Warfarin interacts")

    gz = tmp_path / "pubmed24n0001.xml.gz"
    gz.write_bytes(gzip.compress(MEDLINE.read_bytes()))
    assert [(r.id, r.text) for r in _read(gz)] == [(r.id, r.text) for r in items]
    assert _read(tmp_path)[0].id == "9000201"  # a folder of .xml.gz files is MEDLINE


def test_medline_malformed_records_are_located(tmp_path):
    xml = MEDLINE.read_text(encoding="utf8")
    no_pmid = xml.replace('<PMID Version="1">9000202</PMID>', "")
    empty = no_pmid.replace("<ArticleTitle>Warfarin interacts with fluconazole.</ArticleTitle>", "")
    empty = empty[: empty.index("<Abstract>", empty.index(">9000204</PMID>"))] + "</Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    path = tmp_path / "bad.xml"
    path.write_text(empty, encoding="utf8")
    items = list(read_medline(path))
    assert [type(i).__name__ for i in items] == ["Record", "Malformed", "Record", "Malformed"]
    assert items[1].where == f"{path}: PubmedArticle #2" and "PMID" in items[1].reason
    assert items[3].where == f"{path}: PubmedArticle #4 (PMID 9000204)" and "ArticleTitle or AbstractText" in items[3].reason

    truncated = tmp_path / "truncated.xml"
    truncated.write_text(xml[: xml.index("Aspirin 100")], encoding="utf8")
    items = list(read_medline(truncated))
    assert [type(i).__name__ for i in items] == ["Record", "Record", "Malformed"]
    assert items[2].where.startswith(f"{truncated}:") and "XML syntax error" in items[2].reason

    cut_gz = tmp_path / "cut.xml.gz"
    cut_gz.write_bytes(gzip.compress(MEDLINE.read_bytes())[:-30])
    items = list(read_medline(cut_gz))
    assert isinstance(items[-1], Malformed) and items[-1].where == str(cut_gz)


def test_pubtator_text_is_title_space_abstract_as_offsets_assume(tmp_path):
    items = _read(PUBTATOR)
    assert items[0].id == "9000101" and all(isinstance(i, Record) for i in items)
    # the corpus' own mention offsets land on the mention text
    lines = PUBTATOR.read_text(encoding="utf8").splitlines()
    for line in lines:
        cols = line.split("\t")
        if len(cols) >= 5 and cols[0] == "9000101" and cols[1].isdigit():
            assert items[0].text[int(cols[1]):int(cols[2])] == cols[3]

    bad = tmp_path / "bad.PubTator.txt"
    bad.write_text("1|t|A title.\n1|a|An abstract.\n\n2|t|Other.\nstray text\n\n3|a|Abstract only.\n", encoding="utf8")
    items = _read(bad)
    assert resolve_input(bad)[1] == "pubtator"
    assert items[0] == Record("1", "A title. An abstract.", f"{bad}:1")
    assert isinstance(items[1], Malformed) and items[1].where == f"{bad}:4" and "line 5" in items[1].reason
    assert isinstance(items[2], Malformed) and items[2].where == f"{bad}:7" and "|t|" in items[2].reason


def test_jsonl_and_txt_folder(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [{"id": "a", "text": "Aspirin."}, "not json", {"id": 7, "text": "Lithium."}, {"id": "c"}, {"text": "no id"}]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n", encoding="utf8")
    items = _read(path)
    assert items[0] == Record("a", "Aspirin.", f"{path}:1")
    assert items[2] == Record("7", "Lithium.", f"{path}:3")
    assert [(i.where, i.reason) for i in items if isinstance(i, Malformed)] == [
        (f"{path}:2", "invalid JSON"), (f"{path}:4", 'no string "text" field'), (f"{path}:5", 'no string or integer "id" field'),
    ]

    folder = tmp_path / "txt"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("\ufeffSjögren’s syndrome.", encoding="utf8")
    (folder / "sub" / "a.txt").write_text("Warfarin.", encoding="utf8")
    (folder / "sub" / "latin1.txt").write_bytes("ok\nSj\xf6gren".encode("latin-1"))
    items = _read(folder)
    assert items[0] == Record("b", "Sjögren’s syndrome.", str(folder / "b.txt"))  # BOM removed
    assert items[1].id == "sub/a"
    assert isinstance(items[2], Malformed) and items[2].where == f"{folder / 'sub' / 'latin1.txt'}:2"


def test_format_errors_say_how_to_fix(tmp_path):
    (tmp_path / "a.xml").write_text("<PubmedArticleSet/>")
    (tmp_path / "b.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"several formats \(jsonl, medline\); pass --format"):
        resolve_input(tmp_path)
    assert resolve_input(tmp_path, "jsonl") == ([tmp_path / "b.jsonl"], "jsonl")
    with pytest.raises(ValueError, match="cannot tell the format from the name; pass --format"):
        resolve_input(_touch(tmp_path / "x.csv"))
    with pytest.raises(ValueError, match="does not exist"):
        resolve_input(tmp_path / "missing")


def _touch(path):
    path.write_text("")
    return path
