"""The self-similarity picture stored beside the piano roll: the melody's bar-by-bar
similarity with the plan's sections marked, listed in piece.json's files."""

from __future__ import annotations

import io
import json

import matplotlib.image
import pytest

from cantus.events.conversions import form_to_pb
from cantus.music.form import plan_form
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy
from cantus.render.piece import PieceParts, render_piece_files
from cantus.render.selfsim import SELFSIM_FILE, selfsim_png

from .piece_fixtures import PIECE_ID, piece_events, spec, table_events

FOUR = Meter(4, 4)
PNG = b"\x89PNG\r\n\x1a\n"


def tune(bars: int) -> list[Bar]:
    """A four-bar phrase, played again a step higher, then new bars."""
    phrase = [(60, 62, 64, 65), (67, 65, 64, 62), (60, 64, 67, 72), (71, 67, 62, 59)]
    out = []
    for index in range(bars):
        pitches = phrase[index % 4]
        shift = 2 if 4 <= index < 8 else 0 if index < 4 else 5 * index % 7
        out.append(Bar(FOUR, tuple(Note(480 * k, p + shift, 480) for k, p in enumerate(pitches))))
    return out


def pixels(png: bytes):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_picture_of_a_melody_with_and_without_sections():
    plan = plan_form("AA'", bars=8, key=Key(0), energy=Energy.MID)
    plain = selfsim_png(tune(8), key=Key(0))
    marked = selfsim_png(tune(8), key=Key(0), plan=plan, title="Folk in C major")
    assert plain.startswith(PNG) and marked.startswith(PNG)
    assert plain != marked
    height, width, _ = pixels(marked).shape
    assert width > height > 300  # a square matrix and its colour bar


@pytest.fixture
def quick_render(monkeypatch):
    """render_piece_files without synthesis or LilyPond."""
    import cantus.render.leadsheet as leadsheet
    import cantus.render.synth as synth

    def no_synth(*args, **kwargs):
        raise RuntimeError("not synthesised in this test")

    def no_engraving(musicxml: bytes):
        raise leadsheet.EngravingUnavailable("not engraved in this test")

    monkeypatch.setattr(synth, "render_stems", no_synth)
    monkeypatch.setattr(leadsheet, "engrave_leadsheet", no_engraving)

    def render(piece_spec):
        parts = PieceParts.from_state(table_events(piece_events(piece_spec)), humanise=False)
        assert parts is not None
        return render_piece_files(parts, piece_id=PIECE_ID, event_log=[], audio_formats=())

    return render


@pytest.mark.parametrize("planned", [False, True])
def test_the_render_stores_selfsim_png_beside_the_piano_roll(quick_render, planned):
    piece_spec = spec(16)
    if planned:
        plan = plan_form("AABA", bars=16, key=Key(0), energy=Energy.MID)
        piece_spec.form.CopyFrom(form_to_pb(plan))
    rendered = quick_render(piece_spec)
    assert rendered.files[SELFSIM_FILE].startswith(PNG)
    assert "pianoroll.png" in rendered.files
    summary = json.loads(rendered.files["piece.json"])
    assert SELFSIM_FILE in summary["files"]
    assert "selfsim" in summary["render_seconds"] and "selfsim" not in summary["render_errors"]
