"""Export ELECTRA models (arXiv:2003.10555; ELECTRAMed, arXiv:2104.09585) as plain `save_pretrained`
directories that spacy-transformers loads by path (`electramed.Transformer.v1`'s `name`): the model at
the end of a run, any checkpoint (`export_checkpoint`), or a random baseline (`init_model`).
Weights are written as safetensors, so loading an export never runs code."""
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from transformers import ElectraConfig, ElectraModel, PreTrainedTokenizerFast

from .checkpoint import CHECKPOINTS, latest_checkpoint, load_state, remove_dead_tmp
from .errors import PretrainError
from .log import LOG, read_log


def electra_config(tokenizer: PreTrainedTokenizerFast, **sizes: Any) -> ElectraConfig:
    """An ElectraConfig whose vocabulary and special ids match `tokenizer`."""
    return ElectraConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **sizes)


def save_random_discriminator(
    tokenizer: PreTrainedTokenizerFast, output_dir: Union[str, Path], *, seed: int = 0,
    card: Optional[Dict[str, Any]] = None, **sizes: Any,
) -> Path:
    """A randomly initialised ElectraModel + tokenizer: the stand-in encoder before pre-training."""
    torch.manual_seed(seed)
    model = ElectraModel(electra_config(tokenizer, **sizes))
    return save_model_dir(model, tokenizer, output_dir, card=card or {"initialisation": "random", "seed": seed})


def save_model_dir(model, tokenizer, output_dir: Union[str, Path], *, card: Dict[str, Any]) -> Path:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(output_dir)
    return write_card(output_dir, card)


