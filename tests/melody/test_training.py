"""Melody training data: mode-balanced epochs and token-level transposition."""

from __future__ import annotations

import pytest

from cantus.melody.controls import Controls
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.melody.training import MODE_POSITION, EncodedTune, TokenTransposer, epoch_draws
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
