"""The melody_score model's computation and request checks, on a tiny model: the suffix's
log-probability is the sum of the token log-probabilities a plain forward pass gives,
padding changes nothing, and bad requests are refused naming the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.suffix_scoring import (
    MelodyScoreServing,
    ScoreInputError,
    suffix_logprobs,
)

VOCAB = 40


@pytest.fixture(scope="module")
def model() -> MelodyLM:
    torch.manual_seed(0)
    return MelodyLM(MelodyLMConfig.tiny(VOCAB)).eval()


def by_hand(model: MelodyLM, sequence: list[int], start: int) -> float:
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([sequence])), dim=-1)[0]
    return float(sum(logprobs[t - 1, sequence[t]] for t in range(start, len(sequence))))


def test_suffix_logprobs_sum_the_scored_tokens_and_ignore_padding(model):
    short, long = [1, 5, 7, 9], [1, 5, 7, 9, 11, 13, 2]
    scores = suffix_logprobs(model, [short, long], [2, 4])
    assert scores[0] == pytest.approx(by_hand(model, short, 2), abs=1e-4)
    assert scores[1] == pytest.approx(by_hand(model, long, 4), abs=1e-4)
    assert all(s < 0 for s in scores)


def test_excluded_tokens_are_renormalised_away_at_every_scored_position(model):
    sequence, excluded = [1, 5, 7, 9, 11], [2, 3]
    with torch.no_grad():
        logits = model(torch.tensor([sequence]))[0]
    logits[:, excluded] = -torch.inf
    logprobs = torch.log_softmax(logits, dim=-1)
    expected = float(sum(logprobs[t - 1, sequence[t]] for t in range(2, len(sequence))))
    [read] = suffix_logprobs(model, [sequence], [2], excluded=excluded)
    assert read == pytest.approx(expected, abs=1e-4)
    # taking tokens that never occur out of the distribution makes the rest likelier
    assert read > suffix_logprobs(model, [sequence], [2])[0]


def test_the_serving_class_answers_and_refuses_naming_the_input(model):
    serving = MelodyScoreServing(model, VOCAB, "tiny")
    tokens = np.array([[1, 5, 7, 9, 0], [1, 5, 7, 9, 11]], dtype=np.int32)
    out = serving.handle(
        {
            "TOKENS": tokens,
            "LENGTHS": np.array([4, 5], np.int32),
            "SCORE_FROM": np.array([2, 2], np.int32),
        }
    )
    assert out["LOGPROBS"].shape == (2,) and out["LOGPROBS"].dtype == np.float32
    bad = [
        ({"LENGTHS": np.array([4, 5]), "SCORE_FROM": np.array([2, 2])}, "TOKENS is required"),
        (
            {"TOKENS": tokens, "LENGTHS": np.array([9, 5]), "SCORE_FROM": np.array([2, 2])},
            "LENGTHS[0]",
        ),
        (
            {"TOKENS": tokens, "LENGTHS": np.array([4, 5]), "SCORE_FROM": np.array([0, 2])},
            "SCORE_FROM[0]",
        ),
        (
            {"TOKENS": tokens + 100, "LENGTHS": np.array([4, 5]), "SCORE_FROM": np.array([2, 2])},
            "TOKENS[0]",
        ),
    ]
    for inputs, message in bad:
        with pytest.raises(ScoreInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            serving.handle(inputs)
