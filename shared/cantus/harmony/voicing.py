"""Chord voicings (the accompaniment's sustained notes) and bass lines for one bar of
chord spans.

Folk and celtic voicings are four notes in a piano/guitar register, each chord placed
nearest to the previous one: common tones stay, the other voices move by the smallest
steps. Given the bar's melody, a voicing sits below it: its top note under the lowest
melody note sounding over the chord (issue #15: the tune must stay the top voice), going
down to ``ACCOMPANIMENT_FLOOR`` and to three notes where the tune dips low.

Chorales get three voices (alto, tenor, bass) under the melody, moving smoothly
and avoiding parallel fifths and octaves between chords. Bass lines put the chord's bass
note (the slash bass, else the root) in the bass register; more energy adds fifths and
chromatic approach notes on weak beats.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

from cantus.harmony.rules import ChordSpan, is_compound_meter, pulse_ticks
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Meter, Note
from cantus.music.styles import Energy, Style

VOICING_RANGE = (48, 72)
"""MIDI pitches of folk and celtic accompaniment chord notes (C3..C5), inclusive."""
CHORALE_VOICE_RANGES = ((40, 60), (48, 67), (55, 72))
"""MIDI pitch ranges (inclusive) of the chorale's bass, tenor and alto voices, bottom up."""
ACCOMPANIMENT_FLOOR = 43
"""Lowest chord note (G2) when a low melody pushes the voicing under ``VOICING_RANGE``."""
BASS_RANGE = (33, 52)
"""MIDI pitches of the bass line (A1..E3), inclusive: a bass register, under the chords."""

CHORD_VELOCITY = 70
CHORALE_VELOCITY = 62
BASS_VELOCITY_STRONG, BASS_VELOCITY_WEAK = 84, 74

_VOICING_CENTRE = 62
"""Where a voicing's mean pitch likes to sit (D4): keeps a piece from drifting to an edge."""
_BASS_CENTRE = 43
"""Where the bass line likes to sit (G2)."""
_CEILING_GAP = 3
"""Semitones under the melody the top chord note likes to keep: closer, it rubs."""
_PARALLEL_PENALTY = 20.0
"""Cost of a parallel fifth or octave between two chorale voices: worth a long leap."""
_SOPRANO_PARALLEL_PENALTY = 60.0
"""The same against the tune, the most exposed voice: worth a leap in every voice."""


# --- accompaniment voicings ---------------------------------------------------------------


def _pitches_of(pitch_class: int, low: int, high: int) -> list[int]:
    return [pitch for pitch in range(low, high + 1) if pitch % 12 == pitch_class]


def _movement(voicing: tuple[int, ...], previous: tuple[int, ...]) -> float:
    """Semitones the voices move: voice by voice when both have as many voices, else the
    distance from each note to its nearest neighbour in the other chord, both ways."""
    if len(voicing) == len(previous):
        return float(sum(abs(a - b) for a, b in zip(voicing, previous, strict=True)))
    return float(
        sum(min(abs(a - b) for b in previous) for a in voicing)
        + sum(min(abs(a - b) for a in voicing) for b in previous)
    )


def _close_candidates(
    symbol: ChordSymbol, low: int = VOICING_RANGE[0], high: int = VOICING_RANGE[1]
) -> list[tuple[int, ...]]:
    """Four-note voicings of ``symbol`` inside ``low..high`` (default ``VOICING_RANGE``),
    sorted low to high: every chord tone at least once (a triad doubles its root or fifth,
    never the third, which would sound too strong), distinct pitches, at most an octave
    and a fifth wide."""
    return list(_close_candidates_of(tuple(symbol.tones), low, high))


def _three_note_candidates(symbol: ChordSymbol, low: int, high: int) -> list[tuple[int, ...]]:
    """Three-note voicings of ``symbol`` inside ``low..high`` for a melody too low for four
    notes under it: a triad's tones once each, a seventh chord without its fifth."""
    tones = tuple(symbol.tones)
    if len(tones) > 3:
        tones = (tones[0], tones[1], *tones[3:4])
    return list(_close_candidates_of(tones[:3], low, high, double=False))


@functools.lru_cache(maxsize=4096)
def _close_candidates_of(
    tones: tuple[int, ...], low: int, high: int, *, double: bool = True
) -> tuple[tuple[int, ...], ...]:
    doublings = [(*tones, tones[0]), (*tones, tones[2])] if double and len(tones) == 3 else [tones]
    voicings = set()
    for doubled in doublings:
        for choice in itertools.product(*(_pitches_of(pc, low, high) for pc in doubled)):
            voicing = tuple(sorted(choice))
            if len(set(voicing)) == len(voicing) and voicing[-1] - voicing[0] <= 19:
                voicings.add(voicing)
    return tuple(sorted(voicings))


