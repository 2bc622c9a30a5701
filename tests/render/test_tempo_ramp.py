"""Session pieces ramp their tempo beat by beat (issue #17): equal small steps on beat
starts, the closing ritardando only when asked, and render's piece follows the spec."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as s

from cantus.music.notes import Meter
from cantus.render.tempo import ending_tempo_map, largest_step_bpm, ramp_tempos

METER = Meter.parse("4/4")


def test_a_ramp_moves_one_equal_step_per_beat_and_skips_the_ritardando():
    tempo = ending_tempo_map(100, METER, 8, tempo_end_bpm=108, ritardando=False)
    assert len(tempo.changes) == 32  # one per beat
    assert all(tick % 480 == 0 for tick, _ in tempo.changes)  # on beat starts
    assert tempo.changes[0] == (0, 100.0) and tempo.changes[-1][1] == pytest.approx(108)
    assert largest_step_bpm(tempo) == pytest.approx(8 / 31, abs=1e-3)


def test_a_ramp_then_the_closing_ritardando_from_the_ramps_end():
    tempo = ending_tempo_map(100, METER, 8, tempo_end_bpm=90, ritardando=True)
    ramp = [bpm for tick, bpm in tempo.changes if tick < 6 * METER.bar_ticks]
    assert ramp[-1] == pytest.approx(90)
    assert tempo.changes[-1][1] == pytest.approx(90 * 0.7)


def test_without_a_ramp_the_map_is_as_before():
    assert ending_tempo_map(96, METER, 8) == ending_tempo_map(96, METER, 8, tempo_end_bpm=0)
    assert ending_tempo_map(96, METER, 8, ritardando=False).is_constant


@given(s.floats(40, 240), s.floats(40, 240), s.integers(2, 64))
def test_ramps_are_monotone_and_end_where_asked(start, end, beats):
    tempos = ramp_tempos(start, end, beats)
    assert tempos[0] == pytest.approx(start, abs=1e-3) and tempos[-1] == pytest.approx(
        end, abs=1e-3
    )
    steps = [b - a for a, b in itertools.pairwise(tempos)]
    assert all(abs(step) <= abs(end - start) / (beats - 1) + 2e-3 for step in steps)


def test_a_session_piece_spec_ramps_in_render_and_its_request_is_checked():
    from cantus.render.piece import PieceParts
    from cantus.requests import RequestError, validate_compose_request
    from cantus.v1 import composer_pb2 as api

    from .piece_fixtures import spec

    ramped = spec(8, tempo=100.0)
    ramped.tempo_end_bpm, ramped.no_ritardando = 104.0, True

    def parts(piece_spec):
        return PieceParts(
            spec=piece_spec, melody={}, harmony_by_bar={}, lyric_lines={}, requested=None
        )

    tempo = parts(ramped).tempo_map
    assert tempo.changes[0][1] == 100.0 and tempo.changes[-1][1] == pytest.approx(104.0)
    assert parts(spec(8, tempo=100.0)).tempo_map.is_constant  # no form, no ramp

    request = api.ComposeRequest(tempo_bpm=100, tempo_end_bpm=104, no_ritardando=True, bars=8)
    validated = validate_compose_request(request, max_bars=64).spec
    assert (validated.tempo_end_bpm, validated.no_ritardando) == (104.0, True)
    with pytest.raises(RequestError) as caught:
        validate_compose_request(api.ComposeRequest(tempo_end_bpm=500), max_bars=64)
    assert caught.value.field == "tempo_end_bpm"
