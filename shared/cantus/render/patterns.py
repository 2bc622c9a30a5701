"""Accompaniment patterns: how one bar's chord voicing is played.

The harmony service sends each bar's chords as held notes (a ``voicing``: one chord per
span, onsets from the bar start). A pattern turns them into what an instrument plays,
keeping every note inside its chord's span and on the voicing's own pitches, so a voicing
placed under the melody stays under it:

* ``block`` — the chords as voiced; ``sustain`` the same, softer, common tones held from
  chord to chord (a pad or string bed);
* ``arpeggio`` — broken into a rising and falling figure, one note per eighth;
* ``alberti`` — low, high, middle, high on eighths (low, high, middle in compound beats);
* ``ballad`` — a slow ballad's piano: the chord's lowest note on each half bar (each
  dotted-quarter group in a compound meter), ringing under its upper notes rising on the
  eighths between (low, then the three above it in 4/4; low, middle, top in 6/8);
* ``strum`` — re-struck on every beat, a lighter upstroke on the top strings on the last
  third of a compound beat (a jig's strum) or the off-beat eighth of a simple one (a reel's);
  ``restruck`` the same without upstrokes (an organ's marcato), ``upstroked`` adds the
  upstrokes to a pattern already struck on beats (a strummed oom-pah);
* with ``pedalled``, a broken chord rings until the chord changes (a piano's sustain
  pedal);
* ``waltz`` — the chord on the beats after each group's first (oom-pah-pah in triple
  meters, a march's oom-pah in duple ones), the bass taking the strong beats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cantus.harmony.rules import is_compound_meter, pulse_ticks
from cantus.music.notes import Meter, Note
from cantus.render.palettes import ALBERTI, ARPEGGIO, BALLAD, BLOCK, STRUM, SUSTAIN, WALTZ

_SUSTAIN_SCALE = 0.85
UPSTROKE_NOTES = 2
"""Notes of a chord a strum's upstroke sounds (the highest)."""

_UPSTROKE_SCALE = 0.8
"""An upstroke against the downstroke it follows (a strum: 0.7 of the chord's velocity
after a 0.88 downstroke)."""


def _velocity(velocity: float) -> int:
    return max(1, min(127, round(velocity)))


def _chords(notes: Sequence[Note]) -> list[list[Note]]:
    """The voicing's chords, in time order, each sorted low to high."""
    return [
        sorted((n for n in notes if n.onset == onset), key=lambda n: n.pitch)
        for onset in sorted({n.onset for n in notes})
    ]


def _eighth(meter: Meter) -> int:
    pulse = pulse_ticks(meter)
    return pulse // 3 if is_compound_meter(meter) else pulse // 2


def block(notes: Sequence[Note], meter: Meter) -> list[Note]:
    return sorted(notes)


def tied(notes: Sequence[Note]) -> list[Note]:
    """``notes`` with common tones held: a note that the next chord sounds again at the
    same pitch, starting where it ends, is extended through it instead of struck again
    (a pad or a string bed sustains the tones two chords share; fewer voices to render)."""
    out: list[Note] = []
    open_at: dict[tuple[int, int], int] = {}  # (pitch, end tick) -> index in out
    for note in sorted(notes):
        index = open_at.pop((note.pitch, note.onset), None)
        if index is None:
            out.append(note)
            index = len(out) - 1
        else:
            held = out[index]
            out[index] = Note(held.onset, held.pitch, note.end - held.onset, held.velocity)
        open_at[(note.pitch, out[index].end)] = index
    return sorted(out)


def sustain(notes: Sequence[Note], meter: Meter) -> list[Note]:
    return tied(
        [Note(n.onset, n.pitch, n.duration, _velocity(n.velocity * _SUSTAIN_SCALE)) for n in notes]
    )


