"""Dependencies point one way (STYLE.md, issue 11): checked on the source, by parsing every import.

    pipeline/ -> ml/ -> spaCy/thinc      pipeline and ml never import corpora/
    pretraining/                         no spaCy/thinc; nothing from pipeline, ml, corpora
    corpora/                             know only Docs: nothing from pipeline, ml
    cli.py                               imported by no module of the package
    commands/                            imported only by cli.py and by each other

Imports inside functions count too (a lazy import is still a dependency). The leaf Doc
contracts (`relations.py`, `qa_doc.py`) and `errors.py` / `about.py` may be imported by
every layer except pretraining, which may use `errors.py`, `about.py` and `precision.py` only.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

PACKAGE = "electramed_spacy"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# layer -> module prefixes it must not import
FORBIDDEN: Dict[str, Tuple[str, ...]] = {
    "ml": ("electramed_spacy.pipeline", "electramed_spacy.corpora", "electramed_spacy.commands",
           "electramed_spacy.annotate", "electramed_spacy.pretraining"),
    "training": ("electramed_spacy.corpora", "electramed_spacy.commands", "electramed_spacy.annotate",
                 "electramed_spacy.pretraining"),
    "pipeline": ("electramed_spacy.corpora", "electramed_spacy.commands", "electramed_spacy.annotate",
                 "electramed_spacy.pretraining"),
    "corpora": ("electramed_spacy.pipeline", "electramed_spacy.ml", "electramed_spacy.commands",
                "electramed_spacy.annotate"),
    "pretraining": ("spacy", "thinc", "spacy_transformers", "electramed_spacy.pipeline", "electramed_spacy.ml",
                    "electramed_spacy.corpora", "electramed_spacy.commands", "electramed_spacy.annotate",
                    "electramed_spacy.relations", "electramed_spacy.qa_doc", "electramed_spacy.visualize"),
    # the leaf modules: Doc contracts, the errors table, metadata
    "relations": ("electramed_spacy.pipeline", "electramed_spacy.ml", "electramed_spacy.corpora",
                  "electramed_spacy.commands", "electramed_spacy.pretraining", "electramed_spacy.annotate"),
    "qa_doc": ("electramed_spacy.pipeline", "electramed_spacy.ml", "electramed_spacy.corpora",
               "electramed_spacy.commands", "electramed_spacy.pretraining", "electramed_spacy.annotate"),
    "errors": ("spacy", "thinc", "torch", "electramed_spacy.pipeline", "electramed_spacy.ml",
               "electramed_spacy.corpora", "electramed_spacy.commands", "electramed_spacy.pretraining"),
    "about": ("electramed_spacy.",),
    "iob": ("spacy", "thinc", "torch", "electramed_spacy."),  # tag decoding shared by corpora and pretraining
    "precision": ("spacy", "thinc", "electramed_spacy."),  # the measured precision choice, shared by ml and pretraining
}
# every module: nothing imports the CLI; only cli.py and commands/ import commands/
EVERYWHERE = ("electramed_spacy.cli",)
COMMANDS = "electramed_spacy.commands"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, relative ones resolved.

    `from X import a` yields X and X.a (a may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def _matches(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def violations(path: Path, source: str) -> List[str]:
    module = module_name(path)
    layer = module.split(".")[1] if "." in module else ""
    forbidden = FORBIDDEN.get(layer, ()) + EVERYWHERE
    if not (layer == "commands" or module == "electramed_spacy.cli"):
        forbidden += (COMMANDS,)
    found: Dict[Tuple[int, str], str] = {}
    for line, name in imports_of(source, module, path.name == "__init__.py"):
        for prefix in forbidden:
            if _matches(name, prefix) and not _matches(module, prefix.rstrip(".")):
                found.setdefault((line, prefix), f"{path.relative_to(ROOT.parent)}:{line} imports {name} "
                                                  f"({layer or module} must not import {prefix.rstrip('.')})")
    return [found[key] for key in sorted(found)]


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_layer_is_known():
    layers = {module_name(p).split(".")[1] for p in MODULES if "." in module_name(p)}
    assert {"ml", "pipeline", "corpora", "pretraining", "commands", "relations", "qa_doc", "errors"} <= layers


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dependencies_point_one_way(path):
    assert violations(path, path.read_text(encoding="utf8")) == []


@pytest.mark.parametrize("relpath,source,needle", [
    ("pipeline/qa.py", "from ..corpora.bioasq import ANSWERS_KEY\n", "must not import electramed_spacy.corpora"),
    ("ml/qa_model.py", "def f():\n    from electramed_spacy.pipeline import qa\n", "must not import electramed_spacy.pipeline"),
    ("pretraining/model.py", "import spacy.tokens\n", "must not import spacy"),
    ("pretraining/data.py", "from thinc.api import Model\n", "must not import thinc"),
    ("pretraining/train.py", "from ..ml import transformer\n", "must not import electramed_spacy.ml"),
    ("corpora/ddi.py", "from ..pipeline.relation_extractor import score_relations\n", "must not import electramed_spacy.pipeline"),
    ("corpora/ddi.py", "from .. import ml\n", "must not import electramed_spacy.ml"),
    ("commands/qa.py", "from ..cli import app\n", "must not import electramed_spacy.cli"),
    ("visualize.py", "from .commands import relations\n", "must not import electramed_spacy.commands"),
])
def test_a_wrong_way_import_is_caught(relpath, source, needle):
    """The checker itself: each of these imports breaks a rule, so it must be reported."""
    (found,) = violations(ROOT / relpath, source)
    assert needle in found and relpath in found


def test_right_way_imports_pass():
    assert violations(ROOT / "pipeline" / "qa.py", "from ..ml.qa_model import QAOutput\nfrom ..qa_doc import ANSWERS_KEY\n") == []
    assert violations(ROOT / "cli.py", "from .commands import qa\nfrom .commands._app import app\n") == []
    assert violations(ROOT / "pretraining" / "errors.py", "from ..errors import ElectraMedError\nimport torch\n") == []
