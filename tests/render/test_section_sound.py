"""A section in its own palette or at its own tempo (an edit, issue #18): the tempo moves
beat by beat into the section and back out of it, the bars after it keep their tempo, and
each part switches program on the section's downbeat, in MIDI and in the synthesiser."""

from __future__ import annotations

import io
import itertools

import mido
import numpy as np
import pytest

from cantus.events.conversions import form_to_pb
from cantus.music.form import plan_form
from cantus.music.notes import Key, Meter, Mode, Note, Track
from cantus.music.styles import Energy
from cantus.render.palettes import get_palette
from cantus.render.piece import PieceParts
from cantus.render.synth import SegmentRenderer
from cantus.render.tempo import ending_tempo_map, section_tempo_map

from .piece_fixtures import piece_events, spec, table_events

METER = Meter.parse("4/4")


def test_a_section_tempo_ramps_in_and_out_on_beats_and_keeps_the_rest():
    base = ending_tempo_map(120, METER, 16)
    tempo = section_tempo_map(base, 120, METER, 16, [(8, 4, 90)])
    bar = METER.bar_ticks
    # bars before the ramp and after the section: as before, on the same ticks
    assert tempo.bpm_at(7 * bar - 1) == 120 and tempo.bpm_at(12 * bar) == 120
    # the bar before the section slows in four equal steps, one per beat, to 90 on its downbeat
    ramp_in = [tempo.bpm_at(7 * bar + beat * 480) for beat in range(4)] + [tempo.bpm_at(8 * bar)]
    assert ramp_in == [120, 112.5, 105, 97.5, 90]
    assert all(tempo.bpm_at(t) == 90 for t in range(8 * bar, 11 * bar, 480))
    ramp_out = [tempo.bpm_at(11 * bar + beat * 480) for beat in range(4)] + [tempo.bpm_at(12 * bar)]
    assert ramp_out == [90, 97.5, 105, 112.5, 120]
    assert all(tick % 480 == 0 for tick, _ in tempo.changes)
    steps = [abs(b - a) for (_, a), (_, b) in itertools.pairwise(tempo.changes)]
    assert max(steps) == pytest.approx(7.5)
    # the closing ritardando is the base map's, the piece only later by the slow bars
    assert [bpm for tick, bpm in tempo.changes if tick >= 14 * bar] == [
        bpm for tick, bpm in base.changes if tick >= 14 * bar
    ]
    later = tempo.seconds_at(14 * bar) - base.seconds_at(14 * bar)
    assert later > 0
    assert tempo.seconds_at(16 * bar) - base.seconds_at(16 * bar) == pytest.approx(later)
    assert section_tempo_map(base, 120, METER, 16, []) is base


def test_the_last_section_at_its_own_tempo_keeps_its_ritardando_in_proportion():
    base = ending_tempo_map(120, METER, 8)
    tempo = section_tempo_map(base, 120, METER, 8, [(4, 4, 60)])
    assert tempo.changes[-1][1] == pytest.approx(base.changes[-1][1] / 2)


def parts_with_sections(**sections: tuple[str, float]) -> PieceParts:
    piece_spec = spec(16)
    piece_spec.palette = "folk"
    plan = plan_form("AABA", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    for section in piece_spec.form.sections:
        if section.label in sections:
            section.palette, section.tempo_bpm = sections[section.label]
    parts = PieceParts.from_events(table_events(piece_events(piece_spec, lyrics=False)))
    assert parts is not None
    return parts


def test_a_section_in_its_own_palette_switches_programs_on_its_downbeat():
    parts = parts_with_sections(B=("strings", 0.0))
    folk, strings = get_palette("folk"), get_palette("strings")
    assert parts.bar_palette(7) is folk and parts.bar_palette(8) is strings
    assert parts.bar_palette(12) is folk
    tracks = {t.name: t for t in parts.tracks(4, 12)}  # bars 5-16: A', B, A''
    bar = parts.bar_ticks
    melody = tracks["melody"]
    programs = strings.programs(Energy.MID)
    assert melody.program == folk.programs(Energy.MID)["melody"]
    assert melody.program_changes == [(4 * bar, programs["melody"]), (8 * bar, melody.program)]
    assert melody.program_at(5 * bar) == programs["melody"]
    assert parts.tempo_map == parts_with_sections().tempo_map  # a palette moves no bar

    midi = mido.MidiFile(file=io.BytesIO(parts.midi(4, 12)))
    changes = []
    for track in midi.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type == "program_change" and message.channel == melody.channel:
                changes.append((now, message.program))
    assert changes == [
        (0, melody.program),
        (4 * bar, programs["melody"]),
        (8 * bar, melody.program),
    ]


def test_the_synthesiser_plays_notes_after_a_program_change_in_the_new_program():
    """One note per bar in one track, the program switched on bar 2's downbeat: it sounds
    as a piano note then a violin note on two tracks of their own (the piano's release
    rings on into bar 2), not as two piano notes. The one difference: each program's trim
    is the channel's volume (``cantus.render.balance``), so the piano's release in bar 2
    takes the violin's trim, a few thousandths of full scale."""
    bar = METER.bar_ticks
    first, second = Note(0, 60, bar, 90), Note(bar, 60, bar, 90)

    def render(tracks: list[Track]) -> np.ndarray:
        with SegmentRenderer(120.0) as renderer:
            return renderer.render_until(2 * bar, tracks)

    heard = render([Track("melody", 0, 0, [first, second], program_changes=[(bar, 40)])])
    apart = render([Track("piano", 0, 0, [first]), Track("violin", 40, 1, [second])])
    pianos = render([Track("melody", 0, 0, [first, second])])
    half = heard.shape[0] // 2
    assert np.abs(heard[:half] - apart[:half]).max() < 1e-4  # bar 1: the piano alone
    assert np.abs(heard - apart).max() < 0.05 * np.abs(heard - pianos).max()