def _close_cost(
    voicing: tuple[int, ...],
    symbol: ChordSymbol,
    previous: tuple[int, ...] | None,
    ceiling: int | None = None,
) -> float:
    mean = sum(voicing) / len(voicing)
    # Under a melody the voicing centres a sixth or so below its lowest note, not higher
    # than the usual centre: close enough to sound as one texture, far enough not to rub.
    centre = _VOICING_CENTRE if ceiling is None else min(_VOICING_CENTRE, ceiling - 8)
    cost = 0.3 * abs(mean - centre)
    if ceiling is not None:
        cost += 1.5 * max(0, voicing[-1] - (ceiling - _CEILING_GAP))
    if [p % 12 for p in voicing].count(symbol.root) < 2 and len(symbol.tones) == 3:
        cost += 0.5  # a doubled root is the steadier sound; the fifth only when it is closer
    if previous:
        cost += _movement(voicing, previous)
    else:
        cost += 2.0 * abs(mean - centre)
    cost += 0.3 * max(0, voicing[-1] - voicing[0] - 12)  # open voicings only to move less
    steps = [b - a for a, b in itertools.pairwise(voicing)]
    cost += 3.0 * sum(1 for step in steps if step == 1)  # a semitone rubs on guitar and piano
    if voicing[0] < 53 and steps[0] < 5:
        cost += 2.0  # thirds low down sound muddy
    return cost


def _chorale_upper_tones(symbol: ChordSymbol) -> list[tuple[int, int, float]]:
    """Pitch-class pairs for tenor and alto above the chorale bass, with their cost: the
    third and seventh (or sixth) first, then the root, then the fifth, leaving out the
    bass's own pitch class; over a root bass also third and doubled root (the fifth left
    out, as chorales often do), at a small cost."""
    tones = symbol.tones
    priority = [index for index in (1, 3, 0, 2) if index < len(tones)]
    upper = [tones[i] for i in priority if tones[i] != symbol.bass_pitch_class]
    pairs = [(upper[0], upper[1], 0.0)]
    if symbol.bass_pitch_class == symbol.root and upper[1] == tones[2]:
        pairs.append((upper[0], symbol.root, 1.5))
    # Doubling the bass note: poorer, but a way out of parallels with the tune.
    pairs.append((upper[0], symbol.bass_pitch_class, 3.0))
    return pairs


def _chorale_candidates(symbol: ChordSymbol) -> list[tuple[tuple[int, int, int], float]]:
    """(bass, tenor, alto) voicings of ``symbol`` in ``CHORALE_VOICE_RANGES`` with their
    doubling cost: bass on the chord's bass note, two pitch classes above, at most an
    octave between alto and tenor and a twelfth between tenor and bass."""
    (bass_low, bass_high), (tenor_low, tenor_high), (alto_low, alto_high) = CHORALE_VOICE_RANGES
    candidates = []
    for first, second, doubling_cost in _chorale_upper_tones(symbol):
        for tenor_pc, alto_pc in ((first, second), (second, first)):
            for bass, tenor, alto in itertools.product(
                _pitches_of(symbol.bass_pitch_class, bass_low, bass_high),
                _pitches_of(tenor_pc, tenor_low, tenor_high),
                _pitches_of(alto_pc, alto_low, alto_high),
            ):
                if bass < tenor < alto and alto - tenor <= 12 and tenor - bass <= 19:
                    candidates.append(((bass, tenor, alto), doubling_cost))
    return sorted(candidates)


def _parallels(voicing: Sequence[int], previous: Sequence[int]) -> int:
    """How many voice pairs move in parallel fifths or octaves (unisons) from ``previous``."""
    count = 0
    for low, high in itertools.combinations(range(len(voicing)), 2):
        before = (previous[high] - previous[low]) % 12
        after = (voicing[high] - voicing[low]) % 12
        moved = voicing[low] != previous[low] and voicing[high] != previous[high]
        if moved and before == after and after in (0, 7):
            count += 1
    return count


def _chorale_cost(voicing: tuple[int, int, int], previous: tuple[int, ...] | None) -> float:
    centres = (48, 57, 64)  # bass C3, tenor A3, alto E4: comfortable singing pitches
    # The alto, just under the melody, is held nearest its centre; the bass may roam.
    cost = sum(
        weight * abs(p - c) for p, c, weight in zip(voicing, centres, (0.2, 0.3, 0.5), strict=True)
    )
    if previous and len(previous) == 3:
        bass_leap = abs(voicing[0] - previous[0])
        inner = sum(abs(a - b) for a, b in zip(voicing[1:], previous[1:], strict=True))
        cost += 0.5 * bass_leap + inner  # a bass may leap; inner voices should step
        cost += _PARALLEL_PENALTY * _parallels(voicing, previous)
    elif previous:
        cost += _movement(voicing, previous)
    else:
        cost *= 5.0
    return cost


