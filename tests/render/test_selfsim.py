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
from cantus.render.selfsim import SELFSIM_FILE, selfsim_png

from .piece_fixtures import spec

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
