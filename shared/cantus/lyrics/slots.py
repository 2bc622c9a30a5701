"""Where the words go: melody bars grouped into lines, one syllable slot per note onset.

A line closes at a phrase end (the bar ends in a rest or a long note), at a bar group of
the form (every second bar once the line has a few syllables), or when it is long (eight
or more syllables, four bars); the last bar of the piece closes its line, and a single bar
left at the end joins the line before it. The rule looks only at the bars of the line so
far and the number of bars left, so the lyric service can close lines as bars stream in,
and the evaluation groups whole melodies the same way.

A slot is strong when its onset is metrically strong: the downbeat, the middle of a bar of
four beats (or 3 + 2, 3 + 3), or a beat (or half-beat) that is stronger than the slots
around it; so a line of quarter notes in 4/4 alternates strong and weak, as verse does.

Rhyme positions come from a scheme such as AABB, ABAB or ABCB, repeated per stanza: a line
whose letter occurred earlier in its stanza must rhyme with that first line ("anchor").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cantus.lyrics.song_form import section_end
from cantus.music.form import FormPlan
from cantus.music.notes import TICKS_PER_QUARTER, Meter, Note

RHYME_SCHEME_PATTERN = re.compile(r"^[A-H]{2,8}$")
DEFAULT_RHYME_SCHEME = "AABB"
LONG_LINE_SYLLABLES = 8
SHORT_LINE_SYLLABLES = 4
MAX_LINE_BARS = 4


@dataclass(frozen=True)
class Slot:
    """One sung syllable: the melody note(s) it is tied to. ``bar_index`` and
    ``note_index`` name the first note (its index among the bar's notes sorted by onset);
    ``note_count`` > 1 for a melisma; ``pitch`` of the first note (MIDI); ``strong``: on a
    strong beat; ``hold_ticks``: from its onset to the next syllable's (the line's last: to
    the end of its notes), so a long note or a rest after it is a place to breathe
    (``clauses``)."""

    bar_index: int
    note_index: int
    onset_ticks: int
    pitch: int
    strong: bool
    note_count: int = 1
    hold_ticks: int = 0


@dataclass(frozen=True)
class LineSlots:
    """Line ``index`` of a piece: bars ``first_bar`` .. ``first_bar + bar_count - 1``, its
    slots in order, its rhyme letter and the line it must rhyme with (None: free);
    ``stanza``: the index of the first line of its stanza (the rhyme scheme's round within
    its section), which the decoder's verse words follow."""

    index: int
    first_bar: int
    bar_count: int
    slots: tuple[Slot, ...]
    rhyme_label: str
    rhymes_with: int | None
    stanza: int = 0
    clauses: tuple[int, ...] = ()
    """Syllables per clause where a ci pattern sets them (``cantus.lyrics.ci``); empty:
    cut where the melody breathes (``cantus.lyrics.clauses``)."""
    clause_rhymes: tuple[bool, ...] = ()
    """Per clause of ``clauses``: it ends on the line's rhyme."""

    @property
    def syllables(self) -> int:
        return len(self.slots)

    @property
    def strong(self) -> tuple[bool, ...]:
        return tuple(slot.strong for slot in self.slots)


def beat_ticks(meter: Meter) -> int:
    """Ticks of the counted beat: dotted quarter in compound metres (6/8, 9/8, 12/8),
    the eighth in 7/8, otherwise the denominator's note value."""
    unit = 4 * TICKS_PER_QUARTER // meter.denominator
    if meter.denominator == 8 and meter.numerator % 3 == 0:
        return 3 * unit
    return unit


