"""Pre-training configs: load a `configs/pretrain_*.cfg`, apply `--section.key value`
overrides, and validate every key against one explicit schema before any long work.

The schema below is the single list of hyper-parameters for ELECTRA pre-training
(Clark et al. 2020, arXiv:2003.10555) as ELECTRAMed (arXiv:2104.09585) ran it; a
misspelled key fails with the closest valid name (difflib), a wrong type with the
expected one. Code reads settings only from the validated dict, never from defaults
of its own.
"""
import difflib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from confection import Config

from .errors import PretrainError

# section -> key -> accepted types. `None` in a tuple means the key may be null.
NUM = (int, float)
SCHEMA: Dict[str, Dict[str, Tuple]] = {
    "paths": {
        "corpus": (str, list),          # file, glob, or list of files/globs
        "vocab": (str, type(None)),     # a given vocab.txt (e.g. SciVocab); null = train WordPiece
        "output": (str,),               # run directory: vocab/, shards/, checkpoints/, model/, log
    },
    "corpus": {
        "format": (str,),               # "sentences": one sentence per line; "raw": free text, split on . ! ?
        "lowercase": (bool,),
        "max_line_chars": (int,),       # a longer line is an error (usually a file that is not text)
        "max_seq_length": (int,),
        "short_seq_prob": NUM,          # ELECTRA's chance of a shorter target length
        "shard_chars": (int,),          # characters of text per shard (shards are built in parallel)
        "num_workers": (int,),          # 0 = all cores
        "seed": (int,),
    },
    "vocab": {
        "size": (int,),
        "min_frequency": (int,),
        "extend": (int,),               # words added to a given vocabulary (init_from's / [paths] vocab); 0 = none
    },
    "model": {
        "embedding_size": (int,),
        "hidden_size": (int,),
        "num_hidden_layers": (int,),
        "num_attention_heads": (int,),
        "intermediate_size": (int,),
        "max_position_embeddings": (int,),
        "hidden_dropout_prob": NUM,
        "attention_probs_dropout_prob": NUM,
        "generator_size": NUM,          # generator hidden/heads/intermediate as a fraction of the discriminator's
        "generator_layers": (int, type(None)),  # null = same depth as the discriminator (ELECTRA)
        "sdpa_attention": (bool,),      # fused attention kernel; the exported weights are unchanged
        "init_from": (str, type(None)), # BERT/ELECTRA dir for continued (domain-adaptive) pre-training
        "generator_init": (str,),       # "random", or "lower_layers": copy the init_from encoder's first generator_layers layers
    },
    "objective": {
        "mask_prob": NUM,               # share of non-special tokens selected
        "mask_token_prob": NUM,         # of those: replaced by [MASK]
        "random_token_prob": NUM,       # ... by a random token; the rest are kept
        "whole_word": (bool,),          # select the pieces of a word together (WordPiece "##" continuations)
        "sampling": (str,),             # "gumbel" (ELECTRA) or "multinomial"
        "temperature": NUM,
        "gen_weight": NUM,
        "disc_weight": NUM,
    },
    "training": {
        "seed": (int,),
        "batch_size": (int,),           # sequences per device per micro-step
        "grad_accum_steps": (int,),
        "max_steps": (int,),
        "max_minutes": NUM,             # wall-clock budget; 0 = none. Stops cleanly, checkpoints, exports
        "lr": NUM,
        "warmup_steps": (int,),
        "min_lr": NUM,
        "weight_decay": NUM,
        "beta1": NUM,
        "beta2": NUM,
        "eps": NUM,
        "grad_clip": NUM,
        "precision": (str,),            # "auto" (measured: precision.py), "bf16", "fp16" (CUDA only) or "fp32"
        "num_threads": (int,),          # torch CPU threads; 0 = torch default
        "log_every": (int,),
        "checkpoint_every": (int,),
        "keep_checkpoints": (int,),
        "progress_bar": (bool,),
    },
    "probe": {                          # a linear NER tagger on the discriminator's frozen states (probe.py)
        "train": (str, type(None)),     # token-level CoNLL (word<TAB>BIO tag) the tagger is fitted on
        "dev": (str, type(None)),       # ... and scored on: entity F1 into log.jsonl and curves.png
        "every": (int,),                # steps between probes (and at step 0 of a new run); 0 = off
        "train_sentences": (int,),      # the first N sentences of each file; 0 = all
        "dev_sentences": (int,),
        "max_length": (int,),           # wordpieces per sentence; words past it are tagged O
        "steps": (int,),                # full-batch Adam steps of the tagger
        "lr": NUM,
        "seed": (int,),
    },
}

CHOICES = {
    ("corpus", "format"): ("sentences", "raw"),
    ("objective", "sampling"): ("gumbel", "multinomial"),
    ("training", "precision"): ("auto", "bf16", "fp16", "fp32"),
    ("model", "generator_init"): ("random", "lower_layers"),
}


