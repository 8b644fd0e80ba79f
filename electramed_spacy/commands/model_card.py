"""`electramed model-card`: the meta.json `spacy package` writes into a package, from what the run used.

A card must say what the model was trained on, so it is built from facts, not typed by hand:
the training and dev files named in the trained pipeline's `config.cfg`, the data's licence
(`DATASETS`, by the project's data name), the encoder read back from the pipeline's own weights
(architecture, layers, width, parameters, where it came from), and the metrics files the
evaluation steps wrote, each with the data it was computed on. A build on the committed sample
says so in its description and labels its metrics "sample, plumbing only". The base meta
(`configs/meta_*.json`) keeps what does not depend on the run: name, task sentence, author, url.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import srsly
import typer

from ._app import app
from .corpora import _fail

ELECTRA = {"name": "ELECTRA", "url": "https://arxiv.org/abs/2003.10555", "author": "Clark et al. 2020"}
PROJECT = "https://arxiv.org/abs/2104.09585"
# data name (project.yml vars ner_data / re_data / qa_data) -> source, licence, intended use
DATASETS: Dict[str, Dict[str, str]] = {
    "sample": {"name": "the committed sample of electramed-spacy (assets/sample, written for the project)", "license": "MIT",
               "use": "checking that the pipeline loads and runs; its predictions are not meant to be right"},
    "bc5cdr": {"name": "BC5CDR (BioCreative V CDR)", "url": "https://biocreative.bioinformatics.udel.edu/tasks/biocreative-v/track-3-cdr/",
               "license": "BioCreative V CDR terms", "use": "Chemical and Disease mentions in PubMed abstracts"},
    "ddi": {"name": "DDI-2013 corpus", "url": "https://github.com/isegura/DDICorpus", "license": "CC BY-NC 4.0",
            "use": "drug-drug interactions in drug labels (DrugBank) and MEDLINE abstracts; non-commercial use only"},
    "chemprot": {"name": "ChemProt (BioCreative VI)", "url": "https://biocreative.bioinformatics.udel.edu/tasks/biocreative-vi/track-5/",
                 "license": "BioCreative VI ChemProt terms", "use": "chemical-protein relations in PubMed abstracts"},
    "bioasq": {"name": "BioASQ Task B factoid (BioBERT preprocessing)", "url": "http://bioasq.org", "license": "BioASQ terms",
               "use": "factoid questions answered by a span of a PubMed snippet"},
}


def dataset(data: str) -> Tuple[Dict[str, str], bool]:
    """(the entry of `DATASETS` a data name belongs to, whether it is the sample); unknown names get a
    neutral entry whose licence says to check the data's own terms."""
    key = next((k for k in DATASETS if data.lower().startswith(k)), None)
    if key is None:
        return {"name": data, "license": "see the training data's own terms",
                "use": "the domain and entity or relation types of the training data"}, False
    return DATASETS[key], key == "sample"


def encoder_facts(model_dir: Path) -> Dict[str, object]:
    """Architecture, depth, width and parameter count of the first encoder stored in a pipeline folder."""
    from ..ml.safe_load import load_state

    for model_file in sorted(model_dir.glob("*/model")):
        msg = srsly.msgpack_loads(model_file.read_bytes())
        for shim_list in msg.get("shims", []):
            for data in shim_list:
                shim = srsly.msgpack_loads(data)
                config = shim.get("config") or (json.loads(shim["files"]["config.json"]) if "config.json" in shim.get("files", {}) else None)
                if not config or not shim.get("state"):
                    continue
                state = load_state(shim["state"], str(model_file))
                return {"component": model_file.parent.name, "architecture": config.get("model_type", "?"),
                        "layers": config.get("num_hidden_layers"), "width": config.get("hidden_size"),
                        "parameters": sum(t.numel() for t in state.values()), "vocabulary": config.get("vocab_size")}
    return {}


