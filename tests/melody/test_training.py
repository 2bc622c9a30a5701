"""Melody training: mode-balanced epochs, token-level transposition, and a step budget
that makes a run reproducible."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.corpus import Tune, split_corpus
from cantus.melody.model import MelodyLMConfig
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.melody.training import (
    MODE_POSITION,
    EncodedTune,
    TokenTransposer,
    epoch_draws,
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
