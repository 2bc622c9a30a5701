"""``cantus eval energy`` (#17): its requests, rank correlation, level slope and report."""

import io

import mido

from cantus.eval.energy import (
    LEVEL_GAINS_DB,
    EnergyRun,
    LevelPoint,
    Measured,
    _expected_least,
    energy_per_db,
    energy_requests,
    format_run,
    held_to_level,
    level_sample,
    scale_velocities,
    spearman,
)
from cantus.music.styles import MOOD_ENERGY


def test_requests_ask_each_style_at_each_level_by_a_mood_of_it():
    requests = energy_requests(4)
    assert len(requests) == 3 * 3 * 4
    levels = {(r.style.value, MOOD_ENERGY[r.mood].value) for r in requests}
    assert len(levels) == 9
    assert all(r.meter.numerator % 3 for r in requests if r.style.value == "chorale")


def test_the_level_calibration_takes_every_style_and_level():
    requests = energy_requests(6)
    chosen = [requests[i] for i in sorted(level_sample(requests, 6))]
    pairs = [(r.style.value, r.energy.value) for r in chosen]
    assert len(set(pairs)) == 6
    assert {s for s, _ in pairs} == {"folk", "celtic", "chorale"}
    assert sorted(level for _, level in pairs) == ["high", "high", "low", "low", "mid", "mid"]
    assert len(level_sample(requests, 12)) == 12 and len(level_sample(requests, 99)) == 54


def test_spearman_and_the_level_slope():
    assert spearman(["low", "mid", "high"], [0.1, 0.2, 0.3]) == 1.0
    assert spearman(["low", "mid", "high"], [0.3, 0.2, 0.1]) == -1.0
    points = [LevelPoint(-9.0, -8.0, -0.16), LevelPoint(4.0, 2.0, 0.04)]
    assert abs(energy_per_db(points) - 0.02) < 1e-9


def test_velocities_scale_and_clip():
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for velocity in (40, 100, 120):
        track.append(mido.Message("note_on", note=60, velocity=velocity))
        track.append(mido.Message("note_off", note=60, time=480))
    out = io.BytesIO()
    midi.save(file=out)
    scaled = mido.MidiFile(file=io.BytesIO(scale_velocities(out.getvalue(), 1.2)))
    velocities = [m.velocity for m in scaled.tracks[0] if m.type == "note_on"]
    assert velocities == [48, 120, 127]


def test_the_report_gives_medians_per_level_and_the_slope():
    pieces = [
        Measured(style, palette, level, energy)
        for style, palette in (("folk", "folk"), ("folk", "piano"), ("celtic", "celtic"))
        for level, energy in (("low", 0.2), ("mid", 0.4), ("high", 0.6))
    ]
    levels = [LevelPoint(g, g, 0.01 * g) for g in LEVEL_GAINS_DB]
    report = format_run(EnergyRun(pieces, levels, 0, 1, 8, 1.0), command="cantus eval energy")
    row = "| every style, default palettes (folk's quiet ones: in the rows below) |"
    assert f"{row} 0.200 (2) | 0.400 (2) | 0.600 (2) | 1.00 |" in report
    assert "| folk in piano | 0.200 (1) | 0.400 (1) | 0.600 (1) | 1.00 |" in report
    assert "**0.010**" in report


def test_the_closest_of_several_tries_and_the_sample_named():
    # the least of 2 draws from {0.1, 0.3}: 0.3 only when both are 0.3 (1 in 4)
    assert abs(_expected_least([0.3, 0.1], 2) - (0.75 * 0.1 + 0.25 * 0.3)) < 1e-12
    assert _expected_least([0.2], 3) == 0.2 and _expected_least([], 3) == 0.0
    pieces = [Measured("folk", "folk", "low", 0.286), Measured("folk", "folk", "high", 0.2)]
    inside = "\n".join(held_to_level(pieces))
    assert "so in sample" in inside
    assert "| high | 0% (0/1) |" in inside  # a high piece playing low energy is out of band
    outside = "\n".join(held_to_level(pieces, seed=1))
    assert "out of sample" in outside and "seed 1's" in outside