def metric_rows(metrics: Dict[str, object]) -> List[Tuple[str, str]]:
    """(name, value) of the headline numbers of a metrics JSON (spaCy's evaluate, evaluate-relations, qa-score)."""
    rows = []
    flat = {**metrics, **(metrics.get("scores") or {})} if isinstance(metrics.get("scores"), dict) else metrics
    for key, value in flat.items():
        if key == "speed" or key.startswith("token_") or key.endswith(("_per_s", "wps", "_loss")):
            continue  # speed and tokenizer scores are not accuracy
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((key, f"{100 * value:.2f}" if 0 <= value <= 1 and isinstance(value, float) else str(value)))
        elif key.endswith("_per_type") and isinstance(value, dict):
            prefix = key[: -len("_per_type")].removesuffix("_f")
            rows += [(f"{prefix} {label} F", f"{100 * v['f']:.2f}") for label, v in value.items() if isinstance(v, dict) and "f" in v]
    return rows


def build_card(base: Dict[str, object], model_dir: Path, data: str, metrics: List[Tuple[str, Path]]) -> Dict[str, object]:
    """The package meta (see the module docstring)."""
    config = _config(model_dir)
    source, is_sample = dataset(data)
    train, dev = config.get("paths", {}).get("train"), config.get("paths", {}).get("dev")
    encoder = encoder_facts(model_dir)
    origin = config.get("paths", {}).get("model")
    described = (f"{encoder['architecture']} encoder, {encoder['layers']} layers x {encoder['width']} wide, "
                 f"{encoder['parameters'] / 1e6:.1f}M parameters, initialised from {origin}" if encoder else "no transformer encoder")
    lead = "SAMPLE BUILD, plumbing only: trained on a few dozen made-up sentences; do not use its predictions. " if is_sample else ""
    card = dict(base)
    card["description"] = f"{lead}{base.get('description', '')} Trained on {source['name']}: {train}. Encoder: {described}."
    card["license"] = source["license"]
    card["sources"] = [{k: v for k, v in source.items() if k in ("name", "url", "license")}, ELECTRA]
    card["url"] = base.get("url", PROJECT)
    lines = ["### Training", f"- data: {source['name']}: train `{train}`, dev `{dev}` (licence: {source['license']})",
             f"- encoder: {described}", "- the Accuracy table above is spaCy's: the dev scores of the best checkpoint"]
    for split, path in metrics:
        label = f"{split}, sample, plumbing only" if is_sample else split
        rows = metric_rows(srsly.read_json(path))
        lines += ["", f"### Metrics ({label}: `{path.name}`)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "### Intended use", f"- {source['use']}.",
              "", "### Limits",
              "- English biomedical text like the training data; other domains, languages or entity types are not covered.",
              "- Scores are those of the data and split named above; expect lower ones on other corpora.",
              "- Predictions need review before any clinical or regulatory use."]
    card["notes"] = "\n".join(lines)
    return card


def _config(model_dir: Path) -> Dict[str, object]:
    from spacy.util import load_config

    return dict(load_config(model_dir / "config.cfg", interpolate=False))


@app.command("model-card", rich_help_panel="Packaging")
def model_card_command(
    base: Path = typer.Argument(..., exists=True, dir_okay=False, help="Base meta (configs/meta_*.json): name, task sentence, author"),
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="The trained pipeline folder that will be packaged"),
    output: Path = typer.Argument(..., dir_okay=False, help="The meta.json to pass to `spacy package --meta-path`"),
    data: str = typer.Option(..., "--data", help="The data name it was trained on (project var ner_data / re_data / qa_data)"),
    metrics: Optional[List[Path]] = typer.Option(None, "--metrics", exists=True, dir_okay=False, help="A metrics JSON of an evaluation step; repeat"),
    metrics_data: Optional[List[str]] = typer.Option(None, "--metrics-data", help="The data each --metrics was computed on, in the same order"),
) -> None:
    """Write a truthful model card (package meta.json): data, licence, encoder, metrics, intended use, limits."""
    metrics, metrics_data = metrics or [], metrics_data or []
    if len(metrics) != len(metrics_data):
        _fail(f"give one --metrics-data per --metrics (got {len(metrics)} --metrics, {len(metrics_data)} --metrics-data), "
              "e.g. --metrics metrics/bc5cdr_trf_test.json --metrics-data 'BC5CDR test (corpus/bc5cdr_test.spacy)'.")
    pairs = list(zip(metrics_data, metrics))
    card = build_card(srsly.read_json(base), model_dir, data, pairs)
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, card)
    typer.echo(f"✔ {output}: {card['description'][:160]}...")