def _closest(name: str, options: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else f" Valid: {', '.join(sorted(options))}."


def parse_overrides(args: Sequence[str]) -> Dict[str, Any]:
    """`["--training.max_steps", "10", "--paths.vocab=x.txt"]` -> {"training.max_steps": 10, ...}.

    Values are parsed as JSON-ish config values (numbers, true/false, null, lists); anything else is a string.
    """
    overrides: Dict[str, Any] = {}
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or "." not in arg:
            raise PretrainError(
                f"Unexpected argument {arg!r}. Config overrides look like `--section.key value`, "
                f"e.g. `--training.max_steps 100`."
            )
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        else:
            if i + 1 >= len(args):
                raise PretrainError(f"The override {arg} has no value. Write `{arg} VALUE`.")
            key, value = arg[2:], args[i + 1]
            i += 1
        overrides[key.replace("-", "_")] = _parse_value(value)
        i += 1
    return overrides


def _parse_value(value: str) -> Any:
    try:
        parsed = Config().from_str(f"[x]\nv = {value}")["x"]["v"]
        return parsed
    except Exception:
        return value


def load_config(path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """Read, override and validate a pre-training config; returns plain nested dicts."""
    path = Path(path)
    if not path.exists():
        raise PretrainError(f"Config file {path} does not exist (cwd: {Path.cwd()}).")
    text = path.read_text(encoding="utf8")
    return config_from_str(text, overrides, source=str(path))


def config_from_str(text: str, overrides: Optional[Dict[str, Any]] = None, *, source: str = "<config>") -> Dict[str, Dict[str, Any]]:
    overrides = dict(overrides or {})
    for key in overrides:
        _check_key(key.split("."), source=f"override --{key}")
    cfg = Config().from_str(text, interpolate=True)
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg.setdefault(section, {})[name] = value
    return validate(dict(cfg), source=source)


def _check_key(parts: List[str], *, source: str) -> None:
    if len(parts) != 2:
        raise PretrainError(f"{source}: config keys are `section.key`; got {'.'.join(parts)!r}.")
    section, name = parts
    if section not in SCHEMA:
        raise PretrainError(f"{source}: unknown config section [{section}].{_closest(section, SCHEMA)}")
    if name not in SCHEMA[section]:
        raise PretrainError(f"{source}: unknown key {name!r} in [{section}].{_closest(name, SCHEMA[section])}")


def validate(cfg: Dict[str, Any], *, source: str = "<config>") -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for section, values in cfg.items():
        if section not in SCHEMA:
            raise PretrainError(f"{source}: unknown config section [{section}].{_closest(section, SCHEMA)}")
        for name in values:
            _check_key([section, name], source=source)
    for section, keys in SCHEMA.items():
        values = cfg.get(section, {})
        missing = [k for k in keys if k not in values]
        if missing:
            raise PretrainError(f"{source}: [{section}] lacks {', '.join(missing)}. Every hyper-parameter must be in the config (see configs/pretrain_tiny.cfg).")
        for name, types in keys.items():
            value = values[name]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise PretrainError(f"{source}: [{section}] {name} = {value!r} should be {want}.")
            choices = CHOICES.get((section, name))
            if choices and value not in choices:
                raise PretrainError(f"{source}: [{section}] {name} = {value!r}; choose one of {', '.join(choices)}.")
        out[section] = dict(values)
    t = out["training"]
    for name, low, meaning in (("batch_size", 1, "sequences per micro-step"), ("grad_accum_steps", 1, "micro-steps per update"),
                               ("max_steps", 1, "optimizer updates; a run of 0 would export an untrained model"),
                               ("warmup_steps", 0, "updates of linear warm-up"), ("log_every", 1, "steps between log lines"),
                               ("checkpoint_every", 1, "steps between checkpoints")):
        if t[name] < low:
            raise PretrainError(f"{source}: [training] {name} = {t[name]} must be >= {low} ({meaning}).")
    if not t["lr"] > 0 or not 0 <= t["min_lr"] <= t["lr"]:
        raise PretrainError(f"{source}: [training] needs lr > 0 and 0 <= min_lr <= lr (got lr = {t['lr']}, min_lr = {t['min_lr']}); "
                            "ELECTRA-small used lr = 5e-4.")
    if out["vocab"]["extend"] < 0:
        raise PretrainError(f"{source}: [vocab] extend = {out['vocab']['extend']} must be >= 0 (0 keeps the vocabulary as it is).")
    if out["vocab"]["extend"] and not (out["paths"]["vocab"] or out["model"]["init_from"]):
        raise PretrainError(f"{source}: [vocab] extend adds words to a given vocabulary ([model] init_from's vocab.txt or "
                            f"[paths] vocab); with neither, WordPiece is trained on the corpus and already fits it: set extend = 0.")
    obj = out["objective"]
    if not 0 < obj["mask_prob"] < 1 or obj["mask_token_prob"] + obj["random_token_prob"] > 1:
        raise PretrainError(f"{source}: [objective] needs 0 < mask_prob < 1 and mask_token_prob + random_token_prob <= 1.")
    model = out["model"]
    if model["hidden_size"] % model["num_attention_heads"]:
        raise PretrainError(f"{source}: [model] hidden_size {model['hidden_size']} is not a multiple of num_attention_heads {model['num_attention_heads']}.")
    if model["generator_init"] == "lower_layers" and not (model["init_from"] and model["generator_size"] == 1 and model["generator_layers"]):
        raise PretrainError(f"{source}: [model] generator_init = \"lower_layers\" copies the first generator_layers layers of init_from, "
                            f"so it needs init_from, generator_size = 1.0 and generator_layers set (got {model['init_from']!r}, {model['generator_size']}, {model['generator_layers']}).")
    if out["probe"]["every"] < 0 or (out["probe"]["every"] and not (out["probe"]["train"] and out["probe"]["dev"])):
        raise PretrainError(f"{source}: [probe] every = {out['probe']['every']} needs train and dev (token-level CoNLL files) "
                            f"and every >= 0; every = 0 turns the probe off.")
    if out["corpus"]["max_seq_length"] > model["max_position_embeddings"]:
        raise PretrainError(f"{source}: [corpus] max_seq_length {out['corpus']['max_seq_length']} exceeds [model] max_position_embeddings {model['max_position_embeddings']}.")
    return out


def config_to_str(cfg: Dict[str, Dict[str, Any]]) -> str:
    """The resolved config, written next to every output."""
    return Config(cfg).to_str()
