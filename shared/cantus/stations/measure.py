"""What a delivered piece measures as, from its files: tempo from the MIDI's tempo events,
key and mode by music21's key analysis (Krumhansl–Schmuckler profiles over every part),
so a plan station can hold each piece to its step's bounds; and the energy it plays
(``midi_energy``), which a session holds to its step's level (``energy_problem``)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import mido

from cantus.v1 import station_pb2 as st

KEY_CANDIDATES = 2
"""A piece keeps its planned key when that key is among music21's best this many keys: a
short folk tune is often as close to its relative key as to its own."""


@dataclass(frozen=True)
class Measured:
    """Tempo in quarter-note BPM (first tempo event), the key's tonic (C, F#, Bb …) and mode,
    and the best keys by correlation, best first, as "F major"."""

    tempo_bpm: float
    tonic: str
    mode: str
    candidates: tuple[str, ...]
    tempi: tuple[float, ...] = ()
    """Every tempo the MIDI's tempo events set, in order (a session piece's ramp)."""


def midi_tempo_bpm(midi: bytes) -> float:
    """The first tempo of a Standard MIDI File, quarter-note BPM (120 when none is set)."""
    parsed = mido.MidiFile(file=io.BytesIO(midi))
    for track in parsed.tracks:
        for message in track:
            if message.type == "set_tempo":
                return round(mido.tempo2bpm(message.tempo), 2)
    return 120.0


def midi_tempi(midi: bytes) -> tuple[float, ...]:
    """Every tempo a Standard MIDI File sets, in file order, quarter-note BPM."""
    parsed = mido.MidiFile(file=io.BytesIO(midi))
    return tuple(
        round(mido.tempo2bpm(message.tempo), 2)
        for track in parsed.tracks
        for message in track
        if message.type == "set_tempo"
    )


ENERGY_DENSITY_RANGE = (0.5, 3.0)
"""Melody notes per quarter note measured as energy 0 and 1 (log scale between): the
melody LM's energy tertiles sit inside it (``cantus.melody.controls.EnergyThresholds``)."""
ENERGY_ACTIVITY_RANGE = (2.0, 16.0)
"""Note onsets per quarter note over every part, drums included, measured as energy 0 and 1
(log scale between): how busy the whole arrangement is. A solo line is about 1; the
arrangement plays about 4 at low energy (sustained chords, no drums), 9 at mid and 11 at
high (drums, chords re-struck on every beat; ``docs/results/energy.md``)."""
ENERGY_VELOCITY_RANGE = (40.0, 96.0)
"""Loudness measured as energy 0 and 1: the mean over the parts that play of each part's
mean note-on velocity. Each part counts once however many notes it strikes, so chords
re-struck on every beat at high energy (softer than the melody) do not pull it down."""


def midi_energy(midi: bytes) -> float:
    """The energy a rendered piece measures as, 0..1, from what it plays: the mean of its
    melody's note density, the whole arrangement's note onsets per quarter note (drums
    included) and its parts' loudness (mean velocity per part, each part once), each
    scaled over its range above. It reads only the notes, never the energy asked. The
    station logs it beside the energy asked for (``ProgramEntry.energy_measured``); 0 only
    for a piece without notes."""
    from cantus.melody.controls import note_density
    from cantus.music.midi_io import midi_bytes_to_melody

    parsed = mido.MidiFile(file=io.BytesIO(midi))
    part_velocities: list[float] = []
    onsets, end_tick = 0, 0
    for track in parsed.tracks:
        tick, velocities = 0, []
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                velocities.append(message.velocity)
        end_tick = max(end_tick, tick)
        if velocities:
            part_velocities.append(sum(velocities) / len(velocities))
            onsets += len(velocities)
    if not part_velocities:
        return 0.0
    quarters = max(end_tick / parsed.ticks_per_beat, 1.0)
    density = _log_score(note_density(midi_bytes_to_melody(midi)), ENERGY_DENSITY_RANGE)
    activity = _log_score(onsets / quarters, ENERGY_ACTIVITY_RANGE)
    quiet, loud = ENERGY_VELOCITY_RANGE
    mean_velocity = sum(part_velocities) / len(part_velocities)
    loudness = min(max((mean_velocity - quiet) / (loud - quiet), 0.0), 1.0)
    return round(max((density + activity + loudness) / 3, 0.001), 3)


