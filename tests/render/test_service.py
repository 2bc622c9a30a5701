"""The render service's handler with its table, broker and store replaced by fakes:
segments carry audio as soon as their bars are in, a restart rebuilds the audio by
replay (same bytes), redeliveries change nothing, and the finished piece is stored."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from cantus.segment_store import render_segment_store
from cantus.settings import Settings
from cantus.storage import LocalPieceStore
from cantus.streaming import Received
from cantus.v1 import events_pb2 as pb

from .piece_fixtures import PIECE_ID, piece_events, spec


@pytest.fixture
def render(monkeypatch, tmp_path):
    monkeypatch.setenv("CANTUS_STATE_DIR", str(tmp_path / "state"))
    from services.render import app

    published: list = []

    async def publish(message, *, received=None):
        published.append(message)

    monkeypatch.setattr(app, "pieces", {})
    monkeypatch.setattr(app, "piece_events", {})
    app.held_events.clear()
    monkeypatch.setattr(app, "store", LocalPieceStore(tmp_path / "pieces"))
    monkeypatch.setattr(
        app, "segment_audio_store", render_segment_store(Settings(data_dir=tmp_path / "pieces"))
    )
    monkeypatch.setattr(app.service, "publish", publish)
    monkeypatch.setattr(app.settings, "leadsheet", False)  # engraving has its own tests
    monkeypatch.setattr(app.settings, "audio_formats", ["wav"])
    app.live_audio.clear()
    app.published = published  # type: ignore[attr-defined]
    yield app
    for audio in app.live_audio.values():
        audio.close()
    app.live_audio.clear()


def feed(app, events) -> None:
    async def run():
        for offset, event in enumerate(events):
            await app.handle_piece_event(event, Received("t", 0, offset, 1))

    asyncio.run(run())


def segments(published) -> list[pb.RenderSegment]:
    return [m for m in published if isinstance(m, pb.RenderSegment)]


def audio_of(app, segment: pb.RenderSegment) -> bytes:
    """The segment's audio, from the segment store its record names."""
    assert not segment.audio  # the record carries where the audio is, not the audio
    return app.segment_audio_store.read_uri(segment.meta.piece_id, segment.audio_uri)


def test_segments_carry_audio_and_the_piece_is_stored(render, tmp_path):
    events = piece_events(spec(8))
    feed(render, events[: 1 + 3 * 4])  # request + bars 0-3
    first = segments(render.published)
    assert [s.meta.index for s in first] == [0]
    audio = audio_of(render, first[0])
    assert audio[:4] == b"OggS" and first[0].audio_media_type.startswith("audio/ogg")
    assert len(first[0].SerializeToString()) < 2_000  # MIDI and the audio's place
    assert first[0].audio_start_seconds == 0.0
    assert first[0].audio_duration_seconds == pytest.approx(8.0, abs=0.01)
    decoded, rate = soundfile.read(io.BytesIO(audio))
    assert abs(len(decoded) / rate - 8.0) < 0.05 and np.abs(decoded).max() > 0.05
    assert PIECE_ID in render.live_audio  # kept in memory, not in the table
    assert "audio" not in str(render.pieces[PIECE_ID])

    feed(render, events[1 + 3 * 4 :])
    done = [m for m in render.published if isinstance(m, pb.PieceCompleted)]
    assert len(done) == 1 and [s.meta.index for s in segments(render.published)] == [0, 1]
    last = segments(render.published)[1]
    assert last.audio_start_seconds == pytest.approx(first[0].audio_duration_seconds)
    assert last.audio_duration_seconds == pytest.approx(8.0 + 2.0, abs=0.01)  # + the tail
    assert abs(done[0].integrated_lufs + 14.0) < 0.5 and done[0].target_lufs == -14.0
    assert done[0].loudness_preset == "streaming"
    names = {f.name for f in done[0].files}
    assert names == {
        "piece.mid",
        "piece.wav",
        "pianoroll.png",
        "selfsim.png",
        "parts.pb",
        "piece.json",
    }
    assert (tmp_path / "pieces" / PIECE_ID / "piece.wav").stat().st_size > 100_000
    assert PIECE_ID not in render.live_audio and render.pieces[PIECE_ID]["completed"]


