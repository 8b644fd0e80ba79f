"""Masking for ELECTRA's generator, as a pure function (electra_pytorch `mask_tokens`,
Clark et al. 2020, arXiv:2003.10555, sec. 2).

`mask_prob` of the non-special tokens are selected; of those `mask_token_prob` become
[MASK], `random_token_prob` a random non-special token, and the rest stay as they are
(ELECTRA: 85% [MASK], 15% kept). Special tokens ([CLS], [SEP], [PAD], ...) are never
selected. All randomness comes from the `torch.Generator` passed in, so the function is
reproducible and resumable.
"""
from typing import Sequence, Tuple

import torch


def mask_tokens(
    input_ids: torch.Tensor, *, special_ids: Sequence[int], mask_id: int, vocab_size: int,
    mask_prob: float, mask_token_prob: float, random_token_prob: float, generator: torch.Generator,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Returns (masked_ids, is_masked), both (batch, length); `input_ids` is not modified.

    `is_masked` marks every selected position (also the ones kept unchanged): the generator
    is trained to predict the original token exactly there.
    """
    device = input_ids.device
    special = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    special[list(special_ids)] = True
    can_mask = ~special[input_ids]  # (batch, length)
    probs = torch.rand(input_ids.shape, generator=generator, device=device)
    is_masked = (probs < mask_prob) & can_mask
    # one more draw decides what a selected position becomes
    action = torch.rand(input_ids.shape, generator=generator, device=device)
    to_mask = is_masked & (action < mask_token_prob)
    to_random = is_masked & (action >= mask_token_prob) & (action < mask_token_prob + random_token_prob)
    # random replacements are drawn among non-special ids only
    allowed = (~special).nonzero().squeeze(-1)
    random_ids = allowed[torch.randint(len(allowed), input_ids.shape, generator=generator, device=device)]
    masked_ids = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked_ids = torch.where(to_random, random_ids, masked_ids)
    return masked_ids, is_masked


def discriminator_labels(original: torch.Tensor, sampled: torch.Tensor, is_masked: torch.Tensor) -> torch.Tensor:
    """1.0 where the generator's sample replaced the token with a different one, else 0.0.

    A masked position where the generator guessed the original token counts as original
    (the ELECTRA paper's definition; getting this backwards is a known porting bug).
    """
    return (is_masked & (sampled != original)).float()
