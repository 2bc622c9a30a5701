"""A piece's tempo map: the quarter-note tempo from each tick on, and where each tick falls in
time.

A piece without a form plan plays at its spec's tempo throughout (``TempoMap.constant``). A
piece with a plan ends the way a player ends it (``ending_tempo_map``): a ritardando over its
last ``RITARDANDO_BARS`` bars (one in a piece of two or three bars, none in a one-bar
piece), the tempo falling beat by beat to ``RITARDANDO_END`` of the
tempo on the last beat, and the final chord held (``cantus.render.arrangement`` lengthens
it; the last tempo lasts past the final bar); it shapes each phrase the way a player does
(``phrase_rubato``: a little ahead in its middle, easing into its cadence and out of the one
before, in the styles and energies that allow it); and it breathes at the cadence that ends
each section another follows (``broadened_at_cadences``: its last beat
``CADENCE_BROADENING`` of the tempo, back in tempo on the next downbeat). A therapy
session's piece (issue #17) may ramp its tempo beat by beat towards the next piece's
(``PieceSpec.tempo_end_bpm``) and skip the ritardando (``no_ritardando``) when it flows
into the next piece; it has no rubato, since its station planned its time. The same map writes
piece.mid's set_tempo events (``midi_tempo_changes``), times the synthesiser's note events
(``SegmentRenderer``) and the segments' ``start_seconds``/``duration_seconds``, so MIDI,
audio and events agree.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from cantus.harmony.rules import pulse_ticks
from cantus.music.notes import TICKS_PER_QUARTER, Meter

RITARDANDO_BARS = 2
"""Bars the closing ritardando spans (one in a piece of two or three bars)."""
RITARDANDO_END = 0.7
"""Tempo of the last beat as a fraction of the piece's tempo."""
CADENCE_BROADENING = 0.9
"""Tempo of the last beat before a section another follows, as a fraction of the tempo
there (``broadened_at_cadences``); the beat before it moves half as far."""


@dataclass(frozen=True)
class TempoMap:
    """Tempo changes as (tick, quarter-note bpm), the first at tick 0, ticks increasing; the
    tempo holds from each change to the next (and after the last)."""

    changes: tuple[tuple[int, float], ...]
    _ticks: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """The tick and the time in seconds of each change."""

    def __post_init__(self) -> None:
        if not self.changes or self.changes[0][0] != 0:
            raise ValueError("a tempo map starts with a tempo at tick 0")
        ticks = [tick for tick, _ in self.changes]
        if any(b <= a for a, b in itertools.pairwise(ticks)):
            raise ValueError(f"tempo change ticks must increase: {ticks}")
        if any(not bpm > 0 for _, bpm in self.changes):
            raise ValueError("tempos must be > 0 beats per minute")
        # seconds at each change, for seconds_at()
        starts = [0.0]
        for (tick, bpm), (next_tick, _) in itertools.pairwise(self.changes):
            starts.append(starts[-1] + (next_tick - tick) * 60.0 / (bpm * TICKS_PER_QUARTER))
        object.__setattr__(self, "_starts", tuple(starts))  # frozen: set once, here
        object.__setattr__(self, "_ticks", tuple(ticks))

    @classmethod
    def constant(cls, tempo_bpm: float) -> TempoMap:
        return cls(((0, float(tempo_bpm)),))

    @property
    def initial_bpm(self) -> float:
        return self.changes[0][1]

    @property
    def is_constant(self) -> bool:
        return len(self.changes) == 1

    def bpm_at(self, tick: int) -> float:
        """The tempo sounding at ``tick``."""
        return self.changes[max(0, bisect.bisect_right(self._ticks, tick) - 1)][1]

    def seconds_at(self, tick: float) -> float:
        """Seconds from tick 0 to ``tick``."""
        index = max(0, bisect.bisect_right(self._ticks, tick) - 1)
        change_tick, bpm = self.changes[index]
        start = self._starts[index]
        return start + (tick - change_tick) * 60.0 / (bpm * TICKS_PER_QUARTER)

    def from_tick(self, start: int) -> TempoMap:
        """The map as heard from ``start`` on, ticks counted from there (a segment's)."""
        if start <= 0:
            return self
        later = tuple((tick - start, bpm) for tick, bpm in self.changes if tick > start)
        return TempoMap(((0, self.bpm_at(start)), *later))

    def samples_at(self, tick: float, sample_rate: int) -> int:
        """Sample index (rounded to nearest) of ``tick``."""
        return round(self.seconds_at(tick) * sample_rate)


def ritardando_bars(bars: int) -> int:
    """Bars the closing ritardando of a piece of ``bars`` bars spans."""
    return RITARDANDO_BARS if bars >= 4 else 1


