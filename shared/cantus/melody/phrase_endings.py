"""Where in its last bar a phrase of the corpus arrives at its cadence, per meter: the beat
a composed phrase's cadence tone is asked to sound on (``SamplingParams.cadence_beat``).

Measured on the training split's tunes: phrases of four bars, counted from the first full bar
(after a pickup, which 80 % of the tunes have), so the phrase-end bars are the 4th, 8th, 12th
and 16th full bars. In each, the cadence arrives where its longest note that starts on a beat
starts (the earliest of equals). Real phrases mostly arrive on the downbeat in 3/4 and 4/4
and often hold there while the last beat leads into the next phrase ([half, quarter] in 3/4,
[half, rest, quarter] in 4/4); in 2/4, 6/8 and 2/2 a good share arrives on the second beat
after a bar of motion (jigs: three eighths, then the cadence tone and an upbeat). A grammar
that always put the cadence on the bar's last beat but one gave every phrase the same ending
rhythm, and the realness classifier read the pieces by their note lengths (issue #14).

After its cadence tone a real phrase that the tune goes on after mostly leads into the next
with an upbeat: notes after the cadence tone in 83-100 % of the phrase-end bars whose cadence
arrives on the downbeat, fewer the later it arrives (``UPBEAT_SHARES``). Left to choose,
the model led on too seldom in some meters (jigs: 65 % of phrase-end bars against the
held-out tunes' 96 %; 2/2: 76 % against 98 %) and too often in others (2/4: 84 % against
76 %); each phrase is now asked to lead on or not as often as the corpus does after a
cadence on its beat (``SamplingParams.upbeat``).

How long the cadence tone lasts depends on the meter and on where in the period the phrase
ends (``CADENCE_HOLDS``). In 3/4 and 4/4 nearly every phrase-end bar that leads on holds its
cadence tone through its beat, and half of them through two beats; the dance meters often do
not hold it at all. A reel (2/2) that leads on from its 4th bar sounds the cadence tone as one
of its running eighths in 82 % of cases, a jig (6/8) in 40 %, a 2/4 tune in 14 %, and at
the 8th bar less often. The grammar held every cadence tone through its beat and left the
rest to the model, which led on after one beat: the classifier read the dotted quarters of
the dance meters' cadence bars (session 32: 7.1 % of the notes of the composed pieces' 4th
bars, 2.2 % of the held-out tunes') and the quarter notes where 3/4 and 4/4 tunes hold a
half; a waltz phrase that does not lead on holds its tone to the bar line (the model cut it
to a quarter and rested). Each phrase inside a piece now draws how long its cadence tone lasts
as the corpus's do, by whether it leads on (``SamplingParams.cadence_hold``).

Between a cadence tone held a beat or more and the upbeat after it, real phrases often
breathe: a rest in a third of the folk tunes' phrase-end bars that lead on, in one in twelve of
the celtic ones. The model, left to choose, played the upbeat at once (phrase-end bars of the
composed pieces were 4 % silence, the held-out tunes' 11 %). A breath is a tune's habit, not
a phrase's: of the folk tunes with two such phrase ends or more, 56 % never breathe there,
17 % always do and 27 % sometimes (drawn per phrase instead, in session 32, most pieces
breathed a little and the realness classifier read the rests better than before). A piece
draws its habit once, by style and meter (``BREATH_HABITS``); a phrase of a piece that
breathes sometimes draws as often as such tunes' phrases do with its meter and hold
(``BREATH_SHARES``; ``SamplingParams.breath``).

``CADENCE_BEATS``, ``UPBEAT_SHARES``, ``CADENCE_HOLDS``, ``BREATH_HABITS`` and
``BREATH_SHARES`` hold the shares; ``python -m cantus.melody.phrase_endings`` measures them
again from the corpus cache and prints the tables to paste.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cantus.music.notes import Bar, Melody, Meter, Note
from cantus.music.pickup import pickup_bars

PHRASE_BARS = 4
"""Bars per phrase in the measurement (the form plans' phrases are 4 bars, 8 in long ones)."""

CADENCE_BEATS: dict[tuple[int, int], tuple[float, ...]] = {
    (2, 2): (0.69, 0.31),
    (2, 4): (0.803, 0.197),
    (3, 2): (0.941, 0.051, 0.008),
    (3, 4): (0.879, 0.1, 0.021),
    (3, 8): (0.926, 0.047, 0.028),
    (4, 4): (0.791, 0.05, 0.151, 0.008),
    (6, 4): (0.849, 0.033, 0.008, 0.106, 0.004),
    (6, 8): (0.618, 0.382),
    (9, 8): (0.432, 0.205, 0.363),
}
"""Share of the corpus's phrase-end bars whose cadence arrives on each beat (0: the downbeat),
by meter (numerator, denominator); measured on the training split (module docstring). A
meter not listed keeps the grammar's default (the last beat but one)."""


UPBEAT_SHARES: dict[tuple[int, int], tuple[float, ...]] = {
    (2, 2): (0.993, 0.937),
    (2, 4): (0.831, 0.416),
    (3, 2): (0.831,),
    (3, 4): (0.885, 0.752, 0.232),
    (3, 8): (0.831, 0.566, 0.088),
    (4, 4): (0.963, 0.972, 0.536, 0.152),
    (6, 4): (0.987,),
    (6, 8): (0.976, 0.881),
    (9, 8): (1.0, 1.0, 0.692),
}
"""Share of the corpus's phrase-end bars, the tune's last bar aside, with a note after the
cadence tone, by meter and by the beat the cadence arrives on (``CADENCE_BEATS``' order); -1
for a beat the corpus has fewer than 30 such bars of, and none after the last it has
enough of: there the model chooses (``draw_upbeat``)."""


HOLD_SHORT, HOLD_PART, HOLD_BEAT, HOLD_LONG = 0, 1, 2, 3
"""How long a cadence tone lasts against its beat (``hold_of``)."""
HOLDS = (HOLD_SHORT, HOLD_PART, HOLD_BEAT, HOLD_LONG)

CADENCE_HOLDS: dict[tuple[int, int, bool, bool], tuple[tuple[float, ...], ...]] = {
    (2, 2, False, True): ((0.816, 0.133, 0.051, 0.0), (0.052, 0.948, 0.0, 0.0)),
    (2, 2, True, True): ((0.541, 0.412, 0.048, 0.0), (0.085, 0.915, 0.0, 0.0)),
    (2, 4, False, False): ((0.0, 0.0, 0.303, 0.697), (0.0, 0.031, 0.969, 0.0)),
    (2, 4, False, True): ((0.141, 0.389, 0.47, 0.0), (0.015, 0.985, 0.0, 0.0)),
    (2, 4, True, False): ((0.002, 0.006, 0.298, 0.694), (0.0, 0.05, 0.95, 0.0)),
    (2, 4, True, True): ((0.057, 0.509, 0.434, 0.0), (0.075, 0.925, 0.0, 0.0)),
    (3, 2, False, True): ((0.0, 0.021, 0.204, 0.775),),
    (3, 2, True, True): ((0.0, 0.022, 0.18, 0.798),),
    (3, 4, False, False): (
        (0.0, 0.0, 0.082, 0.918),
        (0.0, 0.0, 0.418, 0.582),
        (0.0, 0.0, 1.0, 0.0),
    ),
    (3, 4, False, True): ((0.0, 0.045, 0.533, 0.422), (0.0, 0.04, 0.96, 0.0)),
    (3, 4, True, False): ((0.0, 0.0, 0.12, 0.88), (0.0, 0.0, 0.237, 0.763), (0.0, 0.0, 1.0, 0.0)),
    (3, 4, True, True): ((0.0, 0.045, 0.501, 0.454), (0.0, 0.011, 0.989, 0.0)),
    (3, 8, False, False): ((0.0, 0.0, 0.022, 0.978),),
    (3, 8, False, True): ((0.0, 0.004, 0.552, 0.444),),
    (3, 8, True, False): ((0.0, 0.0, 0.015, 0.985),),
    (3, 8, True, True): ((0.0, 0.007, 0.531, 0.463),),
    (4, 4, False, False): (
        (0.0, 0.0, 0.025, 0.975),
        (-1.0, -1.0, -1.0, -1.0),
        (0.0, 0.0, 0.085, 0.915),
    ),
    (4, 4, False, True): (
        (0.0, 0.037, 0.454, 0.51),
        (0.022, 0.083, 0.773, 0.122),
        (0.0, 0.014, 0.986, 0.0),
    ),
    (4, 4, True, False): (
        (0.0, 0.0, 0.043, 0.957),
        (-1.0, -1.0, -1.0, -1.0),
        (0.0, 0.0, 0.074, 0.926),
    ),
    (4, 4, True, True): (
        (0.001, 0.024, 0.491, 0.484),
        (0.041, 0.082, 0.784, 0.093),
        (0.0, 0.037, 0.963, 0.0),
    ),
    (6, 4, False, True): ((0.0, 0.0, 0.066, 0.934),),
    (6, 4, True, True): ((0.0, 0.0, 0.087, 0.913),),
    (6, 8, False, False): ((0.0, 0.205, 0.718, 0.077), (0.0, 0.286, 0.714, 0.0)),
    (6, 8, False, True): ((0.402, 0.278, 0.32, 0.0), (0.031, 0.969, 0.0, 0.0)),
    (6, 8, True, False): ((-1.0, -1.0, -1.0, -1.0), (0.0, 0.529, 0.471, 0.0)),
    (6, 8, True, True): ((0.181, 0.324, 0.495, 0.0), (0.084, 0.916, 0.0, 0.0)),
    (9, 8, False, True): (
        (0.484, 0.5, 0.016, 0.0),
        (0.233, 0.733, 0.033, 0.0),
        (0.0, 1.0, 0.0, 0.0),
    ),
}
"""Share of the corpus's phrase-end bars (the tune's last aside) whose cadence tone lasts
under half its beat, half of it or more, the beat or more, and two beats or more (``HOLDS``),
by meter, whether the phrase closes a period (every second phrase end: the 8th bar, the
16th…), whether it leads on, and cadence beat (rows in ``CADENCE_BEATS``' order; all -1 for
a beat with fewer than 30 such bars); measured on the training split (module docstring)."""


BREATH_NEVER, BREATH_SOMETIMES, BREATH_ALWAYS = 0, 1, 2
"""A tune's habit at its phrase ends that lead on after a cadence tone held a beat or more."""

BREATH_HABITS: dict[tuple[str, int, int], tuple[float, float, float]] = {
    ("celtic", 0, 0): (0.856, 0.117, 0.027),
    ("celtic", 2, 4): (0.811, 0.189, 0.0),
    ("celtic", 3, 4): (0.88, 0.096, 0.024),
    ("celtic", 4, 4): (0.816, 0.14, 0.044),
    ("celtic", 6, 8): (0.908, 0.077, 0.015),
    ("chorale", 0, 0): (0.913, 0.083, 0.004),
    ("chorale", 4, 4): (0.902, 0.094, 0.004),
    ("folk", 0, 0): (0.556, 0.271, 0.173),
    ("folk", 2, 4): (0.554, 0.251, 0.195),
    ("folk", 3, 2): (0.938, 0.031, 0.031),
    ("folk", 3, 4): (0.639, 0.236, 0.126),
    ("folk", 3, 8): (0.882, 0.077, 0.041),
    ("folk", 4, 4): (0.447, 0.373, 0.18),
    ("folk", 6, 4): (0.717, 0.196, 0.087),
    ("folk", 6, 8): (0.303, 0.244, 0.453),
}
"""Share of the corpus's tunes with two such phrase ends or more that never, sometimes and
always breathe there (``breathes``), by style and meter, and by style alone under meter
(0, 0); rows with fewer than 30 tunes left out; measured on the training split."""

BREATH_SHARES: dict[tuple[int, int], tuple[float, ...]] = {
    (2, 4): (-1.0, -1.0, 0.48, -1.0),
    (3, 4): (-1.0, -1.0, 0.515, 0.109),
    (3, 8): (-1.0, -1.0, 0.634, -1.0),
    (4, 4): (-1.0, -1.0, 0.2, 0.757),
    (6, 8): (-1.0, -1.0, 0.54, -1.0),
}
"""Share of the phrase ends that breathe in the tunes that sometimes do, by meter and by how
long the cadence tone lasts (``HOLDS``' order; -1 for a hold under a beat or with fewer than
30 such bars); measured on the training split."""


def breathes(bar: Bar, meter: Meter) -> bool:
    """Whether ``bar``'s cadence tone is followed by a rest before the next note in the bar
    (False where nothing follows it)."""
    note = cadence_note_of(bar, meter)
    after = [other.onset for other in bar.notes if note is not None and other.onset > note.onset]
    return note is not None and bool(after) and min(after) > note.end


def cadence_note_of(bar: Bar, meter: Meter) -> Note | None:
    """``bar``'s longest note that starts on a beat, the earliest of equals: where its
    cadence arrives; None for a bar without such a note."""
    beat = meter.beat_ticks
    on_beat = [note for note in bar.notes if note.onset % beat == 0]
    if not on_beat:
        return None
    longest = max(note.duration for note in on_beat)
    return min((note for note in on_beat if note.duration == longest), key=lambda n: n.onset)


def cadence_beat_of(bar: Bar, meter: Meter) -> int | None:
    """The beat (0: the downbeat) of ``bar``'s cadence (``cadence_note_of``); None for a bar
    without one."""
    note = cadence_note_of(bar, meter)
    return None if note is None else note.onset // meter.beat_ticks


def leads_on(bar: Bar, meter: Meter) -> bool:
    """Whether a note starts after ``bar``'s cadence tone (an upbeat into what follows)."""
    note = cadence_note_of(bar, meter)
    return note is not None and any(other.onset > note.onset for other in bar.notes)


def phrase_end_indices(melody: Melody, phrase_bars: int = PHRASE_BARS) -> range:
    """Indices of the bars that end the melody's phrases of ``phrase_bars`` full bars (after
    a pickup, a first bar whose first note starts after the downbeat)."""
    return range(pickup_bars(melody.bars) + phrase_bars - 1, len(melody.bars), phrase_bars)


def phrase_end_bars(melody: Melody, phrase_bars: int = PHRASE_BARS) -> list[Bar]:
    """The bars that end the melody's phrases (``phrase_end_indices``)."""
    return [melody.bars[i] for i in phrase_end_indices(melody, phrase_bars)]


def measure_cadence_beats(
    melodies: Iterable[Melody], minimum: int = 30
) -> dict[tuple[int, int], tuple[float, ...]]:
    """``CADENCE_BEATS`` measured on ``melodies``: per meter with at least ``minimum``
    phrase-end bars, the share arriving on each beat (rounded to 3 places)."""
    counts: dict[tuple[int, int], Counter[int]] = {}
    for melody in melodies:
        meter = melody.meter
        beats = meter.bar_ticks // meter.beat_ticks
        for bar in phrase_end_bars(melody):
            beat = cadence_beat_of(bar, meter)
            if beat is not None and beats >= 2:
                counts.setdefault((meter.numerator, meter.denominator), Counter())[beat] += 1
    table: dict[tuple[int, int], tuple[float, ...]] = {}
    for key, counter in sorted(counts.items()):
        total = sum(counter.values())
        if total >= minimum:
            beats = max(counter) + 1
            table[key] = tuple(round(counter[b] / total, 3) for b in range(beats))
    return table


def hold_of(note: Note, meter: Meter) -> int:
    """How long a cadence tone lasts against its beat: ``HOLD_SHORT`` (under half of it),
    ``HOLD_PART`` (half of it or more, under all of it), ``HOLD_BEAT`` (the beat or more,
    under two) or ``HOLD_LONG`` (two beats or more)."""
    beat = meter.beat_ticks
    if 2 * note.duration < beat:
        return HOLD_SHORT
    if note.duration < beat:
        return HOLD_PART
    return HOLD_BEAT if note.duration < 2 * beat else HOLD_LONG


def measure_cadence_holds(
    melodies: Iterable[Melody], minimum: int = 30
) -> dict[tuple[int, int, bool, bool], tuple[tuple[float, ...], ...]]:
    """``CADENCE_HOLDS`` measured on ``melodies``: per meter, whether the phrase closes a
    period (its 8th bar, 16th…: every second phrase end) and whether it leads on, of the
    phrase-end bars before the tune's last, the share of each hold (``hold_of``) per cadence
    beat, all -1 for a beat with fewer than ``minimum`` bars; the beats after the last
    measured one left out (rounded to 3 places)."""
    counts: dict[tuple[int, int, bool, bool], dict[int, Counter[int]]] = {}
    for melody in melodies:
        meter = melody.meter
        for order, index in enumerate(phrase_end_indices(melody)):
            bar = melody.bars[index]
            note = cadence_note_of(bar, meter)
            if index == len(melody.bars) - 1 or note is None:
                continue
            key = (meter.numerator, meter.denominator, order % 2 == 1, leads_on(bar, meter))
            beat = note.onset // meter.beat_ticks
            counts.setdefault(key, {}).setdefault(beat, Counter())[hold_of(note, meter)] += 1
    table: dict[tuple[int, int, bool, bool], tuple[tuple[float, ...], ...]] = {}
    for key, beats in sorted(counts.items()):
        measured = [b for b, c in beats.items() if sum(c.values()) >= minimum]
        if not measured:
            continue
        rows = []
        for beat in range(max(measured) + 1):
            counter = beats.get(beat, Counter())
            total = sum(counter.values())
            rows.append(
                tuple(round(counter[h] / total, 3) if total >= minimum else -1.0 for h in HOLDS)
            )
        table[key] = tuple(rows)
    return table


def _breath_ends(melody: Melody) -> list[tuple[int, bool]]:
    """The hold and whether it ``breathes`` of each of ``melody``'s phrase-end bars before its
    last that leads on after a cadence tone held a beat or more."""
    meter = melody.meter
    ends = []
    for index in phrase_end_indices(melody):
        bar = melody.bars[index]
        note = cadence_note_of(bar, meter)
        if index == len(melody.bars) - 1 or note is None or not leads_on(bar, meter):
            continue
        hold = hold_of(note, meter)
        if hold >= HOLD_BEAT:
            ends.append((hold, breathes(bar, meter)))
    return ends


def measure_breaths(
    tunes: Iterable[tuple[str, Melody]], minimum: int = 30
) -> tuple[
    dict[tuple[str, int, int], tuple[float, float, float]], dict[tuple[int, int], tuple[float, ...]]
]:
    """``BREATH_HABITS`` and ``BREATH_SHARES`` measured on ``tunes`` (style, melody): each
    tune with two breath ends or more (``_breath_ends``) counted by its habit, per style and
    meter and per style; the ends of the tunes that sometimes breathe by meter and hold
    (rows with fewer than ``minimum`` tunes or bars -1 or left out; rounded to 3 places)."""
    habits: dict[tuple[str, int, int], Counter[int]] = {}
    total: dict[tuple[int, int], Counter[int]] = {}
    breaths: dict[tuple[int, int], Counter[int]] = {}
    for style, melody in tunes:
        ends = _breath_ends(melody)
        if len(ends) < 2:
            continue
        count = sum(breath for _, breath in ends)
        habit = (
            BREATH_NEVER
            if count == 0
            else BREATH_ALWAYS
            if count == len(ends)
            else BREATH_SOMETIMES
        )
        meter = (melody.meter.numerator, melody.meter.denominator)
        for key in ((style, *meter), (style, 0, 0)):
            habits.setdefault(key, Counter())[habit] += 1
        if habit == BREATH_SOMETIMES:
            for hold, breath in ends:
                total.setdefault(meter, Counter())[hold] += 1
                breaths.setdefault(meter, Counter())[hold] += breath
    habit_table = {
        key: (
            round(counter[BREATH_NEVER] / n, 3),
            round(counter[BREATH_SOMETIMES] / n, 3),
            round(counter[BREATH_ALWAYS] / n, 3),
        )
        for key, counter in sorted(habits.items())
        if (n := sum(counter.values())) >= minimum
    }
    share_table = {
        key: tuple(
            round(breaths[key][h] / counter[h], 3) if counter[h] >= minimum else -1.0 for h in HOLDS
        )
        for key, counter in sorted(total.items())
        if any(counter[h] >= minimum for h in HOLDS)
    }
    return habit_table, share_table


def measure_upbeats(
    melodies: Iterable[Melody], minimum: int = 30
) -> dict[tuple[int, int], tuple[float, ...]]:
    """``UPBEAT_SHARES`` measured on ``melodies``: per meter and cadence beat with at least
    ``minimum`` phrase-end bars before the tune's last, the share that leads on (rounded to
    3 places; -1 for a beat with fewer, the beats after the last measured one left out)."""
    total: dict[tuple[int, int], Counter[int]] = {}
    upbeats: dict[tuple[int, int], Counter[int]] = {}
    for melody in melodies:
        meter = melody.meter
        key = (meter.numerator, meter.denominator)
        for index in phrase_end_indices(melody):
            bar = melody.bars[index]
            beat = cadence_beat_of(bar, meter)
            if index == len(melody.bars) - 1 or beat is None:
                continue  # the tune's last bar does not lead on
            total.setdefault(key, Counter())[beat] += 1
            upbeats.setdefault(key, Counter())[beat] += leads_on(bar, meter)
    table: dict[tuple[int, int], tuple[float, ...]] = {}
    for key, counter in sorted(total.items()):
        measured = [b for b in sorted(counter) if counter[b] >= minimum]
        if measured:
            table[key] = tuple(
                round(upbeats[key][b] / counter[b], 3) if counter[b] >= minimum else -1.0
                for b in range(max(measured) + 1)
            )
    return table


def draw_upbeat(meter: Meter, cadence_beat: int, rng: random.Random) -> bool | None:
    """Whether a phrase whose cadence arrives on ``cadence_beat`` (-1: the grammar's
    default, the last beat but one) leads into the next with an upbeat, drawn from
    ``UPBEAT_SHARES``; None where the corpus has too few such phrases to say."""
    shares = UPBEAT_SHARES.get((meter.numerator, meter.denominator), ())
    beats = meter.bar_ticks // meter.beat_ticks
    beat = beats - 2 if cadence_beat < 0 else cadence_beat
    if not 0 <= beat < len(shares) or shares[beat] < 0:
        return None
    return rng.random() < shares[beat]


def draw_cadence_hold(
    meter: Meter, cadence_beat: int, closes_period: bool, leads: bool, rng: random.Random
) -> int:
    """How long the cadence tone of a phrase inside a tune lasts
    (``SamplingParams.cadence_hold``), drawn from ``CADENCE_HOLDS`` for a cadence on
    ``cadence_beat`` in a phrase that closes a period or not and ``leads`` on or not
    (``HOLDS``); -1 (the grammar's default: held through its beat) where the corpus has too
    few such phrases to say."""
    key = (meter.numerator, meter.denominator, closes_period, leads)
    rows = CADENCE_HOLDS.get(key, ())
    if not 0 <= cadence_beat < len(rows) or rows[cadence_beat][0] < 0:
        return -1
    return rng.choices(HOLDS, weights=rows[cadence_beat])[0]


def draw_breath_habit(style: str, meter: Meter, rng: random.Random) -> int:
    """A piece's breath habit (``BREATH_NEVER``, ``BREATH_SOMETIMES``, ``BREATH_ALWAYS``)
    drawn from ``BREATH_HABITS`` for its style and meter, or its style's where the meter has
    too few tunes; -1 (the model's choice at every phrase end) for a style without a row."""
    shares = BREATH_HABITS.get((style, meter.numerator, meter.denominator))
    shares = shares or BREATH_HABITS.get((style, 0, 0))
    if shares is None:
        return -1
    return rng.choices((BREATH_NEVER, BREATH_SOMETIMES, BREATH_ALWAYS), weights=shares)[0]


def draw_breath(habit: int, meter: Meter, hold: int, rng: random.Random) -> int:
    """Whether a phrase of a piece with the breath ``habit`` that leads on after a cadence
    tone of ``hold`` rests before its upbeat (``SamplingParams.breath``: 1 or 0); -1 (the
    model's choice) under a beat's hold, with no habit, or where the corpus has too few
    phrases like it to say (``BREATH_SHARES``)."""
    if habit < 0 or hold < HOLD_BEAT:
        return -1
    if habit != BREATH_SOMETIMES:
        return int(habit == BREATH_ALWAYS)
    shares = BREATH_SHARES.get((meter.numerator, meter.denominator), ())
    if not 0 <= hold < len(shares) or shares[hold] < 0:
        return -1
    return int(rng.random() < shares[hold])


def draw_cadence_beat(meter: Meter, rng: random.Random) -> int:
    """A cadence beat for a phrase in ``meter``, drawn from ``CADENCE_BEATS``; -1 (the
    grammar's default) for a meter the corpus has too few phrases of."""
    shares = CADENCE_BEATS.get((meter.numerator, meter.denominator))
    if shares is None:
        return -1
    return rng.choices(range(len(shares)), weights=shares)[0]


def main() -> None:
    """Measure the tables on the training split of the corpus cache and print them."""
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    melodies = [tune.melody for tune in split.train]
    habits, breaths = measure_breaths((tune.style, tune.melody) for tune in split.train)
    tables: tuple[tuple[str, dict[Any, Any]], ...] = (
        ("CADENCE_BEATS", measure_cadence_beats(melodies)),
        ("UPBEAT_SHARES", measure_upbeats(melodies)),
        ("CADENCE_HOLDS", measure_cadence_holds(melodies)),
        ("BREATH_HABITS", habits),
        ("BREATH_SHARES", breaths),
    )
    for name, table in tables:
        print(f"{name} = {{")
        for key, shares in table.items():
            print(f"    {key!r}: {shares},")
        print("}")


if __name__ == "__main__":
    main()
