"""One table of coded messages (`electramed_spacy.errors.Errors`), codes in their area's range."""
import re
from pathlib import Path

import pytest
import spacy
from spacy.vocab import Vocab

from electramed_spacy.doc.relations import Relation, set_relations
from electramed_spacy.errors import ElectraMedError, Errors
from electramed_spacy.ml.relations.candidates import configure_relation_candidates_v2
from electramed_spacy.pipeline.relation_extractor import RelationExtractor

PACKAGE = Path(__file__).resolve().parents[1] / "electramed_spacy"
# the ranges the errors module documents
RANGES = {"encoder": (1, 9), "tokenizer": (10, 19), "qa": (20, 39), "relations": (40, 59), "callbacks": (60, 69)}
CODE_LITERAL = re.compile(r"""["'](?:\[|)(?:E|QA|TOK)\d{3}\]""")


def test_every_entry_starts_with_its_own_code_in_a_documented_range():
    entries = {name: value for name, value in vars(Errors).items() if re.fullmatch(r"E\d{3}", name)}
    assert len(entries) >= 20
    aliases = vars(Errors)["_ALIASES"]
    for name, raw in entries.items():
        assert not re.match(r"\[E\d{3}\]", raw), name  # the code comes from the attribute's name, never typed
        assert getattr(Errors, name).startswith(f"[{aliases.get(name, name)}] "), name
        if name not in aliases:
            assert any(lo <= int(name[1:]) <= hi for lo, hi in RANGES.values()), name
    assert Errors.E056 == Errors.E061 and Errors.E061.startswith("[E061] ")
    doc = __import__("electramed_spacy.errors", fromlist=["x"]).__doc__
    for lo, hi in RANGES.values():
        assert f"E{lo:03d}-E{hi:03d}" in doc


def test_no_coded_message_outside_the_table():
    """`[QA0xx]` / `[TOK001]` constants and coded strings live only in errors.py."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for i, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
            if CODE_LITERAL.search(line) or "QA0" in line:
                offenders.append(f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}")
    assert offenders == []


def test_relation_errors_are_coded():
    nlp = spacy.blank("en")
    doc, other = nlp("Aspirin and warfarin."), nlp("Aspirin and warfarin.")
    with pytest.raises(ElectraMedError, match=r"\[E040\] Relation span 'Aspirin' does not belong to this Doc"):
        set_relations(doc, [Relation(other[0:1], doc[2:3], "effect")])
    with pytest.raises(ElectraMedError, match=r"\[E041\] .*max_pairs must be >= 0"):
        configure_relation_candidates_v2(max_pairs=-1)
    with pytest.raises(ElectraMedError, match=r"\[E042\] .*type_pairs must be \[head_label, tail_label\] pairs"):
        configure_relation_candidates_v2(type_pairs=[["DRUG"]])
    with pytest.raises(ElectraMedError, match=r"\[E044\] \[components.rel\] negative_weight must be > 0"):
        RelationExtractor(Vocab(), None, None, "rel", negative_weight=0.0)
    pipe = RelationExtractor(Vocab(), None, None, "rel")
    with pytest.raises(ElectraMedError, match=r"\[E045\] Relation labels must be strings, got 3 \(int\)"):
        pipe.add_label(3)
    with pytest.raises(ElectraMedError, match=r"\[E046\] 'NONE' is this pipe's no-relation class"):
        pipe.add_label("NONE")
