"""A rule-based diatonic harmoniser: chords for one melody bar from chord-tone fit and
functional progressions. The harmony service's first harmoniser, kept as a baseline.

Per span of the bar (one chord per bar, or two in duple meters when the melody asks for
it) every diatonic triad — and the dominant seventh, with the harmonic-minor dominant in
minor keys — is scored by how much of the melody (weighted by duration, strong beats
counting double) are its chord tones, plus a preference for common progressions from the
previous chord. The final bar cadences on the tonic.
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.music.chords import ChordQuality, ChordSymbol, diatonic_triads, roman_numeral
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Meter, Mode, Note
from cantus.music.styles import Style


@dataclass(frozen=True)
class ChordSpan:
    """A chord held from ``onset`` for ``duration`` ticks (from the bar start)."""

    onset: int
    duration: int
    symbol: ChordSymbol
    roman: str


# Preference for moving from one scale degree (0 = tonic) to another; unlisted moves score 0.
_PROGRESSIONS: dict[int, dict[int, float]] = {
    0: {3: 0.6, 4: 0.6, 5: 0.4, 1: 0.3, 0: 0.2},
    1: {4: 0.8, 6: 0.3},
    2: {5: 0.5, 3: 0.4},
    3: {4: 0.7, 0: 0.5, 1: 0.4},
    4: {0: 0.9, 5: 0.4, 3: 0.1},
    5: {1: 0.6, 3: 0.6, 4: 0.3},
    6: {0: 0.8, 2: 0.2},
}


def span_boundaries(meter: Meter, split: bool) -> list[tuple[int, int]]:
    """(onset, duration) in ticks of the chord spans of one bar."""
    bar = meter.bar_ticks
    eighth = TICKS_PER_QUARTER // 2
    if not split:
        return [(0, bar)]
    if meter.numerator == 5 and meter.denominator == 4:
        return [(0, 3 * TICKS_PER_QUARTER), (3 * TICKS_PER_QUARTER, 2 * TICKS_PER_QUARTER)]
    if meter.numerator == 7 and meter.denominator == 8:
        return [(0, 4 * eighth), (4 * eighth, 3 * eighth)]
    if meter.numerator in (2, 4, 6, 12):
        half = bar // 2
        return [(0, half), (half, bar - half)]
    return [(0, bar)]


def _candidates(key: Key) -> list[ChordSymbol]:
    chords = [c for c in diatonic_triads(key) if c.quality is not ChordQuality.DIMINISHED]
    dominant_root = (key.tonic + 7) % 12
    chords.append(ChordSymbol(dominant_root, ChordQuality.DOMINANT_7))
    if key.mode is Mode.MINOR:  # harmonic minor: a major dominant leads home
        chords.append(ChordSymbol(dominant_root, ChordQuality.MAJOR))
    return chords


def _degree(symbol: ChordSymbol, key: Key) -> int:
    scale = key.scale_pitch_classes
    return scale.index(symbol.root) if symbol.root in scale else -1


def _fit(chord: ChordSymbol, notes: list[Note], span: tuple[int, int], meter: Meter) -> float:
    """Share of the span's melody (duration-weighted, strong beats double) in the chord."""
    start, length = span
    beat = TICKS_PER_QUARTER * 4 // meter.denominator
    total = inside = 0.0
    for note in notes:
        overlap = min(note.end, start + length) - max(note.onset, start)
        if overlap <= 0:
            continue
        weight = overlap * (2.0 if note.onset % (beat * 2) == 0 else 1.0)
        total += weight
        if note.pitch % 12 in chord.pitch_classes:
            inside += weight
    return inside / total if total else 0.0


def harmonize_bar(
    bar: Bar,
    key: Key,
    *,
    previous: ChordSymbol | None,
    style: Style,
    next_bar: Bar | None = None,
    is_final: bool = False,
) -> list[ChordSpan]:
    """Chords for one bar, covering it exactly. Rests or an empty bar prolong the previous
    chord (the tonic when there is none); chromatic melodies still get the best diatonic
    fit. Deterministic."""
    tonic = diatonic_triads(key)[0]
    notes = list(bar.notes)
    single = span_boundaries(bar.meter, split=False)
    if not notes:
        chord = previous or tonic
        return [_span(single[0], tonic if is_final else chord, key)]
    one_chord = _choose(notes, single[0], bar.meter, key, previous, is_final)
    spans = span_boundaries(bar.meter, split=True)
    if len(spans) == 1:
        return [_span(spans[0], one_chord, key)]
    first = _choose(notes, spans[0], bar.meter, key, previous, False)
    second = _choose(notes, spans[1], bar.meter, key, first, is_final)
    fit_single = _fit(one_chord, notes, single[0], bar.meter)
    fit_split = (
        _fit(first, notes, spans[0], bar.meter) + _fit(second, notes, spans[1], bar.meter)
    ) / 2
    if first == second or fit_split < fit_single + 0.2:  # change harmony only when it helps
        return [_span(single[0], one_chord, key)]
    return [_span(spans[0], first, key), _span(spans[1], second, key)]


def _choose(
    notes: list[Note],
    span: tuple[int, int],
    meter: Meter,
    key: Key,
    previous: ChordSymbol | None,
    cadence: bool,
) -> ChordSymbol:
    if cadence:
        return diatonic_triads(key)[0]
    best, best_score = None, float("-inf")
    previous_degree = _degree(previous, key) if previous else -1
    for index, chord in enumerate(_candidates(key)):
        score = 2.0 * _fit(chord, notes, span, meter)
        degree = _degree(chord, key)
        score += 0.5 * _PROGRESSIONS.get(previous_degree, {}).get(degree, 0.0)
        if chord == previous:
            score -= 0.15  # some motion, unless the melody insists
        if chord.quality is ChordQuality.DOMINANT_7:
            score -= 0.05
        score -= 0.001 * index  # stable tie-break: earlier scale degrees first
        if score > best_score:
            best, best_score = chord, score
    assert best is not None
    return best


def _span(span: tuple[int, int], chord: ChordSymbol, key: Key) -> ChordSpan:
    return ChordSpan(span[0], span[1], chord, roman_numeral(chord, key))
