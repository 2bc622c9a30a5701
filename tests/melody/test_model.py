"""The melody transformer: the KV-cached batched decoding matches the full forward pass, and
the contour embedding sees the melody's last interval, the degree embedding its latest pitch's
scale degree in the asked key."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cantus.melody.model import (
    NO_DEGREE,
    NO_INTERVAL,
    KVCache,
    MelodyLM,
    MelodyLMConfig,
    contour_buckets,
    contour_state,
    degree_buckets,
    sequence_key,
)
from cantus.melody.tokenizer import Contour, Tonality

torch.set_num_threads(1)

CONTOUR = Contour(first_pitch_id=10, n_pitches=20, reset_ids=(40, 41))
"""A toy vocabulary of 50: pitches 0..19 are tokens 10..29, tokens 40 and 41 reset."""
TONALITY = Tonality(first_key_id=30, mode_ids=(42, 43), lowest_pitch=60)
"""Keys C..B are tokens 30..41 of the toy vocabulary, major and minor 42 and 43; its lowest
pitch (token 10) is middle C."""


def _model(
    max_len: int = 64,
    n_kv_heads: int | None = None,
    contour: Contour | None = None,
    tonality: Tonality | None = None,
) -> MelodyLM:
    torch.manual_seed(0)
    config = MelodyLMConfig(
        vocab_size=50,
        d_model=32,
        n_layers=2,
        n_heads=4,
        d_ff=64,
        max_len=max_len,
        dropout=0.0,
        n_kv_heads=n_kv_heads,
        contour=contour,
        tonality=tonality,
    )
    model = MelodyLM(config).eval()
    for embedding in (model.contour_embedding, model.degree_embedding):
        if embedding is not None:
            torch.nn.init.normal_(embedding.weight)  # trained: not zero
    return model


@pytest.mark.parametrize(
    ("n_kv_heads", "contour", "tonality"),
    [
        (None, None, None),
        (2, None, None),
        (1, None, None),
        (1, CONTOUR, None),
        (1, CONTOUR, TONALITY),
    ],
    ids=["multi-head", "grouped", "multi-query", "contour", "tonality"],
)
def test_cached_batched_decoding_matches_the_full_forward(n_kv_heads, contour, tonality) -> None:
    model = _model(n_kv_heads=n_kv_heads, contour=contour, tonality=tonality)
    generator = torch.Generator().manual_seed(1)
    lengths = [5, 12, 1, 20]  # prompt lengths differ per sequence
    extra = 9  # tokens decoded one step at a time after the prompt
    sequences = [torch.randint(1, 50, (n + extra,), generator=generator) for n in lengths]
    for sequence, key, mode in zip(sequences, (33, 40, 30, 35), (42, 43, 1, 43), strict=True):
        sequence[1:3] = torch.tensor([key, mode])  # a prefix with a key (the third has none)
    full = [model(seq[None])[0] for seq in sequences]

    cache = KVCache(model.config, max_batch=6)
    slots = torch.tensor([4, 0, 2, 5])  # arbitrary, non-contiguous slots
    for i, (n, slot) in enumerate(zip(lengths, slots.tolist(), strict=True)):
        logits = model.prefill(sequences[i][:n], cache, slot)
        torch.testing.assert_close(logits, full[i][n - 1], atol=1e-4, rtol=0)
    for step in range(extra):
        # sequences leave the batch at different times: the short one stops after 4 steps
        active = [i for i in range(len(lengths)) if step < (4 if i == 2 else extra)]
        tokens = torch.stack([sequences[i][lengths[i] + step] for i in active])
        logits = model.decode_step(tokens, cache, slots[active])
        for row, i in enumerate(active):
            torch.testing.assert_close(logits[row], full[i][lengths[i] + step], atol=1e-4, rtol=0)
    assert cache.lengths[slots].tolist() == [5 + extra, 12 + extra, 1 + 4, 20 + extra]


def test_slot_reuse_after_reset_forgets_the_old_sequence() -> None:
    model = _model()
    cache = KVCache(model.config, max_batch=2)
    model.prefill(torch.arange(1, 30), cache, 0)
    cache.reset(0)
    fresh = torch.tensor([3, 4, 5])
    logits = model.prefill(fresh[:2], cache, 0)
    step = model.decode_step(fresh[2:], cache, torch.tensor([0]))
    full = model(fresh[None])[0]
    torch.testing.assert_close(logits, full[1], atol=1e-4, rtol=0)
    torch.testing.assert_close(step[0], full[2], atol=1e-4, rtol=0)


def test_default_config_is_a_few_million_parameters() -> None:
    n_parameters = MelodyLM(MelodyLMConfig.default(vocab_size=201)).n_parameters()
    assert 2e6 < n_parameters < 5e6  # float32: well under the 20 MB checkpoint budget


def _reference_buckets(tokens: list[int], contour: Contour) -> list[int]:
    """``contour_buckets`` written as a loop over the tokens."""
    buckets, latest, bucket = [], None, NO_INTERVAL
    for token in tokens:
        pitch = token - contour.first_pitch_id
        if 0 <= pitch < contour.n_pitches:
            bucket = NO_INTERVAL if latest is None else max(-12, min(12, pitch - latest)) + 13
            latest = pitch
        elif token in contour.reset_ids:
            latest, bucket = None, NO_INTERVAL
        buckets.append(bucket)
    return buckets


def test_contour_buckets_hold_the_last_interval_until_the_next_pitch() -> None:
    c, d, e, bar, reset = 10, 12, 14, 3, 40  # pitches 0, 2, 4 (C, D, E from the lowest)
    tokens = [1, bar, 5, c, 7, 5, d, 7, bar, 5, e, 7, reset, 5, d, 7, 5, c, 7]
    assert contour_buckets(torch.tensor(tokens), CONTOUR).tolist() == [
        *[NO_INTERVAL] * 6,
        13 + 2, 13 + 2, 13 + 2, 13 + 2,  # C -> D: a step up, held through the next bar line
        13 + 2, 13 + 2,  # D -> E
        *[NO_INTERVAL] * 5,  # after a reset D has no pitch before it
        13 - 2, 13 - 2,  # D -> C
    ]  # fmt: skip


@given(st.lists(st.integers(0, 49), min_size=1, max_size=60))
def test_contour_buckets_match_a_loop_over_the_tokens(tokens: list[int]) -> None:
    batch = torch.tensor([tokens, tokens[::-1]])
    expected = [_reference_buckets(tokens, CONTOUR), _reference_buckets(tokens[::-1], CONTOUR)]
    assert contour_buckets(batch, CONTOUR).tolist() == expected


def test_a_moved_slot_keeps_its_contour() -> None:
    model = _model(contour=CONTOUR)
    cache = KVCache(model.config, max_batch=3)
    sequence = torch.tensor([1, 3, 5, 12, 7, 5, 16, 7, 5])  # pitches 2 then 6: up a third
    model.prefill(sequence[:-1], cache, 2)
    cache.move(2, 0)
    assert cache.contour[0].tolist() == [6, 13 + 4]
    assert cache.contour[2].tolist() == [-1, NO_INTERVAL]
    step = model.decode_step(sequence[-1:], cache, torch.tensor([0]))
    torch.testing.assert_close(step[0], model(sequence[None])[0, -1], atol=1e-4, rtol=0)


def test_a_zero_contour_embedding_changes_nothing() -> None:
    plain = _model()
    with_contour = MelodyLM(dataclasses.replace(plain.config, contour=CONTOUR))
    state = {**plain.state_dict(), "contour_embedding.weight": torch.zeros(26, 32)}
    with_contour.load_state_dict(state)
    tokens = torch.randint(1, 50, (2, 30), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(with_contour.eval()(tokens), plain(tokens))


def test_degree_buckets_give_the_latest_pitch_in_the_asked_key() -> None:
    d_minor = [1, 32, 43]  # BOS KEY_2 MODE_minor
    bar, pos, dur, reset = 3, 5, 7, 40
    # pitches 62 (D, the tonic), 65 (F, the minor third), then 69 (A, the fifth) after a reset
    tokens = [*d_minor, bar, pos, 12, dur, pos, 15, dur, reset, pos, 19, dur]
    key = sequence_key(torch.tensor([tokens]), TONALITY)
    assert key.tolist() == [[2, 1]]
    latest = contour_state(torch.tensor([tokens]), CONTOUR)[1]
    assert degree_buckets(latest, key, TONALITY).tolist() == [
        [*[NO_DEGREE] * 5, 13, 13, 13, 16, 16, NO_DEGREE, NO_DEGREE, 20, 20]
    ]
    # the same pitches in F major: D is the 6th, F the tonic, A the third
    f_major = torch.tensor([[1, 35, 42, *tokens[3:]]])
    assert degree_buckets(latest, sequence_key(f_major, TONALITY), TONALITY)[0, 5:10].tolist() == [
        10,
        10,
        10,
        1,
        1,
    ]


@pytest.mark.parametrize(
    "prefix", [[1, 44, 45], [1, 32], [1, 32, 7]], ids=["nokey", "short", "no mode"]
)
def test_a_sequence_without_a_key_has_no_degrees(prefix: list[int]) -> None:
    tokens = torch.tensor([[*prefix, 3, 5, 12, 7]])
    key = sequence_key(tokens, TONALITY)
    assert key.tolist() == [[-1, -1]]
    latest = contour_state(tokens, CONTOUR)[1]
    assert not degree_buckets(latest, key, TONALITY).any()


def test_a_moved_slot_keeps_its_key() -> None:
    model = _model(contour=CONTOUR, tonality=TONALITY)
    cache = KVCache(model.config, max_batch=3)
    sequence = torch.tensor([1, 37, 43, 3, 5, 12, 7, 5, 16, 7, 5, 14])
    model.prefill(sequence[:-1], cache, 2)
    cache.move(2, 0)
    assert cache.key[0].tolist() == [7, 1]
    assert cache.key[2].tolist() == [-1, -1]
    step = model.decode_step(sequence[-1:], cache, torch.tensor([0]))
    torch.testing.assert_close(step[0], model(sequence[None])[0, -1], atol=1e-4, rtol=0)


def test_a_tonality_needs_a_contour_and_survives_the_config_round_trip() -> None:
    with pytest.raises(ValueError, match="needs a contour"):
        MelodyLMConfig(vocab_size=50, tonality=TONALITY)
    config = _model(contour=CONTOUR, tonality=TONALITY).config
    assert MelodyLMConfig(**config.to_dict()) == config
