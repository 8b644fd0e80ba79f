"""The `electramed` app starts light: `pretrain --help` loads no spaCy (issue 11, item 2).

Pre-training is pure PyTorch (ELECTRA, arXiv:2003.10555); a command's heavy imports
(spaCy, thinc, torch, transformers) happen inside its body, so help and the
pre-training commands do not pay for spaCy. Checked in a fresh interpreter, where
nothing this test session imported helps.
"""
import json
import subprocess
import sys

HEAVY = ("spacy", "thinc", "spacy_transformers", "torch", "transformers")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _after_cli(args) -> dict:
    return _fresh(
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from electramed_spacy.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "print(json.dumps({'exit_code': result.exit_code, 'output': result.output,\n"
        "                  'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )


def test_command_modules_import_nothing_heavy():
    """The app and the pretrain, qa, relations and package command modules register their
    commands without importing spaCy, thinc, torch or transformers."""
    got = _fresh(
        "import json, sys\n"
        "from electramed_spacy.commands import _app, package, pretrain, qa, relations\n"
        "names = sorted(c.name for c in _app.app.registered_commands)\n"
        "print(json.dumps({'commands': names, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    assert {"pretrain", "vocab", "shards", "export", "init-model", "qa-score", "ask", "evaluate-relations", "check-package"} <= set(got["commands"])
    assert [m for m in HEAVY if m in got["modules"]] == []


def test_pretrain_help_imports_no_spacy():
    got = _after_cli(["pretrain", "--help"])
    assert got["exit_code"] == 0, got["output"]
    assert "--resume" in got["output"]
    assert [m for m in HEAVY if m in got["modules"]] == []


def test_console_script_and_app_list_every_area():
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "electramed"]
    assert script.value == "electramed_spacy.cli:app"
    got = _after_cli(["--help"])
    assert got["exit_code"] == 0, got["output"]
    for command in ("convert", "pretrain", "vocab", "qa-score", "ask", "evaluate-relations", "check-package"):
        assert command in got["output"]


def test_version():
    from typer.testing import CliRunner

    from electramed_spacy.about import __version__
    from electramed_spacy.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"electramed-spacy {__version__}"