TWIN_ID = "fedcba9876543210fedcba9876543210"


def test_a_piece_that_asks_for_lossless_segments_gets_flac_pruned_sooner(
    render, tmp_path, monkeypatch
):
    asked = spec(4)
    asked.segment_audio = "flac"  # what a station asks for (cantus.stations.program)
    feed(render, piece_events(asked))
    (segment,) = segments(render.published)
    assert segment.audio_media_type == "audio/flac" and segment.audio_uri.endswith(".flac")
    audio = audio_of(render, segment)
    decoded, rate = soundfile.read(io.BytesIO(audio))
    assert audio[:4] == b"fLaC" and rate == 48000  # the stations' rate: no resampling there
    assert abs(len(decoded) / rate - segment.audio_duration_seconds) < 0.01
    assert np.abs(decoded).max() > 0.05
    # The same segment as Opus is the same music, lossily: within a few dB of it.
    twin_events = piece_events(spec(4))
    for event in twin_events:
        event.meta.piece_id = TWIN_ID
    feed(render, twin_events)
    twin = next(s for s in segments(render.published) if s.meta.piece_id == TWIN_ID)
    lossy, _ = soundfile.read(io.BytesIO(audio_of(render, twin)))
    assert twin.audio_media_type.startswith("audio/ogg")
    assert len(audio) > 5 * len(audio_of(render, twin))
    rms = [float(np.sqrt(np.mean(np.square(x)))) for x in (decoded, lossy)]
    assert abs(20 * np.log10(rms[0] / rms[1])) < 1.0

    folder = tmp_path / "pieces" / "segments" / PIECE_ID
    (flac,) = folder.iterdir()
    an_hour_ago = time.time() - 3600
    os.utime(flac, (an_hour_ago, an_hour_ago))
    (kept,) = (tmp_path / "pieces" / "segments" / TWIN_ID).iterdir()
    os.utime(kept, (an_hour_ago, an_hour_ago))
    monkeypatch.setattr(render.settings, "render_segment_retention_s", 7200)
    monkeypatch.setattr(render.settings, "render_lossless_segment_retention_s", 600)
    assert render.delete_expired_segment_audio() == 1
    assert not flac.exists() and kept.exists()  # lossless goes after 10 minutes, Opus later


def test_after_a_restart_the_audio_is_rebuilt_by_replay(render):
    events = piece_events(spec(12))
    feed(render, events)
    steady = {s.meta.index: audio_of(render, s) for s in segments(render.published)}
    assert len(steady) == 3

    # The same piece again, with the process "restarted" after segment 0 was published.
    render.pieces.clear()
    render.published.clear()
    feed(render, events[: 1 + 3 * 4])
    render.live_audio.clear()  # the restart: memory gone, the tables kept
    render.held_events.clear()
    feed(render, events[1 + 3 * 4 :])
    again = {s.meta.index: audio_of(render, s) for s in segments(render.published)}
    assert again == steady


def test_the_tables_grow_with_the_piece_not_with_its_square(render, monkeypatch):
    """Each event is written to the changelog once (#20, #22): the piece's record stays
    the same size however long the piece, and completion deletes the piece's events."""
    import json

    writes: list[int] = []

    class Changelog(dict):
        def __setitem__(self, key, value):
            writes.append(len(json.dumps(value)))
            super().__setitem__(key, value)

    def piece_record_sizes(bars: int) -> list[int]:
        writes.clear()
        monkeypatch.setattr(render, "pieces", Changelog())
        monkeypatch.setattr(render, "piece_events", Changelog())
        feed(render, piece_events(spec(bars)))
        return list(writes)

    short, long = piece_record_sizes(4), piece_record_sizes(24)
    assert max(long) < 1.1 * max(short)  # the largest write does not grow with the piece
    assert sum(long) < 7 * sum(short)  # 6x the bars: linear (the square would be 36x)
    assert render.piece_events == {}  # completed: the piece's events deleted
    assert render.pieces[PIECE_ID] == {
        "version": 2,
        "received": {},
        "segments": 6,
        "completed": True,
    }
    summary = json.loads(render.store.read_all(PIECE_ID)["piece.json"])
    kinds = [entry["kind"] for entry in summary["event_log"]]  # every event, as before
    assert kinds[0] == "compose_requested" and kinds[-1] == "piece_completed"
    assert kinds.count("render_segment") == 6 and kinds.count("melody_bar") == 24


