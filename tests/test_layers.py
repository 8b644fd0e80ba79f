"""Dependencies point one way (STYLE.md): checked on the source, by parsing every import.

    formats/                             plain Python: IOB tags, CoNLL lines, entity markers
    doc/                                 the Doc contracts (relations, QA) and the renderer: spaCy only
    pipeline/ -> ml/ -> spaCy/thinc      pipeline and ml never import corpora/
    training/                            spaCy training callbacks and the resumable loop
    pretraining/                         no spaCy/thinc; nothing from pipeline, ml, corpora, doc, training
    corpora/                             know only Docs: nothing from pipeline, ml, training
    cli.py                               imported by no module of the package
    commands/                            imported only by cli.py and by each other

Imports inside functions count too (a lazy import is still a dependency). `formats/`, `errors.py`,
`about.py` and `precision.py` may be imported by every layer; `doc/` by every layer but pretraining.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

PACKAGE = "electramed_spacy"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# layer -> module prefixes it must not import
P = "electramed_spacy."
FORBIDDEN: Dict[str, Tuple[str, ...]] = {
    "formats": ("spacy", "thinc", "torch", "transformers", P + "errors", P + "doc", P + "ml", P + "pipeline",
                P + "corpora", P + "training", P + "pretraining", P + "commands", P + "annotate"),
    "doc": (P + "pipeline", P + "ml", P + "corpora", P + "training", P + "commands", P + "pretraining", P + "annotate"),
    "ml": (P + "pipeline", P + "corpora", P + "commands", P + "annotate", P + "pretraining", P + "training"),
    "training": (P + "corpora", P + "commands", P + "annotate", P + "pretraining"),
    "pipeline": (P + "corpora", P + "commands", P + "annotate", P + "pretraining", P + "training"),
    "corpora": (P + "pipeline", P + "ml", P + "commands", P + "annotate", P + "training"),
    "pretraining": ("spacy", "thinc", "spacy_transformers", P + "pipeline", P + "ml", P + "corpora", P + "commands",
                    P + "annotate", P + "doc", P + "training"),
    "errors": ("spacy", "thinc", "torch", P + "pipeline", P + "ml", P + "corpora", P + "commands", P + "pretraining"),
    "about": (P,),
    "precision": ("spacy", "thinc", P),  # the measured precision choice, shared by ml, training and pretraining
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
    assert layers == {"formats", "doc", "ml", "pipeline", "training", "corpora", "pretraining", "annotate", "commands",
                      "errors", "about", "precision", "cli"}


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
    ("doc/render.py", "from ..commands import relations\n", "must not import electramed_spacy.commands"),
    ("formats/iob.py", "import spacy\n", "must not import spacy"),
    ("pretraining/probe.py", "from ..doc.qa import ANSWERS_KEY\n", "must not import electramed_spacy.doc"),
    ("pipeline/qa.py", "from ..training import resumable\n", "must not import electramed_spacy.training"),
])
def test_a_wrong_way_import_is_caught(relpath, source, needle):
    """The checker itself: each of these imports breaks a rule, so it must be reported."""
    (found,) = violations(ROOT / relpath, source)
    assert needle in found and relpath in found


def test_right_way_imports_pass():
    assert violations(ROOT / "pipeline" / "qa.py", "from ..ml.qa_model import QAOutput\nfrom ..doc.qa import ANSWERS_KEY\n") == []
    assert violations(ROOT / "cli.py", "from .commands import qa\nfrom .commands._app import app\n") == []
    assert violations(ROOT / "pretraining" / "errors.py", "from ..errors import ElectraMedError\nimport torch\n") == []