def _log_score(value: float, bounds: tuple[float, float]) -> float:
    """``value`` on a log scale from ``bounds[0]`` (0) to ``bounds[1]`` (1), clipped."""
    low, high = bounds
    return min(math.log(max(value, low) / low) / math.log(high / low), 1.0)


def measure_midi(midi: bytes) -> Measured:
    import music21

    score = music21.converter.parseData(midi, format="midi")
    key = score.analyze("key")
    ranked = [key, *key.alternateInterpretations]
    names = tuple(f"{_tonic_name(k.tonic.name)} {k.mode}" for k in ranked[: KEY_CANDIDATES + 2])
    return Measured(
        midi_tempo_bpm(midi), _tonic_name(key.tonic.name), key.mode, names, midi_tempi(midi)
    )


def _tonic_name(name: str) -> str:
    """music21 writes flats as ``-`` (B-); Cantus writes ``b`` (Bb)."""
    return name.replace("-", "b")


def step_problems(measured: Measured, step: st.PlanStep) -> list[str]:
    """Why a measured piece falls outside its plan step (empty: it fits)."""
    problems = []
    if not step.tempo_min_bpm <= measured.tempo_bpm <= step.tempo_max_bpm:
        problems.append(
            f"tempo {measured.tempo_bpm:g} BPM outside "
            f"{step.tempo_min_bpm:g}..{step.tempo_max_bpm:g}"
        )
    if step.tempo_end_bpm and step.tempo_end_bpm != step.tempo_bpm:
        # a session piece's ramp must reach its end tempo (before any closing ritardando)
        tolerance = step.tempo_max_bpm - step.tempo_bpm
        if not any(abs(t - step.tempo_end_bpm) <= tolerance for t in measured.tempi):
            problems.append(f"its tempo never reaches the ramp's end {step.tempo_end_bpm:g} BPM")
    planned = f"{step.key} {step.mode}"
    if planned not in measured.candidates[:KEY_CANDIDATES]:
        problems.append(
            f"key measures as {', '.join(measured.candidates[:KEY_CANDIDATES])}, not {planned}"
        )
    return problems


ENERGY_MEDIANS: dict[str, tuple[float, float, float]] = {
    "folk": (0.286, 0.541, 0.706),
    "celtic": (0.296, 0.565, 0.678),
    "chorale": (0.334, 0.382, 0.522),
    "lullaby": (0.258, 0.379, 0.487),
    "ambient": (0.222, 0.351, 0.465),
    "piano": (0.303, 0.431, 0.545),
    "": (0.300, 0.430, 0.546),
}
"""``midi_energy`` medians of pieces asked low, mid and high, per palette (``""``: every
piece, for a palette not measured), from ``cantus eval energy --pieces 6 --bars 8``
(``docs/results/energy.md``). The levels' distributions overlap (a lively low piece
measures above a quiet mid one), and a palette moves them all (ambient's high median is
under folk's mid), so a piece is held to its own palette's medians, and only by order."""
LEVELS = ("low", "mid", "high")


def energy_band(level: str, palette: str) -> tuple[float, float]:
    """The energy a piece asked at ``level`` (low, mid, high) in ``palette`` may measure,
    by order: a low piece not above the mid band (the midpoint of the mid and high
    medians), a high one not below it (the midpoint of the low and mid medians), a mid one
    not past the low or the high median."""
    if level not in LEVELS:
        raise ValueError(f"energy: level {level!r} is not one of {', '.join(LEVELS)}")
    low, mid, high = ENERGY_MEDIANS.get(palette, ENERGY_MEDIANS[""])
    if level == "low":
        return 0.0, (mid + high) / 2
    if level == "high":
        return (low + mid) / 2, 1.0
    return low, high


def energy_problem(energy: float, level: str, palette: str) -> str:
    """Why a piece's measured ``energy`` does not play its ``level`` (empty: it does)."""
    least, most = energy_band(level, palette)
    if least <= energy <= most:
        return ""
    where = "above" if energy > most else "below"
    bound = most if energy > most else least
    return f"energy {energy:.3f} {where} {bound:.3f}, the {level} band in palette {palette!r}"
