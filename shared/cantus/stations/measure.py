"""What a delivered piece measures as, from its files: tempo from the MIDI's tempo events,
key and mode by music21's key analysis (Krumhansl–Schmuckler profiles over every part),
so a plan station can hold each piece to its step's bounds."""

from __future__ import annotations

import io
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
