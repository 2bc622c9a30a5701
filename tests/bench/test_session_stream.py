"""A session's stream start on the station's own code and a real ffmpeg (#17): its prebuffer
held in hand, it starts on one published segment, hears an intensity change within its
lead, and does not run dry; a station fed the same audio publishes its whole prebuffer."""

import math
import shutil

import pytest

from cantus.bench.session_stream import (
    StreamRun,
    format_stream_section,
    piece_seconds,
    run_session_stream_bench,
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def test_a_session_starts_on_its_lead_and_does_not_run_dry():
    # pieces arrive fast, so the 20 s prebuffer is in hand early and the run stays short
    session, station = run_session_stream_bench(24.0, render_rtf=4.0, signal_after=1.0)
    assert (session.arm, station.arm) == ("session", "station")
    assert math.isfinite(session.playback_started_s), "the session never started playback"
    assert session.underruns == 0 and session.least_published_ahead_s >= 0.0
    assert session.least_in_hand_ahead_s > session.least_published_ahead_s  # held back
    assert 0.0 <= session.heard_after_s <= 8.0 + 0.5  # the lead (and a 0.25 s tick)
    if math.isfinite(station.playback_started_s):  # a station waits for 20 s published
        assert station.least_published_ahead_s >= session.least_published_ahead_s
        assert station.playback_started_s >= session.playback_started_s


def test_the_section_reports_each_stream():
    assert piece_seconds(100.0, 8) == pytest.approx(19.2)
    runs = [
        StreamRun("session", 60.0, 3.0, 20.0, 0, 3.7, 17.8, 12, 8.0),
        StreamRun("station", 60.0, 3.0),
    ]
    text = format_stream_section(runs, render_rtf=1.35, load=(1.0, 2.0, 3.0))
    assert "| session | 3.0 s | 20.0 s | 0 | 3.7 s | 17.8 s | 12 | 8.0 s |" in text
    assert "| station | 3.0 s | — | 0 | — | — | 0 | — |" in text
