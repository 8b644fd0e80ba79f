"""ELECTRA's generator + discriminator and their joint objective (Clark et al. 2020,
arXiv:2003.10555; details as in richarddwang/electra_pytorch `pretrain.py`).

- The generator is a smaller ElectraForMaskedLM (`generator_size` x the discriminator's
  hidden size, heads and feed-forward size); both share one embedding module, and the
  generator's output layer is tied to the shared word embeddings.
- The generator's hidden states are gathered at the masked positions *before* the output
  projection, so MLM logits and loss cost (masked tokens x vocab), not (all tokens x vocab):
  with 15% masking this removes ~85% of the largest matmul of a naive loop.
- Replacements are sampled from the generator under no_grad in fp32 (Gumbel-max by
  default); the discriminator label is 1 only where the sample differs from the original.
- loss = gen_weight * MLM + disc_weight * replaced-token detection (1 and 50 in ELECTRA).
- disc_weight = 0 is masked language modelling alone (BERT's objective; Gururangan et al.'s continued
  pre-training): the discriminator is skipped and frozen (its embeddings, shared, still learn) and the
  generator is the encoder that is probed and exported; with init_from, give it all the checkpoint's
  layers (generator_layers = its depth) so the whole encoder trains.

Both halves are plain Hugging Face modules, so export is `save_pretrained`. The optional
SDPA attention swaps only the attention arithmetic (same weights) for
`torch.nn.functional.scaled_dot_product_attention`, which transformers' ELECTRA lacks.
"""
import types
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining
from transformers.models.electra.modeling_electra import ElectraSelfAttention

from .errors import PretrainError
from .masking import discriminator_labels

ARCH_KEYS = ("embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "hidden_dropout_prob", "attention_probs_dropout_prob")


def electra_configs(model_cfg: Dict[str, Any], *, vocab_size: int, pad_token_id: int) -> Tuple[ElectraConfig, ElectraConfig]:
    """(discriminator, generator) configs from the [model] section."""
    disc = ElectraConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **{k: model_cfg[k] for k in ARCH_KEYS})
    return disc, generator_config(disc, model_cfg["generator_size"], model_cfg["generator_layers"])


def generator_config(disc: ElectraConfig, size: float, layers: Optional[int]) -> ElectraConfig:
    gen = ElectraConfig(**disc.to_dict())
    gen.hidden_size = max(1, int(round(disc.hidden_size * size)))
    gen.num_attention_heads = max(1, int(round(disc.num_attention_heads * size)))
    gen.intermediate_size = max(1, int(round(disc.intermediate_size * size)))
    gen.num_hidden_layers = layers or disc.num_hidden_layers
    if gen.hidden_size % gen.num_attention_heads:
        raise PretrainError(f"[model] generator_size = {size} gives a generator hidden size {gen.hidden_size} that is not a multiple of its {gen.num_attention_heads} heads; choose another generator_size.")
    return gen


def _sdpa_forward(self: ElectraSelfAttention, hidden_states, attention_mask=None, head_mask=None,
                  encoder_hidden_states=None, encoder_attention_mask=None, past_key_value=None, output_attentions=False):
    batch, length, _ = hidden_states.shape

    def heads(x):  # (batch, length, hidden) -> (batch, heads, length, head_dim)
        return x.view(batch, length, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    q, k, v = heads(self.query(hidden_states)), heads(self.key(hidden_states)), heads(self.value(hidden_states))
    # ElectraModel passes an additive (batch, 1, 1, length) mask of 0 / dtype-min; a boolean mask is dtype-safe
    keep = None if attention_mask is None else attention_mask == 0
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout.p if self.training else 0.0)
    return (ctx.transpose(1, 2).reshape(batch, length, self.all_head_size),)  # (batch, length, hidden)


def use_sdpa_attention(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, ElectraSelfAttention) and module.position_embedding_type == "absolute":
            module.forward = types.MethodType(_sdpa_forward, module)
    return model


