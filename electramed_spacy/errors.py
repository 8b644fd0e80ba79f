"""Coded, actionable error messages: the one table (the spaCy `Errors` habit, spacy/errors.py).

Every coded message of the package lives here; each says what was wrong, where
(config key, file) and how to fix it. Codes are grouped by area:

- E001-E009  encoder loading and windows (`ml/transformer.py`, shared by `ml/qa_model.py`)
- E010-E019  tokenizer (`pipeline/tokenizer.py`)
- E020-E039  extractive QA (`ml/qa_model.py`, `pipeline/qa.py`)
- E040-E059  relations (`relations.py`, `ml/relations/pooled.py`, `pipeline/relation_extractor.py`)
- E060-E069  training callbacks and encoder-owning models (`memory.py`, `frozen_encoder.py`, `ml/encoder_shim.py`);
             E060-E062 were published as E055-E057 and are still reachable under those names

Corpus readers raise `CorpusFormatError` (file:line, what was found and expected) and
pre-training raises `PretrainError`; those messages name their location instead of a code.
A code, once published, keeps its meaning; a new message takes the next free code of its area.
"""
import re

from .about import ELECTRAMED_HUB_ID


class ElectraMedError(ValueError):
    """Base class for errors a user can fix by changing input, config or paths."""


class _Coded(type):
    """Reading `Errors.E001` gives "[E001] " + its message: the code is the attribute's own name, so a
    message cannot carry a code other than the one it is raised under (spaCy's `add_codes`, spacy/errors.py)."""

    def __getattribute__(cls, name: str):
        message = super().__getattribute__(name)
        if re.fullmatch(r"E\d{3}", name) and isinstance(message, str):
            return f"[{super().__getattribute__('_ALIASES').get(name, name)}] {message}"
        return message


