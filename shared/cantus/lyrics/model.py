"""The lyric language model trained here: a small LSTM over words (English) or characters
(Mandarin), with its vocabulary and checkpoint format, and ``LocalLyricScorer``, which
answers the lyric scoring interface (``scoring``) from it in-process.

Text goes in as lines joined by newlines; a newline is the token ``<eol>``, which also
starts every context (so the first word of a piece is predicted after ``<eol>``).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cantus.checkpoint_io import (
    checkpoint_version,
    cpu_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.english import WORD_PATTERN
from cantus.lyrics.mandarin import is_hanzi

PAD, UNK, EOL = "<pad>", "<unk>", "<eol>"
CHECKPOINT_FORMAT = "cantus-lyric-lm/1"
MAX_CONTEXT_TOKENS = 96
"""Context kept for a prediction: the latest tokens (about the last three lines or more)."""


def tokenize(text: str, language: str) -> list[str]:
    """Tokens of ``text``: ``<eol>`` per newline, then words (en) or characters (zh)."""
    tokens: list[str] = []
    for number, line in enumerate(text.split("\n")):
        if number:
            tokens.append(EOL)
        if language == "zh":
            tokens.extend(c for c in line if is_hanzi(c))
        else:
            tokens.extend(WORD_PATTERN.findall(line.lower()))
    return tokens


@dataclass
class Vocabulary:
    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(token, unk) for token in tokens]

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]], language: str, min_count: int = 2):
        counts: Counter = Counter()
        for document in documents:
            for line in document:
                counts.update(tokenize(line, language))
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count and not is_blocked(t, language)),
            key=lambda t: (-counts[t], t),
        )
        return cls([PAD, UNK, EOL, *kept])


@dataclass(frozen=True)
class LyricLMConfig:
    vocab_size: int
    embedding: int = 192
    hidden: int = 384
    layers: int = 1
    dropout: float = 0.3


class LyricLM(nn.Module):
    """Embedding → LSTM → projection onto the vocabulary (next-token logits)."""

    def __init__(self, config: LyricLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embedding, padding_idx=0)
        self.lstm = nn.LSTM(
            config.embedding, config.hidden, num_layers=config.layers, batch_first=True
        )
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` [batch, time] → logits [batch, time, vocab]."""
        return self.out(self._hidden(ids))

    def logits_at(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``ids`` [batch, time] → the logits [batch, vocab] at one position of each row:
        what ``forward`` gives there, without projecting every other position onto the
        vocabulary (that projection was 70 % of ``lyric_lm``'s time when scoring, where only
        each context's last position is read)."""
        hidden = self._hidden(ids)
        return self.out(hidden[torch.arange(len(ids), device=ids.device), positions])

    def _hidden(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.drop(self.embed(ids)))
        return self.drop(hidden)


def save_lyric_checkpoint(
    path: Path, model: LyricLM, vocab: Vocabulary, language: str, **info
) -> None:
    """Write the checkpoint (``cantus.checkpoint_io``), weights in half precision."""
    state = {
        "language": language,
        "config": model.config.__dict__,
        "vocab": vocab.tokens,
        "state_dict": cpu_state_dict(model, torch.float16),
        "info": info,
    }
    save_checkpoint(path, CHECKPOINT_FORMAT, state)


@dataclass
class LoadedLyricLM:
    model: LyricLM
    vocab: Vocabulary
    language: str
    version: str
    """``lyric_<language>@<first 12 hex digits of the checkpoint's SHA-256>``."""


def load_lyric_checkpoint(path: Path, device: str = "cpu") -> LoadedLyricLM:
    data = load_checkpoint(path, CHECKPOINT_FORMAT)
    model = LyricLM(LyricLMConfig(**data["config"]))
    model.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    model.to(device).eval()
    language = data["language"]
    version = checkpoint_version(path, f"lyric_lstm_{language}")
    return LoadedLyricLM(model, Vocabulary(list(data["vocab"])), language, version)


STATE_CACHE_ENTRIES = 4096
"""LSTM states kept by ``LocalLyricScorer``, the most recently used (3 KB each for the served
English LM, 12 MB in all). A beam search's next call reads on from its last call's states
only, at most ``DecodeOptions.beam`` (16) of them a line, so this serves a few hundred lines
written at once."""


class LocalLyricScorer:
    """The scoring interface answered by a ``LyricLM`` in this process (tests, evaluation,
    and the Triton model's backend).

    ``score(contexts, candidates)`` → float32 [len(contexts), len(candidates)]: the log
    probability of each candidate text following each context (summed over its tokens;
    ``"\\n"`` is the end of the line).

    The LSTM's state after each context it read is kept (``STATE_CACHE_ENTRIES``, keyed by
    the context's tokens). A beam search asks for contexts one word longer than those of
    its last call, so a context whose tokens but the last few were read before is read on
    from there: one token per beam instead of the whole context (up to
    ``MAX_CONTEXT_TOKENS``) at every call. The scores are the same; the LSTM reads a
    sequence in pieces as it reads it whole."""

    def __init__(self, loaded: LoadedLyricLM, device: str = "cpu") -> None:
        self.loaded = loaded
        self.device = device
        self.language = loaded.language
        self.version = loaded.version
        self._candidate_cache: tuple[tuple[str, ...], list[list[int]]] | None = None
        self._states: OrderedDict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = (
            OrderedDict()
        )

    def _candidate_ids(self, candidates: Sequence[str]) -> list[list[int]]:
        key = tuple(candidates)
        if self._candidate_cache is None or self._candidate_cache[0] != key:
            vocab = self.loaded.vocab
            ids = [vocab.ids(tokenize(c, self.language)) or [vocab.index[UNK]] for c in key]
            self._candidate_cache = (key, ids)
        return self._candidate_cache[1]

    @torch.inference_mode()
    def score(self, contexts: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        vocab = self.loaded.vocab
        eol = vocab.index[EOL]
        rows = [
            [eol, *vocab.ids(tokenize(c, self.language))][-MAX_CONTEXT_TOKENS:] for c in contexts
        ]
        logits = self._last_logits(rows)
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        candidate_ids = self._candidate_ids(candidates)
        first = np.array([ids[0] for ids in candidate_ids])
        scores = logprobs[:, first].astype(np.float32)
        for k, ids in enumerate(candidate_ids):
            if len(ids) > 1:  # rare: a candidate of several tokens, scored token by token
                for i in range(len(contexts)):
                    scores[i, k] = self._sequence_logprob(rows[i], ids)
        return scores

    def _last_logits(self, rows: Sequence[list[int]]) -> torch.Tensor:
        """The logits after each row's last token, the LSTM reading each row on from the
        longest prefix whose state is kept; rows with as many tokens left to read are read
        together (no padding, so each row's final state is its own)."""
        model = self.loaded.model
        config = model.config
        zero = torch.zeros((config.layers, config.hidden), device=self.device)
        start: list[int] = []
        initial: list[tuple[torch.Tensor, torch.Tensor]] = []
        for row in rows:
            known = len(row)
            while known and tuple(row[:known]) not in self._states:
                known -= 1
            start.append(known)
            if known:  # taken now: keeping this call's states may let older ones go
                prefix = tuple(row[:known])
                self._states.move_to_end(prefix)
                initial.append(self._states[prefix])
            else:
                initial.append((zero, zero))
        hidden = torch.empty((len(rows), config.hidden), device=self.device)
        groups: dict[int, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(len(row) - start[i], []).append(i)
        for left, members in groups.items():
            h0 = torch.stack([initial[i][0] for i in members], dim=1)
            c0 = torch.stack([initial[i][1] for i in members], dim=1)
            if left == 0:  # the whole row was read before: its state is the answer
                hidden[members] = h0[-1]
                continue
            ids = torch.tensor([rows[i][start[i] :] for i in members], device=self.device)
            _, (h, c) = model.lstm(model.embed(ids), (h0, c0))
            hidden[members] = h[-1].float()
            for j, i in enumerate(members):
                self._keep(tuple(rows[i]), h[:, j], c[:, j])
        return model.out(hidden.to(model.out.weight.dtype))

    def _keep(self, key: tuple[int, ...], h: torch.Tensor, c: torch.Tensor) -> None:
        self._states[key] = (h.clone(), c.clone())
        self._states.move_to_end(key)
        while len(self._states) > STATE_CACHE_ENTRIES:
            self._states.popitem(last=False)

    def _sequence_logprob(self, context: list[int], ids: list[int]) -> float:
        sequence = torch.tensor([context + ids])
        logprobs = torch.log_softmax(self.loaded.model(sequence.to(self.device))[0].float(), -1)
        start = len(context) - 1
        return float(sum(logprobs[start + j, token] for j, token in enumerate(ids)))
