"""One long-lived LilyPond engraves lead sheet after lead sheet as a fresh one would: the
same PNG, nothing carried from one file to the next, a failing file reported without
losing the server, and a dead server replaced."""

from __future__ import annotations

import shutil

import pytest

from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.render import leadsheet, lilypond_server
from cantus.render.leadsheet import LeadsheetError, engrave_leadsheet, leadsheet_musicxml

pytestmark = pytest.mark.skipif(
    shutil.which("lilypond") is None or shutil.which("musicxml2ly") is None,
    reason="LilyPond not installed",
)

METER = Meter(4, 4)


def sheet(pitches: tuple[int, ...], title: str) -> bytes:
    bars = [Bar(METER, tuple(Note(480 * i, p, 480) for i, p in enumerate(pitches)))]
    return leadsheet_musicxml(bars, [[(0, "C")]], [], Key(0, Mode.MAJOR), METER, 100.0, title=title)


def one_shot(musicxml: bytes, monkeypatch) -> bytes:
    """The PNG a fresh lilypond writes (the server refused)."""

    def unavailable(*args, **kwargs):
        raise lilypond_server.ServerUnavailable("not in this call")

    with monkeypatch.context() as patch:
        patch.setattr(leadsheet, "engrave_with_server", unavailable)
        return engrave_leadsheet(musicxml).png


def test_the_server_engraves_as_a_fresh_lilypond(monkeypatch):
    first, second = sheet((60, 62, 64, 65), "First"), sheet((67, 65, 64, 62), "Second")
    served = [engrave_leadsheet(first).png, engrave_leadsheet(second).png]
    assert served[0] != served[1]
    assert served == [one_shot(first, monkeypatch), one_shot(second, monkeypatch)]
    assert engrave_leadsheet(first).png == served[0]  # nothing carried over


def test_a_failing_file_is_reported_and_the_server_goes_on(monkeypatch):
    good = sheet((60, 64, 67, 72), "Good")
    expected = engrave_leadsheet(good).png
    with monkeypatch.context() as patch:
        patch.setattr(leadsheet, "tidy_lilypond_source", lambda source: source + "\n{ c4 \n")
        with pytest.raises(LeadsheetError, match="lilypond failed"):
            engrave_leadsheet(good)
    assert engrave_leadsheet(good).png == expected


def test_a_dead_server_is_replaced():
    good = sheet((72, 71, 69, 67), "Again")
    expected = engrave_leadsheet(good).png
    for server in lilypond_server._servers.values():
        server.process.kill()
        server.process.wait()
    assert engrave_leadsheet(good).png == expected