class Errors(metaclass=_Coded):
    # E001-E009: encoder loading and windows
    E001 = (
        "Could not load the ELECTRAMed transformer from {name!r}. Tried: {tried}. "
        "Cause: {cause}. Fix: point `[components.transformer.model] name` (or "
        "`--components.transformer.model.name`) at a local `save_pretrained` directory "
        "(for example the output of `electramed pretrain` or `electramed init-model`), or at a "
        f"Hugging Face hub id such as '{ELECTRAMED_HUB_ID}' when you "
        "are online (set HF_HUB_OFFLINE=1 to forbid downloads)."
    )
    E002 = "window must be > 0 and 0 < stride <= window; got window={window}, stride={stride}."
    E003 = "Unknown autocast dtype {value!r} in `[components.transformer.model] autocast`; use one of {options} or null."
    E004 = "Unknown quantize mode {value!r} in `[components.transformer.model] quantize`; use one of {options} or null."
    E005 = (
        "`[components.transformer.model] quantize = {value!r}` is for inference only: int8 weights cannot be "
        "trained. Train with quantize = null (`--components.transformer.model.quantize null`, or list the transformer "
        "in [training] frozen_components), then switch it on when loading the trained pipeline: "
        "spacy.load(path, config={{\"components\": {{\"transformer\": {{\"model\": {{\"quantize\": {value!r}}}}}}}}})."
    )
    E006 = (
        "`[components.transformer.model] quantize = {quantize!r}` cannot be combined with autocast = {autocast!r}: "
        "the int8 kernels take float32 activations. Set autocast = null next to it "
        "(`--components.transformer.model.autocast null`, or \"autocast\": None in spacy.load's config overrides)."
    )

    E007 = (
        "`[components.transformer.model] sorted_batch_wordpieces` must be > 0 (padded wordpieces per group of "
        "length-sorted windows) or null (one padded batch); got {value}."
    )
    E008 = (
        "Refused to load a pipeline: {where} stores a file or option named {name!r}. A stored name must be a "
        "plain file name (no folder, no '..', not absolute), and the only tokenizer option kept is use_fast, so that "
        "loading writes nothing outside its own temporary folder and imports no code. The folder was not made by "
        "electramed-spacy or spacy-transformers, or was altered: rebuild it with `spacy train` / `spacy package`."
    )
    E009 = (
        "Refused to load a pipeline: the weights in {where} are not a plain table of tensors ({cause}). "
        "They are read with torch's weights-only loader, which never runs code from the file; rebuild the pipeline "
        "from its training run or get it from its source again."
    )

    # E010-E019: tokenizer
    E010 = (
        "The text is not valid Unicode: lone surrogate U+{code:04X} at character {offset}. Clean it before "
        "nlp() / nlp.pipe(), e.g. text.encode('utf-8', 'replace').decode('utf-8') (one '?' per surrogate, offsets kept)."
    )

    # E020-E039: extractive QA
    E020 = (
        "Could not load the QA encoder from {name!r}. Tried: {tried}. Cause: {cause}. Fix: point "
        "`[components.qa.model] name` (or `--components.qa.model.name`) at a local `save_pretrained` directory "
        "with a fast tokenizer (e.g. the output of `electramed init-model` or `electramed pretrain`), or at a "
        "Hugging Face hub id when online."
    )
    E021 = (
        "The tokenizer at {name!r} is not a fast (Rust) tokenizer, so it cannot map wordpieces back to "
        "character offsets. Save the model with a `tokenizer.json` (PreTrainedTokenizerFast.save_pretrained)."
    )
    E022 = (
        "max_length={max_length} leaves no room for context: it must exceed max_question_tokens "
        "({max_question_tokens}) + overlap ({overlap}) + 3 special tokens. Raise `[components.qa.model] max_length` "
        "or lower `overlap` / `max_question_tokens`."
    )
    E023 = (
        "max_length={max_length} exceeds the encoder's max_position_embeddings={max_pos} ({name!r}). "
        "Lower `[components.qa.model] max_length`."
    )
    E024 = (
        "None of the first {n} initialisation examples has a question (`doc._.question` on the "
        "predicted Doc). Read training data with `electramed.QACorpus.v1` (it carries the question from the "
        "DocBin onto the predicted Doc) and convert it with `electramed convert-bioasq`."
    )
    E025 = "ask() needs a non-empty {what}; got {value!r}."
    E026 = "top_k and max_answer_tokens must be >= 1; got {top_k} and {max_answer_tokens}."
    E027 = "The pipeline has no `electramed_qa` component: add it with nlp.add_pipe('electramed_qa')."
    E028 = "`[components.qa.model] batch_size` must be >= 0 (0 = all windows in one call); got {value}."
    E029 = "Unknown autocast dtype {value!r} in `[components.qa.model] autocast`; use 'bfloat16', 'float16' or null."

    # E040-E059: relations
    E040 = "Relation span {text!r} does not belong to this Doc: build it with doc[start:end] or doc.char_span()."
    E041 = "[components.<relation pipe>.candidates] {key} must be >= 0 (0 = no limit), got {value}."
    E042 = "[components.<relation pipe>.candidates] type_pairs must be [head_label, tail_label] pairs, got {value!r}."
    E043 = (
        "pair_representation {value!r} is not known; use one of {options} "
        "in [components.<relation pipe>.model] pair_representation."
    )
    E044 = "[components.{name}] {key} must be > 0, got {value}."
    E045 = "Relation labels must be strings, got {label!r} ({type})."
    E046 = (
        "{label!r} is this pipe's no-relation class (no_relation_label); it cannot also be a relation "
        "label. Rename it in the data or set [components.<name>] no_relation_label to another string."
    )
    E047 = (
        "Cannot add relation label {label!r}: the model was already initialized with labels "
        "{labels}. Add labels before nlp.initialize() (or pass them in [initialize.components])."
    )
    E048 = (
        "[{name}] found no relation labels: the training examples have no gold relations in "
        "doc._.relations. Convert the corpus with `electramed convert-ddi` / `convert-chemprot` "
        "(which write DocBin with store_user_data=True), or pass labels in [initialize.components]."
    )
    E049 = (
        "Could not load the relation encoder from {name!r}. Tried: {tried}. Cause: {cause}. Fix: point "
        "`[components.relation_extractor.model] name` (or `--paths.model`) at a local `save_pretrained` "
        "directory with a fast tokenizer (e.g. the output of `electramed init-model` or `electramed pretrain`), "
        "or at a Hugging Face hub id when online."
    )
    E050 = (
        "The tokenizer at {name!r} is not a fast (Rust) tokenizer, so entity markers cannot be found among "
        "its wordpieces. Save the model with a `tokenizer.json` (PreTrainedTokenizerFast.save_pretrained)."
    )
    E051 = (
        "[components.<relation pipe>.model] max_length={max_length} must be between {low} (room for the "
        "markers of two mentions and the special tokens) and the encoder's max_position_embeddings={max_pos} ({name!r})."
    )
    E052 = "[components.<relation pipe>.model] {key} must be >= {low}, got {value}."
    E053 = "[components.{name}] negative_sample_rate must be in (0, 1] (1.0 keeps every no-relation pair), got {value}."
    E054 = (
        "[components.<relation pipe>.model] marking={value!r} is unknown: use \"pair\" (one sequence per "
        "candidate pair, its two mentions marked) or \"all\" (one sequence per sentence, every mention marked)."
    )
    E061 = (
        "[components.<pipe>.model] quantize = {value!r}: {reason} Train with quantize = null and switch it "
        "on when loading the trained pipeline: spacy.load(path, config={{\"components\": {{\"<pipe>\": "
        "{{\"model\": {{\"quantize\": \"dynamic_int8_per_channel\", \"autocast\": None}}}}}}}}) "
        "(`electramed annotate --quantize` does this)."
    )
    E060 = (
        "[initialize.before_init] electramed.malloc_mmap_threshold.v1: threshold_bytes must be 0 (glibc's "
        "default) or between 1 and 33554432 (32 MB, glibc's limit), got {value}."
    )
    E062 = (
        "electramed.frozen_encoder_steps.v1 / electramed.frozen_then_linear.v1: {key} must be a whole number >= 0 "
        "(updates during which the heads learn on the encoder's frozen states; 0 = none), got {value!r}."
    )

    # codes published before the E060-E069 area existed: same messages, shown under their new code
    E055, E056, E057 = E060, E061, E062
    _ALIASES = {"E055": "E060", "E056": "E061", "E057": "E062"}
