"""ruff (pyflakes, pycodestyle, import order; config in pyproject.toml) passes on the package, tests,
benchmarks and scripts. Skipped with the reason when ruff is not installed (requirements.txt pins it)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -r requirements.txt)")
def test_ruff_passes():
    result = subprocess.run(["ruff", "check", "electramed_spacy", "tests", "benchmarks", "scripts"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