def _soprano_cost(
    voicing: tuple[int, int, int],
    soprano: int | None,
    previous: tuple[int, ...] | None,
    previous_sopranos: Sequence[int],
) -> float:
    """What the melody (the chorale's soprano) adds to a voicing's cost: the alto must stay
    below it and within an octave, and no voice may move in parallel fifths or octaves
    with it."""
    if soprano is None:
        return 0.0
    cost = 0.0
    if voicing[2] >= soprano:
        cost += 4 * _PARALLEL_PENALTY  # the alto crossing the tune
    cost += 0.5 * max(0, soprano - voicing[2] - 12)
    if previous and len(previous) == 3:
        for previous_soprano in set(previous_sopranos):
            cost += _SOPRANO_PARALLEL_PENALTY * (
                _parallels((*voicing, soprano), (*previous, previous_soprano))
                - _parallels(voicing, previous)
            )
    return cost


def tune_before(melody: Bar | None, onset: int) -> tuple[int, ...]:
    """The tune's pitches that the chord starting at ``onset`` ticks follows: the note
    sounding just before it and the note on the beat before it (a passing note between
    them must not hide parallels from one beat to the next). ``onset`` may be the bar's
    length: what the next bar's first chord follows."""
    if melody is None or onset <= 0:
        return ()
    beat_before = max(0, onset - pulse_ticks(melody.meter))
    pitches = (_sounding_pitch(melody, onset - 1), _sounding_pitch(melody, beat_before))
    return tuple(p for p in pitches if p is not None)


def melody_ceiling(melody: Bar | None, onset: int, end: int) -> int | None:
    """The lowest melody pitch sounding between ``onset`` and ``end`` ticks of the bar: the
    pitch a chord held there must stay under. Over rests, the bar's lowest note (the tune's
    register nearby); None without a melody or in a bar of rests."""
    if melody is None or not melody.notes:
        return None
    sounding = [n.pitch for n in melody.notes if n.onset < end and n.end > onset]
    return min(sounding or [n.pitch for n in melody.notes])


def _candidates_under(symbol: ChordSymbol, ceiling: int | None) -> list[tuple[int, ...]]:
    """Voicings of ``symbol`` whose every note is below ``ceiling``: four notes in
    ``VOICING_RANGE``, else four reaching down to ``ACCOMPANIMENT_FLOOR``, else three; if
    the tune sits lower still, the lowest four-note voicings (the arrangement drops what
    still reaches the tune)."""
    if ceiling is None:
        return _close_candidates(symbol)
    for candidates in (
        _close_candidates(symbol),
        _close_candidates(symbol, ACCOMPANIMENT_FLOOR, VOICING_RANGE[1]),
        _three_note_candidates(symbol, ACCOMPANIMENT_FLOOR, VOICING_RANGE[1]),
    ):
        under = [v for v in candidates if v[-1] < ceiling]
        if under:
            return under
    lowest = _close_candidates(symbol, ACCOMPANIMENT_FLOOR, VOICING_RANGE[1])
    top = min(v[-1] for v in lowest)
    return [v for v in lowest if v[-1] == top]


def _sounding_pitch(melody: Bar | None, onset: int) -> int | None:
    if melody is None:
        return None
    return next((n.pitch for n in melody.notes if n.onset <= onset < n.end), None)


def voice_chords(
    spans: Sequence[ChordSpan],
    *,
    style: Style,
    previous_voicing: tuple[int, ...] | None,
    melody: Bar | None = None,
    melody_before: Sequence[int] = (),
) -> list[Note]:
    """Each span's chord as notes held for the span (onsets in ticks from the bar start),
    sorted. Folk and celtic: four notes in ``VOICING_RANGE`` (48..72), under ``melody``
    when given (``melody_ceiling``; lower, or three notes, where it dips). Chorale: bass,
    tenor and alto in ``CHORALE_VOICE_RANGES`` (40..72), under ``melody`` (the bar's
    tune, the soprano) when given: the alto stays below it and no voice moves in parallel
    fifths or octaves with it (``melody_before``: ``tune_before`` of the bar before, at
    its end). ``previous_voicing`` is the sorted MIDI pitches of the
    chord sounding before the bar (None at the start); each voicing moves from the one
    before by the fewest semitones. Deterministic."""
    chorale = style is Style.CHORALE
    velocity = CHORALE_VELOCITY if chorale else CHORD_VELOCITY
    previous = tuple(sorted(previous_voicing)) if previous_voicing else None
    notes: list[Note] = []
    for span in spans:
        voicing: tuple[int, ...]
        if chorale:
            soprano = _sounding_pitch(melody, span.onset)
            # The tune just before the chord change, against the voicing it leaves.
            previous_sopranos = tune_before(melody, span.onset) if span.onset else melody_before
            voicing, _ = min(
                _chorale_candidates(span.symbol),
                key=lambda c: (
                    c[1]
                    + _chorale_cost(c[0], previous)
                    + _soprano_cost(c[0], soprano, previous, previous_sopranos),
                    c,
                ),
            )
        else:
            ceiling = melody_ceiling(melody, span.onset, span.onset + span.duration)
            voicing = min(
                _candidates_under(span.symbol, ceiling),
                key=lambda v: (_close_cost(v, span.symbol, previous, ceiling), v),
            )
        notes.extend(Note(span.onset, pitch, span.duration, velocity) for pitch in voicing)
        previous = voicing
    return sorted(notes)


