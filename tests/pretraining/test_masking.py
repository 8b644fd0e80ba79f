"""Property tests for ELECTRA masking and discriminator labels (the invariants a port gets wrong)."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from electramed_spacy.pretraining.masking import discriminator_labels, mask_tokens

SPECIAL = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK]
MASK_ID = 4


@st.composite
def batches(draw):
    vocab = draw(st.integers(8, 60))
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 24))
    ids = torch.tensor(draw(st.lists(st.integers(0, vocab - 1), min_size=batch * length, max_size=batch * length))).view(batch, length)
    return ids, vocab


probs = st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(batches(), st.floats(0.01, 0.99), probs, probs, st.integers(0, 2**31 - 1))
def test_masking_invariants(batch, mask_prob, p_mask, p_random, seed):
    ids, vocab = batch
    p_random = min(p_random, 1.0 - p_mask)
    original = ids.clone()
    gen = torch.Generator().manual_seed(seed)
    masked, is_masked = mask_tokens(ids, special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=vocab, mask_prob=mask_prob,
                                    mask_token_prob=p_mask, random_token_prob=p_random, generator=gen)
    special = torch.isin(original, torch.tensor(SPECIAL))
    assert torch.equal(ids, original), "input must not be modified"
    assert not (is_masked & special).any(), "special tokens are never selected"
    assert torch.equal(masked[~is_masked], original[~is_masked]), "unselected positions are unchanged"
    changed = masked != original
    assert not (changed & ~is_masked).any(), "only selected positions change"
    # a selected position is the original, [MASK] or a random non-special token
    replaced = masked[is_masked & changed]
    assert not torch.isin(replaced, torch.tensor(SPECIAL[:MASK_ID])).any()
    if p_mask == 1.0:
        assert (masked[is_masked] == MASK_ID).all()
    if p_mask == 0.0 and p_random == 0.0:
        assert torch.equal(masked, original)


@settings(max_examples=60, deadline=None)
@given(batches(), st.integers(0, 2**31 - 1))
def test_discriminator_labels(batch, seed):
    ids, vocab = batch
    gen = torch.Generator().manual_seed(seed)
    is_masked = torch.rand(ids.shape, generator=gen) < 0.5
    sampled = ids.clone()
    guesses = torch.randint(0, vocab, ids.shape, generator=gen)
    sampled[is_masked] = guesses[is_masked]
    labels = discriminator_labels(ids, sampled, is_masked)
    assert labels.dtype == torch.float32
    assert (labels[sampled == ids] == 0).all(), "a correct guess is labelled original"
    assert (labels[~is_masked] == 0).all()
    assert (labels[is_masked & (sampled != ids)] == 1).all()


def test_mask_rate_and_reproducible():
    ids = torch.randint(5, 1000, (64, 128))
    a = mask_tokens(ids, special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=1000, mask_prob=0.15, mask_token_prob=0.85,
                    random_token_prob=0.0, generator=torch.Generator().manual_seed(1))
    b = mask_tokens(ids, special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=1000, mask_prob=0.15, mask_token_prob=0.85,
                    random_token_prob=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    rate = a[1].float().mean().item()
    assert 0.13 < rate < 0.17
    kept = ((a[0] == ids) & a[1]).sum() / a[1].sum()
    assert 0.10 < kept.item() < 0.20  # 15% of selected tokens stay as they are


CONTINUATION = list(range(500, 1000))  # ids 500-999 play "##..." pieces


def word_ids(ids: torch.Tensor) -> torch.Tensor:
    """Per position, the index of its word's first piece (the reference, a plain loop)."""
    out = torch.zeros_like(ids)
    for b in range(ids.shape[0]):
        start = 0
        for i, token in enumerate(ids[b].tolist()):
            if token not in CONTINUATION:
                start = i
            out[b, i] = start
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 40), st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_whole_word_masking_selects_a_words_pieces_together(batch, length, mask_prob, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 1000, (batch, length), generator=gen)  # specials, word starts and continuations mixed
    masked, is_masked = mask_tokens(ids, special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=1000, mask_prob=mask_prob,
                                    mask_token_prob=0.85, random_token_prob=0.0, continuation_ids=CONTINUATION,
                                    generator=gen)
    first = word_ids(ids)
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert not (is_masked & special).any(), "special tokens are never selected"
    # a continuation piece is selected exactly when its word's first piece is (unless that is a special token)
    word_masked = is_masked.gather(1, first)
    followers = ~special & ~special.gather(1, first)
    assert torch.equal(is_masked[followers], word_masked[followers])
    assert torch.equal(masked[~is_masked], ids[~is_masked])


def test_whole_word_masking_keeps_the_rate_and_token_masking_unchanged():
    ids = torch.randint(5, 1000, (64, 128), generator=torch.Generator().manual_seed(0))
    common = dict(special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=1000, mask_prob=0.15, mask_token_prob=0.85,
                  random_token_prob=0.0)
    _, whole = mask_tokens(ids, **common, continuation_ids=CONTINUATION, generator=torch.Generator().manual_seed(1))
    assert 0.13 < whole.float().mean().item() < 0.17  # each word with mask_prob: the token share stays mask_prob
    _, pieces = mask_tokens(ids, **common, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(whole, pieces)
    # with no continuation pieces in the batch, whole-word masking is token masking, draw for draw
    words = torch.randint(5, 500, (8, 32), generator=torch.Generator().manual_seed(2))
    a = mask_tokens(words, **common, continuation_ids=CONTINUATION, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(words, **common, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
