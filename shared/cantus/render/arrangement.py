"""Arrangement: the four parts of a piece — melody, chords, bass, drums — as MIDI tracks,
with General MIDI programs per style and a drum pattern per meter and energy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cantus.harmony.rules import ChordSpan
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Meter, Note, Track
from cantus.music.styles import Energy, Style

MELODY_CHANNEL, CHORDS_CHANNEL, BASS_CHANNEL, DRUMS_CHANNEL = 0, 1, 2, 9
KICK, SNARE, CLOSED_HAT, CRASH, RIDE, SIDE_STICK = 36, 38, 42, 49, 51, 37

PROGRAMS: dict[Style, dict[str, int]] = {
    Style.FOLK: {"melody": 73, "chords": 24, "bass": 32},  # flute, nylon guitar, acoustic bass
    Style.CELTIC: {"melody": 40, "chords": 25, "bass": 32},  # fiddle, steel guitar, acoustic bass
    Style.CHORALE: {"melody": 52, "chords": 19, "bass": 19},  # choir aahs, church organ
}
"""General MIDI program (0-based) of each pitched part, per style."""

_VELOCITY_SCALE = {Energy.LOW: 0.8, Energy.MID: 0.95, Energy.HIGH: 1.1}


@dataclass(frozen=True)
class ArrangedBar:
    """Everything render knows about one bar; onsets in ticks from the bar start."""

    melody: Bar
    chords: list[ChordSpan]
    voicing: list[Note]
    bass: list[Note]
    lyrics: list[tuple[int, str]] = field(default_factory=list)


def drum_pattern(
    meter: Meter, *, style: Style, energy: Energy, bar_index: int, is_final: bool
) -> list[Note]:
    """GM drum notes (channel 9) for one bar; none for chorales."""
    if style is Style.CHORALE:
        return []
    beat = TICKS_PER_QUARTER * 4 // meter.denominator
    compound = meter.denominator == 8 and meter.numerator % 3 == 0
    pulse = beat * 3 if compound else beat
    pulses = max(1, meter.bar_ticks // pulse)
    hit = TICKS_PER_QUARTER // 4
    notes: list[Note] = []
    if bar_index == 0 or is_final:
        notes.append(Note(0, CRASH, hit, 90))
    if is_final:
        notes.append(Note(0, KICK, hit, 100))
        return sorted(notes)
    for index in range(pulses):
        onset = index * pulse
        if index == 0 or (pulses >= 4 and index == pulses // 2):
            notes.append(Note(onset, KICK, hit, 96))
        elif energy is not Energy.LOW:
            notes.append(Note(onset, SNARE if energy is Energy.HIGH else SIDE_STICK, hit, 80))
        if energy is Energy.LOW:
            continue
        cymbal = CLOSED_HAT if energy is Energy.HIGH else RIDE
        subdivisions = 3 if compound else 2
        for sub in range(subdivisions):
            notes.append(Note(onset + sub * pulse // subdivisions, cymbal, hit, 60 if sub else 70))
    return sorted(notes)


def _shifted(notes: Sequence[Note], offset: int, scale: float) -> list[Note]:
    return [
        Note(offset + n.onset, n.pitch, n.duration, max(1, min(127, round(n.velocity * scale))))
        for n in notes
    ]


def arrange_tracks(
    bars: Sequence[ArrangedBar],
    *,
    style: Style,
    energy: Energy,
    first_index: int = 0,
    total_bars: int | None = None,
) -> list[Track]:
    """Four tracks named ``melody``, ``chords``, ``bass``, ``drums``, onsets from the first
    bar given. ``first_index`` and ``total_bars`` place a segment within its piece, so only
    the piece's own first and last bars get the opening crash and the final hit."""
    total = total_bars if total_bars is not None else first_index + len(bars)
    programs = PROGRAMS[style]
    scale = _VELOCITY_SCALE[energy]
    melody, chords, bass, drums = [], [], [], []
    lyrics: list[tuple[int, str]] = []
    offset = 0
    for index, bar in enumerate(bars):
        melody += _shifted(bar.melody.notes, offset, scale)
        chords += _shifted(bar.voicing, offset, scale * 0.85)
        bass += _shifted(bar.bass, offset, scale)
        drums += _shifted(
            drum_pattern(
                bar.melody.meter,
                style=style,
                energy=energy,
                bar_index=first_index + index,
                is_final=first_index + index == total - 1 and total > 1,
            ),
            offset,
            scale,
        )
        lyrics += [(offset + tick, text) for tick, text in bar.lyrics]
        offset += bar.melody.meter.bar_ticks
    return [
        Track("melody", programs["melody"], MELODY_CHANNEL, melody, lyrics),
        Track("chords", programs["chords"], CHORDS_CHANNEL, chords),
        Track("bass", programs["bass"], BASS_CHANNEL, bass),
        Track("drums", 0, DRUMS_CHANNEL, drums),
    ]
