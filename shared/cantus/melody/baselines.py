"""Baselines the melody transformer is measured against, over the same token sequences.

``KneserNeyLM``: an n-gram model with interpolated modified Kneser-Ney smoothing (Chen &
Goodman 1998), a proper distribution over the whole vocabulary (the recursion ends in the
uniform distribution), so its negative log-likelihood compares with a neural model's. Counts
are kept as sorted int64 keys (an n-gram read as a base-``vocab_size`` number) and looked up
with ``numpy.searchsorted``, so fitting 20 M tokens takes seconds. ``NGramCounts`` holds the
raw and continuation counts of every order once, so models of several orders share them.

``MelodyLSTM``: a token-level LSTM language model of the folk-rnn kind (Sturm et al. 2016):
embedding, stacked LSTM, linear softmax. ``LSTMConfig.matching`` picks the hidden size that
gives a parameter count close to a target (the transformer's). ``train_lstm`` trains it like
``cantus.melody.training`` trains the transformer: same sequences, same random transposition
on every draw, same windows, best-validation checkpoint, until a budget of training tokens
(to match what the transformer saw) or of wall-clock time runs out.

All losses and log-probabilities are natural logarithms (nats).
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cantus.checkpoint_io import cpu_state_dict, load_checkpoint, save_checkpoint
from cantus.melody.training import (
    EncodedTune,
    TokenTransposer,
    learning_rate,
    legal_transpositions,
    length_bucketed_batches,
    pad_batch,
    window,
)

LSTM_CHECKPOINT_FORMAT = "cantus-melody-lstm/1"
MAX_NGRAM_ORDER = 8
"""Highest n-gram order: an 8-gram over 201 tokens still fits an int64 key."""


# ============================================================================ n-gram


def all_transpositions(
    tunes: Sequence[EncodedTune], transposer: TokenTransposer
) -> list[list[int]]:
    """Every tune in every legal transposition (the n-gram's version of the augmentation)."""
    return [transposer(t.tokens, s) for t in tunes for s in legal_transpositions(t)]


@dataclass
class _CountTable:
    """One order's counts: sorted n-gram keys and their counts, and per context (the n-gram
    without its last token) the total, the number of continuations seen once, twice and
    three or more times, and the modified-KN discounts ``discounts[c]`` for c = 0..3+."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_backoff: np.ndarray  # D1*N1 + D2*N2 + D3*N3+ of the context
    discounts: np.ndarray  # [4]: 0, D1, D2, D3+

    @classmethod
    def build(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int) -> _CountTable:
        counts = counts.astype(np.int64)
        count_of_counts = [int((counts == c).sum()) for c in (1, 2, 3, 4)]
        discounts = np.zeros(4)
        n1, n2, n3, n4 = count_of_counts
        if n1 > 0 and n2 > 0:
            y = n1 / (n1 + 2 * n2)
            discounts[1] = 1 - 2 * y * n2 / n1
            discounts[2] = 2 - 3 * y * n3 / n2
            discounts[3] = 3 - 4 * y * n4 / n3 if n3 > 0 else discounts[2]
        else:  # too little data for the estimate: a plain absolute discount
            discounts[1:] = 0.5
        discounts = np.clip(discounts, [0, 0.05, 0.05, 0.05], [0, 1, 2, 3])
        contexts = keys // vocab_size
        context_keys, starts = np.unique(contexts, return_index=True)
        capped = np.minimum(counts, 3)
        return cls(
            keys=keys,
            counts=counts,
            context_keys=context_keys,
            context_totals=np.add.reduceat(counts, starts),
            context_backoff=np.add.reduceat(discounts[capped], starts),
            discounts=discounts,
        )

    def lookup(self, context: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, ...]:
        """For each query: (context seen, context total, backoff mass numerator, discounted
        count of the full n-gram, clipped at 0)."""
        ci = np.searchsorted(self.context_keys, context)
        ci_clipped = np.minimum(ci, len(self.context_keys) - 1)
        seen = self.context_keys[ci_clipped] == context
        fi = np.minimum(np.searchsorted(self.keys, full), len(self.keys) - 1)
        count = np.where(self.keys[fi] == full, self.counts[fi], 0)
        discounted = np.maximum(count - self.discounts[np.minimum(count, 3)], 0.0)
        return (
            seen,
            self.context_totals[ci_clipped],
            self.context_backoff[ci_clipped],
            discounted,
        )


class NGramCounts:
    """Raw n-gram counts of orders 1..``max_order`` and Kneser-Ney continuation counts
    (distinct left neighbours) of orders 1..``max_order - 1``, of token sequences each
    left-padded with ``max_order - 1`` copies of ``pad_id``."""

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        max_order: int,
        vocab_size: int,
        pad_id: int = 0,
    ) -> None:
        if not 1 <= max_order <= MAX_NGRAM_ORDER:
            raise ValueError(f"n-gram order must be 1..{MAX_NGRAM_ORDER}, got {max_order}")
        if not sequences:
            raise ValueError("an n-gram model needs at least one training sequence")
        self.max_order = max_order
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        padding = [pad_id] * (max_order - 1)
        flat: list[int] = []
        targets: list[np.ndarray] = []
        for sequence in sequences:
            start = len(flat) + len(padding)
            flat += padding
            flat += sequence
            targets.append(np.arange(start, len(flat)))
        tokens = np.asarray(flat, dtype=np.int64)
        positions = np.concatenate(targets)
        self.n_tokens = len(positions)
        self.raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.continuation: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        key = tokens[positions]
        for order in range(1, max_order + 1):
            if order > 1:
                key = tokens[positions - order + 1] * vocab_size ** (order - 1) + key
            self.raw[order] = np.unique(key, return_counts=True)
        for order in range(1, max_order):
            longer = self.raw[order + 1][0]
            self.continuation[order] = np.unique(longer % vocab_size**order, return_counts=True)


class KneserNeyLM:
    """An order-``order`` n-gram model with interpolated modified Kneser-Ney smoothing.

    p(w | h) = max(c(hw) - D(c(hw)), 0) / c(h) + gamma(h) p(w | h'), where h' drops the
    oldest token of h, c are raw counts at the highest order and continuation counts below,
    D the three modified-KN discounts of the order and gamma(h) the discounted mass; unseen
    contexts pass the lower order through unchanged; below order 1 is the uniform
    distribution over all ``vocab_size`` tokens. Log-probabilities are in nats.
    """

    def __init__(self, counts: NGramCounts, order: int) -> None:
        if not 1 <= order <= counts.max_order:
            raise ValueError(f"order must be 1..{counts.max_order}, got {order}")
        self.order = order
        self.vocab_size = counts.vocab_size
        self.pad_id = counts.pad_id
        self.tables = []
        for k in range(1, order + 1):
            keys, values = counts.raw[k] if k == order else counts.continuation[k]
            self.tables.append(_CountTable.build(keys, values, self.vocab_size))

    @classmethod
    def fit(
        cls, sequences: Sequence[Sequence[int]], order: int, vocab_size: int, pad_id: int = 0
    ) -> KneserNeyLM:
        return cls(NGramCounts(sequences, order, vocab_size, pad_id), order)

    def log_probs(self, histories: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """ln p(target | history) for ``histories`` [n, order - 1] (the previous tokens,
        oldest first, ``pad_id`` before a sequence's start) and ``targets`` [n]."""
        histories = np.asarray(histories, dtype=np.int64).reshape(len(targets), self.order - 1)
        targets = np.asarray(targets, dtype=np.int64)
        probability = np.full(len(targets), 1.0 / self.vocab_size)
        context = np.zeros(len(targets), dtype=np.int64)
        for k, table in enumerate(self.tables, start=1):
            if k > 1:  # the context grows by one older token per order
                context = histories[:, -(k - 1)] * self.vocab_size ** (k - 2) + context
            seen, total, backoff, discounted = table.lookup(
                context, context * self.vocab_size + targets
            )
            mixed = (discounted + backoff * probability) / np.maximum(total, 1)
            probability = np.where(seen, mixed, probability)
        return np.log(probability)

    def _histories(self, sequence: Sequence[int]) -> np.ndarray:
        """[len(sequence), order - 1]: row i holds the tokens before position i."""
        padded = np.asarray([self.pad_id] * (self.order - 1) + list(sequence), dtype=np.int64)
        if self.order == 1:
            return np.zeros((len(sequence), 0), dtype=np.int64)
        return np.lib.stride_tricks.sliding_window_view(padded, self.order - 1)[: len(sequence)]

    def token_nlls(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per sequence, -ln p(token i+1 | tokens 0..i) for i = 0..len-2 (nats)."""
        rows = [self._histories(s)[1:] for s in sequences]
        targets = [np.asarray(s[1:], dtype=np.int64) for s in sequences]
        nlls = -self.log_probs(np.concatenate(rows), np.concatenate(targets))
        bounds = np.cumsum([0] + [len(t) for t in targets])
        return [nlls[a:b] for a, b in itertools.pairwise(bounds)]

    def next_log_probs(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """ln p(w | history) for every token w: [len(histories), vocab_size]."""
        width = self.order - 1
        rows = np.full((len(histories), width), self.pad_id, dtype=np.int64)
        for row, history in enumerate(histories):
            tail = list(history)[-width:] if width else []
            if tail:
                rows[row, width - len(tail) :] = tail
        repeated = np.repeat(rows, self.vocab_size, axis=0)
        targets = np.tile(np.arange(self.vocab_size), len(histories))
        return self.log_probs(repeated, targets).reshape(len(histories), self.vocab_size)


# ============================================================================ LSTM


@dataclass(frozen=True)
class LSTMConfig:
    """Shape of the LSTM LM: ``hidden_size`` units per layer (also the embedding width),
    ``n_layers`` stacked layers, ``dropout`` between layers and on input/output (training)."""

    vocab_size: int
    hidden_size: int = 368
    n_layers: int = 3
    dropout: float = 0.1

    @staticmethod
    def parameter_count(vocab_size: int, hidden_size: int, n_layers: int) -> int:
        """Parameters of ``MelodyLSTM``: embedding, LSTM (two bias vectors a layer, as in
        ``torch.nn.LSTM``) and the untied output layer."""
        lstm = n_layers * 4 * (2 * hidden_size * hidden_size + 2 * hidden_size)
        return vocab_size * hidden_size + lstm + hidden_size * vocab_size + vocab_size

    @classmethod
    def matching(
        cls, vocab_size: int, n_parameters: int, *, n_layers: int = 3, dropout: float = 0.1
    ) -> LSTMConfig:
        """The config whose parameter count is closest to ``n_parameters`` (hidden size a
        multiple of 8, at least 8)."""
        best = min(
            range(8, 4097, 8),
            key=lambda h: abs(cls.parameter_count(vocab_size, h, n_layers) - n_parameters),
        )
        return cls(vocab_size, best, n_layers, dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MelodyLSTM(nn.Module):
    """Embedding → stacked LSTM → linear: next-token logits, causal by construction."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.hidden_size,
            num_layers=config.n_layers,
            batch_first=True,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.vocab_size)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        tokens: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits [batch, time, vocab] of tokens [batch, time], and the final LSTM state
        (feed it back to continue the sequences one step at a time)."""
        hidden, state = self.lstm(self.dropout(self.embedding(tokens)), state)
        return self.output(self.dropout(hidden)), state


def lstm_sequence_loss(
    model: MelodyLSTM, batch: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy (nats) over non-padding targets, and their count.
    Right padding cannot leak into earlier positions: the LSTM reads left to right."""
    from cantus.melody.training import next_token_loss

    logits, _ = model(batch[:, :-1])
    return next_token_loss(logits, batch[:, 1:], pad_id)


@torch.no_grad()
def lstm_token_nlls(
    model: MelodyLSTM, sequences: Sequence[Sequence[int]], pad_id: int, batch_size: int = 32
) -> list[np.ndarray]:
    """Per sequence, -ln p(token i+1 | tokens 0..i) for i = 0..len-2 (nats), whole
    sequences (an LSTM has no context limit)."""
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    result: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = pad_batch([sequences[i] for i in indices], pad_id)
        logits, _ = model(batch[:, :-1])
        nll = -torch.log_softmax(logits.float(), dim=-1).gather(-1, batch[:, 1:, None])[..., 0]
        for row, index in enumerate(indices):
            result[index] = nll[row, : len(sequences[index]) - 1].numpy().astype(np.float64)
    return result


def save_lstm_checkpoint(path: Path, model: MelodyLSTM, metadata: dict[str, Any]) -> None:
    """Write config, weights and training metadata (``cantus.checkpoint_io``)."""
    state = {
        "config": model.config.to_dict(),
        "state_dict": cpu_state_dict(model),
        "metadata": metadata,
    }
    save_checkpoint(path, LSTM_CHECKPOINT_FORMAT, state)


def load_lstm_checkpoint(path: Path) -> tuple[MelodyLSTM, dict[str, Any]]:
    """The LSTM (eval mode, CPU) and its training metadata."""
    state = load_checkpoint(path, LSTM_CHECKPOINT_FORMAT)
    model = MelodyLSTM(LSTMConfig(**state["config"]))
    model.load_state_dict(state["state_dict"])
    return model.eval(), dict(state["metadata"])


def train_lstm(
    train: Sequence[EncodedTune],
    valid: Sequence[list[int]],
    config: LSTMConfig,
    transposer: TokenTransposer,
    *,
    pad_id: int,
    bar_id: int,
    max_minutes: float,
    out_path: Path,
    max_len: int = 1024,
    batch_size: int = 32,
    lr: float = 2e-3,
    warmup_steps: int = 100,
    seed: int = 0,
    max_steps: int | None = None,
    max_tokens: int | None = None,
    eval_every_minutes: float = 4.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``MelodyLSTM(config)`` on ``train`` until ``max_tokens`` training targets have
    been seen, ``max_minutes`` of wall time or ``max_steps``, whichever comes first, as the
    transformer is trained: every draw a random legal transposition, sequences longer than
    ``max_len + 1`` tokens cut to a window starting at a ``BAR`` with the control prefix
    kept, length-bucketed batches, Adam with warmup and cosine decay over whichever budget
    is further spent. The best-valid checkpoint goes to ``out_path``; returns its metadata."""
    started = time.monotonic()
    budget_s = max_minutes * 60.0
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = MelodyLSTM(config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    token_budget = f", {max_tokens / 1e6:.2f} M tokens" if max_tokens is not None else ""
    log(
        f"lstm: {model.n_parameters() / 1e6:.2f}M parameters {config}, "
        f"at most {max_minutes:g} min{token_budget}"
    )
    best_valid = math.inf
    metadata: dict[str, Any] = {}
    step, tokens_seen, epoch = 0, 0, 0
    history: list[list[float]] = []
    last_eval = time.monotonic()

    def evaluate_and_save() -> None:
        nonlocal best_valid, last_eval
        nlls = lstm_token_nlls(model, valid, pad_id)
        valid_loss = float(np.concatenate(nlls).mean())
        model.train()
        last_eval = time.monotonic()
        elapsed = last_eval - started
        history.append([step, round(elapsed, 1), valid_loss])
        improved = valid_loss < best_valid
        log(
            f"lstm step {step} valid loss {valid_loss:.4f}{' (best)' if improved else ''} "
            f"[{elapsed / 60:.1f} min]"
        )
        if improved:
            best_valid = valid_loss
            metadata.update(
                steps=step,
                epochs=epoch,
                tokens_seen=tokens_seen,
                valid_loss=valid_loss,
                minutes=round(elapsed / 60, 2),
                budget_minutes=max_minutes,
                budget_tokens=max_tokens,
                seed=seed,
                batch_size=batch_size,
                lr=lr,
                n_parameters=model.n_parameters(),
                history=list(history),
            )
            save_lstm_checkpoint(out_path, model, metadata)

    done = False
    while not done:
        epoch += 1
        drawn = [
            window(
                transposer(t.tokens, rng.choice(legal_transpositions(t))), max_len + 1, bar_id, rng
            )
            for t in train
        ]
        for indices in length_bucketed_batches([len(s) for s in drawn], batch_size, rng):
            elapsed = time.monotonic() - started
            if (
                elapsed >= budget_s
                or (max_steps is not None and step >= max_steps)
                or (max_tokens is not None and tokens_seen >= max_tokens)
            ):
                done = True
                break
            # a token budget makes the schedule independent of how busy the machine is;
            # the wall-clock budget still anneals the rate if it runs out first
            progress = elapsed / budget_s
            if max_tokens is not None:
                progress = max(progress, tokens_seen / max_tokens)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, progress, lr, warmup_steps)
            loss, n_targets = lstm_sequence_loss(
                model, pad_batch([drawn[i] for i in indices], pad_id), pad_id
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            tokens_seen += n_targets
            if step % 50 == 0:
                log(
                    f"lstm step {step} epoch {epoch} train loss {float(loss.detach()):.4f} "
                    f"{tokens_seen / max(elapsed, 1e-9):.0f} tok/s [{elapsed / 60:.1f} min]"
                )
            if time.monotonic() - last_eval >= eval_every_minutes * 60:
                evaluate_and_save()
    evaluate_and_save()
    log(f"lstm done: {step} steps, best valid loss {best_valid:.4f}, checkpoint {out_path}")
    return metadata
