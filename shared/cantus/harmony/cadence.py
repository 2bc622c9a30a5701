"""What a piece's form plan asks of its harmony, bar by bar.

``bar_harmony_plan(plan, index, bar, …)`` gives one bar's ``BarHarmonyPlan``: the key it is
harmonised in (its section's key area: the dominant, subdominant or relative of the home key,
or the home key), the energy control (its section's energy) and the chord constraints of the
cadence that ends a phrase on it (``FormPlan.cadence_at``):

* a **half cadence** ends the bar on the dominant of the section's key: its last chord
  segment (``cantus.harmony.rules.chord_segments``) takes ``V`` or ``V7``;
* an **authentic cadence** ends it on the tonic, approached from the dominant: the last
  segment takes ``I`` (``i`` in minor) and the segment before it ``V`` or ``V7`` — in the
  same bar where the bar has two chord segments and the melody lets the dominant sound in
  the first, otherwise the last segment of the bar before (which is harmonised with the
  cadence bar as its lookahead, so it is known);
* the **last bar of the piece** cadences on ``I`` of the home key whatever the plan says.

Consistency with the melody: the harmoniser (model or rules) chooses among the allowed
chords by the melody's fit; in minor the modal ``v`` takes the place of ``V`` and ``V7`` where
the melody sounds the subtonic and not the leading tone (a natural-minor tune). The
approach to an authentic cadence is dropped where the melody clashes with every dominant
chord (fits none of them: more weight on non-chord tones than on chord tones) — first moved
to the end of the bar before where it is not there already; the cadence chord itself always
stays. A piece without a plan gets no constraints, its spec's key and
energy: harmonised exactly as before plans existed.

Constraints become the harmony model's ``ALLOWED`` mask (``allowed_classes``: per beat, the
key-relative chord classes it may take) and the rule-based harmoniser's ``constraints``.
Cadential chords are in root position (``root_position``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cantus.harmony.features import beat_spans
from cantus.harmony.rules import ChordConstraint, Segment, chord_segments, segment_fit
from cantus.harmony.vocabulary import CHORD_CLASSES, NO_CHORD, chord_to_class
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.form import Cadence, FormPlan
from cantus.music.notes import Bar, Key, Meter, Mode
from cantus.music.styles import Energy

DOMINANT, TONIC = "dominant", "tonic"
"""Roles of a cadence constraint."""


@dataclass(frozen=True)
class BarHarmonyPlan:
    """How one bar is harmonised: in ``key`` with the ``energy`` control, its chord
    segments limited by ``constraints``; ``cadence`` is the cadence ending on the bar."""

    key: Key
    energy: Energy
    cadence: Cadence | None = None
    constraints: tuple[ChordConstraint, ...] = ()

    def constrained_beats(self, meter: Meter) -> list[bool]:
        """For each beat of a bar (``beat_spans``): whether a constraint covers it."""
        return [any(c.covers(onset) for c in self.constraints) for onset, _ in beat_spans(meter)]

    def allowed_classes(self, meter: Meter) -> np.ndarray | None:
        """[beats, CHORD_CLASSES] bool: the chord classes (relative to ``key``) each beat of
        the bar may take; None where nothing is constrained."""
        if not self.constraints:
            return None
        spans = beat_spans(meter)
        allowed = np.ones((len(spans), CHORD_CLASSES), dtype=bool)
        for beat, (onset, _) in enumerate(spans):
            for constraint in self.constraints:
                if constraint.covers(onset):
                    allowed[beat] = False
                    for chord in constraint.chords:
                        allowed[beat, chord_to_class(chord, self.key)] = True
        return allowed

    def violations(self, beats: Sequence[tuple[int, int]], meter: Meter) -> list[int]:
        """Beats (indices) whose chord class (relative to ``key``) a constraint forbids."""
        allowed = self.allowed_classes(meter)
        if allowed is None:
            return []
        return [
            beat
            for beat, (chord_class, _) in enumerate(beats)
            if not (0 <= chord_class < CHORD_CLASSES and allowed[beat, chord_class])
        ]

    def root_position(
        self, beats: Sequence[tuple[int, int]], meter: Meter
    ) -> list[tuple[int, int]]:
        """``beats`` with the constrained (cadential) ones in root position."""
        constrained = self.constrained_beats(meter)
        return [
            (chord_class, 0 if fixed else inversion)
            for (chord_class, inversion), fixed in zip(beats, constrained, strict=True)
        ]


def tonic_chord(key: Key) -> ChordSymbol:
    """``I`` (``i`` in minor)."""
    quality = ChordQuality.MINOR if key.mode is Mode.MINOR else ChordQuality.MAJOR
    return ChordSymbol(key.tonic, quality)


def dominant_chords(
    key: Key, bar: Bar | None = None, segment: Segment | None = None
) -> tuple[ChordSymbol, ...]:
    """The dominant chords a cadence may use in ``key``: ``V`` and ``V7`` (harmonic minor in
    minor keys); in minor, ``v`` alone where the melody of ``segment`` of ``bar`` sounds the
    subtonic and not the leading tone (``V``'s leading tone against the melody's subtonic is
    a semitone clash: an A-minor tune's G over E7, which the harmony model chose over Em
    while both were offered; session 31, ``docs/examples/README.md``)."""
    root = (key.tonic + 7) % 12
    if key.mode is Mode.MINOR and bar is not None and segment is not None:
        start, end = segment[0], segment[0] + segment[1]
        sounding = {n.pitch % 12 for n in bar.notes if n.onset < end and n.end > start}
        if (key.tonic + 10) % 12 in sounding and (key.tonic + 11) % 12 not in sounding:
            return (ChordSymbol(root, ChordQuality.MINOR),)
    return (ChordSymbol(root, ChordQuality.MAJOR), ChordSymbol(root, ChordQuality.DOMINANT_7))


def _clashes(bar: Bar, segment: Segment, chords: Sequence[ChordSymbol]) -> bool:
    """True where the melody in ``segment`` fits none of ``chords`` (silence fits all)."""
    fits = [segment_fit(chord, bar, segment) for chord in chords]
    return all(fit is not None and fit < 0 for fit in fits)


def _constraint(segment: Segment, chords: tuple[ChordSymbol, ...], role: str) -> ChordConstraint:
    return ChordConstraint(segment[0], segment[1], chords, role)


def cadence_key(plan: FormPlan, index: int) -> Key:
    """The key a cadence on bar ``index`` is in: the section's, the home key on the last bar."""
    if index == plan.total_bars - 1:
        return plan.home_key
    return plan.section_at(index).key


