"""Arrangement: the four parts of a piece (melody, chords, bass, drums) as MIDI tracks.

Bars arrive as ``ArrangedBar``s with onsets counted from each bar's start; the tracks
count from the start of the first bar given. Each style has its General MIDI band
(``programs_for``), each meter and energy a drum pattern (``drum_pattern``), and energy
shapes the velocities: soft and sustained at low energy, accented and re-strummed at high.

Humanisation (``Humanise``, on when ``arrange_tracks`` gets one) makes the parts sound
played rather than sequenced: each note's velocity moves by a few steps and its onset
comes up to a few ticks late (``humanise_bar``). It is deterministic and bar-local: the
random stream of a note depends only on (piece seed, bar index, part, note's place in
the bar), so arranging a piece segment by segment gives exactly the notes of arranging
it whole. Onsets only ever move later, never past their bar's end, and a note's end stays
put, so no note leaves its bar or starts to overlap another.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cantus.harmony.rules import ChordSpan, is_compound_meter, pulse_ticks
from cantus.music.notes import Bar, Meter, Note, Track
from cantus.music.styles import Energy, Style

MELODY_CHANNEL, CHORDS_CHANNEL, BASS_CHANNEL, DRUMS_CHANNEL = 0, 1, 2, 9
"""MIDI channels (0-based) of the four tracks; 9 is the General MIDI drum channel."""

KICK, SIDE_STICK, SNARE, CLOSED_HAT, CRASH, RIDE = 36, 37, 38, 42, 49, 51
"""General MIDI drum keys used by the patterns."""

PROGRAMS: dict[Style, dict[str, int]] = {
    Style.FOLK: {"melody": 73, "chords": 24, "bass": 32},  # flute, nylon guitar, acoustic bass
    Style.CELTIC: {"melody": 40, "chords": 25, "bass": 32},  # fiddle, steel guitar, acoustic bass
    Style.CHORALE: {"melody": 52, "chords": 19, "bass": 19},  # choir aahs, church organ (+pedal)
}
"""General MIDI program (0-based) of each pitched part, per style."""

FOLK_HIGH_ENERGY_MELODY_PROGRAM = 21
"""Accordion: a lively folk tune is carried by it instead of the flute."""

_MELODY_VELOCITY = {Energy.LOW: 72, Energy.MID: 88, Energy.HIGH: 100}
_CHORD_VELOCITY_SCALE = {Energy.LOW: 0.75, Energy.MID: 0.9, Energy.HIGH: 1.05}
_BASS_VELOCITY_SCALE = {Energy.LOW: 0.85, Energy.MID: 1.0, Energy.HIGH: 1.12}
_DOWNBEAT_ACCENT, _BEAT_ACCENT = 8, 4
"""Melody velocity added on the bar's first beat and on the other beats."""

_DRUM_HIT = 120
"""Length of a drum note in ticks (a sixteenth); drum sounds decay on their own."""


@dataclass(frozen=True)
class ArrangedBar:
    """Everything render knows about one bar, onsets in ticks from the bar start: the
    melody, its chord spans, the chord voicing (``voice_chords``), the bass line
    (``bass_line``) and the lyrics as (onset, syllable) pairs."""

    melody: Bar
    chords: list[ChordSpan]
    voicing: list[Note]
    bass: list[Note]
    lyrics: list[tuple[int, str]] = field(default_factory=list)


def programs_for(style: Style, energy: Energy) -> dict[str, int]:
    """General MIDI program of the ``melody``, ``chords`` and ``bass`` tracks."""
    programs = dict(PROGRAMS[style])
    if style is Style.FOLK and energy is Energy.HIGH:
        programs["melody"] = FOLK_HIGH_ENERGY_MELODY_PROGRAM
    return programs


# --- drums --------------------------------------------------------------------------------


