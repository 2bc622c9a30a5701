"""A station worker's per-piece state is bounded by its program window, like its snapshot."""

import random
import types

from cantus.settings import Settings
from cantus.v1 import station_pb2 as st
from services.station.app import StationWorker

from .test_snapshot import CONFIG, play


def test_pieces_that_left_the_window_leave_the_workers_maps():
    settings = Settings(station_history_pieces=10)
    service = types.SimpleNamespace(settings=settings, owners={"other-piece": "other-station"})
    worker = StationWorker(service, st.StationStatus(name="radio", config_yaml=CONFIG))
    rng = random.Random(0)
    for _ in range(60):  # what _request_piece and on_event leave behind for each piece
        play(worker.program, 1, rng)  # requests (which trims the window) and plays a piece
        worker.forget_pieces_out_of_window()
        piece_id = worker.program.status.program[-1].piece_id
        worker.requested_bars[piece_id] = 16
        worker.fed[piece_id] = 3
        service.owners[piece_id] = "radio"
    in_window = {entry.piece_id for entry in worker.program.status.program}
    assert len(in_window) < 20
    assert set(worker.requested_bars) <= in_window and set(worker.fed) <= in_window
    assert {p for p, name in service.owners.items() if name == "radio"} <= in_window
    assert service.owners["other-piece"] == "other-station"  # other stations' pieces stay


def _worker_feeding_into(fed: list[int], monkeypatch) -> StationWorker:
    """A worker whose audio goes to ``fed`` (frames per write) instead of an encoder, and
    whose segments decode to silence (no Opus here)."""
    import numpy as np

    import services.station.app as station_app

    monkeypatch.setattr(station_app, "_decode_segment_audio", lambda audio: np.zeros(480))
    service = types.SimpleNamespace(settings=Settings(), owners={})
    worker = StationWorker(service, st.StationStatus(name="radio", config_yaml=CONFIG))

    async def write(entry, frames):
        fed.append(len(frames))
        entry.fed_seconds += len(frames) / 48_000

    async def publish_outcome(**what):
        pass

    worker._write = write  # type: ignore[method-assign]
    worker.publish_outcome = publish_outcome  # type: ignore[method-assign]
    return worker


def _segment(piece_id: str, index: int, first_bar: int, bars: int):
    from cantus.events.codec import new_meta
    from cantus.v1 import events_pb2 as pb

    meta = new_meta(piece_id, index, "render")
    return pb.RenderSegment(meta=meta, first_bar=first_bar, bar_count=bars, audio=b"ogg")


def test_a_piece_requested_before_a_restart_ends_when_its_completion_tells_its_length(
    monkeypatch,
):
    """Found by `cantus bench chaos` (#22): the station service killed after requesting a
    piece; the restarted process saw its only segment live but not how many bars it has (that
    was in the dead process's memory), so it waited for more audio forever and the station's
    stream stopped. Its completion (meta.index: the bar count) now ends it."""
    import asyncio

    from cantus.events.codec import new_meta
    from cantus.v1 import events_pb2 as pb

    fed: list[int] = []
    worker = _worker_feeding_into(fed, monkeypatch)
    entry, _ = worker.program.next_request("restarted-piece")
    entry.status = "composing"  # as the snapshot the restarted process resumed from says

    async def scenario() -> None:
        await worker.on_event(_segment("restarted-piece", 0, 0, 4))
        await worker._feed()
        assert fed and entry.status == "composing"  # fed, and more might come
        done = pb.PieceCompleted(meta=new_meta("restarted-piece", 4, "render"))
        await worker.on_event(done)
        await worker._feed()

    asyncio.run(scenario())
    assert entry.status == "streamed"
    assert len(fed) == 1  # its audio once


def test_a_piece_this_process_requested_ends_with_its_last_segment(monkeypatch):
    import asyncio

    fed: list[int] = []
    worker = _worker_feeding_into(fed, monkeypatch)
    entry, _ = worker.program.next_request("live-piece")
    entry.status = "composing"
    worker.requested_bars["live-piece"] = 8

    async def scenario() -> None:
        await worker.on_event(_segment("live-piece", 0, 0, 4))
        await worker._feed()
        assert entry.status == "composing"
        await worker.on_event(_segment("live-piece", 1, 4, 4))
        await worker._feed()

    asyncio.run(scenario())
    assert entry.status == "streamed" and len(fed) == 2


def test_segment_audio_is_read_from_the_segment_store(monkeypatch, tmp_path):
    """A render segment names where its audio is (the segment store); one whose audio the
    store no longer has is skipped, with a warning, and the station goes on."""
    import asyncio

    import numpy as np

    import services.station.app as station_app
    from cantus.segment_store import render_segment_store

    decoded: list[bytes] = []

    def decode(audio: bytes):
        decoded.append(audio)
        return np.zeros(480)

    fed: list[int] = []
    worker = _worker_feeding_into(fed, monkeypatch)
    monkeypatch.setattr(station_app, "_decode_segment_audio", decode)
    store = render_segment_store(Settings(data_dir=tmp_path))
    worker.service.render_segments = store
    piece = "0123456789abcdef0123456789abcdef"
    entry, _ = worker.program.next_request(piece)
    entry.status = "composing"
    worker.requested_bars[piece] = 12
    stored = _segment(piece, 0, 0, 4)
    stored.audio = b""
    stored.audio_uri = store.write(piece, 0, b"OggS stored")
    gone = _segment(piece, 1, 4, 4)
    gone.audio = b""
    gone.audio_uri = stored.audio_uri.replace("seg0-", "seg1-")  # pruned meanwhile

    async def scenario() -> None:
        await worker.on_event(stored)
        await worker.on_event(gone)

    asyncio.run(scenario())
    assert decoded == [b"OggS stored"]
    assert sorted(worker.audio[piece]) == [0]


def test_lossless_segment_audio_is_decoded_at_the_stream_rate_unchanged():
    import numpy as np

    from cantus.render.exports import encode_segment_audio
    from services.station.app import SAMPLE_RATE, _decode_segment_audio

    seconds = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.25 * np.sin(2 * np.pi * 440.0 * seconds)
    audio = np.stack([tone, tone], axis=1).astype(np.float32)
    frames = _decode_segment_audio(encode_segment_audio(audio, SAMPLE_RATE, codec="flac"))
    assert frames.shape == audio.shape
    assert np.abs(frames - audio).max() < 1e-4  # 16-bit: no codec's loss, no resampling
