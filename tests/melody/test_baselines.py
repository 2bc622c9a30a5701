"""The n-gram and LSTM baselines: proper distributions, agreement with a plain reference
implementation of modified Kneser-Ney, parameter matching, and a few training steps."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cantus.melody.baselines import (
    KneserNeyLM,
    LSTMConfig,
    MelodyLSTM,
    NGramCounts,
    load_lstm_checkpoint,
    lstm_token_nlls,
    train_lstm,
)
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.melody.training import EncodedTune, TokenTransposer

torch.set_num_threads(1)
VOCAB = 12
PAD = 0


def _sequences(count: int = 200, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    sequences = []
    for _ in range(count):
        body = [rng.choice([3, 4, 5]) for _ in range(rng.randint(3, 12))]
        body += [6, 7, 8] * rng.randint(0, 2)  # a recurring phrase
        sequences.append([1, *body, 2])
    return sequences


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_kneser_ney_is_a_distribution_for_any_history(order: int) -> None:
    model = KneserNeyLM.fit(_sequences(), order, VOCAB, PAD)
    histories = [[], [1], [1, 3, 4], [9, 10, 11, 11], [6, 7, 8, 6, 7], [11] * 6]
    probabilities = np.exp(model.next_log_probs(histories))
    assert probabilities.shape == (len(histories), VOCAB)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert (probabilities > 0).all()  # unseen tokens keep a little mass


def _reference_kn(sequences: list[list[int]], order: int):
    """A slow, plain-dict modified Kneser-Ney, written straight from Chen & Goodman."""
    padded = [[PAD] * (order - 1) + s for s in sequences]
    raw = {k: Counter() for k in range(1, order + 1)}
    for s in padded:
        for i in range(order - 1, len(s)):
            for k in range(1, order + 1):
                raw[k][tuple(s[i - k + 1 : i + 1])] += 1
    tables = {order: raw[order]}
    for k in range(1, order):
        tables[k] = Counter(gram[1:] for gram in raw[k + 1])  # distinct left neighbours

    def discounts(table: Counter) -> list[float]:
        n = [sum(1 for c in table.values() if c == j) for j in (1, 2, 3, 4)]
        if not (n[0] and n[1]):
            return [0.0, 0.5, 0.5, 0.5]  # the documented fallback for tiny tables
        y = n[0] / (n[0] + 2 * n[1])
        d = [0.0, 1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1]]
        d.append(3 - 4 * y * n[3] / n[2] if n[2] else d[2])
        return [0.0] + [min(max(x, 0.05), cap) for x, cap in zip(d[1:], (1, 2, 3), strict=True)]

    d = {k: discounts(t) for k, t in tables.items()}

    def probability(history: tuple[int, ...], word: int) -> float:
        p = 1.0 / VOCAB
        for k in range(1, order + 1):
            context = history[len(history) - (k - 1) :] if k > 1 else ()
            followers = {g[-1]: c for g, c in tables[k].items() if g[:-1] == context}
            total = sum(followers.values())
            if total == 0:
                continue
            count = followers.get(word, 0)
            backoff = sum(d[k][min(c, 3)] for c in followers.values())
            p = (max(count - d[k][min(count, 3)], 0) + backoff * p) / total
        return p

    return probability


def test_kneser_ney_matches_a_plain_reference_implementation() -> None:
    rng = random.Random(5)
    sequences = [[1, *(rng.randint(3, 9) for _ in range(rng.randint(2, 9))), 2] for _ in range(80)]
    sequences += _sequences(100, seed=1)
    model = KneserNeyLM.fit(sequences, 3, VOCAB, PAD)
    reference = _reference_kn(sequences, 3)
    for history in [(PAD, 1), (1, 3), (3, 4), (6, 7), (7, 8), (11, 11), (8, 2)]:
        ours = np.exp(model.log_probs(np.array([history] * VOCAB), np.arange(VOCAB)))
        theirs = [reference(history, w) for w in range(VOCAB)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_shared_counts_give_the_same_model_as_a_separate_fit() -> None:
    sequences = _sequences()
    shared = KneserNeyLM(NGramCounts(sequences, 5, VOCAB, PAD), 3)
    alone = KneserNeyLM.fit(sequences, 3, VOCAB, PAD)
    held_out = _sequences(20, seed=7)
    for a, b in zip(shared.token_nlls(held_out), alone.token_nlls(held_out), strict=True):
        np.testing.assert_allclose(a, b)


def test_higher_order_learns_the_recurring_phrase() -> None:
    sequences = _sequences()
    held_out = _sequences(50, seed=3)

    def mean_nll(order: int) -> float:
        model = KneserNeyLM.fit(sequences, order, VOCAB, PAD)
        return float(np.concatenate(model.token_nlls(held_out)).mean())

    assert mean_nll(3) < mean_nll(1) < math.log(VOCAB)


def test_lstm_config_matches_a_parameter_budget() -> None:
    config = LSTMConfig.matching(201, 3_470_000)
    model = MelodyLSTM(config)
    assert model.n_parameters() == LSTMConfig.parameter_count(201, config.hidden_size, 3)
    assert abs(model.n_parameters() - 3_470_000) / 3_470_000 < 0.03
    assert config.hidden_size % 8 == 0 and config.n_layers == 3


def test_lstm_is_causal_and_its_nlls_match_the_logits() -> None:
    torch.manual_seed(0)
    model = MelodyLSTM(LSTMConfig(VOCAB, hidden_size=16, n_layers=2, dropout=0.0)).eval()
    a, b = [1, 3, 4, 5, 6, 2], [1, 3, 4, 9, 9, 9, 9, 2]
    logits_a, _ = model(torch.tensor([a]))
    logits_b, _ = model(torch.tensor([b]))
    torch.testing.assert_close(logits_a[0, :3], logits_b[0, :3])
    nlls = lstm_token_nlls(model, [b, a], PAD)
    expected = -torch.log_softmax(logits_a[0, :-1], -1).gather(-1, torch.tensor(a[1:])[:, None])
    np.testing.assert_allclose(nlls[1], expected[:, 0].detach().numpy(), rtol=1e-5)
    assert len(nlls[0]) == len(b) - 1


def test_train_lstm_saves_a_loadable_best_checkpoint(tmp_path: Path) -> None:
    tokenizer = MelodyTokenizer()
    vocab = tokenizer.vocab
    tunes = _tiny_tunes()
    path = tmp_path / "lstm.pt"
    metadata = train_lstm(
        tunes,
        [t.tokens for t in tunes[:3]],
        LSTMConfig(len(vocab), hidden_size=16, n_layers=2),
        TokenTransposer(tokenizer),
        pad_id=vocab.pad,
        bar_id=vocab.bar,
        max_minutes=1.0,
        out_path=path,
        max_steps=6,
        batch_size=4,
        log=lambda _: None,
    )
    model, loaded = load_lstm_checkpoint(path)
    assert loaded["steps"] == metadata["steps"] <= 6
    assert loaded["n_parameters"] == model.n_parameters()
    assert math.isfinite(loaded["valid_loss"])


def _tiny_tunes(n: int = 12) -> list[EncodedTune]:
    vocab = MelodyTokenizer().vocab
    prefix = [vocab.bos, *(vocab.id(t) for t in ("KEY_0", "MODE_major", "METER_4/4"))]
    prefix += [vocab.id(t) for t in ("TEMPO_3", "STYLE_folk", "ENERGY_mid")]
    note = [vocab.pos(0), vocab.pitch(60), vocab.dur(16)]
    return [
        EncodedTune(f"t{i}", prefix + ([vocab.bar, *note]) * (2 + i % 3) + [vocab.eos], 60, 60)
        for i in range(n)
    ]


def test_train_lstm_stops_once_its_token_budget_is_spent(tmp_path: Path) -> None:
    tokenizer = MelodyTokenizer()
    vocab = tokenizer.vocab
    tunes = _tiny_tunes()
    lines: list[str] = []
    metadata = train_lstm(
        tunes,
        [t.tokens for t in tunes[:3]],
        LSTMConfig(len(vocab), hidden_size=16, n_layers=2),
        TokenTransposer(tokenizer),
        pad_id=vocab.pad,
        bar_id=vocab.bar,
        max_minutes=10.0,
        out_path=tmp_path / "lstm.pt",
        max_tokens=100,
        batch_size=4,
        log=lines.append,
    )
    # a batch of 4 tunes has 60..92 targets (15, 19 or 23 each): 100 tokens take 2 batches
    assert metadata["steps"] == 2 and metadata["tokens_seen"] >= 100
    assert metadata["budget_tokens"] == 100
    assert "0.00 M tokens" in lines[0]


def test_train_lstm_rejects_an_empty_token_budget(tmp_path: Path) -> None:
    vocab = MelodyTokenizer().vocab
    with pytest.raises(ValueError, match="max_tokens"):
        train_lstm(
            _tiny_tunes(2),
            [],
            LSTMConfig(len(vocab), hidden_size=8, n_layers=1),
            TokenTransposer(MelodyTokenizer()),
            pad_id=vocab.pad,
            bar_id=vocab.bar,
            max_minutes=1.0,
            out_path=tmp_path / "lstm.pt",
            max_tokens=0,
            log=lambda _: None,
        )