def _beat_groups(beats: int) -> list[int]:
    """How a bar's beats group: twos, a three for triple and odd meters (5 = 3+2,
    7 = 2+2+3). Each group opens with a kick; its other beats take the snare."""
    if beats <= 3:
        return [beats]
    if beats % 2 == 0:
        return [2] * (beats // 2)
    if beats == 5:
        return [3, 2]
    return [2] * ((beats - 3) // 2) + [3]


FAST_TEMPO_BPM = 150.0
"""From this tempo the cymbal keeps to the beats and chords are not re-struck: busier
parts would blur."""
SLOW_TEMPO_BPM = 72.0
"""Below this tempo, mid and high energy cymbals move in sixteenths (simple meters)."""


def drum_pattern(
    meter: Meter,
    *,
    style: Style,
    energy: Energy,
    bar_index: int,
    is_final: bool,
    tempo_bpm: float = 100.0,
) -> list[Note]:
    """General MIDI drum notes (for channel 9) for one bar, onsets in ticks from the bar
    start, sorted. Chorales have no drums (``[]``). Low energy: a soft kick on each beat
    group and a hi-hat on each beat. Mid: kick, snare on the other beats of each group,
    hi-hat (celtic: ride) on every eighth. High: the same, louder, with the cymbal on
    every eighth and a snare pickup before the next bar. ``bar_index`` 0 opens with a
    crash; the final bar is a single kick and crash. Tempo (quarter-note bpm) thins or
    fills the cymbal: beats only from ``FAST_TEMPO_BPM``, sixteenths below
    ``SLOW_TEMPO_BPM``."""
    if style is Style.CHORALE:
        return []
    bar_ticks = meter.bar_ticks
    hit = min(_DRUM_HIT, bar_ticks)
    notes: list[Note] = []
    if bar_index == 0 or is_final:
        notes.append(Note(0, CRASH, min(bar_ticks, 4 * hit), 100 if energy is Energy.HIGH else 88))
    if is_final:
        notes.append(Note(0, KICK, hit, 100))
        return sorted(notes)

    pulse = pulse_ticks(meter)
    beats = max(1, bar_ticks // pulse)
    # Eighths: two per simple beat, three per dotted (compound) beat.
    subdivisions = 3 if is_compound_meter(meter) else 2
    if tempo_bpm >= FAST_TEMPO_BPM:
        subdivisions = 1
    elif tempo_bpm < SLOW_TEMPO_BPM and subdivisions == 2:
        subdivisions = 4
    cymbal = RIDE if style is Style.CELTIC else CLOSED_HAT
    beat = 0
    for group in _beat_groups(beats):
        for position in range(group):
            onset = beat * pulse
            if energy is Energy.LOW:
                if position == 0:
                    notes.append(Note(onset, KICK, hit, 70))
                notes.append(Note(onset, cymbal, hit, 45))
            else:
                loud = energy is Energy.HIGH
                if position == 0:
                    notes.append(Note(onset, KICK, hit, 105 if loud else 90))
                else:
                    # The middle beat of a three-beat group is the lighter "chick".
                    light = group == 3 and position == 1
                    velocity = (85 if loud else 65) if light else (98 if loud else 78)
                    notes.append(Note(onset, SNARE if loud else SIDE_STICK, hit, velocity))
                step = pulse // subdivisions
                for sub in range(subdivisions):
                    velocity = (72 if loud else 60) if sub == 0 else (58 if loud else 48)
                    notes.append(Note(onset + sub * step, cymbal, min(hit, step), velocity))
            beat += 1
    if energy is Energy.HIGH and beats >= 2:
        # A snare pickup on the last eighth leads into the next bar.
        pickup = bar_ticks - pulse // subdivisions
        notes.append(Note(pickup, SNARE, min(hit, bar_ticks - pickup), 70))
    return sorted(notes)


# --- humanisation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Humanise:
    """Humanisation of one piece, seeded by its seed. Per part: the velocity spread
    (standard deviation, MIDI velocity steps) and the micro-timing (mean and standard
    deviation of the delay, ticks; at most ``max_delay_ticks``). At 120 bpm a tick is about
    1 ms, so the default melody lays back by 4 ± 3 ms."""

    seed: int
    velocity_sd: dict[str, float] = field(
        default_factory=lambda: {"melody": 5.0, "chords": 4.0, "bass": 4.0, "drums": 6.0}
    )
    delay_ticks: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "melody": (4.0, 3.0),
            "chords": (6.0, 4.0),  # each chord tone on its own: a slight spread
            "bass": (3.0, 2.0),
            "drums": (2.0, 2.0),
        }
    )
    max_delay_ticks: int = 15


def humanise_bar(
    notes: Sequence[Note], humanise: Humanise, *, part: str, bar_index: int, bar_ticks: int
) -> list[Note]:
    """``notes`` of one bar of ``part`` (onsets from the bar start) with velocity and
    timing humanised; same count and order. Onsets move only later and stay inside the
    bar; ends stay put, and a note keeps at least half its length."""
    rng = random.Random(f"cantus-humanise:{humanise.seed}:{bar_index}:{part}")
    velocity_sd = humanise.velocity_sd.get(part, 0.0)
    mean, sd = humanise.delay_ticks.get(part, (0.0, 0.0))
    out = []
    for note in notes:
        velocity = _clamp_velocity(note.velocity + rng.gauss(0.0, velocity_sd))
        delay = max(0, min(humanise.max_delay_ticks, round(rng.gauss(mean, sd))))
        delay = min(delay, note.duration // 2, max(0, bar_ticks - 1 - note.onset))
        out.append(Note(note.onset + delay, note.pitch, note.duration - delay, velocity))
    return out


# --- tracks -------------------------------------------------------------------------------


def _clamp_velocity(velocity: float) -> int:
    return max(1, min(127, round(velocity)))


def _melody_notes(bar: Bar, offset: int, energy: Energy) -> list[Note]:
    """Melody notes at absolute onsets, velocity from energy plus a metric accent."""
    base = _MELODY_VELOCITY[energy]
    pulse = pulse_ticks(bar.meter)
    notes = []
    for note in bar.notes:
        accent = (
            _DOWNBEAT_ACCENT if note.onset == 0 else _BEAT_ACCENT if note.onset % pulse == 0 else 0
        )
        notes.append(
            Note(offset + note.onset, note.pitch, note.duration, _clamp_velocity(base + accent))
        )
    return notes


def _shifted(notes: Sequence[Note], offset: int, scale: float) -> list[Note]:
    return [
        Note(offset + n.onset, n.pitch, n.duration, _clamp_velocity(n.velocity * scale))
        for n in notes
    ]


def _strummed(notes: Sequence[Note], meter: Meter) -> list[Note]:
    """Chord notes re-struck on every beat they sound through (high-energy guitar),
    lighter off the downbeat; onsets stay relative to the bar."""
    pulse = pulse_ticks(meter)
    strummed = []
    for note in notes:
        start = note.onset
        while start < note.end:
            end = min(note.end, (start // pulse + 1) * pulse)
            velocity = note.velocity if start == 0 else note.velocity * 0.88
            strummed.append(Note(start, note.pitch, end - start, _clamp_velocity(velocity)))
            start = end
    return strummed


def arrange_tracks(
    bars: Sequence[ArrangedBar],
    *,
    style: Style,
    energy: Energy,
    first_index: int = 0,
    total_bars: int | None = None,
    humanise: Humanise | None = None,
    tempo_bpm: float = 100.0,
) -> list[Track]:
    """Exactly four tracks, named ``melody``, ``chords``, ``bass``, ``drums`` (on channels
    0, 1, 2, 9), with notes sorted and onsets in ticks from the start of the first bar
    given (each bar starts where the previous one's ``meter.bar_ticks`` end). The melody
    track carries the lyrics. Chorale drums have no notes.

    ``first_index`` (the piece's bar number of ``bars[0]``) and ``total_bars`` (the
    piece's length; default: these bars end the piece) place a segment within its piece,
    so only the piece's own first bar gets the opening crash and its last bar the final
    hit. ``humanise`` (default: none) humanises every part (see the module docstring).
    ``tempo_bpm`` shapes the busy parts (see ``drum_pattern``; no chord re-strikes from
    ``FAST_TEMPO_BPM``)."""
    total = total_bars if total_bars is not None else first_index + len(bars)
    programs = programs_for(style, energy)
    restrike = energy is Energy.HIGH and style is not Style.CHORALE and tempo_bpm < FAST_TEMPO_BPM
    melody: list[Note] = []
    chords: list[Note] = []
    bass: list[Note] = []
    drums: list[Note] = []
    lyrics: list[tuple[int, str]] = []
    offset = 0
    for index, bar in enumerate(bars):
        meter = bar.melody.meter
        bar_index = first_index + index
        voicing = _strummed(bar.voicing, meter) if restrike else bar.voicing
        pattern = drum_pattern(
            meter,
            style=style,
            energy=energy,
            bar_index=bar_index,
            is_final=bar_index == total - 1,
            tempo_bpm=tempo_bpm,
        )
        parts = {
            "melody": _melody_notes(bar.melody, 0, energy),
            "chords": _shifted(voicing, 0, _CHORD_VELOCITY_SCALE[energy]),
            "bass": _shifted(bar.bass, 0, _BASS_VELOCITY_SCALE[energy]),
            "drums": list(pattern),
        }
        if humanise is not None:
            parts = {
                part: humanise_bar(
                    notes, humanise, part=part, bar_index=bar_index, bar_ticks=meter.bar_ticks
                )
                for part, notes in parts.items()
            }
        melody += _shifted(parts["melody"], offset, 1.0)
        chords += _shifted(parts["chords"], offset, 1.0)
        bass += _shifted(parts["bass"], offset, 1.0)
        drums += _shifted(parts["drums"], offset, 1.0)
        lyrics += [(offset + tick, syllable) for tick, syllable in bar.lyrics]
        offset += meter.bar_ticks
    return [
        Track("melody", programs["melody"], MELODY_CHANNEL, sorted(melody), sorted(lyrics)),
        Track("chords", programs["chords"], CHORDS_CHANNEL, sorted(chords)),
        Track("bass", programs["bass"], BASS_CHANNEL, sorted(bass)),
        Track("drums", 0, DRUMS_CHANNEL, sorted(drums)),
    ]
