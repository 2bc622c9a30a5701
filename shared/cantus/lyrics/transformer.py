"""The lyric transformer: a small causal transformer over words (English) or characters
(Mandarin), conditioned on a register (``cantus.lyrics.REGISTERS``: song, modern, literary,
scripture; ci, shi, qu), with its checkpoint format and ``TransformerLyricScorer``, which
answers the lyric scoring interface (``scoring``) in-process (tests, evaluation, and the
``lyric_lm`` Triton model's backend).

Tokens are those of the LSTM (``model.tokenize``: ``<eol>`` per line break, words or
characters), so the two LMs are compared on the same text. Every sequence starts with its
register token and ``<eol>``: ``<reg:song> <eol> w w w <eol> w w …``. A context longer than
the model's window keeps the register token and the latest tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cantus.checkpoint_io import (
    checkpoint_version,
    cpu_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from cantus.lyrics import DEFAULT_REGISTER
from cantus.lyrics.model import EOL, UNK, Vocabulary, tokenize

CHECKPOINT_FORMAT = "cantus-lyric-transformer/1"


def register_token(register: str) -> str:
    return f"<reg:{register}>"


@dataclass(frozen=True)
class LyricTransformerConfig:
    vocab_size: int
    d_model: int = 256
    layers: int = 4
    heads: int = 4
    ff: int = 1024
    context: int = 64
    """Tokens per sequence, register token included."""
    dropout: float = 0.1


class _Block(nn.Module):
    def __init__(self, config: LyricTransformerConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, config.ff), nn.GELU(), nn.Linear(config.ff, config.d_model)
        )
        self.drop = nn.Dropout(config.dropout)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=-1)
        shape = (batch, time, self.heads, width // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(attended.transpose(1, 2).reshape(batch, time, width)))
        return x + self.drop(self.ff(self.norm2(x)))


class LyricTransformer(nn.Module):
    """Token and position embeddings → pre-norm blocks → final norm; the output projection
    is the token embedding (tied)."""

    def __init__(self, config: LyricTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.drop = nn.Dropout(config.dropout)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.01)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` [batch, time ≤ context] → final hidden states [batch, time, d_model]."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.embed(ids) + self.position(positions))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.embed.weight.T

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` [batch, time] → next-token logits [batch, time, vocab]."""
        return self.logits(self.hidden(ids))


def save_transformer_checkpoint(
    path, model: LyricTransformer, vocab: Vocabulary, language: str, registers, **info
) -> None:
    """Write the checkpoint (``cantus.checkpoint_io``), weights in half precision."""
    state = {
        "language": language,
        "config": model.config.__dict__,
        "vocab": vocab.tokens,
        "registers": list(registers),
        "state_dict": cpu_state_dict(model, torch.float16),
        "info": info,
    }
    save_checkpoint(path, CHECKPOINT_FORMAT, state)


@dataclass
class LoadedLyricTransformer:
    model: LyricTransformer
    vocab: Vocabulary
    language: str
    registers: list[str]
    version: str
    info: dict


def load_transformer_checkpoint(path, device: str = "cpu") -> LoadedLyricTransformer:
    data = load_checkpoint(path, CHECKPOINT_FORMAT)
    model = LyricTransformer(LyricTransformerConfig(**data["config"]))
    model.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    model.to(device).eval()
    language = data["language"]
    return LoadedLyricTransformer(
        model,
        Vocabulary(list(data["vocab"])),
        language,
        list(data["registers"]),
        checkpoint_version(path, f"lyric_{language}"),
        dict(data.get("info", {})),
    )


def context_ids(
    vocab: Vocabulary, text: str, language: str, register: str, window: int
) -> list[int]:
    """``<reg> <eol> tokens…`` of a context, cut to the latest ``window`` tokens with the
    register token kept first."""
    body = vocab.ids([EOL, *tokenize(text, language)])
    return [vocab.index[register_token(register)], *body[-(window - 1) :]]


class TransformerLyricScorer:
    """The scoring interface (``scoring.LyricScorer``) answered by a ``LyricTransformer``:
    one forward pass per context, read at its last position; a candidate of several tokens
    (a word outside the vocabulary is one ``<unk>``, so this is rare) is scored token by
    token."""

    def __init__(
        self, loaded: LoadedLyricTransformer, register: str | None = None, device: str = "cpu"
    ) -> None:
        self.loaded = loaded
        self.language = loaded.language
        self.register = register or DEFAULT_REGISTER[loaded.language]
        if self.register not in loaded.registers:
            raise ValueError(f"register {self.register!r} is not one of {loaded.registers}")
        self.version = loaded.version
        self.device = device
        self._candidate_cache: tuple[tuple[str, ...], list[list[int]]] | None = None

    def _candidate_ids(self, candidates: Sequence[str]) -> list[list[int]]:
        key = tuple(candidates)
        if self._candidate_cache is None or self._candidate_cache[0] != key:
            vocab = self.loaded.vocab
            ids = [vocab.ids(tokenize(c, self.language)) or [vocab.index[UNK]] for c in key]
            self._candidate_cache = (key, ids)
        return self._candidate_cache[1]

    def context_rows(self, contexts: Sequence[str]) -> list[list[int]]:
        window = self.loaded.model.config.context
        return [
            context_ids(self.loaded.vocab, c, self.language, self.register, window)
            for c in contexts
        ]

    @torch.inference_mode()
    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """log P(next token | row) [len(rows), vocab] for rows of token ids."""
        width = max(len(r) for r in rows)
        batch = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            batch[i, : len(row)] = torch.tensor(row)  # right padding: the model is causal
        last = torch.tensor([len(row) - 1 for row in rows])
        model = self.loaded.model
        hidden = model.hidden(batch.to(self.device))[torch.arange(len(rows)), last.to(self.device)]
        return torch.log_softmax(model.logits(hidden).float(), dim=-1).cpu().numpy()

    def score(self, contexts: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        rows = self.context_rows(contexts)
        logprobs = self.next_logprobs(rows)
        candidate_ids = self._candidate_ids(candidates)
        first = np.array([ids[0] for ids in candidate_ids])
        scores = logprobs[:, first].astype(np.float32)
        window = self.loaded.model.config.context
        for k, ids in enumerate(candidate_ids):
            for step in range(1, len(ids)):
                extended = [row[:1] + (row[1:] + ids[:step])[-(window - 1) :] for row in rows]
                scores[:, k] += self.next_logprobs(extended)[:, ids[step]]
        return scores


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cosine_rate(step_fraction: float, peak: float, warmup: float = 0.03) -> float:
    """Learning rate at ``step_fraction`` ∈ [0, 1] of a run: linear warm-up, cosine decay
    to a tenth of ``peak``."""
    if step_fraction < warmup:
        return peak * step_fraction / warmup
    progress = min(1.0, (step_fraction - warmup) / (1 - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
