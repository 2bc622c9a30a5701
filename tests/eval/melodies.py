"""Hand-built melodies for the evaluation tests."""

from __future__ import annotations

import random
from collections.abc import Sequence

from cantus.music.notes import Bar, Key, Melody, Meter, Note

QUARTER = 480
EIGHTH = 240
COMMON = Meter(4, 4)
C_MAJOR = Key(0)


def quarters(pitches: Sequence[int], key: Key = C_MAJOR, meter: Meter = COMMON) -> Melody:
    """Quarter notes filling ``meter``'s bars in order (the last bar may be partly empty)."""
    per_bar = meter.bar_ticks // QUARTER
    bars = []
    for start in range(0, len(pitches), per_bar):
        notes = tuple(
            Note(i * QUARTER, p, QUARTER) for i, p in enumerate(pitches[start : start + per_bar])
        )
        bars.append(Bar(meter, notes))
    return Melody(key, 100.0, tuple(bars))


def from_bars(bars: Sequence[Sequence[tuple[int, int, int]]], key: Key = C_MAJOR) -> Melody:
    """A 4/4 melody from bars given as (onset, pitch, duration) triples in ticks."""
    return Melody(key, 100.0, tuple(Bar(COMMON, tuple(Note(*n) for n in notes)) for notes in bars))


def random_bar(rng: random.Random, scale: Sequence[int] = (60, 62, 64, 65, 67, 69, 71)) -> Bar:
    """A 4/4 bar of quarters and eighths on random scale tones."""
    notes, onset = [], 0
    while onset < COMMON.bar_ticks:
        length = min(rng.choice((QUARTER, EIGHTH)), COMMON.bar_ticks - onset)
        notes.append(Note(onset, rng.choice(scale), length))
        onset += length
    return Bar(COMMON, tuple(notes))


def random_melody(rng: random.Random, bars: int = 8, key: Key = C_MAJOR) -> Melody:
    """Random bars (``random_bar``) in C major."""
    return Melody(key, 100.0, tuple(random_bar(rng) for _ in range(bars)))


def stepwise_melody(rng: random.Random, bars: int = 8, key: Key = C_MAJOR) -> Melody:
    """Eighth notes in a random walk of steps (scale degrees ±1) around middle C."""
    scale = [p + 12 * octave for octave in (0, 1) for p in (60, 62, 64, 65, 67, 69, 71)]
    position = 4
    notes_per_bar = COMMON.bar_ticks // EIGHTH
    built = []
    for _ in range(bars):
        notes = []
        for i in range(notes_per_bar):
            position = min(len(scale) - 1, max(0, position + rng.choice((-1, 1))))
            notes.append(Note(i * EIGHTH, scale[position], EIGHTH))
        built.append(Bar(COMMON, tuple(notes)))
    return Melody(key, 100.0, tuple(built))


def hammered_melody(rng: random.Random, bars: int = 8, key: Key = C_MAJOR) -> Melody:
    """Mostly one pitch in quarter notes, with a rare leap: the failure the gates catch."""
    pitches = [67 if rng.random() < 0.75 else rng.choice((60, 64, 72)) for _ in range(4 * bars)]
    return quarters(pitches, key)
