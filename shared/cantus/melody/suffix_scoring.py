"""How likely the melody LM finds the bars after a gap, given what fills it: the score that
lets infilling (``cantus.melody.infill``) use the right side of the gap.

``suffix_logprobs`` is the computation (one causal forward pass over a padded batch);
``MelodyScoreServing`` is what the ``melody_score`` Triton model does with it (inputs
checked, kept out of ``model.py`` so it is tested without Triton); ``MelodyScoreClient``
asks Triton for it. Imports torch only where the model runs (the client does not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cantus.triton_client import TritonModelClient, input_tensor

if TYPE_CHECKING:
    from cantus.melody.model import MelodyLM

EXPECTED_INPUTS = {
    "TOKENS": ("TYPE_INT32", [-1, -1]),
    "LENGTHS": ("TYPE_INT32", [-1]),
    "SCORE_FROM": ("TYPE_INT32", [-1]),
}
EXPECTED_OUTPUTS = {"LOGPROBS": ("TYPE_FP32", [-1])}
MAX_SEQUENCES = 32
"""Sequences one request may score (an edit sends a few candidates)."""


class ScoreInputError(ValueError):
    """A scoring request the model cannot answer; the message names the input."""


def suffix_logprobs(
    model: MelodyLM,
    sequences: Sequence[Sequence[int]],
    score_from: Sequence[int],
    *,
    excluded: Sequence[int] = (),
) -> list[float]:
    """Per sequence, the sum of log P(token t | tokens before t) in nats over the tokens
    ``score_from[i] .. len(sequences[i]) - 1`` (``score_from`` >= 1: the first token has no
    prediction). One forward pass over the batch, padded on the right (causal attention
    never reads the padding of a scored position). ``excluded``: token ids taken out of
    every scored distribution (renormalised without them), as a decoder whose grammar
    forbids them reads the sequence (``EOS`` inside a gap of a known number of bars)."""
    import torch

    if len(sequences) != len(score_from):
        raise ValueError("one score_from per sequence")
    if not sequences:
        return []
    longest = max(len(s) for s in sequences)
    batch = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.as_tensor(list(sequence), dtype=torch.long)
    with torch.no_grad():
        logits = model(batch).float()
        if excluded:
            logits[..., list(excluded)] = -math.inf
        logprobs = torch.log_softmax(logits, dim=-1)
    scores = []
    for row, (sequence, start) in enumerate(zip(sequences, score_from, strict=True)):
        positions = torch.arange(start, len(sequence))
        targets = batch[row, positions]
        scores.append(float(logprobs[row, positions - 1, targets].sum()))
    return scores


def parse_score_request(
    inputs: Mapping[str, np.ndarray], max_len: int
) -> tuple[list[list[int]], list[int]]:
    """The sequences and their first scored positions; ``ScoreInputError`` naming the bad
    input."""
    for name in EXPECTED_INPUTS:
        if name not in inputs:
            raise ScoreInputError(f"input {name} is required")
    tokens = np.asarray(inputs["TOKENS"])
    lengths = np.asarray(inputs["LENGTHS"]).reshape(-1)
    starts = np.asarray(inputs["SCORE_FROM"]).reshape(-1)
    if tokens.ndim != 2:
        raise ScoreInputError(f"input TOKENS must be [sequences, time], not {list(tokens.shape)}")
    count = tokens.shape[0]
    if not 1 <= count <= MAX_SEQUENCES:
        raise ScoreInputError(f"input TOKENS: {count} sequences, 1..{MAX_SEQUENCES} allowed")
    if len(lengths) != count or len(starts) != count:
        raise ScoreInputError("inputs LENGTHS and SCORE_FROM need one value per sequence")
    sequences, score_from = [], []
    for row in range(count):
        length, start = int(lengths[row]), int(starts[row])
        if not 2 <= length <= min(tokens.shape[1], max_len):
            raise ScoreInputError(
                f"input LENGTHS[{row}] = {length}: 2..{min(tokens.shape[1], max_len)} allowed"
            )
        if not 1 <= start < length:
            raise ScoreInputError(f"input SCORE_FROM[{row}] = {start}: 1..{length - 1} allowed")
        sequences.append([int(t) for t in tokens[row, :length]])
        score_from.append(start)
    return sequences, score_from


class MelodyScoreServing:
    """The ``melody_score`` model: the melody LM's checkpoint, answering scoring requests."""

    def __init__(self, model: MelodyLM, vocab_size: int, model_version: str) -> None:
        self.model = model
        self.vocab_size = vocab_size
        self.model_version = model_version

    @classmethod
    def load(
        cls, checkpoint: Path, *, device: str = "cpu", torch_threads: int = 1
    ) -> MelodyScoreServing:
        import torch

        from cantus.checkpoint_io import checkpoint_version
        from cantus.melody.checkpoint import load_melody_checkpoint

        if device == "cpu":
            torch.set_num_threads(torch_threads)
        model, tokenizer, _ = load_melody_checkpoint(checkpoint, device=device)
        return cls(model, len(tokenizer.vocab), checkpoint_version(checkpoint))

    def handle(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        sequences, score_from = parse_score_request(inputs, self.model.config.max_len)
        for row, sequence in enumerate(sequences):
            if any(not 0 <= token < self.vocab_size for token in sequence):
                raise ScoreInputError(f"input TOKENS[{row}]: token ids 0..{self.vocab_size - 1}")
        scores = suffix_logprobs(self.model, sequences, score_from)
        return {"LOGPROBS": np.asarray(scores, dtype=np.float32)}


class MelodyScoreClient(TritonModelClient):
    """``scores = await MelodyScoreClient(address).score(sequences, score_from)``"""

    def __init__(self, address: str, model_name: str = "melody_score") -> None:
        super().__init__(address, model_name)

    async def score(
        self, sequences: Sequence[Sequence[int]], score_from: Sequence[int]
    ) -> list[float]:
        from tritonclient.grpc import InferRequestedOutput

        longest = max(len(s) for s in sequences)
        tokens = np.zeros((len(sequences), longest), dtype=np.int32)
        for row, sequence in enumerate(sequences):
            tokens[row, : len(sequence)] = sequence
        inputs: list[Any] = [
            input_tensor("TOKENS", tokens, "INT32"),
            input_tensor("LENGTHS", [len(s) for s in sequences], "INT32", np.int32),
            input_tensor("SCORE_FROM", list(score_from), "INT32", np.int32),
        ]
        result = await self._connection().infer(
            self.model_name, inputs, outputs=[InferRequestedOutput("LOGPROBS")]
        )
        return [float(x) for x in result.as_numpy("LOGPROBS")]
