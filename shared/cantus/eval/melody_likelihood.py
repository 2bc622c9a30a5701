"""Held-out likelihood for ``cantus eval melody``: per-token negative log-likelihoods of the
melody transformer (sliding windows for sequences longer than its context) and their summary
per token, per kind of token and per note (``NLLSummary``)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cantus.melody.model import MelodyLM
from cantus.melody.tokenizer import PREFIX_LENGTH, MelodyTokenizer

SCORED_KINDS = ("BAR", "POS", "PITCH", "DUR", "EOS")
"""Token kinds after the control prefix, the ones the likelihood is measured on."""


@dataclass
class NLLSummary:
    """Held-out likelihood of one model. ``per_token``: mean nats over the ``tokens`` scored
    tokens; ``per_note``: mean nats of POS + PITCH + DUR over ``notes`` notes; ``by_kind``:
    mean nats per token of each kind; ``kind_counts``: tokens of each kind."""

    model: str
    parameters: int
    tokens: int
    notes: int
    per_token: float
    per_note: float
    by_kind: dict[str, float]
    kind_counts: dict[str, int]

    @property
    def perplexity(self) -> float:
        return math.exp(self.per_token)

    @property
    def bits_per_token(self) -> float:
        return self.per_token / math.log(2)


def summarize_nll(
    model_name: str,
    parameters: int,
    tokenizer: MelodyTokenizer,
    sequences: Sequence[Sequence[int]],
    token_nlls: Sequence[np.ndarray],
) -> NLLSummary:
    """Aggregate per-target NLLs (``token_nlls[s][i]`` scores token i+1 of sequence s) over
    the tokens after the control prefix."""
    sums: defaultdict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    kind_of = [token.partition("_")[0] for token in tokenizer.vocab.tokens]
    for sequence, nlls in zip(sequences, token_nlls, strict=True):
        if len(nlls) != len(sequence) - 1:
            raise ValueError(f"{len(nlls)} NLLs for a sequence of {len(sequence)} tokens")
        for position in range(PREFIX_LENGTH, len(sequence)):
            kind = kind_of[sequence[position]]
            sums[kind] += float(nlls[position - 1])
            counts[kind] += 1
    unexpected = set(counts) - set(SCORED_KINDS)
    if unexpected:
        raise ValueError(f"control tokens {sorted(unexpected)} after the prefix")
    tokens = sum(counts.values())
    notes = counts["DUR"]
    return NLLSummary(
        model=model_name,
        parameters=parameters,
        tokens=tokens,
        notes=notes,
        per_token=sum(sums.values()) / max(tokens, 1),
        per_note=(sums["POS"] + sums["PITCH"] + sums["DUR"]) / max(notes, 1),
        by_kind={k: sums[k] / counts[k] for k in SCORED_KINDS if counts[k]},
        kind_counts={k: counts[k] for k in SCORED_KINDS},
    )


def _gather_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]


@torch.no_grad()
def transformer_token_nlls(
    model: MelodyLM,
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    bar_id: int,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Per sequence, -ln p(token i+1 | tokens 0..i) for i = 0..len-2 (nats). Sequences longer
    than ``max_len`` continue in windows: the control prefix, then tokens from a ``BAR`` at
    most half a window before the first unscored token (as training windows start)."""
    from cantus.melody.training import pad_batch

    model.eval()
    max_len = model.config.max_len
    result: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    short = sorted(
        (i for i, s in enumerate(sequences) if len(s) <= max_len), key=lambda i: len(sequences[i])
    )
    for start in range(0, len(short), batch_size):
        indices = short[start : start + batch_size]
        batch = pad_batch([sequences[i] for i in indices], pad_id)
        nll = _gather_nll(model(batch[:, :-1]), batch[:, 1:])
        for row, index in enumerate(indices):
            result[index] = nll[row, : len(sequences[index]) - 1].double().numpy()
    for index, sequence in enumerate(sequences):
        if len(sequence) > max_len:
            result[index] = _windowed_nlls(model, list(sequence), bar_id)
    return result


def _windowed_nlls(model: MelodyLM, sequence: list[int], bar_id: int) -> np.ndarray:
    max_len = model.config.max_len
    body = max_len - PREFIX_LENGTH
    nlls = np.empty(len(sequence) - 1)
    first = torch.tensor([sequence[:max_len]])
    nlls[: max_len - 1] = _gather_nll(model(first[:, :-1]), first[:, 1:])[0].double().numpy()
    scored = max_len - 1  # index of the last scored target
    while scored < len(sequence) - 1:
        earliest = scored + 1 - body // 2
        bars = [i for i in range(earliest, scored + 1) if sequence[i] == bar_id]
        begin = bars[0] if bars else earliest
        window = sequence[:PREFIX_LENGTH] + sequence[begin : begin + body]
        tokens = torch.tensor([window])
        nll = _gather_nll(model(tokens[:, :-1]), tokens[:, 1:])[0].double().numpy()
        last = min(begin + body - 1, len(sequence) - 1)
        for target in range(scored + 1, last + 1):
            nlls[target - 1] = nll[PREFIX_LENGTH + target - begin - 1]
        scored = last
    return nlls
