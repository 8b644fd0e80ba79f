"""`electramed model-card`: the package meta says what the run used (data, licence, encoder, metrics)."""
import json

import spacy
from typer.testing import CliRunner

from electramed_spacy.cli import app

BASE = {"lang": "en", "name": "electramed_ner", "description": "Biomedical NER.", "author": "someone"}


def _pipeline(tiny_electra, path, train):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(tiny_electra)}})
    nlp.initialize()
    nlp.config["paths"]["train"], nlp.config["paths"]["dev"], nlp.config["paths"]["model"] = train, "corpus/dev.spacy", str(tiny_electra)
    nlp.to_disk(path)
    return path


def _card(tmp_path, model, data, *metrics):
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    args = ["model-card", str(tmp_path / "base.json"), str(model), str(tmp_path / "card.json"), "--data", data]
    for m in metrics:
        data, path = m.split("=")
        args += ["--metrics", path, "--metrics-data", data]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "card.json").read_text())


def test_a_sample_build_says_so_and_names_its_encoder(tiny_electra, tmp_path):
    model = _pipeline(tiny_electra, tmp_path / "model", "corpus/sample_train.spacy")
    (tmp_path / "m.json").write_text(json.dumps({"ents_f": 0.25, "ents_per_type": {"Chemical": {"p": 0.3, "r": 0.2, "f": 0.24}}}))
    card = _card(tmp_path, model, "sample", f"corpus/sample_test.spacy={tmp_path / 'm.json'}")
    assert card["description"].startswith("SAMPLE BUILD, plumbing only")
    assert "corpus/sample_train.spacy" in card["description"] and "2 layers x 32 wide" in card["description"]
    assert card["license"] == "MIT" and card["author"] == "someone"
    assert "sample, plumbing only" in card["notes"] and "| ents_f | 25.00 |" in card["notes"]
    assert "| ents Chemical F | 24.00 |" in card["notes"]


def test_the_licence_comes_from_the_data(tiny_electra, tmp_path):
    model = _pipeline(tiny_electra, tmp_path / "model", "corpus/ddi_train.spacy")
    card = _card(tmp_path, model, "ddi")
    assert card["license"] == "CC BY-NC 4.0" and "SAMPLE" not in card["description"]
    assert card["sources"][0]["name"] == "DDI-2013 corpus" and "non-commercial" in card["notes"]
    unknown = _card(tmp_path, model, "my_lab_corpus")
    assert unknown["license"] == "see the training data's own terms"
