"""Arrangement: the parts of a piece (melody, chords, bass, drums; a pad and a colour part
with a form plan) as MIDI tracks.

Bars arrive as ``ArrangedBar``s with onsets counted from each bar's start; the tracks
count from the start of the first bar given. A palette (``cantus.render.palettes``;
default: the style's band) gives every part its General MIDI instrument, the percussion
and the accompaniment patterns (``cantus.render.patterns``); each meter and energy has a
drum pattern (``drum_pattern``), and energy shapes the velocities: soft and sustained at
low energy, accented and re-strummed at high. Every pitched part stays under the melody
(``under_melody``): the tune is the top voice.

Humanisation (``Humanise``, on when ``arrange_tracks`` gets one) makes the parts sound
played rather than sequenced: each note's velocity moves by a few steps and its onset
comes up to a few ticks late (``humanise_bar``). It is deterministic and bar-local: the
random stream of a note depends only on (piece seed, bar index, part, note's place in
the bar), so arranging a piece segment by segment gives exactly the notes of arranging
it whole. Onsets only ever move later, never past their bar's end, and a note's end stays
put, so no note leaves its bar or starts to overlap another.

A piece with a form plan is arranged section by section (``section_arrangements``): each
section gets a role, and with it the parts that play, an energy (drum pattern, chord
re-strikes, velocities), a dynamics factor on every velocity and an accompaniment pattern.
A pickup bar is played as a short intro: the pad and the bass hold its chord under the
tune's upbeat, as a band vamps a bar before a dance tune comes in (the piece does not open
on a bar of silence), and the band comes in on the downbeat after it. An intro is thin
(melody, the palette's pad and bass), the first statement has the band, a contrasting
section (B, a bridge) changes colour (the palette's colour instrument takes the
accompaniment in its contrast pattern: a folk bridge on accordion, a celtic one on harp, a
chorale's on strings), a return is fuller than the statement it returns to (louder, at its
energy or the plan's own for it, never a level above: a piece asked at mid energy plays
mid, #17), the last return is the fullest (every part, pad and colour added, the loudest,
at the highest energy of the sections before it) and an outro thins out again. The last bar
of a section that another follows leads into it: a drum fill over its last beat (or two)
where drums play, else a rising pickup figure on the accompaniment, and the new section
opens with a crash. The final bar holds its last chord and note for ``fermata_ticks`` past
the barline (with the closing ritardando of ``cantus.render.tempo``), so the piece ends on
a held tonic rather than a cut (a tune on an instrument that sustains, a fiddle, a flute or
a choir, holds its last note softer: ``HELD_FINAL_VELOCITY``). All of it is decided per bar
from the plan, so segments still arrange exactly as the whole piece.

Articulation (``articulated``): a palette that bows, sings or breathes its tune
(``Palette.legato``: strings, choir, pads) ties each melody note into the next; otherwise
the style's ``STYLE_ARTICULATION`` shortens the quick notes (a folk tune's a little, a jig's
or reel's more: lighter, bouncing). A section's last beat or two also broadens in tempo
(``cantus.render.tempo.broadened_at_cadences``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cantus.harmony.rules import ChordSpan, is_compound_meter, pulse_ticks
from cantus.music.form import FormPlan, Section, Treatment
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Meter, Note, Track
from cantus.music.styles import Energy, Style
from cantus.render.grooves import FOLK_GROOVES, groove_bar
from cantus.render.palettes import (
    ARPEGGIO,
    BALLAD,
    BLOCK,
    BODHRAN,
    STRUM,
    STYLE_BANDS,
    WALTZ,
    Palette,
    get_palette,
)
from cantus.render.patterns import (
    BROKEN,
    pattern_for,
    pedalled,
    play,
    restruck,
    tied,
    upstroked,
)

MELODY_CHANNEL, CHORDS_CHANNEL, BASS_CHANNEL, DRUMS_CHANNEL = 0, 1, 2, 9
"""MIDI channels (0-based) of the four tracks; 9 is the General MIDI drum channel."""
PAD_CHANNEL = 3
"""MIDI channel of the pad, the fifth track of a piece with a form plan."""
COLOUR_CHANNEL = 4
"""MIDI channel of the colour part (a contrasting section's accompaniment), the sixth."""

KICK, SIDE_STICK, SNARE, CLOSED_HAT, CRASH, RIDE = 36, 37, 38, 42, 49, 51
"""General MIDI drum keys used by the patterns."""
LOW_TOM, MID_TOM, HIGH_TOM = 43, 47, 50
"""General MIDI toms of the fills."""

PROGRAMS: dict[Style, dict[str, int]] = {
    Style.FOLK: {"melody": 73, "chords": 24, "bass": 32},  # flute, nylon guitar, acoustic bass
    Style.CELTIC: {"melody": 40, "chords": 25, "bass": 32},  # fiddle, steel guitar, acoustic bass
    Style.CHORALE: {"melody": 52, "chords": 19, "bass": 19},  # choir aahs, church organ (+pedal)
}
"""General MIDI program (0-based) of each pitched part, per style."""

FOLK_HIGH_ENERGY_MELODY_PROGRAM = 21
"""Accordion: a lively folk tune is carried by it instead of the flute."""

PAD_PROGRAM = 48
"""String ensemble: the pad of a planned piece (intro, outro, the last return; a chorale's
contrasting section)."""
_PAD_VELOCITY_SCALE = 0.7

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


def style_band(style: Style) -> Palette:
    """The palette of ``style``'s own band (what a piece gets without a palette)."""
    return get_palette(STYLE_BANDS[style])


BODHRAN_KEYS = {KICK: 64, SIDE_STICK: 63, SNARE: 63, CLOSED_HAT: 62, RIDE: 62}
"""A bodhrán from General MIDI hand drums: the kit's kick becomes the low conga (the
drum's open bass tone), snare strokes the open high conga, the cymbal's eighths the muted
high conga (the tipper's light strokes); crashes have no place on a frame drum."""


def as_bodhran(notes: Sequence[Note]) -> list[Note]:
    """Kit notes played on the bodhrán-like frame drum (``BODHRAN_KEYS``; toms kept)."""
    return sorted(
        Note(n.onset, BODHRAN_KEYS.get(n.pitch, n.pitch), n.duration, n.velocity)
        for n in notes
        if n.pitch != CRASH
    )


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
GROOVE_VELOCITY = {Energy.LOW: 0.7, Energy.MID: 0.85, Energy.HIGH: 1.0}
"""An MMA groove's volumes (its loudest hit 100) to velocities, by energy."""
BALLAD_TEMPO_BPM = 84.0
"""Below this tempo a calm piece's broken chords are played as a ballad (``_accompaniment``)."""
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
    """General MIDI drum notes (for channel 9) for one bar, onsets in ticks from the bar start,
    sorted. Chorales have no drums (``[]``). ``bar_index`` 0 opens with a crash; the final bar
    is a single kick and crash. A folk waltz at mid or high energy plays the MMA groove
    ``cantus.render.grooves.FOLK_GROOVES`` names (Waltz, CountryWaltz), bar by bar. Otherwise:
    at low energy a soft kick on each beat group and a hihat on each beat. Mid: kick, snare on
    the other beats of each group, hihat (celtic: ride) on every eighth. High: the same, louder,
    with the cymbal on every eighth, the last group of two beats' kick doubled on its off-beat
    (boom-boom, chick) and a snare pickup before the next bar. Tempo (quarter-note bpm) thins or
    fills the cymbal: beats only from ``FAST_TEMPO_BPM``, sixteenths below ``SLOW_TEMPO_BPM``."""
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
    groove = FOLK_GROOVES.get((str(meter), energy.value)) if style is Style.FOLK else None
    if groove is not None and tempo_bpm < FAST_TEMPO_BPM:
        # the folk band's kit plays an MMA groove where one fits its meter and energy
        return sorted(notes + groove_bar(groove, meter, bar_index, GROOVE_VELOCITY[energy]))

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
    groups = _beat_groups(beats)
    for group in groups:
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
    if energy is Energy.HIGH and subdivisions > 1 and groups[-1] == 2:
        # The last group's kick doubled on its off-beat (boom-boom, chick): the drive.
        push = (beats - 2) * pulse + (pulse * 2 // 3 if subdivisions == 3 else pulse // 2)
        notes.append(Note(push, KICK, min(hit, bar_ticks - push), 92))
    if energy is Energy.HIGH and beats >= 2:
        # A snare pickup on the last eighth leads into the next bar.
        pickup = bar_ticks - pulse // subdivisions
        notes.append(Note(pickup, SNARE, min(hit, bar_ticks - pickup), 70))
    return sorted(notes)


def drum_fill(meter: Meter, *, energy: Energy, tempo_bpm: float = 100.0) -> tuple[int, list[Note]]:
    """A fill that leads into the next section: (the tick it starts, its notes), over the
    bar's last beat (its last two at high energy in bars of four or more beats): snare
    strokes, then toms falling high to low, getting louder, a kick under the first stroke.
    Strokes are sixteenths in simple meters (eighths from ``FAST_TEMPO_BPM``), eighths in
    compound ones."""
    bar_ticks = meter.bar_ticks
    pulse = pulse_ticks(meter)
    beats = max(1, bar_ticks // pulse)
    span = pulse * (2 if energy is Energy.HIGH and beats >= 4 else 1)
    span = min(span, bar_ticks)
    start = bar_ticks - span
    if is_compound_meter(meter):
        step = pulse // 3
    else:
        step = pulse // (2 if tempo_bpm >= FAST_TEMPO_BPM else 4)
    step = max(1, min(step, span))
    onsets = list(range(start, bar_ticks, step))
    low, high = {Energy.LOW: (50, 80), Energy.MID: (65, 100), Energy.HIGH: (80, 118)}[energy]
    toms = (HIGH_TOM, MID_TOM, LOW_TOM)
    snares = max(1, len(onsets) // 2)
    notes = [Note(start, KICK, min(_DRUM_HIT, bar_ticks - start), high - 10)]
    for index, onset in enumerate(onsets):
        if index < snares:
            drum = SNARE
        else:
            drum = toms[min(len(toms) - 1, (index - snares) * len(toms) // (len(onsets) - snares))]
        velocity = low + (high - low) * index // max(1, len(onsets) - 1)
        notes.append(Note(onset, drum, min(_DRUM_HIT, step, bar_ticks - onset), velocity))
    return start, sorted(notes)


# --- sections of a form plan ---------------------------------------------------------------

PARTS = ("melody", "chords", "bass", "drums")
"""The parts of every piece; a piece with a form plan adds ``pad`` and ``colour``."""
PLANNED_PARTS = (*PARTS, "pad", "colour")
ACCOMPANYING_PARTS = ("chords", "bass", "pad", "colour")
"""Pitched parts under the melody (``under_melody`` keeps them there)."""
MAIN_LABELS = frozenset({"verse", "chorus"})
"""Labels of sections that are stated rather than contrasted (in a verse-chorus form)."""

ROLE_DYNAMICS = {
    "pickup": 0.8,
    "intro": 0.8,
    "outro": 0.8,
    "statement": 0.92,
    "contrast": 0.96,
    "return": 1.0,
    "climax": 1.08,
}
"""Velocity factor of each section role: a return plays louder than the statement it
returns to, the last return loudest."""


@dataclass(frozen=True)
class SectionArrangement:
    """How the band plays one section: its ``role`` (intro, statement, contrast, return,
    climax, outro), the ``energy`` that sets the drum pattern, chord re-strikes and the
    velocities, a ``dynamics`` factor on every velocity, the ``parts`` that play and the
    accompaniment pattern (``cantus.render.patterns``) of the part that accompanies:
    ``chords``, or in a contrasting section ``colour``."""

    role: str
    energy: Energy
    dynamics: float
    parts: frozenset[str]
    accompaniment: str = BLOCK


_ENERGY_RANK = {Energy.LOW: 0, Energy.MID: 1, Energy.HIGH: 2}


def _role(plan: FormPlan, index: int, last_return: int | None) -> str:
    section = plan.sections[index]
    label = section.label.lower().rstrip("'")
    if section.treatment is Treatment.PICKUP:
        return "pickup"
    if label == "intro":
        return "intro"
    if label == "outro":
        return "outro"
    if section.source is not None:
        return "climax" if index == last_return else "return"
    if index in plan.opening_strain() or label in MAIN_LABELS:
        return "statement"  # the theme, and a phrase that answers it inside its first strain
    return "contrast"  # B, C, a bridge: the sections that contrast with the main one


def _source_of(plan: FormPlan, section: Section) -> int | None:
    """The section a return reuses, or the first section with its label without primes."""
    if section.source is not None:
        return section.source
    base = section.label.rstrip("'")
    for index, other in enumerate(plan.sections):
        if other.label == base and other is not section:
            return index
    return None


def section_arrangements(
    plan: FormPlan, style: Style, palette: Palette | None = None
) -> list[SectionArrangement]:
    """The arrangement of each section of ``plan`` (see the module docstring) in
    ``palette`` (default: the style's band)."""
    palette = palette or style_band(style)
    returns = [i for i, s in enumerate(plan.sections) if s.source is not None]
    last_return = returns[-1] if returns else None
    drums = palette.has_drums
    out: list[SectionArrangement] = []
    for index, section in enumerate(plan.sections):
        role = _role(plan, index, last_return)
        energy = section.energy
        parts = {"melody", "chords", "bass"} | ({"drums"} if drums else set())
        accompaniment = palette.accompaniment
        if role in ("pickup", "intro", "outro"):
            energy = Energy.LOW
            parts = {"melody", "pad", "bass"}
        elif role == "contrast":
            # Another colour: the palette's colour instrument takes the accompaniment.
            parts = (parts - {"chords"}) | {"colour"}
            accompaniment = palette.contrast
        elif role in ("return", "climax"):
            # A return plays at least its source's energy; it builds by dynamics (and the
            # last one by parts), not a level up: a piece asked at one energy plays it.
            source = _source_of(plan, section)
            if source is not None and source < index:
                energy = max(energy, out[source].energy, key=_ENERGY_RANK.__getitem__)
            if role == "climax":
                energy = max([energy, *(a.energy for a in out)], key=_ENERGY_RANK.__getitem__)
                parts = parts | {"pad", "colour"}
        out.append(
            SectionArrangement(role, energy, ROLE_DYNAMICS[role], frozenset(parts), accompaniment)
        )
    return out


ENERGY_LEVEL_DB = {Energy.LOW: -2.0, Energy.MID: 0.0, Energy.HIGH: 1.5}
ROLE_LEVEL_DB = {
    "pickup": -4.0,
    "intro": -4.0,
    "outro": -4.0,
    "statement": -1.0,
    "contrast": -0.5,
    "return": 0.5,
    "climax": 1.0,
}
"""How loud a section's arrangement sounds against an average one, dB, by its energy plus
its role (fitted to the one-gain loudness of rendered sections: a thin low intro about 6 dB
under the piece, a high-energy last return about 2.5 dB over it)."""


def section_levels_db(
    plan: FormPlan,
    style: Style,
    palette: Palette | None = None,
    bar_seconds: Sequence[float] | None = None,
) -> list[float]:
    """Each section's planned loudness relative to the whole piece, dB: ``ENERGY_LEVEL_DB``
    plus ``ROLE_LEVEL_DB`` (times the palette's ``level_contrast``: a solo instrument
    grows less from intro to last chorus than a band), less their power mean over the
    piece (so a piece mastered to a target with these levels kept lands on it). The mean
    weighs each bar by ``bar_seconds`` (how long each bar of the plan lasts) where given,
    else each bar alike: a loudness meter weighs by time, and a short piece's slowed last
    bars outlast its pickup bar two to three times."""
    contrast = palette.level_contrast if palette is not None else 1.0
    arrangements = section_arrangements(plan, style, palette)
    raw = [contrast * (ENERGY_LEVEL_DB[a.energy] + ROLE_LEVEL_DB[a.role]) for a in arrangements]
    weights = _section_weights(plan, bar_seconds)
    mean = 10.0 * math.log10(
        sum(weight * 10.0 ** (level / 10.0) for weight, level in zip(weights, raw, strict=True))
        / sum(weights)
    )
    return [level - mean for level in raw]


def _section_weights(plan: FormPlan, bar_seconds: Sequence[float] | None) -> list[float]:
    """Each section's weight in the piece's mean level: its bars, or their seconds."""
    if bar_seconds is None:
        return [float(section.bars) for section in plan.sections]
    if len(bar_seconds) != plan.total_bars:
        raise ValueError(f"{len(bar_seconds)} bar durations for a {plan.total_bars}-bar plan")
    return [sum(bar_seconds[section.first_bar : section.end_bar]) for section in plan.sections]


def segment_level_db(
    plan: FormPlan | None,
    style: Style,
    first: int,
    count: int,
    palette: Palette | None = None,
    bar_seconds: Sequence[float] | None = None,
) -> float:
    """The planned loudness (``section_levels_db``) of bars ``first`` .. ``first + count -
    1``, their power mean (weighed by ``bar_seconds`` where given), dB; 0 without a plan
    (what ``StreamingMaster.process`` takes)."""
    if plan is None or count < 1:
        return 0.0
    levels = section_levels_db(plan, style, palette, bar_seconds)
    bars = range(first, min(first + count, plan.total_bars))
    if not bars:
        return 0.0
    weights = [1.0 if bar_seconds is None else bar_seconds[bar] for bar in bars]
    power = sum(
        weight * 10.0 ** (levels[plan.section_index(bar)] / 10.0)
        for weight, bar in zip(weights, bars, strict=True)
    )
    return 10.0 * math.log10(power / sum(weights))


@dataclass(frozen=True)
class BarArrangement:
    """What one bar plays: its section's arrangement, whether it opens a section (a crash),
    leads into the next one (a fill or pickup) and ends the piece (the final chord held),
    and its ``swell``: the phrase's dynamics, a factor on every velocity."""

    section: SectionArrangement
    opens_section: bool = False
    leads_in: bool = False
    is_final: bool = False
    swell: float = 1.0


PHRASE_SWELL = 0.06
"""A section is a phrase ending in its cadence: its velocities rise from 1 - this at its
first bar to 1 + this at its cadence bar, and the next phrase starts soft again."""


def phrase_swell(position: int, bars: int) -> float:
    """The velocity factor of bar ``position`` (0-based) of a ``bars``-bar phrase."""
    if bars < 2:
        return 1.0
    return 1.0 + PHRASE_SWELL * (2.0 * position / (bars - 1) - 1.0)


def bar_arrangements(
    plan: FormPlan, style: Style, palette: Palette | None = None
) -> list[BarArrangement]:
    """One ``BarArrangement`` per bar of ``plan``."""
    sections = section_arrangements(plan, style, palette)
    out = []
    for index, section in enumerate(plan.sections):
        for bar in range(section.first_bar, section.end_bar):
            out.append(
                BarArrangement(
                    sections[index],
                    opens_section=bar == section.first_bar and bar > 0,
                    leads_in=bar == section.end_bar - 1
                    and index + 1 < len(plan.sections)
                    and section.treatment is not Treatment.PICKUP,
                    is_final=bar == plan.total_bars - 1,
                    swell=phrase_swell(bar - section.first_bar, section.bars),
                )
            )
    return out


def fermata_ticks(meter: Meter) -> int:
    """How long the final chord is held past the last barline: half a bar, at least a beat."""
    return max(meter.bar_ticks // 2, pulse_ticks(meter))


HELD_FINAL_VELOCITY = 0.8
"""The velocity factor of the tune's final note on an instrument that sustains
(``sustains``): the bowed or blown note held through the fermata rings at full level, at
its phrase's swell and the downbeat's accent, where the tune's quick notes never reached
it. A jig's final fiddle note sounded 4-6 dB over the tune (momentary loudness -9 against
-12 to -15 LUFS); a legato line too, though it was sustained all along: the held second
after the barline sat level with or over the last phrase in the strings, harp-flute,
chorale and therapy palettes (+0.2 to +0.7 LU on average; 0.7-2.0 LU under it, softer;
session 30, ``docs/results/form_render.md``). Struck or plucked notes die
away by themselves and keep their accent, as does every accompanying part (scaled too, the
pads and chords made ambient and chorale endings too quiet)."""


def sustains(program: int) -> bool:
    """Whether General MIDI ``program`` (0-based) keeps its level while a note is held:
    organs and accordions, bowed strings, choirs, brass, reeds, pipes, synth leads and
    pads; a struck or plucked note (piano, guitar, bass, harp, pizzicato) dies away."""
    return 16 <= program <= 23 or 40 <= program <= 44 or 48 <= program <= 54 or 56 <= program <= 95


def _held(
    notes: Sequence[Note], bar_ticks: int, extra: int, *, velocity_scale: float = 1.0
) -> list[Note]:
    """``notes`` with those starting at the part's last onset held to ``extra`` ticks past
    the barline (the final chord, the last note), their velocities times
    ``velocity_scale``."""
    if not notes:
        return list(notes)
    last = max(n.onset for n in notes)
    end = bar_ticks + extra
    return [
        Note(n.onset, n.pitch, end - n.onset, _clamp_velocity(n.velocity * velocity_scale))
        if n.onset == last
        else n
        for n in notes
    ]


def _rising(base: int, pitch_classes: frozenset[int], count: int) -> list[int]:
    """``count`` pitches from ``base`` up through the chord tones ``pitch_classes``."""
    pitches = [base]
    while len(pitches) < count:
        pitch = pitches[-1] + 1
        while pitch % 12 not in pitch_classes:
            pitch += 1
        pitches.append(pitch)
    return pitches


def _pickup(notes: Sequence[Note], chord: ChordSpan | None, meter: Meter) -> list[Note]:
    """``notes`` with their last beat replaced by a figure rising through the tones of the
    bar's last ``chord`` from the lowest note sounding there (a pickup into the next
    section): three notes in compound meters, four (two for beats under a quarter) in
    simple ones."""
    bar_ticks = meter.bar_ticks
    pulse = pulse_ticks(meter)
    start = bar_ticks - pulse
    sounding = [n for n in notes if n.onset <= start < n.end]
    if not sounding or chord is None:
        return list(notes)
    count = 3 if is_compound_meter(meter) else (4 if pulse >= 480 else 2)
    step = pulse // count
    velocity = max(n.velocity for n in sounding)
    pitch_classes = frozenset(chord.symbol.pitch_classes) | {min(n.pitch for n in sounding) % 12}
    figure = _rising(min(n.pitch for n in sounding), pitch_classes, count)
    kept = [
        Note(n.onset, n.pitch, min(n.duration, start - n.onset), n.velocity)
        for n in notes
        if n.onset < start
    ]
    rising = [
        Note(start + i * step, pitch, step, _clamp_velocity(velocity * (0.8 + 0.1 * i)))
        for i, pitch in enumerate(figure)
        if pitch <= 127
    ]
    return sorted(kept + rising)


# --- humanisation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Humanise:
    """Humanisation of one piece, seeded by its seed. Per part: the velocity spread
    (standard deviation, MIDI velocity steps) and the micro-timing (mean and standard
    deviation of the delay, ticks; at most ``max_delay_ticks``). At 120 bpm a tick is about
    1 ms, so the default melody lays back by 4 ± 3 ms."""

    seed: int
    velocity_sd: dict[str, float] = field(
        default_factory=lambda: {
            "melody": 5.0,
            "chords": 4.0,
            "bass": 4.0,
            "drums": 6.0,
            "pad": 3.0,
        }
    )
    delay_ticks: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "melody": (4.0, 3.0),
            "chords": (6.0, 4.0),  # each chord tone on its own: a slight spread
            "bass": (3.0, 2.0),
            "drums": (2.0, 2.0),
            "pad": (8.0, 4.0),  # strings speak late
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


def under_melody(notes: Sequence[Note], melody: Sequence[Note], *, floor: int) -> list[Note]:
    """``notes`` of an accompanying part kept under the melody: a note that would sound at
    or above a melody note it overlaps moves down by octaves until it is below the lowest
    of them; one that would fall under ``floor`` is left out (the voicing's other notes
    carry the chord), as is a note that lands on a pitch already struck at its onset.
    The voicing already sits under the tune (``cantus.harmony.voicing``); this catches
    what patterns, pickups and a tune dipping low bring back up."""
    out: list[Note] = []
    struck: set[tuple[int, int]] = set()
    for note in notes:
        over = [m.pitch for m in melody if m.onset < note.end and m.end > note.onset]
        pitch = note.pitch
        if over:
            ceiling = min(over)
            while pitch >= ceiling:
                pitch -= 12
        if pitch < floor or (note.onset, pitch) in struck:
            continue
        struck.add((note.onset, pitch))
        out.append(Note(note.onset, pitch, note.duration, note.velocity))
    return out


CHORD_FLOOR, BASS_FLOOR = 36, 28
"""Lowest pitches ``under_melody`` moves chord notes (C2) and bass notes (E1) down to."""


def arrange_tracks(
    bars: Sequence[ArrangedBar],
    *,
    style: Style,
    energy: Energy,
    first_index: int = 0,
    total_bars: int | None = None,
    humanise: Humanise | None = None,
    tempo_bpm: float = 100.0,
    form: FormPlan | None = None,
    palette: Palette | None = None,
) -> list[Track]:
    """Four tracks, named ``melody``, ``chords``, ``bass``, ``drums`` (on channels 0, 1, 2,
    9), and with a form plan two more, ``pad`` (channel 3) and ``colour`` (channel 4),
    with notes sorted and onsets in ticks from the start of the first bar given (each bar
    starts where the previous one's ``meter.bar_ticks`` end). The melody track carries the
    lyrics. A palette without percussion leaves the drums without notes. Every pitched
    part sounds under the melody (``under_melody``).

    ``first_index`` (the piece's bar number of ``bars[0]``) and ``total_bars`` (the
    piece's length; default: these bars end the piece) place a segment within its piece,
    so only the piece's own first bar gets the opening crash and its last bar the final
    hit. ``humanise`` (default: none) humanises every part (see the module docstring).
    ``tempo_bpm`` shapes the busy parts (see ``drum_pattern``; no chord re-strikes from
    ``FAST_TEMPO_BPM``). ``form`` (the piece's plan, covering ``total_bars``) arranges it
    section by section (see the module docstring); without one every bar is played alike
    at ``energy``. ``palette`` (``cantus.render.palettes``; default: the style's band)
    sets the instruments, percussion, patterns and overall dynamics."""
    palette = palette or style_band(style)
    total = total_bars if total_bars is not None else first_index + len(bars)
    programs = palette.programs(energy)
    planned = bar_arrangements(form, style, palette) if form is not None else None
    unplanned = BarArrangement(
        SectionArrangement("piece", energy, 1.0, frozenset(PARTS), palette.accompaniment)
    )
    names = list(PLANNED_PARTS) if planned is not None else list(PARTS)
    notes: dict[str, list[Note]] = {name: [] for name in names}
    lyrics: list[tuple[int, str]] = []
    offset = 0
    for index, bar in enumerate(bars):
        meter = bar.melody.meter
        bar_index = first_index + index
        arrangement = unplanned
        if planned is not None and bar_index < len(planned):
            arrangement = planned[bar_index]
        parts = _bar_parts(
            bar,
            arrangement,
            style=style,
            palette=palette,
            bar_index=bar_index,
            is_final=bar_index == total - 1,
            tempo_bpm=tempo_bpm,
            piece_energy=energy,
        )
        if humanise is not None:
            parts = {
                part: humanise_bar(
                    part_notes, humanise, part=part, bar_index=bar_index, bar_ticks=meter.bar_ticks
                )
                for part, part_notes in parts.items()
            }
        for part, part_notes in parts.items():
            notes[part] += _shifted(part_notes, offset, 1.0)
        lyrics += [(offset + tick, syllable) for tick, syllable in bar.lyrics]
        offset += meter.bar_ticks
    tracks = [
        Track(
            "melody", programs["melody"], MELODY_CHANNEL, sorted(notes["melody"]), sorted(lyrics)
        ),
        Track("chords", programs["chords"], CHORDS_CHANNEL, sorted(notes["chords"])),
        Track("bass", programs["bass"], BASS_CHANNEL, sorted(notes["bass"])),
        Track("drums", 0, DRUMS_CHANNEL, sorted(notes["drums"])),
    ]
    if planned is not None:
        tracks.append(Track("pad", programs["pad"], PAD_CHANNEL, sorted(notes["pad"])))
        tracks.append(Track("colour", programs["colour"], COLOUR_CHANNEL, sorted(notes["colour"])))
    return tracks


def _accompaniment(
    voicing: Sequence[Note],
    pattern: str,
    meter: Meter,
    *,
    energy: Energy,
    tempo_bpm: float,
    restrike: bool,
    pedal: bool = False,
) -> list[Note]:
    """The bar's voicing played in ``pattern``, by meter and energy where ``restrike`` (a
    band): a block chord in a simple bar of two or three beats above low energy becomes an
    oom-pah (a march) or oom-pah-pah (a waltz), at high energy strummed (an upstroke on
    the top strings after each chord: oom-pah-a); elsewhere it is re-struck on every beat
    at high energy (a strum; a jig's in compound meters). Without ``restrike`` (an organ)
    block chords are held, and at high energy re-struck on every beat (marcato). Nothing
    is re-struck from ``FAST_TEMPO_BPM``. A calm piece (low energy) under
    ``BALLAD_TEMPO_BPM`` plays broken chords (an arpeggio) as a ballad: the low note of each
    chord held under the others."""
    beats = meter.bar_ticks // pulse_ticks(meter)
    fast = tempo_bpm >= FAST_TEMPO_BPM
    if pattern == ARPEGGIO and energy is Energy.LOW and tempo_bpm < BALLAD_TEMPO_BPM:
        pattern = BALLAD
    if pattern == BLOCK and restrike and energy is not Energy.LOW:
        if beats in (2, 3) and not is_compound_meter(meter):
            pattern = WALTZ
        elif energy is Energy.HIGH:
            pattern = STRUM
    if pattern == STRUM and fast:
        pattern = BLOCK
    if pattern == BLOCK and not restrike and energy is Energy.HIGH and not fast:
        return restruck(voicing, meter)
    played = play(pattern, voicing, meter)
    if restrike and energy is Energy.HIGH and not fast and pattern_for(pattern, meter) == WALTZ:
        return upstroked(played, meter)
    if pedal and pattern_for(pattern, meter) in BROKEN:
        return pedalled(played, voicing)
    return played


def _bass(
    bass: Sequence[Note], meter: Meter, style: Style, energy: Energy, tempo_bpm: float
) -> list[Note]:
    """The bar's bass line as played: a chorale's pedal, one note a chord, is re-struck on
    every beat at high energy with its chords (marcato); a band's bass line already moves
    with the energy (``cantus.harmony.voicing.bass_line``)."""
    if style is Style.CHORALE and energy is Energy.HIGH and tempo_bpm < FAST_TEMPO_BPM:
        return restruck(bass, meter)
    return list(bass)


def _bar_parts(
    bar: ArrangedBar,
    arrangement: BarArrangement,
    *,
    style: Style,
    palette: Palette,
    bar_index: int,
    is_final: bool,
    tempo_bpm: float,
    piece_energy: Energy,
) -> dict[str, list[Note]]:
    """The notes of every part of one bar (onsets from the bar start), before humanising.
    An unplanned bar has the four parts at dynamics 1 and no section events (no pad or
    colour, fills or pickups); planned or not, the palette's patterns and balance apply
    and every accompanying part is kept under the melody."""
    section = arrangement.section
    energy, playing = section.energy, section.parts
    dynamics = section.dynamics * palette.dynamics * arrangement.swell
    meter = bar.melody.meter
    accompaniment = _accompaniment(
        bar.voicing,
        section.accompaniment,
        meter,
        energy=energy,
        tempo_bpm=tempo_bpm,
        restrike=style is not Style.CHORALE,
        pedal=palette.pedal,
    )
    drums: list[Note] = []
    if palette.has_drums:
        drums = drum_pattern(
            meter,
            style=style,
            energy=energy,
            bar_index=bar_index,
            is_final=is_final,
            tempo_bpm=tempo_bpm,
        )
    chord_scale = _CHORD_VELOCITY_SCALE[energy] * dynamics
    bass_scale = _BASS_VELOCITY_SCALE[energy] * dynamics
    parts = {
        "melody": _melody_notes(bar.melody, 0, energy),
        "chords": _shifted(accompaniment, 0, chord_scale),
        "bass": _shifted(_bass(bar.bass, meter, style, energy, tempo_bpm), 0, bass_scale),
        "drums": list(drums),
    }
    if dynamics != 1.0:
        parts["melody"] = _shifted(parts["melody"], 0, dynamics)
        parts["drums"] = _shifted(parts["drums"], 0, dynamics)
    if section.role != "piece":
        parts["pad"] = _shifted(tied(bar.voicing), 0, _PAD_VELOCITY_SCALE * dynamics)
        colour = []
        if "colour" in playing:
            colour = _accompaniment(
                bar.voicing,
                palette.contrast,
                meter,
                energy=energy,
                tempo_bpm=tempo_bpm,
                restrike=style is not Style.CHORALE,
                pedal=palette.pedal,
            )
        # Beside the chords (the last return) the colour is a second, lighter layer.
        colour_scale = chord_scale * (0.75 if "chords" in playing else 1.0)
        parts["colour"] = _shifted(colour, 0, colour_scale)
        final_hit = is_final and "drums" not in playing  # the last bar's crash still closes
        parts = {
            name: part_notes
            if name in playing or (name == "drums" and final_hit and palette.has_drums)
            else []
            for name, part_notes in parts.items()
        }
        has_drums = bool(parts["drums"]) and not is_final
        if (
            arrangement.opens_section
            and has_drums
            and not any(n.pitch == CRASH for n in parts["drums"])
        ):
            parts["drums"].append(Note(0, CRASH, min(meter.bar_ticks, 4 * _DRUM_HIT), 92))
        if arrangement.leads_in and not is_final:
            if has_drums:
                start, fill = drum_fill(meter, energy=energy, tempo_bpm=tempo_bpm)
                kept = [n for n in parts["drums"] if n.onset < start]
                parts["drums"] = kept + _shifted(fill, 0, dynamics)
            else:
                lead = next((name for name in ("chords", "colour") if parts[name]), "bass")
                chord = bar.chords[-1] if bar.chords else None
                parts[lead] = _pickup(parts[lead], chord, meter)
        if is_final:
            hold = fermata_ticks(meter)
            softer = sustains(palette.programs(piece_energy)["melody"])
            for name in ("melody", "chords", "bass", "pad", "colour"):
                scale = HELD_FINAL_VELOCITY if softer and name == "melody" else 1.0
                parts[name] = _held(parts[name], meter.bar_ticks, hold, velocity_scale=scale)
    if palette.melody_scale != 1.0:
        parts["melody"] = _shifted(parts["melody"], 0, palette.melody_scale)
    if palette.accompaniment_scale != 1.0:
        for name in ACCOMPANYING_PARTS:
            if name in parts:
                parts[name] = _shifted(parts[name], 0, palette.accompaniment_scale)
    if palette.percussion == BODHRAN:
        parts["drums"] = as_bodhran(parts["drums"])
    melody = parts["melody"]
    for name in ACCOMPANYING_PARTS:
        if name in parts:
            floor = BASS_FLOOR if name == "bass" else CHORD_FLOOR
            parts[name] = under_melody(parts[name], melody, floor=floor)
    if not is_final:  # the final bar's notes are held (a fermata), not articulated
        # after under_melody, which keeps the parts under the tune's written lengths
        parts["melody"] = articulated(melody, meter, style=style, legato=palette.legato)
    return {name: sorted(part_notes) for name, part_notes in parts.items()}


STYLE_ARTICULATION: dict[Style, float] = {Style.FOLK: 0.85, Style.CELTIC: 0.7, Style.CHORALE: 1.0}
"""Share of its written length a melody note shorter than a beat sounds, per style: a
chorale's line is legato, a folk tune's quick notes are detached, a jig's or reel's light
and bouncing (a fiddler's short bow strokes). A palette that plays ``legato`` overrides it."""
LEGATO_GAP_TICKS = TICKS_PER_QUARTER // 4
"""Legato closes a gap of up to a sixteenth between a melody note and the next."""
SHORTEST_NOTE_TICKS = TICKS_PER_QUARTER // 12
"""An articulated note sounds at least this long (a 32nd triplet)."""


def articulated(
    notes: Sequence[Note], meter: Meter, *, style: Style, legato: bool = False
) -> list[Note]:
    """The melody notes of one bar (onsets from the bar start) as the style or palette
    plays them. ``legato`` (a palette's bowed, sung or breathed line): each note is held
    into the next one of the bar when no more than ``LEGATO_GAP_TICKS`` of rest lies
    between them. Otherwise the style's ``STYLE_ARTICULATION``: a note shorter than a beat
    (``pulse_ticks``) that another note of the bar follows sounds for that share of its
    length, so quick notes are detached and a dance tune bounces; longer notes and a
    bar's last note keep their length (they carry the phrase into the next bar)."""
    ordered = sorted(notes)
    share = STYLE_ARTICULATION.get(style, 1.0)
    if not legato and share >= 1.0:
        return ordered
    pulse = pulse_ticks(meter)
    out = []
    for index, note in enumerate(ordered):
        following = next((n.onset for n in ordered[index + 1 :] if n.onset > note.onset), None)
        duration = note.duration
        if following is not None:
            if legato and 0 < following - note.end <= LEGATO_GAP_TICKS:
                duration = following - note.onset
            elif not legato and duration < pulse:
                duration = max(min(SHORTEST_NOTE_TICKS, duration), round(duration * share))
        out.append(Note(note.onset, note.pitch, duration, note.velocity))
    return out