def bar_harmony_plan(
    plan: FormPlan | None,
    index: int,
    bar: Bar,
    *,
    home_key: Key,
    energy: Energy,
    next_bar: Bar | None = None,
) -> BarHarmonyPlan:
    """How bar ``index`` (0-based) of a piece is harmonised (see the module docstring).
    ``home_key`` and ``energy`` are the spec's, used as they are without a plan (or for a
    bar the plan does not reach). ``next_bar`` (the lookahead, when known) tells whether an
    authentic cadence in it takes its dominant in this bar."""
    if plan is None or not 0 <= index < plan.total_bars:
        return BarHarmonyPlan(home_key, energy)
    section = plan.section_at(index)
    is_last = index == plan.total_bars - 1
    key = cadence_key(plan, index)
    cadence = Cadence.AUTHENTIC if is_last else plan.cadence_at(index)
    segments = chord_segments(bar.meter, bar)
    constraints: list[ChordConstraint] = []
    if cadence is Cadence.HALF:
        last = segments[-1]
        constraints.append(_constraint(last, dominant_chords(key, bar, last), DOMINANT))
    elif cadence is Cadence.AUTHENTIC:
        if len(segments) > 1:
            approach = segments[-2]
            options = dominant_chords(key, bar, approach)
            if not _clashes(bar, approach, options):
                constraints.append(_constraint(approach, options, DOMINANT))
        constraints.append(_constraint(segments[-1], (tonic_chord(key),), TONIC))
    elif (
        index + 1 < plan.total_bars
        and _approached_from_bar_before(plan, index + 1, bar.meter, next_bar)
        and cadence_key(plan, index + 1) == key
    ):
        # The next bar cadences on its tonic with no room for its dominant (one chord, or
        # a first half the dominant does not fit): the dominant ends this bar.
        last = segments[-1]
        options = dominant_chords(key, bar, last)
        if not _clashes(bar, last, options):
            constraints.append(_constraint(last, options, DOMINANT))
    return BarHarmonyPlan(key, section.energy, cadence, tuple(constraints))


def _approached_from_bar_before(plan: FormPlan, index: int, meter: Meter, bar: Bar | None) -> bool:
    """True when bar ``index`` (``bar``, None if not known yet) ends an authentic cadence
    whose dominant falls in the bar before: it has a single chord segment, or its melody
    leaves no room for the dominant before the tonic (``bar_harmony_plan`` drops it)."""
    is_last = index == plan.total_bars - 1
    cadence = Cadence.AUTHENTIC if is_last else plan.cadence_at(index)
    if cadence is not Cadence.AUTHENTIC:
        return False
    segments = chord_segments(meter, bar)
    if len(segments) == 1:
        return True
    if bar is None:
        return False
    key = cadence_key(plan, index)
    return _clashes(bar, segments[-2], dominant_chords(key, bar, segments[-2]))


def rekey_beats(
    beats: Sequence[tuple[int, int]], from_key: Key, to_key: Key
) -> tuple[tuple[int, int], ...]:
    """(chord class, inversion) beats relative to ``from_key``'s tonic, made relative to
    ``to_key``'s (the same chords; ``NO_CHORD`` stays)."""
    shift = (from_key.tonic - to_key.tonic) % 12
    if shift == 0:
        return tuple((c, i) for c, i in beats)
    qualities = CHORD_CLASSES // 12
    out = []
    for chord_class, inversion in beats:
        if chord_class == NO_CHORD or not 0 <= chord_class < CHORD_CLASSES:
            out.append((chord_class, inversion))
            continue
        root, quality = divmod(chord_class, qualities)
        out.append((((root + shift) % 12) * qualities + quality, inversion))
    return tuple(out)
