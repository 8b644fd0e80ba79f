"""Everything is found through entry points, without importing electramed_spacy."""
import subprocess
import sys


def _run(code: str) -> str:
    # A fresh interpreter, so nothing this test session imported can help.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_architectures_resolve_without_import():
    out = _run(
        "import sys, spacy\n"
        "from spacy.util import registry\n"
        "assert 'electramed_spacy' not in sys.modules\n"
        "f = registry.architectures.get('electramed.Transformer.v1')\n"
        "g = registry.misc.get('electramed.strided_spans.v1')\n"
        "print(f.__module__, g.__module__)\n"
    )
    assert out.split() == ["electramed_spacy.ml.transformer", "electramed_spacy.ml.transformer"]


def test_transformer_config_builds_from_add_pipe_without_import():
    out = _run(
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        "trf = nlp.add_pipe('transformer', config={'model': {'@architectures': 'electramed.Transformer.v1', 'name': 'some/dir'}})\n"
        "print(trf.model.attrs['name'], trf.model._init_tokenizer_config['do_lower_case'])\n"
    )
    assert out.split() == ["some/dir", "True"]


def _declared_entry_points():
    """{group: {name: "module:attr"}} from setup.cfg's [options.entry_points]."""
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg", encoding="utf8")
    declared = {}
    for group, block in cfg["options.entry_points"].items():
        lines = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
        declared[group] = dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)
    return declared


def test_every_declared_entry_point_is_installed_and_loads_in_a_fresh_interpreter():
    """Each entry point of setup.cfg is in the installed metadata with the same target, loads, and
    (spacy_* groups) is what spaCy's registry returns for its name, in an interpreter that never
    imported electramed_spacy. A moved function whose entry point was not updated fails here."""
    import json

    declared = _declared_entry_points()
    assert sum(len(names) for names in declared.values()) >= 17 and "spacy_readers" in declared
    out = _run(
        "import json, sys\n"
        "from importlib.metadata import entry_points\n"
        "from spacy.util import registry\n"
        f"declared = json.loads({json.dumps(json.dumps(declared))})\n"
        "assert 'electramed_spacy' not in sys.modules\n"
        "found = {}\n"
        "for group, names in declared.items():\n"
        "    installed = {ep.name: ep for ep in entry_points(group=group)}\n"
        "    for name in names:\n"
        "        ep = installed.get(name)\n"
        "        if ep is None:\n"
        "            found[f'{group} {name}'] = 'not installed'\n"
        "            continue\n"
        "        obj = ep.load()\n"
        "        if group.startswith('spacy_'):\n"
        "            ns = getattr(registry, group[len('spacy_'):])\n"
        "            got = ns.get(name)\n"
        "            if got is not obj and getattr(got, '__wrapped__', got) is not obj:\n"
        "                found[f'{group} {name}'] = f'registry gives {got!r}'\n"
        "                continue\n"
        "        found[f'{group} {name}'] = ep.value if callable(obj) else f'not callable: {obj!r}'\n"
        "print(json.dumps(found))\n"
    )
    found = json.loads(out.strip().splitlines()[-1])
    expected = {f"{group} {name}": value for group, names in declared.items() for name, value in names.items()}
    assert found == expected
