"""Gain per instrument: General MIDI programs brought to one loudness in the synth.

A SoundFont's presets are not levelled: in FluidR3 a music box, a warm pad or an organ
sounds several LU louder than a harp, a cello or a nylon guitar struck as hard. The mix's
part gains (``cantus.render.mix``) then balance a flute against a guitar in one palette
and a music box against a harp in another only by luck. So every program a palette uses
gets a *trim*: the gain that brings its measured loudness to the median of those
programs, applied in the synthesizer as the channel's volume (MIDI CC 7), where it
follows every program change of a part and costs nothing.

``measure_program_lufs`` is the measure: the program alone playing a fixed figure (a
three-octave broken chord from C3, a second a note, velocity 90) through
FluidSynth, integrated loudness (BS.1770). ``PROGRAM_TRIM_DB`` holds the trims measured
so for each SoundFont the project installs (regenerate them with ``program_trims``);
a SoundFont without a table plays untrimmed.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable

from cantus.music.notes import TICKS_PER_QUARTER, Note, Track

MEASURE_PITCHES = (48, 52, 55, 60, 64, 67, 72, 76, 79)
"""The measured figure: C3 E3 G3 C4 E4 G4 C5 E5 G5, one note a second at 120 bpm (long
enough for a pad's slow attack to open, as it does under a piece)."""
MEASURE_VELOCITY = 90
DEFAULT_VOLUME = 100
"""General MIDI's default channel volume (CC 7): a trim of 0 dB."""
MAX_TRIM_DB = 40.0 * math.log10(127 / DEFAULT_VOLUME)
"""The loudest trim the channel volume gives (CC 7 at 127), about +4.2 dB."""
MIN_TRIM_DB = -12.0

# fmt: off
PROGRAM_TRIM_DB: dict[str, dict[int, float]] = {
    # program_trims(palette_programs(), soundfont="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    "FluidR3_GM.sf2": {
        0: 3.3, 8: 1.4, 10: 1.5, 11: 4.2, 19: -3.6, 21: 0.2, 24: 0.1, 25: 1.8, 32: 1.9,
        40: -3.1, 42: -2.5, 45: 0.0, 46: 2.0, 48: -1.5, 49: -4.3, 52: -1.6, 73: -3.6,
        75: -3.6, 78: -7.0, 89: 2.1, 91: -1.5,
    },
    # The same for MuseScore General (Debian's musescore-general-soundfont), not preferred:
    # see PREFERRED_SOUNDFONTS in cantus.render.synth.
    "MuseScore_General_Full.sf3": {
        0: 2.8, 8: 3.7, 10: 4.2, 11: 2.0, 19: -1.9, 21: 0.8, 24: 1.6, 25: 4.2, 32: -0.7,
        40: -2.5, 42: -4.4, 45: 4.2, 46: 2.4, 48: -2.5, 49: 0.0, 52: -0.4, 73: -3.3,
        75: -3.1, 78: -6.6, 89: 0.9, 91: -2.9,
    },
}
# fmt: on
"""SoundFont file name -> General MIDI program (0-based) -> trim, dB (see module doc)."""


def volume_for_trim(trim_db: float) -> int:
    """The CC 7 value giving ``trim_db`` against the default volume. FluidSynth's default
    modulator maps CC 7 to attenuation as 40·log10(v/127) dB (SoundFont 2.01, 8.4.7)."""
    trim = max(MIN_TRIM_DB, min(MAX_TRIM_DB, trim_db))
    return max(1, min(127, round(DEFAULT_VOLUME * 10.0 ** (trim / 40.0))))


def trim_db(soundfont: str | os.PathLike[str], program: int) -> float:
    """The trim of ``program`` in ``soundfont`` (0 for a SoundFont or program not measured)."""
    return PROGRAM_TRIM_DB.get(os.path.basename(soundfont), {}).get(program, 0.0)


def _figure(program: int) -> Track:
    step = 2 * TICKS_PER_QUARTER  # a half note at 120 bpm: a second
    notes = [
        Note(index * step, pitch, step * 9 // 10, MEASURE_VELOCITY)
        for index, pitch in enumerate(MEASURE_PITCHES)
    ]
    return Track("probe", program, 0, notes)


def measure_program_lufs(
    program: int, *, soundfont: str | os.PathLike[str] | None = None, trimmed: bool = False
) -> float:
    """Integrated loudness (LUFS) of ``program`` playing the measured figure alone
    (``trimmed``: with its trim from ``PROGRAM_TRIM_DB`` applied)."""
    from cantus.render.mix import integrated_loudness
    from cantus.render.synth import SAMPLE_RATE, render_tracks

    audio = render_tracks(
        [_figure(program)],
        tempo_bpm=120.0,
        soundfont=soundfont,
        tail_seconds=1.0,
        trim=trimmed,
    )
    return integrated_loudness(audio, SAMPLE_RATE)


def program_trims(
    programs: Iterable[int], *, soundfont: str | os.PathLike[str] | None = None
) -> dict[int, float]:
    """Trims (dB, rounded to 0.1) that bring each of ``programs`` to their median loudness."""
    loudness = {p: measure_program_lufs(p, soundfont=soundfont) for p in sorted(set(programs))}
    reference = statistics.median(loudness.values())
    return {
        p: round(max(MIN_TRIM_DB, min(MAX_TRIM_DB, reference - lufs)), 1)
        for p, lufs in loudness.items()
    }


def palette_programs() -> list[int]:
    """Every program a palette plays, at any energy."""
    from cantus.render.palettes import PALETTES

    programs = set()
    for palette in PALETTES.values():
        programs.update(palette.programs_all())
    return sorted(programs)