def metric_level(onset: int, meter: Meter) -> float:
    """3 downbeat, 2 secondary accent, 1 beat, 0.5 half beat, 0 anything finer."""
    onset %= meter.bar_ticks
    if onset == 0:
        return 3.0
    beat = beat_ticks(meter)
    beats = meter.bar_ticks // beat
    secondary = {4: 2, 5: 3, 6: 3}.get(beats)
    if secondary is not None and onset == secondary * beat:
        return 2.0
    if onset % beat == 0:
        return 1.0
    if onset % max(1, beat // 2) == 0:
        return 0.5
    return 0.0


def bar_note_onsets(notes: Sequence[Note]) -> list[tuple[int, Note]]:
    """``(note index, note)`` of the first note at each onset, notes sorted as render
    sorts them (by onset, then pitch)."""
    seen: set[int] = set()
    out = []
    for index, note in enumerate(sorted(notes)):
        if note.onset not in seen:
            seen.add(note.onset)
            out.append((index, note))
    return out


def line_slots_from_bars(
    bars: Sequence[tuple[int, Sequence[Note]]], meter: Meter, *, melisma: bool = False
) -> list[Slot]:
    """Slots of a line made of ``(bar index, notes)``; with ``melisma``, a note shorter than
    a beat that follows its predecessor within the same beat is sung on the same syllable."""
    raw: list[tuple[int, int, Note, float]] = []
    beat = beat_ticks(meter)
    for bar_index, notes in bars:
        for note_index, note in bar_note_onsets(notes):
            raw.append((bar_index, note_index, note, metric_level(note.onset, meter)))
    slots: list[Slot] = []
    counts: list[int] = []
    starts: list[int] = []
    for position, (bar_index, note_index, note, level) in enumerate(raw):
        if melisma and slots and position:
            previous_bar, _, previous, _ = raw[position - 1]
            same_beat = previous_bar == bar_index and previous.onset // beat == note.onset // beat
            if same_beat and level < 1 and note.duration < beat:
                counts[-1] += 1
                continue
        left = raw[position - 1][3] if position else -1.0
        right = raw[position + 1][3] if position + 1 < len(raw) else -1.0
        strong = level >= 2 or (level >= 0.5 and level >= left and level > right)
        slots.append(Slot(bar_index, note_index, note.onset, note.pitch, strong))
        counts.append(1)
        starts.append(bar_index * meter.bar_ticks + note.onset)
    end = max(
        (index * meter.bar_ticks + n.onset + n.duration for index, notes in bars for n in notes),
        default=0,
    )
    holds = [later - start for start, later in itertools.pairwise([*starts, end])]
    return [
        Slot(s.bar_index, s.note_index, s.onset_ticks, s.pitch, s.strong, count, hold)
        for s, count, hold in zip(slots, counts, holds, strict=True)
    ]


def phrase_ends(notes: Sequence[Note], meter: Meter) -> bool:
    """The bar ends a phrase: it is silent, ends in a rest of a beat or more, or its last
    note lasts a beat and a half or more (a cadence)."""
    if not notes:
        return True
    beat = beat_ticks(meter)
    last = max(notes, key=lambda n: n.onset)
    end = max(n.onset + n.duration for n in notes)
    return meter.bar_ticks - end >= beat or last.duration >= beat * 3 // 2


def line_closes(line_bars: Sequence[Sequence[Note]], meter: Meter, *, bars_left: int) -> bool:
    """Whether a line made of ``line_bars`` (each a bar's notes) ends after its last bar;
    ``bars_left``: bars of the piece after it. A single bar left over joins this line
    rather than make a line of its own."""
    if bars_left <= 0 or len(line_bars) >= MAX_LINE_BARS:
        return True
    if bars_left == 1:
        return False
    syllables = sum(len(bar_note_onsets(bar)) for bar in line_bars)
    if syllables >= LONG_LINE_SYLLABLES:
        return True
    if syllables < SHORT_LINE_SYLLABLES:
        return False
    return phrase_ends(line_bars[-1], meter) or len(line_bars) % 2 == 0


def next_line_bars(
    bars: Mapping[int, Sequence[Note]], line_start: int, meter: Meter, total_bars: int
) -> list[Sequence[Note]] | None:
    """The bars of the line that starts at bar ``line_start`` if ``bars`` (bar index →
    notes, the bars received so far) already close it, else None (wait for more bars)."""
    line_bars: list[Sequence[Note]] = []
    index = line_start
    while index in bars:
        line_bars.append(bars[index])
        if line_closes(line_bars, meter, bars_left=total_bars - 1 - index):
            return line_bars
        index += 1
    return None


def rhyme_position(line_index: int, scheme: str) -> tuple[str, int | None]:
    """``(letter, anchor line)`` of line ``line_index`` under ``scheme`` (AABB …),
    repeated per stanza; the anchor is None for the first line with its letter."""
    size = len(scheme)
    stanza, position = divmod(line_index, size)
    letter = scheme[position]
    first = scheme.index(letter)
    return letter, None if first == position else stanza * size + first


def rhyme_word(line: LineSlots, words: Sequence[str]) -> str:
    """The word of ``words`` (sung on ``line``) that carries its rhyme: the end of its last
    rhyming clause in a ci stanza (``LineSlots.clause_rhymes``), else its last word."""
    if line.clauses and any(line.clause_rhymes):
        last = max(i for i, rhymes in enumerate(line.clause_rhymes) if rhymes)
        index = sum(line.clauses[: last + 1]) - 1
        if index < len(words):
            return words[index]
    return words[-1]


def is_rhyme_anchor(line_index: int, scheme: str) -> bool:
    """Whether later lines of the stanza rhyme with line ``line_index``."""
    letter, anchor = rhyme_position(line_index, scheme)
    return anchor is None and scheme.count(letter) > 1


def plan_lines(
    bars: Sequence[Sequence[Note]],
    meter: Meter,
    *,
    scheme: str = DEFAULT_RHYME_SCHEME,
    melisma: bool = False,
    plan: FormPlan | None = None,
    ci: bool = False,
) -> list[LineSlots]:
    """Every line of a whole melody (a list of bars' notes), as the service would close
    them bar by bar; with a form ``plan``, lines end at section ends and the rhyme scheme
    starts again with each section (``song_form``); with ``ci``, each section carries the
    ci stanza that fits it, where one does (``cantus.lyrics.ci``)."""
    lines: list[LineSlots] = []
    start, stanza = 0, 0
    for index in range(len(bars)):
        end = section_end(plan, start, len(bars))
        if line_closes(bars[start : index + 1], meter, bars_left=end - 1 - index):
            line_bars = bars[start : index + 1]
            lines.append(
                make_line(len(lines), start, line_bars, meter, scheme, melisma, stanza_start=stanza)
            )
            start = index + 1
            if start == end:
                stanza = len(lines)
    if ci:
        from cantus.lyrics.ci import sing_ci  # ci fits the lines planned here

        lines = sing_ci(lines, plan)[0]
    return lines


def make_line(
    line_index: int,
    first_bar: int,
    line_bars: Sequence[Sequence[Note]],
    meter: Meter,
    scheme: str,
    melisma: bool = False,
    *,
    stanza_start: int = 0,
) -> LineSlots:
    """Line ``line_index``; its rhyme position counts from line ``stanza_start`` (the first
    line of its section in song form, else the piece's first)."""
    slots = line_slots_from_bars(
        [(first_bar + i, notes) for i, notes in enumerate(line_bars)], meter, melisma=melisma
    )
    letter, anchor = rhyme_position(line_index - stanza_start, scheme)
    if anchor is not None:
        anchor += stanza_start
    stanza = stanza_start + (line_index - stanza_start) // len(scheme) * len(scheme)
    return LineSlots(line_index, first_bar, len(line_bars), tuple(slots), letter, anchor, stanza)
