"""Stations and therapy plans against the real stack: pieces composed through the normal
pipeline, the HLS stream read by real ffprobe/ffmpeg, plan pieces measured from their files,
feedback through gRPC and the Kafka topic, and a station service killed mid-stream."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request

import grpc
import mido
import numpy as np
import pytest

from cantus.stations.novelty import similarity
from cantus.stations.records import encode_station_record
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc

from .headless_chromium import HeadlessPage, chromium_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs Debian ffmpeg"),
]

STATION_YAML = """
styles: {folk: 1, celtic: 1}
tempo_bpm: [100, 130]
keys: [C, G, D]
meters: ['4/4']
bars: 4
buffer_pieces: 1
crossfade_seconds: 1.0
"""


@pytest.fixture(scope="module")
def stations(gateway_address):
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]  # GetPiece: every file
    with grpc.insecure_channel(gateway_address, options=options) as channel:
        yield st_grpc.StationStub(channel), api_grpc.ComposerStub(channel)


@pytest.fixture(scope="module")
def http_base(stack):
    return f"http://{stack.settings.host}:{stack.settings.gateway_http_port}"


def wait_for(stub, name, check, timeout_s=240.0, what="station"):
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        try:
            status = stub.GetStation(st.StationName(name=name), timeout=10)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if status is not None and check(status):
            return status
        time.sleep(1.0)
    pytest.fail(f"{what}: not reached within {timeout_s:.0f} s; last status: {status}")


def streamed(status):
    return [e for e in status.program if e.status == "streamed"]


def get(url):
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.read()


def test_bad_station_requests_name_the_field(stations):
    stub, _ = stations
    for name, config, field in [
        ("Bad Name", "", "name"),
        ("ok", "tempo_bpm: [130, 100]", "config_yaml.tempo_bpm"),
        ("ok", "styles: {jazz: 1}", "config_yaml.styles"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartStation(st.StartStationRequest(name=name, config_yaml=config), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith(field)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetStation(st.StationName(name="nobody"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_station_streams_hls_that_ffmpeg_reads(stations, http_base, stack):
    stub, _ = stations
    status = stub.StartStation(
        st.StartStationRequest(name="radio", config_yaml=STATION_YAML), timeout=30
    )
    assert status.running and len(status.program) == 2  # the next piece + a buffer of one
    status = wait_for(stub, "radio", lambda s: len(streamed(s)) >= 3, what="3 pieces streamed")

    playlist = get(f"{http_base}/stations/radio/live.m3u8").decode()
    assert playlist.startswith("#EXTM3U") and "#EXT-X-ENDLIST" not in playlist
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
         "-of", "json", f"{http_base}/stations/radio/live.m3u8"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "aac" and stream["channels"] == 2
    # Decode the stream from its first segment (a live playlist: ffmpeg would start near the
    # live edge and follow it forever) for as long as the playlist lists.
    listed = sum(
        float(line[8:].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:")
    )
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-live_start_index", "0",
         "-i", f"{http_base}/stations/radio/live.m3u8", "-t", f"{listed:.2f}",
         "-f", "s16le", "-ac", "1", "-ar", "8000", "-"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    samples = np.frombuffer(decoded.stdout, dtype="<i2").astype(np.float32) / 32768
    assert len(samples) / 8000 == pytest.approx(listed, abs=0.5)
    # The segments' bytes are in the segment store, not in the records (nor the gateway).
    stored = list((stack.settings.data_dir / "stations" / "radio").glob("seg*.ts"))
    assert len(stored) >= playlist.count("#EXTINF:")
    # Pieces follow each other with no gap: no stretch of silence (crossfades, not pauses).
    blocks = np.abs(samples[: len(samples) // 400 * 400]).reshape(-1, 400)  # 50 ms each
    loud = blocks.max(axis=1) > 1e-3
    quiet_runs = np.diff(np.flatnonzero(np.concatenate([[True], loud, [True]]))) - 1
    assert quiet_runs.max() * 0.05 < 1.0
    first_two = streamed(status)[:2]
    assert first_two[1].stream_start_seconds < first_two[0].fed_seconds  # overlapped: crossfade
    assert listed > 0.9 * sum(e.fed_seconds for e in streamed(status)[:2])

    # The stream runs ahead of playback: pieces beyond the one playing are composed.
    feed = json.loads(get(f"{http_base}/stations/radio/playlist.json"))
    now = feed["now_playing"]
    assert now is not None
    for field in (
        "title",
        "key",
        "tempo_bpm",
        "mood",
        "energy",
        "duration_seconds",
        "loudness_lufs",
    ):
        assert now[field] not in (None, "")
    # The M3U lists stored pieces; a piece is stored after its whole render (files, lead
    # sheet, pictures), which may end after later pieces have started streaming.
    deadline = time.monotonic() + 90
    while True:
        m3u = get(f"{http_base}/stations/radio/playlist.m3u").decode()
        if "/piece.opus" in m3u or time.monotonic() > deadline:
            break
        time.sleep(1)
    # A station's pieces are stored with the stream's Opus only (it asks for nothing else).
    assert m3u.startswith("#EXTM3U") and "/piece.opus" in m3u
    first_url = next(line for line in m3u.splitlines() if line.startswith("http"))
    opus = get(first_url)
    assert opus[:4] == b"OggS" and b"OpusHead" in opus[:64]

    # No two delivered pieces share a melody (the snapshot's fingerprints hold them).
    fingerprints = {f.piece_id: list(f.intervals) for f in status.fingerprints}
    melodies = [fingerprints.get(e.piece_id) for e in streamed(status)]
    assert all(melodies)
    for i, a in enumerate(melodies):
        for b in melodies[i + 1 :]:
            assert similarity(a, b) < 0.5


def test_feedback_steers_the_station(stations, stack):
    stub, _ = stations
    status = wait_for(stub, "radio", lambda s: len(streamed(s)) >= 1)
    before = status.steering
    liked = streamed(status)[0]
    status = stub.SendFeedback(
        st.StationFeedback(station="radio", piece_id=liked.piece_id, kind="like"), timeout=30
    )
    entry = next(e for e in status.program if e.piece_id == liked.piece_id)
    assert entry.likes == 1
    assert status.steering.style_weights[liked.style] > before.style_weights[liked.style]
    assert (
        abs(status.steering.tempo_center_bpm - liked.tempo_bpm)
        < abs(before.tempo_center_bpm - liked.tempo_bpm)
        or before.tempo_center_bpm == liked.tempo_bpm
    )

    # The same through the Kafka topic (as a playout system would send it).
    async def send_skip():
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=stack.settings.broker)
        await producer.start()
        try:
            message = st.StationFeedback(station="radio", piece_id=liked.piece_id, kind="skip")
            key, value, headers = encode_station_record(
                "station_feedback", message, "radio", source="test"
            )
            await producer.send_and_wait(
                stack.settings.topics.station_feedback, value, key=key, headers=headers
            )
        finally:
            await producer.stop()

    asyncio.run(send_skip())
    status = wait_for(
        stub,
        "radio",
        lambda s: next(e for e in s.program if e.piece_id == liked.piece_id).skips == 1,
        timeout_s=30,
        what="skip counted",
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendFeedback(
            st.StationFeedback(station="radio", piece_id=liked.piece_id, kind="love"), timeout=10
        )
    assert caught.value.details().startswith("kind")


def test_station_survives_a_restart_of_its_service(stations, stack, http_base):
    stub, _ = stations
    before = wait_for(stub, "radio", lambda s: len(streamed(s)) >= 1)
    stack.kill("station")
    stack.start_service("station")
    status = wait_for(
        stub,
        "radio",
        lambda s: len(streamed(s)) >= len(streamed(before)) + 2,
        what="two more pieces after the restart",
    )
    assert status.running
    ids = [e.piece_id for e in status.program]
    assert ids[: len(before.program)] == [e.piece_id for e in before.program]  # state kept
    # the fingerprints, in records of their own, came back with the snapshot
    kept = {f.piece_id for f in status.fingerprints}
    assert {f.piece_id for f in before.fingerprints} <= kept and len(kept) > len(
        before.fingerprints
    )
    assert "#EXT-X-DISCONTINUITY" in get(f"{http_base}/stations/radio/live.m3u8").decode()
    stopped = stub.StopStation(st.StationName(name="radio"), timeout=30)
    assert not stopped.running


def test_plan_pieces_measure_within_their_steps(stations):
    stub, composer = stations
    reply = stub.PlanSession(
        st.PlanRequest(
            start=st.ListenerState(tempo_bpm=110, energy=0.8, valence=0.9),
            target=st.ListenerState(tempo_bpm=65, energy=0.1, valence=0.2),
            pieces=3,
            bars=4,
            plan_name="wind-down",
        ),
        timeout=30,
    )
    assert [s.tempo_bpm for s in reply.steps] == [110, 87.5, 65]
    assert reply.steps[0].mode == "major" and reply.steps[-1].mode == "minor"
    status = wait_for(stub, "wind-down", lambda s: not s.running, what="plan played out")

    import music21

    delivered = streamed(status)
    assert sorted(e.plan_step for e in delivered) == [0, 1, 2]
    for entry in delivered:
        step = reply.steps[entry.plan_step]
        files = {
            f.name: f.content
            for f in composer.GetPiece(
                api.GetPieceRequest(piece_id=entry.piece_id), timeout=30
            ).files
        }
        midi = mido.MidiFile(file=io.BytesIO(files["piece.mid"]))
        tempo = next(m.tempo for t in midi.tracks for m in t if m.type == "set_tempo")
        assert step.tempo_min_bpm <= mido.tempo2bpm(tempo) <= step.tempo_max_bpm
        key = music21.converter.parseData(files["piece.mid"], format="midi").analyze("key")
        best = [
            f"{k.tonic.name.replace('-', 'b')} {k.mode}"
            for k in [key, *key.alternateInterpretations][:2]
        ]
        assert f"{step.key} {step.mode}" in best, (entry.piece_id, best)
        loudness = json.loads(files["piece.json"])["loudness"]
        assert abs(loudness["integrated_lufs"] - loudness["target_lufs"]) <= 1.0


@pytest.mark.skipif(chromium_binary() is None, reason="needs Debian chromium")
def test_web_player_plays_a_station_and_draws_its_bars(stations, http_base, tmp_path):
    stub, _ = stations
    stub.PlanSession(
        st.PlanRequest(
            start=st.ListenerState(tempo_bpm=100, energy=0.6, valence=0.8),
            target=st.ListenerState(tempo_bpm=70, energy=0.2, valence=0.3),
            pieces=3,
            bars=8,
            plan_name="web",
        ),
        timeout=30,
    )

    async def browse():
        async with HeadlessPage(f"{http_base}/?station=web") as page:
            await page.wait_for("window.cantus && Object.keys(cantus.bars).length >= 2", 180)
            await page.wait_for("cantus.segmentsAppended.size >= 2", 180)
            # The browser's own decoder plays the HLS segments (MediaSource): time advances.
            await page.wait_for("document.getElementById('audio').currentTime > 1", 60)
            await page.wait_for("document.getElementById('now').textContent.includes('BPM')", 120)
            seen = await page.evaluate(
                "({chords: Object.keys(cantus.chords).length, plan: document.getElementById"
                "('plan').rows.length, now: document.getElementById('now').textContent})"
            )
            await page.screenshot(tmp_path / "station_player.png")
        async with HeadlessPage(f"{http_base}/?compose=1&bars=8&key=D&mode=minor&pickup=0") as page:
            await page.wait_for("window.cantus && (cantus.decodedSegments || 0) >= 2", 180)
            piece = await page.evaluate("Object.keys(cantus.bars).length")
        return seen, piece

    seen, piece_bars = asyncio.run(browse())
    assert seen["chords"] >= 1 and seen["plan"] == 4  # header + three steps
    assert "BPM" in seen["now"] and "LUFS" in seen["now"]
    assert piece_bars == 8
    assert (tmp_path / "station_player.png").stat().st_size > 10_000
    if os.environ.get("CANTUS_SAVE_SCREENSHOTS"):
        shutil.copy(tmp_path / "station_player.png", "docs/station_player.png")