def test_an_event_stored_before_a_crash_is_the_copy_that_counts(render):
    """A crash between storing an event and recording it in the piece's record: the
    redelivered copy finds the stored one, which wins (first copy), and is recorded."""
    from cantus.streaming.table_state import RenderEvent, render_event_key

    events = piece_events(spec(4))
    feed(render, events[:2])  # the request and bar 0's melody
    first_copy = pb.HarmonyBar()
    first_copy.CopyFrom(events[2])
    first_copy.meta.producer = "harmony, before the crash"
    render.piece_events[render_event_key(PIECE_ID, "harmony_bar", 0)] = RenderEvent(
        event=base64.b64encode(first_copy.SerializeToString()).decode(),
        log=render.log_entry(first_copy, "harmony_bar"),
    ).to_table()
    render.held_events.clear()  # and the process restarted
    feed(render, events[2:])
    assert len(segments(render.published)) == 1
    done = [m for m in render.published if isinstance(m, pb.PieceCompleted)]
    assert len(done) == 1 and render.piece_events == {}
    stored = pb.PieceRecord.FromString(render.store.read_all(PIECE_ID)["parts.pb"])
    assert stored.harmony[0].meta.producer == "harmony, before the crash"


def test_an_event_whose_record_outlived_it_is_stored_again_when_redelivered(render):
    """Found by `cantus bench chaos` (session 17): render killed mid-piece kept the piece's
    record (it holds bars 0-3) but not the events' own writes (separate changelogs). The
    redelivered events were skipped as held, the piece never had its parts, and it never
    completed. A redelivered event missing from the event table is stored again."""
    from cantus.streaming.table_state import render_event_key

    events = piece_events(spec(4))
    feed(render, events[:7])  # the request and bars 0-1
    for kind, index in (("melody_bar", 1), ("harmony_bar", 1), ("lyric_line", 1)):
        del render.piece_events[render_event_key(PIECE_ID, kind, index)]  # lost in the crash
    render.held_events.clear()  # the process restarted
    feed(render, events[4:])  # redelivered from the last commit on
    assert [s.meta.index for s in segments(render.published)] == [0]
    assert len([m for m in render.published if isinstance(m, pb.PieceCompleted)]) == 1


def test_redelivered_events_publish_nothing_twice(render):
    events = piece_events(spec(4))
    feed(render, events)
    count = len(render.published)
    feed(render, events)  # a completed piece keeps a tombstone
    assert len(render.published) == count


def test_audio_that_cannot_be_rendered_leaves_the_segment_without_it(render, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no FluidSynth here")

    monkeypatch.setattr(render, "SegmentAudio", broken)
    feed(render, piece_events(spec(4))[:13])
    (segment,) = segments(render.published)
    assert segment.midi and not segment.audio and not segment.audio_uri


def test_the_warm_up_starts_what_the_first_finished_piece_would(render):
    """A restarted render service pays the final render's cold start (imports, the
    long-lived LilyPond) at start, not on the first piece it finishes (#22)."""
    import shutil

    from cantus.render import lilypond_server

    if not (shutil.which("lilypond") and shutil.which("musicxml2ly")):
        pytest.skip("LilyPond is not installed (the Debian package lilypond)")
    lilypond_server.close_servers()
    render.settings.leadsheet = True  # the fixture's monkeypatch puts it back
    render.warm_up_final_render()
    assert any(server.alive for server in lilypond_server._servers.values())
    assert "matplotlib.pyplot" in sys.modules and "cantus.render.exports" in sys.modules
    lilypond_server.close_servers()
