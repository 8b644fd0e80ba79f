"""`spacy package` builds a wheel that installs and loads by name, offline, in a clean interpreter."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.util import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_packaged_ner_installs_and_loads_by_name(tiny_electra, tmp_path):
    config = load_config(ROOT / "configs" / "ner.cfg", overrides={"paths.model": str(tiny_electra)}, interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    nlp.get_pipe("ner").add_label("Chemical")
    nlp.get_pipe("ner").add_label("Disease")
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")

    packages = tmp_path / "packages"
    packages.mkdir()
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(packages),
         "--name", "electramed_ner_pkgtest", "--version", "0.0.1",
         "--meta-path", str(ROOT / "configs" / "meta_ner.json"), "--build", "wheel", "--force"],
        check=True, capture_output=True,
    )
    wheel = next(packages.glob("*/dist/*.whl"))
    meta = json.loads(next(packages.glob("*/meta.json")).read_text())
    assert meta["labels"]["ner"] == ["Chemical", "Disease"]
    assert any(r.startswith("electramed-spacy") for r in meta["requirements"])
    assert "ELECTRAMed" in meta["description"]

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], check=True, capture_output=True)
    # The model directory is gone: the installed package must carry its weights.
    for path in sorted(Path(tiny_electra).iterdir()):
        path.rename(path.with_name(path.name + ".hidden"))
    try:
        env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        code = (
            "import spacy\n"
            "nlp = spacy.load('en_electramed_ner_pkgtest')\n"
            "doc = nlp('Cisplatin induced nephrotoxicity.')\n"
            "print(nlp.pipe_names, len(doc), nlp.get_pipe('ner').labels)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    finally:
        for path in sorted(Path(tiny_electra).iterdir()):
            path.rename(path.with_name(path.name[: -len(".hidden")]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['transformer', 'ner'] 4 ('Chemical', 'Disease')"
