"""Melody training: mode-balanced epochs, token-level transposition, and a step budget
that makes a run reproducible."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.melody.checkpoint import load_melody_checkpoint, save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.corpus import Tune, split_corpus
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import (
    FIM_MIDDLE,
    FIM_SUFFIX,
    PREFIX_LENGTH,
    MelodyTokenizer,
    Vocabulary,
)
from cantus.melody.training import (
    FIM_MAX_SUFFIX_BARS,
    MODE_POSITION,
    EncodedTune,
    TokenTransposer,
    continue_from,
    epoch_draws,
    fim_order,
    train_melody,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import Energy, Style

TOKENIZER = MelodyTokenizer()
MINOR_ID = TOKENIZER.vocab.id("MODE_minor")


def _tune(tune_id: str, mode: Mode) -> EncodedTune:
    key = Key(9 if mode is Mode.MINOR else 0, mode)
    meter = Meter.parse("4/4")
    melody = Melody(key, 100.0, (Bar(meter, (Note(0, 69, meter.bar_ticks, 80),)),))
    controls = Controls(key, meter, 100.0, Style.FOLK, Energy.MID)
    return EncodedTune(tune_id, TOKENIZER.encode(melody, controls), 69, 69)


def test_each_minor_tune_is_drawn_minor_draws_times_and_each_major_once() -> None:
    tunes = [_tune("a", Mode.MAJOR), _tune("b", Mode.MINOR), _tune("c", Mode.MAJOR)]
    draws = epoch_draws(tunes, 3, MINOR_ID)
    assert [t.tune_id for t in draws] == ["a", "b", "b", "b", "c"]
    assert epoch_draws(tunes, 1, MINOR_ID) == tunes


def test_minor_draws_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="minor_draws must be at least 1"):
        epoch_draws([_tune("a", Mode.MINOR)], 0, MINOR_ID)


def test_transposition_keeps_the_mode_and_rotates_the_key() -> None:
    tune = _tune("b", Mode.MINOR)
    shifted = TokenTransposer(TOKENIZER)(tune.tokens, 5)
    assert shifted[MODE_POSITION] == MINOR_ID
    assert TOKENIZER.vocab.token(shifted[1]) == "KEY_2"  # A + 5 semitones = D


def _tiny_split():  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    meter = Meter.parse("4/4")
    tunes = []
    for index in range(40):
        key = Key(rng.choice([0, 7, 9]), Mode.MINOR if index % 4 == 0 else Mode.MAJOR)
        bars = []
        for _ in range(4):
            pitches = [rng.choice([60, 62, 64, 65, 67]) + key.tonic for _ in range(4)]
            notes = tuple(Note(i * 480, p, 480) for i, p in enumerate(pitches))
            bars.append(Bar(meter, notes))
        tunes.append(Tune(f"synthetic/{index}", "essen", "folk", Melody(key, 100.0, tuple(bars))))
    return split_corpus(tunes, valid_fraction=0.15, test_fraction=0.15)


def test_a_step_budget_reproduces_the_same_weights(tmp_path: Path) -> None:
    split = _tiny_split()
    config = MelodyLMConfig.tiny(len(TOKENIZER.vocab))
    runs = []
    for name in ("first", "second"):
        path = tmp_path / f"{name}.pt"
        metadata = train_melody(
            split,
            config,
            max_steps=12,
            eval_every_steps=5,
            batch_size=4,
            out_path=path,
            log=lambda line: None,
        )
        runs.append((load_melody_checkpoint(path)[0].state_dict(), metadata))
    (first, first_metadata), (second, _) = runs
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    # validation at steps 5, 10 and the last step, whatever the clock said
    assert [row[0] for row in first_metadata["history"]["valid"]] == [5, 10, 12]
    assert first_metadata["final"]["steps"] == 12 and first_metadata["max_steps"] == 12


def test_a_run_needs_a_budget(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give a budget"):
        train_melody(
            _tiny_split(), MelodyLMConfig.tiny(len(TOKENIZER.vocab)), out_path=tmp_path / "x.pt"
        )


# --- fill-in-the-middle ------------------------------------------------------------------------

VOCAB = TOKENIZER.vocab
SUFFIX_ID, MIDDLE_ID = VOCAB.id(FIM_SUFFIX), VOCAB.id(FIM_MIDDLE)


def _bars_of(tokens: list[int]) -> list[list[int]]:
    """The bars of a token run (each from its BAR up to the next BAR)."""
    bars: list[list[int]] = []
    for token in tokens:
        if token == VOCAB.bar:
            bars.append([])
        bars[-1].append(token)
    return bars


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=20), st.integers(0, 10_000))
def test_fim_order_writes_the_suffix_then_the_prefix_and_the_gap(
    notes_per_bar: list[int], seed: int
) -> None:
    meter = Meter.parse("4/4")
    bars = tuple(
        Bar(meter, tuple(Note(i * 480, 60 + b % 12, 480, 80) for i in range(n)))
        for b, n in enumerate(notes_per_bar)
    )
    controls = Controls(Key(0), meter, 100.0, Style.FOLK, Energy.MID)
    tokens = TOKENIZER.encode(Melody(Key(0), 100.0, bars), controls)
    fim = fim_order(tokens, VOCAB.bar, VOCAB.eos, SUFFIX_ID, MIDDLE_ID, random.Random(seed))
    assert fim is not None
    assert fim[:PREFIX_LENGTH] == tokens[:PREFIX_LENGTH] and fim[-1] == VOCAB.eos
    assert fim[PREFIX_LENGTH] == SUFFIX_ID
    assert fim.count(SUFFIX_ID) == 1 and fim.count(MIDDLE_ID) == 1
    middle_at = fim.index(MIDDLE_ID)
    after = _bars_of(fim[PREFIX_LENGTH + 1 : middle_at])
    before_and_gap = _bars_of(fim[middle_at + 1 : -1])
    assert 1 <= len(after) <= FIM_MAX_SUFFIX_BARS
    assert 1 <= len(before_and_gap) <= len(notes_per_bar) - 1
    # the bars before the gap, the gap and the bars after it are the tune's, in order
    original = _bars_of(tokens[PREFIX_LENGTH:-1])
    assert before_and_gap + after == original[: len(before_and_gap) + len(after)]
    assert len(fim) <= len(tokens) + 2


def test_fim_order_needs_two_bars_and_a_whole_tune() -> None:
    one_bar = _tune("a", Mode.MAJOR).tokens
    assert fim_order(one_bar, VOCAB.bar, VOCAB.eos, SUFFIX_ID, MIDDLE_ID, random.Random(0)) is None
    two_bars = one_bar[:-1] + one_bar[PREFIX_LENGTH:]
    cut = two_bars[:-1]  # a window of a long tune: no EOS
    assert fim_order(cut, VOCAB.bar, VOCAB.eos, SUFFIX_ID, MIDDLE_ID, random.Random(0)) is None
    assert fim_order(two_bars, VOCAB.bar, VOCAB.eos, SUFFIX_ID, MIDDLE_ID, random.Random(0))


def test_training_continues_from_a_checkpoint_with_a_shorter_vocabulary(tmp_path: Path) -> None:
    old_tokenizer = MelodyTokenizer(Vocabulary(VOCAB.tokens[:-2]))  # before the FIM markers
    old_model = MelodyLM(MelodyLMConfig.tiny(len(old_tokenizer.vocab)))
    path = tmp_path / "old.pt"
    thresholds = EnergyThresholds(1.0, 2.0)
    save_melody_checkpoint(path, old_model, old_tokenizer, thresholds, {"steps": 7})
    model = MelodyLM(MelodyLMConfig.tiny(len(VOCAB)))
    assert continue_from(model, path, TOKENIZER)["steps"] == 7
    old_rows = old_model.token_embedding.weight.detach()
    rows = model.token_embedding.weight.detach()
    assert torch.equal(rows[: len(old_rows)], old_rows)
    assert torch.allclose(rows[len(old_rows) :], old_rows.mean(dim=0).expand(2, -1))
    bigger = MelodyLM(dataclasses.replace(MelodyLMConfig.tiny(len(VOCAB)), d_model=64))
    with pytest.raises(ValueError, match="not a"):
        continue_from(bigger, path, TOKENIZER)


def test_a_model_with_a_contour_continues_a_checkpoint_without_one(tmp_path: Path) -> None:
    old_model = MelodyLM(MelodyLMConfig.tiny(len(VOCAB)))
    path = tmp_path / "old.pt"
    save_melody_checkpoint(path, old_model, TOKENIZER, EnergyThresholds(1.0, 2.0), {"steps": 3})
    config = dataclasses.replace(MelodyLMConfig.tiny(len(VOCAB)), contour=VOCAB.contour())
    model = MelodyLM(config)
    continue_from(model, path, TOKENIZER)
    assert model.contour_embedding is not None
    assert not model.contour_embedding.weight.any()  # starts as the model it continues
    tokens = torch.tensor([_tune("a", Mode.MAJOR).tokens])
    torch.testing.assert_close(model.eval()(tokens), old_model.eval()(tokens))
    # and the contour survives a checkpoint's round trip
    save_melody_checkpoint(tmp_path / "new.pt", model, TOKENIZER, EnergyThresholds(1.0, 2.0), {})
    loaded, _, metadata = load_melody_checkpoint(tmp_path / "new.pt")
    assert metadata["config"].contour == VOCAB.contour()
    torch.testing.assert_close(loaded(tokens), model(tokens))


def test_a_model_with_a_tonality_continues_one_with_a_contour_alone(tmp_path: Path) -> None:
    with_contour = dataclasses.replace(MelodyLMConfig.tiny(len(VOCAB)), contour=VOCAB.contour())
    old_model = MelodyLM(with_contour)
    path = tmp_path / "old.pt"
    save_melody_checkpoint(path, old_model, TOKENIZER, EnergyThresholds(1.0, 2.0), {"steps": 3})
    model = MelodyLM(dataclasses.replace(with_contour, tonality=VOCAB.tonality()))
    continue_from(model, path, TOKENIZER)
    assert model.degree_embedding is not None
    assert not model.degree_embedding.weight.any()
    tokens = torch.tensor([_tune("a", Mode.MINOR).tokens])
    torch.testing.assert_close(model.eval()(tokens), old_model.eval()(tokens))
    save_melody_checkpoint(tmp_path / "new.pt", model, TOKENIZER, EnergyThresholds(1.0, 2.0), {})
    _, _, metadata = load_melody_checkpoint(tmp_path / "new.pt")
    assert metadata["config"].tonality == VOCAB.tonality()


def test_a_run_with_fim_scores_fim_validation_apart(tmp_path: Path) -> None:
    metadata = train_melody(
        _tiny_split(),
        MelodyLMConfig.tiny(len(VOCAB)),
        max_steps=4,
        eval_every_steps=2,
        batch_size=4,
        fim_rate=0.5,
        key_labels="score",
        out_path=tmp_path / "fim.pt",
        log=lambda line: None,
    )
    assert [row[0] for row in metadata["history"]["valid_fim"]] == [2, 4]
    assert metadata["fim_rate"] == 0.5 and metadata["valid_fim_loss"] > 0
