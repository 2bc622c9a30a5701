"""What the ``lyric_lm`` Triton model does, kept out of ``model.py`` so that it is tested
without Triton: load one LM per language and answer scoring requests (``scoring``); a
request in a register (``REGISTER``) is answered by the language's lyric transformer,
conditioned on it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from cantus.lyrics import LYRICS_LANGUAGES
from cantus.lyrics.model import LocalLyricScorer, load_lyric_checkpoint
from cantus.lyrics.scoring import (
    INPUTS,
    OUTPUTS,
    LyricScorer,
    ScoringInputError,
    parse_register,
    parse_scoring_request,
)
from cantus.lyrics.training import checkpoint_path
from cantus.lyrics.transformer import TransformerLyricScorer, load_transformer_checkpoint

EXPECTED_INPUTS = INPUTS
EXPECTED_OUTPUTS = OUTPUTS


def load_lyric_scorer(path: Path, device: str = "cpu") -> LyricScorer:
    """The scorer of a lyric checkpoint: the transformer (``transformer``) or the LSTM
    baseline (``model``), told apart by the checkpoint's format."""
    try:
        return TransformerLyricScorer(load_transformer_checkpoint(path, device), device=device)
    except ValueError:
        return LocalLyricScorer(load_lyric_checkpoint(path, device), device)


class LyricServing:
    """``scorers``: the served LM per language; ``transformers``: the lyric transformer per
    language, which answers requests in a register."""

    def __init__(
        self,
        scorers: Mapping[str, LyricScorer],
        transformers: Mapping[str, TransformerLyricScorer] | None = None,
    ) -> None:
        self.scorers = dict(scorers)
        self.transformers = dict(transformers or {})
        self._in_register: dict[tuple[str, str], TransformerLyricScorer] = {}

    @classmethod
    def load(
        cls,
        checkpoint_dir: Path,
        languages=LYRICS_LANGUAGES,
        *,
        device="cpu",
        torch_threads=1,
        causal_lm_dir: str | None = None,
        models: Mapping[str, str] | None = None,
    ) -> LyricServing:
        """Per language the LM trained here that ``models`` names (``LYRIC_MODELS``;
        default: the ``lyric_models`` setting) from ``checkpoint_dir``; or, with
        ``causal_lm_dir``, one Hugging Face causal LM (saved with ``save_pretrained``) for
        every language."""
        torch.set_num_threads(torch_threads)
        scorers = {}
        if causal_lm_dir:
            from cantus.lyrics.causal_lm import CausalLMScorer

            return cls(
                {
                    lang: CausalLMScorer.load(causal_lm_dir, lang, device=device)
                    for lang in languages
                }
            )
        transformers: dict[str, TransformerLyricScorer] = {}
        for language in languages:
            path = checkpoint_path(language, Path(checkpoint_dir), (models or {}).get(language))
            scorers[language] = served = load_lyric_scorer(path, device)
            if isinstance(served, TransformerLyricScorer):
                transformers[language] = served
                continue
            transformer = checkpoint_path(language, Path(checkpoint_dir), "transformer")
            if transformer.exists():
                transformers[language] = TransformerLyricScorer(
                    load_transformer_checkpoint(transformer, device), device=device
                )
        return cls(scorers, transformers)

    def in_register(self, language: str, register: str) -> TransformerLyricScorer:
        """The language's lyric transformer conditioned on ``register``."""
        if language not in self.transformers:
            raise ScoringInputError(
                f"input REGISTER: no lyric transformer for {language} is served, so no register"
            )
        key = (language, register)
        if key not in self._in_register:
            base = self.transformers[language]
            self._in_register[key] = TransformerLyricScorer(
                base.loaded, register, device=base.device
            )
        return self._in_register[key]

    @property
    def versions(self) -> str:
        return " ".join(s.version for s in self.scorers.values())

    def handle(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Output tensors for one request; ``ScoringInputError`` names a bad input."""
        language, contexts, candidates = parse_scoring_request(dict(inputs), tuple(self.scorers))
        register = parse_register(dict(inputs), language)
        scorer = self.in_register(language, register) if register else self.scorers[language]
        return {
            "LOGPROBS": scorer.score(contexts, candidates).astype(np.float32),
            "MODEL": np.array([scorer.version.encode()], dtype=np.object_),
        }


__all__ = [
    "EXPECTED_INPUTS",
    "EXPECTED_OUTPUTS",
    "LyricServing",
    "ScoringInputError",
    "load_lyric_scorer",
]
