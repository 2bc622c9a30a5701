"""Chord voicings (accompaniment notes) and bass lines for one bar of chord spans.

Voicings move smoothly: each chord's notes are the arrangement, within the accompaniment
register, closest to the previous voicing (common tones stay). Bass lines take the chord's
bass pitch class in the bass register; more energy adds fifths and passing notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

from cantus.harmony.rules import ChordSpan
from cantus.music.notes import TICKS_PER_QUARTER, Meter, Note
from cantus.music.styles import Energy, Style

VOICING_RANGE = (48, 72)
"""MIDI pitches of accompaniment chord notes (C3..C5)."""
BASS_RANGE = (36, 55)
"""MIDI pitches of the bass line (C2..G3)."""


def _candidates(pitch_classes: Sequence[int], voices: int) -> list[tuple[int, ...]]:
    low, high = VOICING_RANGE
    options = [[p for p in range(low, high + 1) if p % 12 == pc] for pc in pitch_classes]
    voicings = set()
    for choice in product(*options):
        voicing = tuple(sorted(choice))
        if voicing[-1] - voicing[0] <= 14:  # keep it within about an octave: a close position
            voicings.add(voicing[:voices])
    return sorted(voicings)


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(min(abs(x - y) for y in b) for x in a) + sum(min(abs(x - y) for x in a) for y in b)


def voice_chords(
    spans: Sequence[ChordSpan], *, style: Style, previous_voicing: tuple[int, ...] | None
) -> list[Note]:
    """Sustained chord notes, one voicing per span, onsets from the bar start."""
    notes: list[Note] = []
    current = previous_voicing or (55, 60, 64)
    velocity = 62 if style is Style.CHORALE else 70
    for span in spans:
        classes = sorted(span.symbol.pitch_classes)
        voices = 4 if len(classes) >= 4 else 3
        options = _candidates(classes, voices) or [tuple(sorted(48 + pc for pc in classes))]
        current = min(options, key=lambda v: (_distance(v, current), v))
        notes.extend(Note(span.onset, pitch, span.duration, velocity) for pitch in current)
    return sorted(notes)


def _bass_pitch(pitch_class: int) -> int:
    low = BASS_RANGE[0]
    return low + (pitch_class - low) % 12


def bass_line(
    spans: Sequence[ChordSpan], meter: Meter, *, style: Style, energy: Energy
) -> list[Note]:
    """Bass notes inside the bar, onsets from the bar start (monophonic)."""
    beat = TICKS_PER_QUARTER * 4 // meter.denominator
    if meter.denominator == 8 and meter.numerator % 3 == 0:
        beat *= 3  # compound meters: the dotted-quarter pulse
    notes: list[Note] = []
    for span in spans:
        root = _bass_pitch(span.symbol.bass_pitch_class)
        fifth = root + 7 if root + 7 <= BASS_RANGE[1] else root - 5
        if energy is Energy.LOW or style is Style.CHORALE or span.duration <= beat:
            notes.append(Note(span.onset, root, span.duration, 80))
            continue
        pulses = max(1, span.duration // beat)
        for pulse in range(pulses):
            onset = span.onset + pulse * beat
            length = beat if pulse < pulses - 1 else span.onset + span.duration - onset
            pitch = root if pulse % 2 == 0 else fifth
            if energy is Energy.MID and pulse % 2:
                pitch = root
            notes.append(Note(onset, pitch, length, 84 if pulse == 0 else 74))
    return notes