def write_card(output_dir: Path, card: Dict[str, Any]) -> Path:
    """The model card, as README.md (for people) and electramed_card.json (for tools that add to it)."""
    lines = ["# ELECTRA encoder exported by electramed-spacy", ""]
    lines += [f"- **{k}**: {v}" for k, v in card.items()]
    (output_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    (output_dir / "electramed_card.json").write_text(json.dumps(card, indent=2), encoding="utf8")
    return output_dir


def check_output_dir(output_dir: Path, *, overwrite: bool) -> None:
    """An export replaces an existing, non-empty directory only when asked to."""
    if output_dir.is_file():
        raise PretrainError(f"{output_dir} is a file: choose a directory as --output.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise PretrainError(f"{output_dir} already exists and is not empty: pass --overwrite to replace it, or choose another --output.")


def probe_history(log_path: Path, step: int) -> Optional[Dict[str, Any]]:
    """The run's downstream probes up to `step` (probe.py), for the model card; None when it had none."""
    rows = [r for r in read_log(log_path) if "probe_f" in r and r["step"] <= step]
    return {"f": [[r["step"], r["probe_f"]] for r in rows], "tokens": [r["tokens"] for r in rows]} if rows else None


def export_pretrainer(pretrainer, tokenizer_dir: Union[str, Path], output_dir: Union[str, Path], *,
                      cfg: Dict[str, Any], summary: Dict[str, Any], manifest: Dict[str, Any], overwrite: bool = False) -> Path:
    """The trained encoder -> `output_dir` (ElectraModel + fast tokenizer + model card): the discriminator, or with
    disc_weight = 0 the generator's encoder; the generator with its MLM head -> `output_dir/generator`.

    The directory loads with `AutoModel`/`AutoTokenizer` and as `electramed.Transformer.v1`'s `name`.
    The exported weights are plain transformers modules (the optional SDPA attention only changes the
    arithmetic used in training). Written to a temporary dir and renamed, so a failed export leaves no half model.
    An existing, non-empty `output_dir` is replaced only with `overwrite`.
    """
    from transformers import AutoTokenizer, ElectraForMaskedLM

    from .vocab import read_extension

    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite=overwrite)
    tmp = output_dir.with_name(f".{output_dir.name}.tmp-{os.getpid()}")  # a name no user picks: safe to remove
    remove_dead_tmp(output_dir.parent, f".{output_dir.name}.tmp-*")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    last = summary.get("last", {})
    card = {
        "objective": "masked language modelling only ([objective] disc_weight = 0; this encoder is the generator's)"
        if pretrainer.mlm_only else
        "ELECTRA replaced-token detection (Clark et al. 2020, arXiv:2003.10555), as ELECTRAMed (arXiv:2104.09585)",
        "corpus": ", ".join(f["path"] for f in manifest["spec"]["files"]),
        "corpus_tokens": manifest["tokens"],
        "vocabulary": cfg["paths"]["vocab"] or (cfg["model"]["init_from"] and f"{cfg['model']['init_from']}/vocab.txt")
        or f"WordPiece trained on the corpus, {len(tokenizer)} tokens",
        "vocabulary_added_words": len((read_extension(tokenizer_dir) or {}).get("added", {})),
        "lowercase": cfg["corpus"]["lowercase"],
        "init_from": cfg["model"]["init_from"] or "random",
        "generator_init": cfg["model"]["generator_init"],
        "masking": f"{cfg['objective']['mask_prob']:.0%} of " + ("whole words" if cfg["objective"]["whole_word"] else "pieces"),
        "steps": summary["step"],
        "tokens_seen": summary["tokens_seen"],
        "final_gen_loss": last.get("gen_loss"),
        "final_disc_loss": None if pretrainer.mlm_only else last.get("disc_loss"),
        "final_gen_acc": last.get("gen_acc"),
        "final_disc_acc": None if pretrainer.mlm_only else last.get("disc_acc"),
        "encoder": {k: getattr(pretrainer.encoder.config, k) for k in
                          ("embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")},
        "generator_hidden_size": pretrainer.generator.config.hidden_size,
        "max_seq_length": cfg["corpus"]["max_seq_length"],
        "probe_f_by_step": probe_history(Path(cfg["paths"]["output"]) / LOG, summary["step"]),
        "usage": "spaCy: [components.transformer.model] @architectures = \"electramed.Transformer.v1\", name = \"<this dir>\"",
    }
    try:
        save_model_dir(pretrainer.encoder, tokenizer, tmp, card=card)
        generator = ElectraForMaskedLM(pretrainer.generator.config)
        generator.load_state_dict(pretrainer.generator.state_dict())
        save_model_dir(generator, tokenizer, tmp / "generator", card={**card, "role": "generator (MLM), tied embeddings"})
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def export_checkpoint(cfg: Dict[str, Any], *, checkpoint: Optional[Path] = None, output: Optional[Path] = None,
                      overwrite: bool = False) -> Path:
    """Export a checkpoint (default: the newest under [paths] output) as the model dir spaCy loads.
    An existing, non-empty `output` is replaced only with `overwrite`."""
    from transformers import AutoTokenizer

    from .data import fingerprint
    from .model import build_pretrainer
    from .prepare import added_words, check_init_from

    run = Path(cfg["paths"]["output"])
    output = Path(output) if output else run / "model"
    check_output_dir(output, overwrite=overwrite)
    checkpoint = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if checkpoint is None or not (checkpoint / "state.pt").exists():
        raise PretrainError(f"No checkpoint to export under {run / CHECKPOINTS} (or {checkpoint}). Run `electramed pretrain` first.")
    vocab_dir = run / "vocab"
    state = load_state(checkpoint)
    if not (vocab_dir / "tokenizer.json").exists() or state["vocab_sha"] != fingerprint(vocab_dir / "tokenizer.json"):
        raise PretrainError(f"The vocabulary in {vocab_dir} is missing or does not match the checkpoint {checkpoint}.")
    tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
    if cfg["model"]["init_from"]:  # its config gives the architecture
        check_init_from(cfg["model"]["init_from"], len(tokenizer), added=added_words(vocab_dir))
    model = build_pretrainer(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    model.load_state_dict(state["model"])
    manifest = json.loads((run / "shards" / "manifest.json").read_text(encoding="utf8"))
    summary = {"step": state["step"], "tokens_seen": state["tokens_seen"], "last": state.get("last", {})}
    return export_pretrainer(model, vocab_dir, output, cfg=cfg, summary=summary, manifest=manifest, overwrite=overwrite)


def init_model(cfg: Dict[str, Any], output: Path, *, seed: Optional[int] = None) -> Path:
    """Vocabulary from the corpus (or [paths] vocab) + a randomly initialised ElectraModel of [model]'s sizes."""
    from transformers import AutoTokenizer

    from .data import resolve_corpus, scan_corpus
    from .model import ARCH_KEYS
    from .prepare import prepare_vocab

    files = resolve_corpus(cfg["paths"]["corpus"])
    scan_corpus(files, max_line_chars=cfg["corpus"]["max_line_chars"], shard_chars=cfg["corpus"]["shard_chars"])
    vocab_dir = prepare_vocab(cfg, files)
    tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
    seed = cfg["training"]["seed"] if seed is None else seed
    card = {"initialisation": "random (no pre-training)", "seed": seed, "vocabulary": cfg["paths"]["vocab"] or f"WordPiece trained on {cfg['paths']['corpus']}",
            "lowercase": cfg["corpus"]["lowercase"]}
    return save_random_discriminator(tokenizer, output, seed=seed, card=card, **{k: cfg["model"][k] for k in ARCH_KEYS})
