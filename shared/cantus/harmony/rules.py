"""A rule-based diatonic harmoniser: chords for one melody bar from chord-tone fit and
functional progressions. The harmony service's first harmoniser, kept as a baseline.

Chord rhythm: one chord per bar, or one per half bar where the meter has two even halves
of at least a dotted quarter (4/4, 2/2, 6/8, 12/8, 6/4) and the melody clearly changes
harmony; odd meters split at their group boundary (5/4 as 3+2, 7/8 as 2+2+3 or 3+2+2,
read from the melody). Triple meters (3/4, 3/8, 9/8, 3/2) and 2/4 keep one chord.

Choice: every diatonic triad and the dominant seventh (minor keys: harmonic-minor ``V``,
``V7`` and ``viio``, plus the natural ``VII``) is scored by the duration-weighted share of
the melody that are its chord tones (downbeats and beats weigh more), a per-style prior
for common chords, and a preference table of functional progressions from the previous
chord. The final bar cadences (``V``–``I`` when it splits, ``I`` at the end).

Constraints (``ChordConstraint``, from a form plan's cadences: ``cantus.harmony.cadence``)
limit a chord segment to a few chords, e.g. ``V`` or ``V7`` at a half cadence; the best of
them for the melody is taken, and a bar whose segments are constrained to different chords
splits even where one chord would have scored better.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cantus.music.chords import ChordSymbol, chord_from_roman, roman_numeral
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Meter, Mode
from cantus.music.styles import Style


@dataclass(frozen=True)
class ChordSpan:
    """A chord held from ``onset`` for ``duration`` ticks; ``onset`` counts from the bar
    start. ``roman`` is the chord's Roman numeral in the piece's key."""

    onset: int
    duration: int
    symbol: ChordSymbol
    roman: str


Segment = tuple[int, int]
"""(onset, duration) in ticks from the bar start."""


@dataclass(frozen=True)
class ChordConstraint:
    """The chords allowed over ``duration`` ticks from ``onset`` (from the bar start), in
    order of preference; ``role`` says why (``dominant`` or ``tonic`` of a cadence)."""

    onset: int
    duration: int
    chords: tuple[ChordSymbol, ...]
    role: str = ""

    @property
    def end(self) -> int:
        return self.onset + self.duration

    def covers(self, tick: int) -> bool:
        return self.onset <= tick < self.end


# --- chord rhythm -------------------------------------------------------------------------


def pulse_ticks(meter: Meter) -> int:
    """Length of the meter's beat in ticks: the dotted note in compound meters (6/8, 9/8,
    12/8, 6/4), otherwise the denominator's note value."""
    unit = TICKS_PER_QUARTER * 4 // meter.denominator
    return unit * 3 if is_compound_meter(meter) else unit


def is_compound_meter(meter: Meter) -> bool:
    """True for meters whose beat is a dotted note: 6/8, 9/8, 12/8, 6/4 (numerator a
    multiple of three, at least six)."""
    return meter.numerator % 3 == 0 and meter.numerator >= 6


