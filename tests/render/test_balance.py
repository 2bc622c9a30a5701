"""Gain per instrument: each palette program's trim brings it to the same loudness."""

import statistics

import pytest

from cantus.render import synth
from cantus.render.balance import (
    MAX_TRIM_DB,
    PROGRAM_TRIM_DB,
    measure_program_lufs,
    palette_programs,
    trim_db,
    volume_for_trim,
)


def _soundfont():
    try:
        return synth.find_soundfont()
    except synth.SynthUnavailable:
        return None


needs_synth = pytest.mark.skipif(_soundfont() is None, reason="no SoundFont installed")


def test_volume_follows_the_trim_and_stays_in_midi_range():
    assert volume_for_trim(0.0) == 100
    assert volume_for_trim(MAX_TRIM_DB) == 127
    assert volume_for_trim(50.0) == 127
    assert volume_for_trim(-40.0) >= 1
    assert volume_for_trim(-6.0) < volume_for_trim(-3.0) < 100


def test_every_palette_program_has_a_trim_in_the_preferred_soundfont():
    table = PROGRAM_TRIM_DB[synth.PREFERRED_SOUNDFONTS[0]]
    assert set(palette_programs()) <= set(table)
    assert trim_db("/no/such/font.sf2", 0) == 0.0


@needs_synth
def test_trimmed_programs_sound_alike_loud():
    """The loudest and quietest programs untrimmed come within 1.5 LU of each other trimmed."""
    font = _soundfont()
    table = PROGRAM_TRIM_DB.get(font.name)
    if not table:
        pytest.skip(f"no trims measured for {font.name}")
    programs = (78, 11)  # tin whistle (loudest in FluidR3), vibraphone (quietest)
    raw = [measure_program_lufs(p, soundfont=font) for p in programs]
    trimmed = [measure_program_lufs(p, soundfont=font, trimmed=True) for p in programs]
    assert abs(raw[0] - raw[1]) > 5.0
    assert abs(trimmed[0] - trimmed[1]) < 1.5
    reference = statistics.median(raw)
    assert all(abs(t - reference) < 6.0 for t in trimmed)
