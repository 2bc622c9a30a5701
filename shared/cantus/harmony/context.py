"""The window of beats the harmony model reads for one bar, and its answer as chord spans.

A request to the model is one fixed-size window of ``CONTEXT_BEATS`` beats, left-padded:
the beats of the bars already harmonised (with their chords, so the model continues
them) followed by the beats of the bar to harmonise. Fixed shapes let Triton's dynamic
batcher put the bars of many pieces into one forward pass. Everything here is numpy and
the music package, so the harmony service builds windows without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cantus import checkpoint_io
from cantus.harmony.cadence import BarHarmonyPlan, rekey_beats
from cantus.harmony.features import FEATURES, bar_features, beat_spans
from cantus.harmony.rules import ChordSpan, chord_segments
from cantus.harmony.vocabulary import CHORD_CLASSES, NO_CHORD, class_to_chord
from cantus.music.chords import roman_numeral
from cantus.music.notes import Bar, Key
from cantus.music.styles import Energy, Style

CONTEXT_BEATS = 48
"""Beats in one model window (12 bars of 4/4): history plus the bar to harmonise."""

START, PAD, UNKNOWN = CHORD_CLASSES, CHORD_CLASSES + 1, CHORD_CLASSES + 2
"""Previous-chord tokens (the same as ``cantus.harmony.model``'s, without torch)."""


@dataclass(frozen=True)
class HarmonizedBar:
    """A bar already harmonised: its melody and the (chord class, inversion) of each beat
    (chord class ``NO_CHORD`` where none is known)."""

    bar: Bar
    beats: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Window:
    """One model request. ``features`` [CONTEXT_BEATS, FEATURES] float32; ``previous``
    [CONTEXT_BEATS] int32 (the chord class of the beat before each beat, or a token);
    ``hold`` [CONTEXT_BEATS] bool; ``decode_from`` the first beat to harmonise;
    ``allowed`` [CONTEXT_BEATS, CHORD_CLASSES] bool, the classes each beat may take
    (None: any)."""

    features: np.ndarray
    previous: np.ndarray
    hold: np.ndarray
    decode_from: int
    allowed: np.ndarray | None = None

    def allowed_classes(self) -> np.ndarray:
        """``allowed``, or every class on every beat."""
        if self.allowed is not None:
            return self.allowed
        return np.ones((CONTEXT_BEATS, CHORD_CLASSES), dtype=bool)


def _token(chord_class: int) -> int:
    return UNKNOWN if chord_class == NO_CHORD else chord_class


def hold_beats(bar: Bar, style: Style) -> np.ndarray:
    """Beats of ``bar`` that keep the chord before them: chorales change chord on any beat;
    folk and celtic only where ``chord_segments`` lets the harmony change (once or twice a
    bar)."""
    spans = beat_spans(bar.meter)
    if style is Style.CHORALE:
        return np.zeros(len(spans), dtype=bool)
    starts = {onset for onset, _ in chord_segments(bar.meter, bar)}
    return np.array([onset not in starts for onset, _ in spans], dtype=bool)


def build_window(
    history: Sequence[HarmonizedBar],
    bar: Bar,
    *,
    next_bar: Bar | None,
    key: Key,
    style: Style,
    energy: Energy,
    is_final: bool,
    history_is_complete: bool,
    allowed: np.ndarray | None = None,
) -> Window:
    """The window that asks for ``bar``'s chords. ``history`` holds the bars before it,
    oldest first (the service keeps the last few); ``history_is_complete`` says it starts
    at the first bar of the piece (so the first chord follows ``START``). ``allowed``
    [beats of ``bar``, CHORD_CLASSES] bool limits the chord classes of the bar's beats
    (a cadence; None: any)."""
    blocks: list[np.ndarray] = []
    previous_tokens: list[int] = []
    for index, done in enumerate(history):
        following = history[index + 1].bar if index + 1 < len(history) else bar
        blocks.append(
            bar_features(
                done.bar, key, next_bar=following, is_final=False, style=style, energy=energy
            )
        )
        previous_tokens.extend(_token(chord_class) for chord_class, _ in done.beats)
    current = bar_features(
        bar, key, next_bar=next_bar, is_final=is_final, style=style, energy=energy
    )
    history_features = (
        np.concatenate(blocks) if blocks else np.zeros((0, FEATURES), dtype=np.float32)
    )
    beats = len(current)
    keep = min(len(history_features), CONTEXT_BEATS - beats)
    history_features = history_features[len(history_features) - keep :]
    chord_before = [START if history_is_complete else UNKNOWN, *previous_tokens]
    # chord_before[i] is the chord before history beat i; the current bar's first beat
    # follows the last history chord.
    previous_history = chord_before[len(previous_tokens) - keep : len(previous_tokens)]
    first_current_previous = chord_before[-1]

    padding = CONTEXT_BEATS - keep - beats
    features = np.zeros((CONTEXT_BEATS, FEATURES), dtype=np.float32)
    features[padding : padding + keep] = history_features
    features[padding + keep :] = current
    previous = np.full(CONTEXT_BEATS, PAD, dtype=np.int32)
    previous[padding : padding + keep] = previous_history
    previous[padding + keep] = first_current_previous
    hold = np.zeros(CONTEXT_BEATS, dtype=bool)
    hold[padding + keep :] = hold_beats(bar, style)
    if first_current_previous in (START, UNKNOWN):
        hold[padding + keep] = False
    window_allowed = None
    if allowed is not None:
        if allowed.shape != (beats, CHORD_CLASSES):
            raise ValueError(f"allowed must be [{beats}, {CHORD_CLASSES}], got {allowed.shape}")
        window_allowed = np.ones((CONTEXT_BEATS, CHORD_CLASSES), dtype=bool)
        window_allowed[padding + keep :] = allowed
    return Window(features, previous, hold, padding + keep, window_allowed)


def planned_window(
    history: Sequence[HarmonizedBar],
    bar: Bar,
    *,
    next_bar: Bar | None,
    plan: BarHarmonyPlan,
    home_key: Key,
    style: Style,
    is_final: bool,
    history_is_complete: bool,
) -> Window:
    """``build_window`` for a bar of a piece with a form plan: ``history`` holds chord
    classes relative to ``home_key``; the window reads everything relative to the bar's
    key area (``plan.key``), with its section's energy and its cadence's allowed chords.
    The model's answer is relative to ``plan.key``."""
    if plan.key != home_key:
        history = [
            HarmonizedBar(done.bar, rekey_beats(done.beats, home_key, plan.key)) for done in history
        ]
    return build_window(
        history,
        bar,
        next_bar=next_bar,
        key=plan.key,
        style=style,
        energy=plan.energy,
        is_final=is_final,
        history_is_complete=history_is_complete,
        allowed=plan.allowed_classes(bar.meter),
    )


def beats_to_spans(bar: Bar, beats: Sequence[tuple[int, int]], key: Key) -> list[ChordSpan]:
    """Chord spans covering ``bar`` from one (chord class, inversion) per beat: equal
    neighbouring beats merge into one span."""
    spans: list[ChordSpan] = []
    for (onset, length), (chord_class, inversion) in zip(beat_spans(bar.meter), beats, strict=True):
        chord = class_to_chord(chord_class, key, inversion)
        if spans and spans[-1].symbol == chord:
            last = spans[-1]
            spans[-1] = ChordSpan(last.onset, last.duration + length, chord, last.roman)
        else:
            spans.append(ChordSpan(onset, length, chord, roman_numeral(chord, key)))
    return spans


def checkpoint_version(path: Path) -> str:
    """``harmony@<digest>`` (``cantus.checkpoint_io``): names the model that made a bar in
    its event (the service computes it without loading the model)."""
    return checkpoint_io.checkpoint_version(path, "harmony")