def _odd_meter_groups(meter: Meter, bar: Bar | None) -> list[int]:
    """Grouping of an odd simple meter in denominator units: 5 as 3+2; 7 as 2+2+3, or
    3+2+2 when the melody puts more weight on unit 3 than on unit 4; larger odd
    numerators as twos and a final three."""
    count = meter.numerator
    if count == 5:
        return [3, 2]
    if count == 7:
        unit = TICKS_PER_QUARTER * 4 // meter.denominator
        if bar is not None:
            weight_at = {
                position: sum(n.duration for n in bar.notes if n.onset == position * unit)
                for position in (3, 4)
            }
            if weight_at[3] > weight_at[4]:
                return [3, 2, 2]
        return [2, 2, 3]
    return [2] * ((count - 3) // 2) + [3]


def chord_segments(meter: Meter, bar: Bar | None = None) -> list[Segment]:
    """Where chords may change in a bar of ``meter``: one segment (the whole bar) or two
    that cover it exactly. ``bar`` only picks the grouping of 7-unit meters."""
    bar_ticks = meter.bar_ticks
    unit = TICKS_PER_QUARTER * 4 // meter.denominator
    if meter.numerator >= 5 and meter.numerator % 2 == 1 and not is_compound_meter(meter):
        groups = _odd_meter_groups(meter, bar)
        # Split at the group boundary nearest the middle of the bar.
        boundaries = [sum(groups[:i]) * unit for i in range(1, len(groups))]
        split = min(boundaries, key=lambda tick: (abs(2 * tick - bar_ticks), tick))
        return [(0, split), (split, bar_ticks - split)]
    pulses = bar_ticks // pulse_ticks(meter)
    half = bar_ticks // 2
    # Half-bar chords only where each half is a real beat group (>= a dotted quarter):
    # 2/4 halves would change chord every quarter, too busy for these styles.
    if pulses >= 2 and pulses % 2 == 0 and half >= TICKS_PER_QUARTER * 3 // 2:
        return [(0, half), (half, bar_ticks - half)]
    return [(0, bar_ticks)]


# --- melody fit ---------------------------------------------------------------------------

_NON_CHORD_TONE_PENALTY = 0.5
"""A melody note outside the chord costs half of what a chord tone earns."""
_ROOT_BONUS = 0.1
"""Extra credit for the share of the melody on the chord's root (C over C-E, not Am)."""


def _accent(onset: int, segment_start: int, meter: Meter) -> float:
    """Metric weight of a note starting at ``onset`` ticks from the bar start."""
    if onset == 0:
        return 2.0
    if onset == segment_start:
        return 1.6
    if onset % pulse_ticks(meter) == 0:
        return 1.3
    return 1.0


def _weighted_pitch_classes(bar: Bar, segment: Segment) -> dict[int, float]:
    """Pitch class → weight (quarter notes sounding in the segment × metric accent)."""
    start, length = segment
    end = start + length
    weights: dict[int, float] = {}
    for note in bar.notes:
        overlap = min(end, note.end) - max(start, note.onset)
        if overlap <= 0:
            continue
        # A note held into the segment sounds against its chord: weigh it like a beat.
        accent = 1.3 if note.onset < start else _accent(note.onset, start, bar.meter)
        pitch_class = note.pitch % 12
        weights[pitch_class] = weights.get(pitch_class, 0.0) + overlap / TICKS_PER_QUARTER * accent
    return weights


def segment_fit(chord: ChordSymbol, bar: Bar, segment: Segment) -> float | None:
    """How well ``chord`` fits the melody sounding in ``segment`` of ``bar`` (``_fit``:
    -0.5 no chord tones .. 1.1); None where the segment is silent."""
    weights = _weighted_pitch_classes(bar, segment)
    return _fit(chord, weights) if weights else None


def _fit(chord: ChordSymbol, weights: dict[int, float]) -> float:
    """Chord-tone coverage of the weighted melody, from -0.5 (no chord tones) to 1.1."""
    total = sum(weights.values())
    if total == 0:
        return 0.0
    tones = chord.pitch_classes
    score = sum(w if pc in tones else -_NON_CHORD_TONE_PENALTY * w for pc, w in weights.items())
    return (score + _ROOT_BONUS * weights.get(chord.root, 0.0)) / total


# --- chord choice -------------------------------------------------------------------------

_CANDIDATES = {
    Mode.MAJOR: ("I", "ii", "iii", "IV", "V", "vi", "viio", "V7"),
    Mode.MINOR: ("i", "iio", "III", "iv", "V", "VI", "VII", "viio", "V7"),
}
"""Chords the harmoniser chooses from, as Roman numerals; the tonic first."""

_STYLE_PRIOR: dict[Style, dict[Mode, dict[str, float]]] = {
    Style.FOLK: {
        Mode.MAJOR: {
            "I": 0.15,
            "IV": 0.08,
            "V": 0.1,
            "V7": 0.06,
            "vi": 0.02,
            "iii": -0.06,
            "viio": -0.25,
        },
        Mode.MINOR: {
            "i": 0.15,
            "iv": 0.06,
            "V": 0.08,
            "V7": 0.05,
            "VI": 0.05,
            "III": 0.05,
            "VII": 0.06,
            "iio": -0.2,
            "viio": -0.25,
        },
    },
    Style.CELTIC: {
        Mode.MAJOR: {
            "I": 0.15,
            "IV": 0.06,
            "V": 0.08,
            "vi": 0.04,
            "ii": 0.02,
            "iii": -0.04,
            "viio": -0.3,
        },
        Mode.MINOR: {
            "i": 0.15,
            "VII": 0.1,
            "III": 0.06,
            "VI": 0.06,
            "iv": 0.04,
            "V": 0.04,
            "iio": -0.25,
            "viio": -0.3,
        },
    },
    Style.CHORALE: {
        Mode.MAJOR: {
            "I": 0.1,
            "IV": 0.06,
            "V": 0.08,
            "V7": 0.06,
            "vi": 0.05,
            "ii": 0.05,
            "viio": -0.05,
        },
        Mode.MINOR: {
            "i": 0.1,
            "iv": 0.06,
            "V": 0.08,
            "V7": 0.06,
            "VI": 0.05,
            "III": 0.04,
            "VII": -0.02,
            "viio": -0.05,
        },
    },
}
"""Per-style preference for each candidate (missing: 0): folk and celtic lean on I, IV, V
(celtic on the modal VII in minor and few sevenths); chorales use the whole palette."""

_SUBTONIC = 7
"""Function index of the natural-minor ``VII`` (or a borrowed ``bVII`` in major)."""

_PROGRESSIONS: dict[int, dict[int, float]] = {
    0: {0: 0.1, 1: 0.15, 2: 0.05, 3: 0.25, 4: 0.25, 5: 0.2, 6: 0.05, 7: 0.1},
    1: {0: -0.05, 1: 0.05, 2: -0.05, 3: 0.05, 4: 0.3, 5: -0.05, 6: 0.2},
    2: {0: 0.05, 1: 0.1, 2: 0.05, 3: 0.2, 4: 0.05, 5: 0.25, 6: -0.05},
    3: {0: 0.2, 1: 0.15, 2: -0.05, 3: 0.1, 4: 0.25, 5: 0.05, 6: 0.1, 7: 0.1},
    4: {0: 0.3, 1: -0.1, 3: -0.05, 4: 0.1, 5: 0.2, 6: -0.05},
    5: {0: 0.05, 1: 0.2, 2: 0.05, 3: 0.25, 4: 0.1, 5: 0.05, 7: 0.15},
    6: {0: 0.3, 1: -0.05, 2: 0.1, 3: -0.05, 4: 0.05, 5: 0.05},
    7: {0: 0.15, 2: 0.2, 3: 0.1, 4: 0.05, 5: 0.1, 7: 0.05},
}
"""Preference for moving from one chord function (scale degree 0..6 of the root, 7 for
the subtonic) to another, about -0.1..0.3; unlisted moves score 0. Functional harmony:
I→IV/V/vi, ii→V, IV→V/I, V→I (or deceptively vi), vi→ii/IV, vii→I; VII→III/i in minor."""

_SECONDARY_RESOLUTION = 0.3
"""Preference for a secondary dominant (``V/x``) resolving to its target."""

_SPLIT_MARGIN = {Style.FOLK: 0.25, Style.CELTIC: 0.2, Style.CHORALE: 0.1}
"""How much better two chords must score than one before a bar changes harmony mid-bar."""

_FINAL_TONIC_BONUS = 0.6
_FINAL_DOMINANT_BONUS = 0.25
_LOOKAHEAD_WEIGHT = 0.5


def _function(chord: ChordSymbol, key: Key) -> int | None:
    """Function index of ``chord`` in ``key``: the scale degree 0..6 of its root (the
    raised leading tone counts as 6 in minor), 7 for the subtonic a whole tone below the
    tonic; None for other chromatic roots."""
    interval = (chord.root - key.tonic) % 12
    if interval == 10:
        return _SUBTONIC
    if key.mode is Mode.MINOR and interval == 11:
        return 6
    scale = key.scale_pitch_classes
    return scale.index(chord.root) if chord.root in scale else None


def _transition(previous: ChordSymbol | None, chord: ChordSymbol, key: Key) -> float:
    """Preference for ``previous`` → ``chord``; 0 with no previous chord."""
    if previous is None:
        return 0.0
    if _is_secondary(previous, key):
        # A secondary dominant wants its target, a fifth below.
        return _SECONDARY_RESOLUTION if chord.root == (previous.root + 5) % 12 else 0.0
    source, target = _function(previous, key), _function(chord, key)
    if source is None or target is None:
        return 0.0
    return _PROGRESSIONS[source].get(target, 0.0)


@functools.lru_cache(maxsize=1024)
def _is_secondary(chord: ChordSymbol, key: Key) -> bool:
    return "/" in roman_numeral(chord, key)


@dataclass(frozen=True)
class _Candidate:
    roman: str
    symbol: ChordSymbol
    prior: float


@functools.cache  # 24 keys x 3 styles
def _candidates(key: Key, style: Style) -> tuple[_Candidate, ...]:
    priors = _STYLE_PRIOR[style][key.mode]
    return tuple(
        _Candidate(roman, chord_from_roman(roman, key), priors.get(roman, 0.0))
        for roman in _CANDIDATES[key.mode]
    )


def _is_dominant(chord: ChordSymbol, key: Key) -> bool:
    return chord.root == (key.tonic + 7) % 12 and chord.pitch_classes >= {
        (key.tonic + 7) % 12,
        (key.tonic + 11) % 12,
    }


def _lookahead_target(
    next_bar: Bar | None, key: Key, candidates: Sequence[_Candidate]
) -> ChordSymbol | None:
    """The chord that best fits the start of the next bar on melody and prior alone."""
    if next_bar is None or next_bar.is_rest:
        return None
    weights = _weighted_pitch_classes(next_bar, chord_segments(next_bar.meter, next_bar)[0])
    best = max(candidates, key=lambda c: _fit(c.symbol, weights) + c.prior)
    return best.symbol


def _allowed(
    segment: Segment, constraints: Sequence[ChordConstraint]
) -> tuple[ChordSymbol, ...] | None:
    """The chords ``constraints`` allow at the start of ``segment``; None: any."""
    for constraint in constraints:
        if constraint.covers(segment[0]):
            return constraint.chords
    return None


def _options(
    allowed: tuple[ChordSymbol, ...] | None, candidates: Sequence[_Candidate], key: Key
) -> Sequence[_Candidate]:
    """The candidates for a segment: all, or the allowed chords (with their prior where
    they are among the key's candidates)."""
    if allowed is None:
        return candidates
    known = {c.symbol: c for c in candidates}
    return [
        known.get(chord) or _Candidate(roman_numeral(chord, key), chord, 0.0) for chord in allowed
    ]


def harmonize_bar(
    bar: Bar,
    key: Key,
    *,
    previous: ChordSymbol | None,
    style: Style,
    next_bar: Bar | None = None,
    is_final: bool = False,
    constraints: Sequence[ChordConstraint] = (),
) -> list[ChordSpan]:
    """Chords for one bar: one or two ``ChordSpan``s that cover the bar exactly (onsets
    in ticks from the bar start), chosen from the key's diatonic chords.

    ``previous`` is the chord sounding before the bar (None at the start of a piece);
    ``next_bar``, when known, lets the last chord lead into the next bar's harmony;
    ``is_final`` makes the bar cadence on the tonic. An empty bar or a bar of rests
    prolongs ``previous`` (the tonic when there is none, or in the final bar). Chromatic
    or atonal melodies still get the best-fitting diatonic chord. ``constraints`` (on
    whole chord segments, see ``chord_segments``) limit the chords of the segments they
    cover; the bar splits where its segments are constrained apart. Deterministic."""
    candidates = _candidates(key, style)
    tonic = candidates[0].symbol
    whole_bar: Segment = (0, bar.meter.bar_ticks)
    segments = chord_segments(bar.meter, bar)
    allowed = [_allowed(segment, constraints) for segment in segments]
    if bar.is_rest:
        held = tonic if is_final or previous is None else previous
        if not any(allowed):
            return [_span(whole_bar, held, key)]
        spans = [
            _span(segment, chords[0] if chords else held, key)
            for segment, chords in zip(segments, allowed, strict=True)
        ]
        return _merged(spans, key)

    lookahead = _lookahead_target(next_bar, key, candidates)

    def ending_bonus(chord: ChordSymbol) -> float:
        """Score for the bar's last chord: the cadence, or leading into the next bar."""
        if is_final:
            return _FINAL_TONIC_BONUS if chord == tonic else 0.0
        if lookahead is not None:
            return _LOOKAHEAD_WEIGHT * _transition(chord, lookahead, key)
        return 0.0

    # One chord for the whole bar: one that every constrained segment allows.
    single_options: Sequence[_Candidate] = candidates
    constrained = [chords for chords in allowed if chords is not None]
    if constrained:
        single_options = [
            c
            for c in _options(constrained[0], candidates, key)
            if all(c.symbol in chords for chords in constrained)
        ]
    bar_weights = _weighted_pitch_classes(bar, whole_bar)
    single_score, single = -float("inf"), None
    for candidate in single_options:  # strict > keeps the earlier candidate on a tie
        score = (
            _fit(candidate.symbol, bar_weights)
            + candidate.prior
            + _transition(previous, candidate.symbol, key)
            + ending_bonus(candidate.symbol)
        )
        if score > single_score:
            single_score, single = score, candidate.symbol

    if len(segments) == 1:
        return [_span(whole_bar, single if single is not None else tonic, key)]
    first_weights = _weighted_pitch_classes(bar, segments[0])
    second_weights = _weighted_pitch_classes(bar, segments[1])
    first_total, second_total = sum(first_weights.values()), sum(second_weights.values())
    if single is not None and (first_total == 0 or second_total == 0):
        return [_span(whole_bar, single, key)]  # half a bar of rest: nothing asks for a change

    best_split: tuple[float, ChordSymbol, ChordSymbol] | None = None
    for first in _options(allowed[0], candidates, key):
        first_fit = _fit(first.symbol, first_weights)
        opening = _transition(previous, first.symbol, key)
        if is_final and _is_dominant(first.symbol, key):
            opening += 2 * _FINAL_DOMINANT_BONUS  # halved below with the transitions
        for second in _options(allowed[1], candidates, key):
            if second.symbol == first.symbol:
                continue
            fit = (first_fit * first_total + _fit(second.symbol, second_weights) * second_total) / (
                first_total + second_total
            )
            score = (
                fit
                + (first.prior + second.prior) / 2
                + (opening + _transition(first.symbol, second.symbol, key)) / 2
                + ending_bonus(second.symbol)
            )
            if best_split is None or score > best_split[0]:
                best_split = (score, first.symbol, second.symbol)
    if best_split is None or (
        single is not None and best_split[0] <= single_score + _SPLIT_MARGIN[style]
    ):
        return [_span(whole_bar, single if single is not None else tonic, key)]
    _, first_chord, second_chord = best_split
    return [_span(segments[0], first_chord, key), _span(segments[1], second_chord, key)]


def _merged(spans: list[ChordSpan], key: Key) -> list[ChordSpan]:
    """Neighbouring spans of the same chord joined into one."""
    out: list[ChordSpan] = []
    for span in spans:
        if out and out[-1].symbol == span.symbol:
            out[-1] = _span((out[-1].onset, out[-1].duration + span.duration), span.symbol, key)
        else:
            out.append(span)
    return out


def _span(segment: Segment, chord: ChordSymbol, key: Key) -> ChordSpan:
    return ChordSpan(segment[0], segment[1], chord, roman_numeral(chord, key))


def harmonize_bars(bars: Sequence[Bar], key: Key, *, style: Style) -> list[list[ChordSpan]]:
    """Chords for a whole melody, bar by bar: each bar sees the chord before it and the bar
    after it, and the last bar cadences. One list of spans per bar."""
    result: list[list[ChordSpan]] = []
    previous: ChordSymbol | None = None
    for index, bar in enumerate(bars):
        spans = harmonize_bar(
            bar,
            key,
            previous=previous,
            style=style,
            next_bar=bars[index + 1] if index + 1 < len(bars) else None,
            is_final=index == len(bars) - 1,
        )
        result.append(spans)
        previous = spans[-1].symbol
    return result