# --- bass line ----------------------------------------------------------------------------


def _nearest_bass_pitch(pitch_class: int, reference: int) -> int:
    """The pitch of ``pitch_class`` in ``BASS_RANGE`` nearest ``reference``, pulled a
    little towards the middle of the range."""
    options = _pitches_of(pitch_class, *BASS_RANGE)
    return min(options, key=lambda p: (abs(p - reference) + 0.3 * abs(p - _BASS_CENTRE), p))


def _fifth_above_or_below(symbol: ChordSymbol, bass: int) -> int:
    """The chord's fifth (its third stacked tone) nearest ``bass`` in ``BASS_RANGE``, above
    if it fits: the usual alternate bass note."""
    fifth_pc = symbol.tones[2]
    above = bass + (fifth_pc - bass) % 12
    return above if above <= BASS_RANGE[1] else above - 12


def _approach(current: int, target: int) -> int:
    """A chromatic approach note a semitone from ``target``: on the side ``current`` comes
    from, unless that is ``current`` itself (then from the other side), kept inside
    ``BASS_RANGE``."""
    low, high = BASS_RANGE
    pitch = target - 1 if target > current else target + 1
    if pitch == current or not low <= pitch <= high:
        pitch = 2 * target - pitch
    return min(max(pitch, low), high)


def bass_line(
    spans: Sequence[ChordSpan], meter: Meter, *, style: Style, energy: Energy
) -> list[Note]:
    """A monophonic bass line for one bar of spans, onsets in ticks from the bar start,
    pitches in ``BASS_RANGE`` (36..55), every note inside its span.

    Low energy (and every chorale): one note per chord, the slash bass or root. Mid: the
    root, then the fifth on the middle beat of spans two beats or longer. High: a note
    on every beat (root, fifth, ...), a chromatic approach to the next chord's bass on the
    last beat before a change within the bar; spans of a single beat split into
    root-fifth (long-short in compound meters)."""
    pulse = pulse_ticks(meter)
    notes: list[Note] = []
    reference = _BASS_CENTRE
    for index, span in enumerate(spans):
        symbol = span.symbol
        root = _nearest_bass_pitch(symbol.bass_pitch_class, reference)
        fifth = _fifth_above_or_below(symbol, root)
        reference = root
        end = span.onset + span.duration
        onsets_and_pitches: list[tuple[int, int]] = [(span.onset, root)]
        pulses = span.duration // pulse
        if style is Style.CHORALE or energy is Energy.LOW:
            pass
        elif energy is Energy.MID:
            if pulses >= 2:
                onsets_and_pitches.append((span.onset + -(-pulses // 2) * pulse, fifth))
        elif pulses >= 2:
            onsets_and_pitches += [
                (span.onset + i * pulse, fifth if i % 2 else root) for i in range(1, pulses)
            ]
            following = spans[index + 1] if index + 1 < len(spans) else None
            if following is not None and following.symbol.bass_pitch_class != (root % 12):
                target = _nearest_bass_pitch(following.symbol.bass_pitch_class, root)
                last_onset, _ = onsets_and_pitches[-1]
                onsets_and_pitches[-1] = (last_onset, _approach(root, target))
        else:
            # One beat: long-short in compound time (a dotted beat), two halves otherwise.
            split = span.duration * 2 // 3 if is_compound_meter(meter) else span.duration // 2
            if split > 0:
                onsets_and_pitches.append((span.onset + split, fifth))
        for position, (onset, pitch) in enumerate(onsets_and_pitches):
            next_onset = (
                onsets_and_pitches[position + 1][0]
                if position + 1 < len(onsets_and_pitches)
                else end
            )
            velocity = BASS_VELOCITY_STRONG if position == 0 else BASS_VELOCITY_WEAK
            notes.append(Note(onset, pitch, next_onset - onset, velocity))
    return notes