def ending_tempo_map(
    tempo_bpm: float,
    meter: Meter,
    bars: int,
    *,
    tempo_end_bpm: float = 0.0,
    ritardando: bool = True,
) -> TempoMap:
    """The tempo map of a piece of ``bars`` bars that closes with a ritardando: constant
    ``tempo_bpm``, then over the last ``RITARDANDO_BARS`` bars (one when the piece has
    fewer than four) one step down per beat (``pulse_ticks``), linear in tempo, the last
    beat at ``RITARDANDO_END`` × the tempo before it.

    With ``tempo_end_bpm`` > 0 (a therapy session's piece) the tempo ramps from
    ``tempo_bpm`` to ``tempo_end_bpm`` over the beats before the ritardando, one equal step
    per beat (``ramp_tempos``), so the change is beat-aligned and never a jump; with
    ``ritardando`` false the piece keeps its (ramped) tempo to the end and flows into the
    next."""
    rit_bars = ritardando_bars(bars) if ritardando else 0
    if bars - rit_bars <= 0:  # a one-bar piece keeps its tempo: the map starts at the piece's tempo
        return TempoMap.constant(tempo_bpm)
    pulse = pulse_ticks(meter)
    start = (bars - rit_bars) * meter.bar_ticks
    changes: list[tuple[int, float]] = [(0, float(tempo_bpm))]
    held = float(tempo_bpm)
    if tempo_end_bpm > 0 and abs(tempo_end_bpm - tempo_bpm) > 1e-6:
        ramp_ticks = list(range(0, start, pulse))
        tempos = ramp_tempos(tempo_bpm, tempo_end_bpm, len(ramp_ticks))
        changes = [(tick, bpm) for tick, bpm in zip(ramp_ticks, tempos, strict=True)]
        held = tempos[-1]
    beat_starts = list(range(start, bars * meter.bar_ticks, pulse))
    steps = len(beat_starts)
    for step, tick in enumerate(beat_starts):
        fraction = 1.0 - (1.0 - RITARDANDO_END) * (step + 1) / steps
        changes.append((tick, round(held * fraction, 3)))
    return TempoMap(tuple(changes))


def ramp_tempos(start_bpm: float, end_bpm: float, beats: int) -> list[float]:
    """The tempo of each of ``beats`` beats going linearly from ``start_bpm`` (the first
    beat) to ``end_bpm`` (the last): every step is ``(end - start) / (beats - 1)``."""
    if beats <= 1:
        return [float(start_bpm)]
    return [
        round(start_bpm + (end_bpm - start_bpm) * beat / (beats - 1), 3) for beat in range(beats)
    ]


