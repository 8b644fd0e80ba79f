"""Coded, actionable error messages (the spaCy `Errors` habit, spacy/errors.py).

Each message says what was wrong, where, and how to fix it. Subpackages keep
their own messages next to their code when only they raise them; messages
shared across the package live here.
"""


class ElectraMedError(ValueError):
    """Base class for errors a user can fix by changing input, config or paths."""


class Errors:
    E001 = (
        "[E001] Could not load the ELECTRAMed transformer from {name!r}. Tried: {tried}. "
        "Cause: {cause}. Fix: point `[components.transformer.model] name` (or "
        "`--components.transformer.model.name`) at a local `save_pretrained` directory "
        "(for example the output of `electramed pretrain` or `electramed init-model`), or at a "
        "Hugging Face hub id such as 'giacomomiolo/electramed_base_scivocab_1M' when you "
        "are online (set HF_HUB_OFFLINE=1 to forbid downloads)."
    )
    E002 = "[E002] window must be > 0 and 0 < stride <= window; got window={window}, stride={stride}."
    E003 = "[E003] Unknown autocast dtype {value!r} in `[components.transformer.model] autocast`; use one of {options} or null."
