"""The one interface between lyric decoding and any language model.

``LyricScorer.score(contexts, candidates)`` returns float32 ``[len(contexts),
len(candidates)]``: log P(candidate | context), where a context is the lyrics so far (lines
joined by newlines, the current line last, possibly empty) and a candidate is a text
continuation — a word, a character, or ``"\\n"`` for the end of the line — summed over the
LM's own tokens. Because contexts and candidates are text, the LM's tokenizer stays
inside it: the small LSTM trained here (``model.LocalLyricScorer``), or any larger causal
LM served by Triton under the ``lyric_lm`` interface (``triton_models/lyric_lm``):

    inputs  LANGUAGE   BYTES [1]   "en" or "zh"
            CONTEXTS   BYTES [N]   UTF-8 texts
            CANDIDATES BYTES [K]   UTF-8 texts
            REGISTER   BYTES [1]   optional: a register of the language (``REGISTERS``),
                                   written by the lyric transformer; absent or empty: the
                                   served LM
    outputs LOGPROBS   FP32  [N, K]
            MODEL      BYTES [1]   the model's name and version

Every constraint (syllables, stress, rhyme, tone, theme, blocklist) is applied by the
decoder to these scores, so swapping the LM changes none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from cantus.lyrics import REGISTERS

REQUIRED_INPUTS = ("LANGUAGE", "CONTEXTS", "CANDIDATES")
INPUTS = (*REQUIRED_INPUTS, "REGISTER")
OUTPUTS = ("LOGPROBS", "MODEL")
MAX_CONTEXTS = 64
MAX_CANDIDATES = 20000
MAX_TEXT_BYTES = 4096


class LyricScorer(Protocol):
    language: str
    version: str

    def score(self, contexts: Sequence[str], candidates: Sequence[str]) -> np.ndarray: ...


class ScoringInputError(ValueError):
    """A scoring request that breaks the interface; the message names the input."""


def decode_texts(array: np.ndarray, name: str, limit: int) -> list[str]:
    values = array.reshape(-1).tolist()
    if len(values) > limit:
        raise ScoringInputError(f"input {name}: {len(values)} texts; at most {limit}")
    texts = []
    for value in values:
        raw = value if isinstance(value, bytes) else str(value).encode()
        if len(raw) > MAX_TEXT_BYTES:
            raise ScoringInputError(
                f"input {name}: a text of {len(raw)} bytes; at most {MAX_TEXT_BYTES}"
            )
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ScoringInputError(f"input {name}: not UTF-8") from None
    return texts


def parse_scoring_request(
    inputs: dict[str, np.ndarray], languages: Sequence[str]
) -> tuple[str, list[str], list[str]]:
    """``(language, contexts, candidates)`` from a request's tensors."""
    for name in REQUIRED_INPUTS:
        if name not in inputs:
            raise ScoringInputError(f"input {name} is required")
    language = decode_texts(inputs["LANGUAGE"], "LANGUAGE", 1)
    if len(language) != 1 or language[0] not in languages:
        raise ScoringInputError(f"input LANGUAGE: {language} is not one of {list(languages)}")
    contexts = decode_texts(inputs["CONTEXTS"], "CONTEXTS", MAX_CONTEXTS)
    candidates = decode_texts(inputs["CANDIDATES"], "CANDIDATES", MAX_CANDIDATES)
    if not contexts or not candidates:
        raise ScoringInputError("inputs CONTEXTS and CANDIDATES need at least one text each")
    return language[0], contexts, candidates


def parse_register(inputs: dict[str, np.ndarray], language: str) -> str:
    """The request's ``REGISTER`` ("" when absent or empty), one of ``language``'s."""
    if "REGISTER" not in inputs:
        return ""
    values = decode_texts(inputs["REGISTER"], "REGISTER", 1)
    register = values[0] if values else ""
    if register and register not in REGISTERS[language]:
        raise ScoringInputError(
            f"input REGISTER: {register[:40]!r} is not one of {list(REGISTERS[language])}"
        )
    return register
