"""Masking for ELECTRA's generator, as a pure function (electra_pytorch `mask_tokens`,
Clark et al. 2020, arXiv:2003.10555, sec. 2).

`mask_prob` of the non-special tokens are selected; of those `mask_token_prob` become
[MASK], `random_token_prob` a random non-special token, and the rest stay as they are
(ELECTRA: 85% [MASK], 15% kept). Special tokens ([CLS], [SEP], [PAD], ...) are never
selected. All randomness comes from the `torch.Generator` passed in, so the function is
reproducible and resumable.

Whole-word masking (`continuation_ids`, BERT's later release and PubMedBERT): the pieces of a
word are selected together, each word with probability `mask_prob`, so a masked "##azole" never
sits beside a visible "ketocon" that gives it away; the share of tokens selected stays `mask_prob`
in expectation. A word is a piece that is not a continuation ("##...") and the continuations after
it. What each selected piece becomes is still drawn per piece.

The training loop builds one `TokenMasker` (the vocabulary-sized special-token table and the
list of ids a random replacement may take are built once, not per batch); `mask_tokens` is the
same operation as a one-off function. Neither synchronises with the host (no `nonzero()`,
no `.item()`), and no random ids are drawn when `random_token_prob` is 0.
"""
from typing import Optional, Sequence, Tuple

import torch


class TokenMasker:
    """`masker(input_ids, generator) -> (masked_ids, is_masked)` with the tables built once."""

    def __init__(self, *, special_ids: Sequence[int], mask_id: int, vocab_size: int, mask_prob: float,
                 mask_token_prob: float, random_token_prob: float, continuation_ids: Optional[Sequence[int]] = None,
                 device: torch.device = torch.device("cpu")):
        """`continuation_ids`: the vocabulary's word-continuation pieces ("##..."), for whole-word
        masking; None masks each piece on its own draw."""
        self.mask_id, self.mask_prob = mask_id, mask_prob
        self.mask_token_prob, self.random_token_prob = mask_token_prob, random_token_prob
        self.special = torch.zeros(vocab_size, dtype=torch.bool, device=device)  # (vocab,)
        self.special[list(special_ids)] = True
        self.allowed = (~self.special).nonzero().squeeze(-1)  # (vocab - specials,) ids a random replacement may take
        self.continuation = None
        if continuation_ids is not None:
            self.continuation = torch.zeros(vocab_size, dtype=torch.bool, device=device)  # (vocab,)
            self.continuation[list(continuation_ids)] = True

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns (masked_ids, is_masked), both (batch, length); `input_ids` is not modified.

        `is_masked` marks every selected position (also the ones kept unchanged): the generator
        is trained to predict the original token exactly there.
        """
        device = input_ids.device
        can_mask = ~self.special[input_ids]  # (batch, length)
        probs = torch.rand(input_ids.shape, generator=generator, device=device)
        if self.continuation is not None:  # every piece takes the draw of its word's first piece
            starts = ~self.continuation[input_ids]  # (batch, length); specials start words too
            positions = torch.arange(input_ids.shape[1], device=device).expand_as(input_ids)
            first = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=1).values
            probs = probs.gather(1, first)
        is_masked = (probs < self.mask_prob) & can_mask
        # one more draw decides what a selected position becomes
        action = torch.rand(input_ids.shape, generator=generator, device=device)
        masked_ids = input_ids.masked_fill(is_masked & (action < self.mask_token_prob), self.mask_id)
        if self.random_token_prob > 0:
            to_random = is_masked & (action >= self.mask_token_prob) & (action < self.mask_token_prob + self.random_token_prob)
            # random replacements are drawn among non-special ids only
            random_ids = self.allowed[torch.randint(len(self.allowed), input_ids.shape, generator=generator, device=device)]
            masked_ids = torch.where(to_random, random_ids, masked_ids)
        return masked_ids, is_masked


def mask_tokens(
    input_ids: torch.Tensor, *, special_ids: Sequence[int], mask_id: int, vocab_size: int,
    mask_prob: float, mask_token_prob: float, random_token_prob: float, generator: torch.Generator,
    continuation_ids: Optional[Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """`TokenMasker(...)(input_ids, generator)` in one call (tests, one-off use); a loop keeps the masker."""
    masker = TokenMasker(special_ids=special_ids, mask_id=mask_id, vocab_size=vocab_size, mask_prob=mask_prob,
                         mask_token_prob=mask_token_prob, random_token_prob=random_token_prob,
                         continuation_ids=continuation_ids, device=input_ids.device)
    return masker(input_ids, generator)


def discriminator_labels(original: torch.Tensor, sampled: torch.Tensor, is_masked: torch.Tensor) -> torch.Tensor:
    """1.0 where the generator's sample replaced the token with a different one, else 0.0.

    A masked position where the generator guessed the original token counts as original
    (the ELECTRA paper's definition; getting this backwards is a known porting bug).
    """
    return (is_masked & (sampled != original)).float()
