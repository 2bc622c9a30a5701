"""Fixtures shared by the render tests."""

from __future__ import annotations

import pytest

from cantus.render.piece import PieceParts, render_piece_files

from .piece_fixtures import PIECE_ID, piece_events, table_events


@pytest.fixture
def quick_render(monkeypatch):
    """render_piece_files without synthesis or LilyPond (what is tested is the files' text
    and pictures)."""
    import cantus.render.leadsheet as leadsheet
    import cantus.render.synth as synth

    def no_synth(*args, **kwargs):
        raise RuntimeError("not synthesised in this test")

    def no_engraving(musicxml: bytes):
        raise leadsheet.EngravingUnavailable("not engraved in this test")

    monkeypatch.setattr(synth, "render_stems", no_synth)
    monkeypatch.setattr(leadsheet, "engrave_leadsheet", no_engraving)

    def render(piece_spec):
        parts = PieceParts.from_events(table_events(piece_events(piece_spec)), humanise=False)
        assert parts is not None
        return render_piece_files(parts, piece_id=PIECE_ID, event_log=[], audio_formats=())

    return render