def section_tempo_map(
    base: TempoMap,
    tempo_bpm: float,
    meter: Meter,
    bars: int,
    section_tempos: Sequence[tuple[int, int, float]],
) -> TempoMap:
    """``base`` (the piece's map at ``tempo_bpm``) with sections at their own tempo (an edit,
    issue #18): ``section_tempos`` holds (first bar, bar count, quarter-note bpm).

    Each bar has a target, the section's tempo as a factor of the piece's (1 outside such
    sections); where the target changes between a bar and the next, that bar's beats
    (``pulse_ticks``) move from its target to the next one in equal steps, reaching it on
    the next downbeat, as a session piece's ``tempo_end_bpm`` ramp does: the bar before a
    slower section slows into it, its last bar speeds back up, and every change is on a
    beat. The base map's own changes (a closing ritardando) are scaled by the factor, so a
    last section keeps its ritardando. Bars after the sections keep the base tempo: their
    audio is the same, only later or earlier."""
    factors = [1.0] * bars
    for first, count, bpm in section_tempos:
        for bar in range(max(0, first), min(bars, first + count)):
            factors[bar] = bpm / tempo_bpm
    if all(factor == 1.0 for factor in factors):
        return base
    pulse = pulse_ticks(meter)
    beats = list(range(0, meter.bar_ticks, pulse))
    ticks = sorted(
        {tick for tick, _ in base.changes}
        | {bar * meter.bar_ticks + beat for bar in range(bars) for beat in beats}
    )
    changes: list[tuple[int, float]] = []
    for tick in ticks:
        bar = min(tick // meter.bar_ticks, bars - 1)
        factor = factors[bar]
        following = factors[bar + 1] if bar + 1 < bars else factor
        if following != factor:
            position = (tick - bar * meter.bar_ticks) / meter.bar_ticks
            factor += (following - factor) * position
        bpm = round(base.bpm_at(tick) * factor, 3)
        if not changes or abs(changes[-1][1] - bpm) > 1e-9:
            changes.append((tick, bpm))
    return TempoMap(tuple(changes))


def broadened_at_cadences(
    base: TempoMap, meter: Meter, section_ends: Sequence[int], bars: int
) -> TempoMap:
    """``base`` with the player's breath at the end of each section another follows: the
    last beat (``pulse_ticks``) before bar ``end`` of ``section_ends`` at
    ``CADENCE_BROADENING`` x the tempo there, the beat before it (in a bar of three or
    more beats) half-way, and the next section back in tempo on its downbeat. Ends at 0 or
    at ``bars`` (the piece's own end: its ritardando) are left alone; the base map's changes
    (a section's own tempo) are scaled, not replaced."""
    pulse = pulse_ticks(meter)
    beats = max(1, meter.bar_ticks // pulse)
    spans: list[tuple[int, int, float]] = []  # (first tick, end tick, factor)
    for end in sorted(set(section_ends)):
        if not 0 < end < bars:
            continue
        downbeat = end * meter.bar_ticks
        spans.append((downbeat - pulse, downbeat, CADENCE_BROADENING))
        if beats >= 3:
            spans.append((downbeat - 2 * pulse, downbeat - pulse, (1.0 + CADENCE_BROADENING) / 2))
    if not spans:
        return base
    ticks = sorted({tick for tick, _ in base.changes} | {t for a, b, _ in spans for t in (a, b)})
    changes: list[tuple[int, float]] = []
    for tick in ticks:
        factor = next((f for a, b, f in spans if a <= tick < b), 1.0)
        bpm = round(base.bpm_at(tick) * factor, 3)
        if not changes or abs(changes[-1][1] - bpm) > 1e-9:
            changes.append((tick, bpm))
    return TempoMap(tuple(changes))


RUBATO_DEPTH: dict[str, float] = {"chorale": 0.06, "folk": 0.04, "celtic": 0.0}
"""Phrase rubato by style (``phrase_rubato``): the tempo at a phrase's edges is 2/3 of this
below the mean, its middle 1/3 above. A chorale's phrases breathe most (sung, with a pause
at each cadence); a dance tune (celtic) keeps the dancers' pulse."""
RUBATO_ENERGY = {"low": 1.0, "mid": 0.6, "high": 0.3}
"""How much of the style's depth a piece of each energy takes: calm music is freer in
time, busy music keeps its drive."""


def phrase_rubato(
    base: TempoMap,
    meter: Meter,
    phrases: Sequence[tuple[int, int]],
    depth: float,
    *,
    before_bar: int | None = None,
) -> TempoMap:
    """``base`` shaped phrase by phrase, a beat (``pulse_ticks``) at a time: over a phrase
    of ``n`` beats the tempo is ``1 + depth * (arch - 2/3)`` times the base tempo there,
    where ``arch = 1 - (2x - 1)^2`` at the middle ``x`` of each beat (0 to 1 over the
    phrase). The tempo rises towards the middle of the phrase and eases into its end, and
    by the same curve back out at the next phrase's start (Todd's phrase arch, one step a
    beat); a phrase lasts about as long as in strict time (the arch's mean is 2/3).
    ``phrases`` are (first bar, bars); from ``before_bar`` on (the closing ritardando) the
    base map plays as it is. The base map's own changes (a section's tempo set by an edit)
    are scaled, not replaced; a depth of 0 returns ``base``."""
    if depth <= 0 or not phrases:
        return base
    pulse = pulse_ticks(meter)
    factors: dict[int, float] = {}
    for first_bar, bars in phrases:
        start, end = first_bar * meter.bar_ticks, (first_bar + bars) * meter.bar_ticks
        beat_ticks = list(range(start, end, pulse))
        for number, tick in enumerate(beat_ticks):
            if before_bar is not None and tick >= before_bar * meter.bar_ticks:
                break
            x = (number + 0.5) / len(beat_ticks)
            factors[tick] = 1.0 + depth * (1.0 - (2.0 * x - 1.0) ** 2 - 2.0 / 3.0)
    ticks = sorted({tick for tick, _ in base.changes} | set(factors))
    changes: list[tuple[int, float]] = []
    for tick in ticks:
        factor = factors.get(tick - tick % pulse, 1.0)
        bpm = round(base.bpm_at(tick) * factor, 3)
        if not changes or abs(changes[-1][1] - bpm) > 1e-9:
            changes.append((tick, bpm))
    return TempoMap(tuple(changes))


def largest_step_bpm(tempo_map: TempoMap) -> float:
    """The largest tempo change between two successive changes of the map, BPM."""
    tempos = [bpm for _, bpm in tempo_map.changes]
    return max((abs(b - a) for a, b in itertools.pairwise(tempos)), default=0.0)


def midi_tempo_changes(tempo_map: TempoMap) -> Sequence[tuple[int, float]]:
    """The changes after the initial tempo, as (tick, bpm) for a MIDI conductor track."""
    return tempo_map.changes[1:]