class ElectraPretrainer(nn.Module):
    """Generator + discriminator with shared embeddings; `forward` returns the loss and metrics."""

    def __init__(self, discriminator: ElectraForPreTraining, generator: ElectraForMaskedLM, *,
                 gen_weight: float, disc_weight: float, sampling: str, temperature: float):
        super().__init__()
        self.discriminator, self.generator = discriminator, generator
        self.gen_weight, self.disc_weight = gen_weight, disc_weight
        self.sampling, self.temperature = sampling, temperature
        self.tie_embeddings()
        if self.mlm_only:  # no gradient ever reaches it: frozen, so the optimizer holds no state for it
            discriminator.requires_grad_(False)
            discriminator.electra.embeddings.requires_grad_(True)  # the generator's too

    @property
    def mlm_only(self) -> bool:
        return self.disc_weight == 0

    @property
    def encoder(self) -> nn.Module:
        """The encoder this objective trains, the one probed and exported: the discriminator's, or with
        disc_weight = 0 (masked language modelling alone) the generator's."""
        return self.generator.electra if self.mlm_only else self.discriminator.electra

    def tie_embeddings(self) -> None:
        # ELECTRA sec. 3.2: sharing token (and position) embeddings helps; the generator's softmax weights are tied too
        self.generator.electra.embeddings = self.discriminator.electra.embeddings
        self.generator.generator_lm_head.weight = self.discriminator.electra.embeddings.word_embeddings.weight

    def sample(self, logits: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Token ids drawn from softmax(logits / T) in fp32. (masked,) long"""
        with torch.no_grad(), torch.autocast(device_type=logits.device.type, enabled=False):
            logits = logits.float() / self.temperature
            if self.sampling == "gumbel":
                u = torch.rand(logits.shape, generator=generator, device=logits.device)
                gumbel = -torch.log(-torch.log(u.clamp_(1e-9, 1.0 - 1e-9)))
                return (logits + gumbel).argmax(-1)
            return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)

    def forward(self, input_ids: torch.Tensor, masked_ids: torch.Tensor, is_masked: torch.Tensor,
                attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        # generator: hidden states everywhere, logits only at masked positions
        gen_hidden = self.generator.electra(masked_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]  # (batch, length, gen_hidden)
        gen_logits = self.generator.generator_lm_head(self.generator.generator_predictions(gen_hidden[is_masked]))  # (masked, vocab)
        targets = input_ids[is_masked]  # (masked,)
        n_masked = targets.numel()
        gen_loss = F.cross_entropy(gen_logits.float(), targets) if n_masked else gen_logits.sum() * 0.0
        with torch.no_grad():
            gen_acc = (gen_logits.argmax(-1) == targets).float().mean() if n_masked else gen_loss.new_zeros(())
        if self.mlm_only:  # the discriminator is skipped: its metrics are NaN (gaps in the curves)
            nan = gen_loss.new_full((), float("nan")).detach()
            return {"loss": self.gen_weight * gen_loss, "gen_loss": gen_loss.detach(), "disc_loss": nan,
                    "gen_acc": gen_acc, "disc_acc": nan, "replaced": nan}
        sampled = self.sample(gen_logits.detach(), generator)
        corrupted = masked_ids.clone()
        corrupted[is_masked] = sampled  # (batch, length)
        labels = discriminator_labels(input_ids, corrupted, is_masked)  # (batch, length)
        disc_logits = self.discriminator(corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids).logits  # (batch, length)
        real = attention_mask.bool()
        disc_loss = F.binary_cross_entropy_with_logits(disc_logits[real].float(), labels[real])
        loss = self.gen_weight * gen_loss + self.disc_weight * disc_loss
        with torch.no_grad():
            disc_acc = ((disc_logits[real] > 0).float() == labels[real]).float().mean()
            replaced = labels[real].mean()
        return {"loss": loss, "gen_loss": gen_loss.detach(), "disc_loss": disc_loss.detach(),
                "gen_acc": gen_acc, "disc_acc": disc_acc, "replaced": replaced}


def build_pretrainer(cfg: Dict[str, Any], *, vocab_size: int, pad_token_id: int) -> ElectraPretrainer:
    """A fresh (or, with [model] init_from, continued) generator + discriminator."""
    from .vocab import read_extension

    model_cfg, obj = cfg["model"], cfg["objective"]
    if model_cfg["init_from"]:
        extension = read_extension(Path(cfg["paths"]["output"]) / "vocab")
        disc, gen = load_init_from(model_cfg, vocab_size=vocab_size, extension=extension)
    else:
        disc_config, gen_config = electra_configs(model_cfg, vocab_size=vocab_size, pad_token_id=pad_token_id)
        disc, gen = ElectraForPreTraining(disc_config), ElectraForMaskedLM(gen_config)
    if model_cfg["sdpa_attention"]:
        use_sdpa_attention(disc)
        use_sdpa_attention(gen)
    return ElectraPretrainer(disc, gen, gen_weight=obj["gen_weight"], disc_weight=obj["disc_weight"],
                             sampling=obj["sampling"], temperature=obj["temperature"])


def extended_embeddings(weight: torch.Tensor, extension: Dict[str, Any]) -> torch.Tensor:
    """`weight` (old vocabulary x width) with one row per word [vocab] extend added: the mean of the rows of
    its old pieces (so "nephrotoxicity" starts where "ne ##ph ##rot ##ox ##icity" averaged)."""
    if weight.shape[0] != extension["base_size"]:
        raise PretrainError(f"The vocabulary extension was built on {extension['base_size']} tokens "
                            f"({extension['base_vocab']}), the checkpoint's embeddings have {weight.shape[0]} rows.")
    rows = [weight[torch.tensor(ids)].mean(0) for ids in extension["added"].values()]
    return torch.cat([weight, torch.stack(rows)]) if rows else weight


def load_init_from(model_cfg: Dict[str, Any], *, vocab_size: int,
                   extension: Optional[Dict[str, Any]] = None) -> Tuple[ElectraForPreTraining, ElectraForMaskedLM]:
    """Discriminator weights from a BERT or ELECTRA `save_pretrained` dir (domain-adaptive pre-training).

    BERT encoders have the same parameter names as ELECTRA's, so a BERT checkpoint (e.g. MiniLM)
    becomes an ELECTRA discriminator with embedding_size = hidden_size. The generator is new
    unless the dir has a `generator/` subdir (our own exports do). The dir and its vocabulary size
    are checked once, before tokenisation, by `prepare.check_init_from`.
    """
    from transformers import AutoConfig, AutoModel

    path = Path(model_cfg["init_from"])
    src_config = AutoConfig.from_pretrained(str(path))
    base = AutoModel.from_pretrained(str(path))
    keys = {k: getattr(src_config, k) for k in ARCH_KEYS if k != "embedding_size"}
    disc_config = ElectraConfig(vocab_size=vocab_size, pad_token_id=src_config.pad_token_id or 0,
                                embedding_size=getattr(src_config, "embedding_size", src_config.hidden_size),
                                type_vocab_size=getattr(src_config, "type_vocab_size", 2),
                                layer_norm_eps=getattr(src_config, "layer_norm_eps", 1e-12), **keys)
    disc = ElectraForPreTraining(disc_config)
    state = base.state_dict()
    if extension:  # [vocab] extend: the added words' embeddings from their old pieces
        key = "embeddings.word_embeddings.weight"
        state[key] = extended_embeddings(state[key], extension)
    missing, unexpected = disc.electra.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]
    if missing or unexpected:
        raise PretrainError(f"{path} is not a BERT/ELECTRA encoder this loader understands (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    if (path / "generator" / "config.json").exists():
        gen = ElectraForMaskedLM.from_pretrained(str(path / "generator"))
        if gen.config.vocab_size != vocab_size:  # [vocab] extend: embeddings are the discriminator's (tied); the bias grows
            gen.resize_token_embeddings(vocab_size)
    else:
        gen = ElectraForMaskedLM(generator_config(disc_config, model_cfg["generator_size"], model_cfg["generator_layers"]))
        if model_cfg["generator_init"] == "lower_layers":
            copy_lower_layers(disc, gen)
    return disc, gen


def copy_lower_layers(disc: ElectraForPreTraining, gen: ElectraForMaskedLM) -> None:
    """Warm-start a full-width generator of k layers with the discriminator's first k layers.

    A random generator fed to a pre-trained discriminator replaces tokens with noise that is
    trivially detected, and the discriminator's early gradients teach it nothing useful while the
    generator learns token frequencies. Started from the checkpoint's lower layers (embeddings
    are shared anyway), the generator only has to learn its output head (dense + LayerNorm; the
    softmax is tied to the word embeddings) to produce plausible replacements within a few hundred
    steps. The copies are independent parameters: the two halves diverge from there.
    """
    layers = gen.electra.encoder.layer  # full width: the config check requires generator_size = 1.0
    if len(layers) > len(disc.electra.encoder.layer):
        raise PretrainError(f"generator_init = lower_layers: generator_layers = {len(layers)} is deeper than init_from's "
                            f"{len(disc.electra.encoder.layer)} layers; it must be no deeper than the discriminator.")
    for gen_layer, disc_layer in zip(layers, disc.electra.encoder.layer):
        gen_layer.load_state_dict(disc_layer.state_dict())


def param_groups(model: nn.Module, weight_decay: float):
    """nanoGPT: decay matrices (>= 2 dims), not biases or LayerNorm weights. Tied tensors appear once."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def get_lr(step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr: float) -> float:
    """Linear warm-up to `lr` over `warmup_steps`, then linear decay to `min_lr` at `max_steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    frac = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + (lr - min_lr) * (1.0 - frac)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())