def _figure(notes: Sequence[Note], meter: Meter, order_of: Callable[[int], list[int]]):
    """Each chord played one note per eighth in the order ``order_of(chord size)`` gives
    (cycled), each note ringing for two eighths; the chord's first stroke accented."""
    step = _eighth(meter)
    out: list[Note] = []
    for chord in _chords(notes):
        onset = chord[0].onset
        end = max(n.end for n in chord)
        order = order_of(len(chord))
        for position, tick in enumerate(range(onset, end, step)):
            note = chord[order[position % len(order)]]
            velocity = note.velocity * (1.0 if tick == onset else 0.85)
            out.append(Note(tick, note.pitch, min(2 * step, end - tick), _velocity(velocity)))
    return sorted(out)


def arpeggio(notes: Sequence[Note], meter: Meter) -> list[Note]:
    return _figure(notes, meter, lambda size: [*range(size), *range(size - 2, 0, -1)])


def alberti(notes: Sequence[Note], meter: Meter) -> list[Note]:
    if is_compound_meter(meter):
        return _figure(notes, meter, lambda size: [0, size - 1, size // 2])
    return _figure(notes, meter, lambda size: [0, size - 1, size // 2, size - 1])


def ballad(notes: Sequence[Note], meter: Meter) -> list[Note]:
    """Each chord's lowest note struck on every group (a half bar of a simple meter of
    two or four beats, the bar of one of three, each dotted-quarter group of a compound
    one) and held to the group's end; its upper notes, one per eighth, between."""
    step = _eighth(meter)
    pulse = pulse_ticks(meter)
    beats = meter.bar_ticks // pulse
    group = meter.bar_ticks  # a bar of three beats: one low note, then five eighths
    if is_compound_meter(meter):
        group = pulse
    elif beats % 2 == 0:
        group = 2 * pulse
    out: list[Note] = []
    for chord in _chords(notes):
        onset, end = chord[0].onset, max(n.end for n in chord)
        low, upper = chord[0], chord[1:] or chord
        # with fewer eighths than upper notes (a compound group), rise from the middle
        start = max(0, len(upper) - (group // step - 1))
        order = [*range(start, len(upper)), *range(len(upper) - 2, start, -1)]
        position = 0
        for tick in range(onset, end, step):
            if tick == onset or tick % group == 0:
                length = min(group - tick % group, end - tick)
                out.append(Note(tick, low.pitch, length, _velocity(low.velocity)))
                position = 0
                continue
            note = upper[order[position % len(order)]]
            position += 1
            velocity = _velocity(note.velocity * 0.8)
            out.append(Note(tick, note.pitch, min(2 * step, end - tick), velocity))
    return sorted(out)


def _offbeat(meter: Meter) -> int:
    """Ticks from a beat to its off-beat: the last third of a compound beat (a jig's
    long-short), the second eighth of a simple one."""
    pulse = pulse_ticks(meter)
    return pulse * 2 // 3 if is_compound_meter(meter) else pulse // 2


def strum(notes: Sequence[Note], meter: Meter) -> list[Note]:
    # An upstroke catches only the top strings: the chord's two highest notes.
    upper = {(chord[0].onset, n.pitch) for chord in _chords(notes) for n in chord[-UPSTROKE_NOTES:]}
    return _strokes(notes, meter, upper)


def restruck(notes: Sequence[Note], meter: Meter) -> list[Note]:
    """The chords struck again on every beat they sound through, without upstrokes: an
    organ's marcato (a festive hymn, each beat articulated)."""
    return _strokes(notes, meter, set())


def upstroked(played: Sequence[Note], meter: Meter) -> list[Note]:
    """``played`` (chords struck on beats, a waltz's after-beats say) with a light upstroke
    on the top strings on the off-beat of every beat a chord is struck on and sounds
    through: an oom-pah strummed (oom-pah-a, oom-pah-a-pah-a)."""
    pulse, offbeat = pulse_ticks(meter), _offbeat(meter)
    out: list[Note] = []
    for chord in _chords(played):
        for index, note in enumerate(chord):
            up_at = (note.onset // pulse) * pulse + offbeat
            if index >= len(chord) - UPSTROKE_NOTES and note.onset < up_at < note.end:
                out.append(Note(note.onset, note.pitch, up_at - note.onset, note.velocity))
                up = _velocity(note.velocity * _UPSTROKE_SCALE)
                out.append(Note(up_at, note.pitch, note.end - up_at, up))
            else:
                out.append(note)
    return sorted(out)


def _strokes(notes: Sequence[Note], meter: Meter, upper: set[tuple[int, int]]) -> list[Note]:
    """Each note struck again on every beat it sounds through; the ``upper`` ones
    (chord onset, pitch) with an upstroke on the beat's off-beat."""
    pulse, offbeat = pulse_ticks(meter), _offbeat(meter)
    out: list[Note] = []
    for note in notes:
        start = note.onset
        up_strings = (note.onset, note.pitch) in upper
        while start < note.end:
            beat_end = min(note.end, (start // pulse + 1) * pulse)
            down = note.velocity if start == 0 else note.velocity * 0.88
            up_at = (start // pulse) * pulse + offbeat
            if up_strings and start < up_at < beat_end:
                out.append(Note(start, note.pitch, up_at - start, _velocity(down)))
                up = _velocity(note.velocity * 0.7)
                out.append(Note(up_at, note.pitch, beat_end - up_at, up))
            else:
                out.append(Note(start, note.pitch, beat_end - start, _velocity(down)))
            start = beat_end
    return sorted(out)


def _group_starts(meter: Meter) -> set[int]:
    """Beats (0-based) that open a group of the bar: where the bass, not the chord, plays."""
    beats = max(1, meter.bar_ticks // pulse_ticks(meter))
    if beats <= 3:
        return {0}
    if beats % 2 == 0:
        return set(range(0, beats, 2))
    return {0, 3} if beats == 5 else {0, 2, 4}


def waltz(notes: Sequence[Note], meter: Meter) -> list[Note]:
    pulse = pulse_ticks(meter)
    beats = max(1, meter.bar_ticks // pulse)
    if beats < 2:
        return block(notes, meter)
    strong = {beat * pulse for beat in _group_starts(meter)}
    out: list[Note] = []
    for note in notes:
        for beat in range(beats):
            tick = beat * pulse
            if tick in strong or not note.onset <= tick < note.end:
                continue
            length = min(pulse * 3 // 4, note.end - tick)
            out.append(Note(tick, note.pitch, length, _velocity(note.velocity * 0.85)))
    return sorted(out)


PATTERNS: dict[str, Callable[[Sequence[Note], Meter], list[Note]]] = {
    BLOCK: block,
    SUSTAIN: sustain,
    ARPEGGIO: arpeggio,
    ALBERTI: alberti,
    BALLAD: ballad,
    STRUM: strum,
    WALTZ: waltz,
}
"""Every pattern by name."""


def pattern_for(name: str, meter: Meter) -> str:
    """The pattern that plays ``name`` in ``meter``: a strum in a simple triple meter
    becomes a waltz; an Alberti bass in a bar of one beat a plain arpeggio."""
    beats = meter.bar_ticks // pulse_ticks(meter)
    if name == STRUM and beats == 3 and not is_compound_meter(meter):
        return WALTZ
    if name == ALBERTI and beats < 2:
        return ARPEGGIO
    return name


def pedalled(played: Sequence[Note], voicing: Sequence[Note]) -> list[Note]:
    """A broken chord with the sustain pedal down: each note rings on until its chord
    changes (the end of its span in ``voicing``) or its key is struck again."""
    out = []
    ordered = sorted(played)
    for index, note in enumerate(ordered):
        span_end = max((v.end for v in voicing if v.onset <= note.onset < v.end), default=note.end)
        again = next(
            (later.onset for later in ordered[index + 1 :] if later.pitch == note.pitch),
            span_end,
        )
        end = max(note.end, min(span_end, again))
        out.append(Note(note.onset, note.pitch, end - note.onset, note.velocity))
    return out


BROKEN = frozenset({ARPEGGIO, ALBERTI, BALLAD})
"""Patterns that break the chord into single notes (what a sustain pedal holds)."""


def play(name: str, notes: Sequence[Note], meter: Meter) -> list[Note]:
    """``notes`` (a bar's voicing) played in pattern ``name`` (``pattern_for`` the meter)."""
    return PATTERNS[pattern_for(name, meter)](notes, meter)
