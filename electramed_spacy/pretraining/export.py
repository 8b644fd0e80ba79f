"""Export ELECTRA models as plain `save_pretrained` directories that
spacy-transformers loads by path (`electramed.Transformer.v1`'s `name`)."""
import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from transformers import ElectraConfig, ElectraModel, PreTrainedTokenizerFast


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
    model.save_pretrained(output_dir)
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(output_dir)
    lines = ["# ELECTRA encoder exported by electramed-spacy", ""]
    lines += [f"- **{k}**: {v}" for k, v in card.items()]
    (output_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    (output_dir / "electramed_card.json").write_text(json.dumps(card, indent=2), encoding="utf8")
    return output_dir
