"""A short closed-loop listening session against the real stack (issue #17): a walk session
whose walker sends cadence readings through gRPC and the Kafka topic, steps decided one by
one from them, ramped beat by beat in the pieces' MIDI, the last piece closing the
session, and the outcome log downloaded from the gateway."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import os
import shutil
import time
import urllib.request

import grpc
import mido
import pytest

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

# About 70 s of music in pieces of 4 bars (~10 s each); the per-minute bound is raised so
# that such short pieces can move. Long enough that the session still runs once the station
# killed mid-session is back (about 20 s on an idle machine) and its new signals are taken:
# at 42 s, an idle machine's session ended before the restarted station took any.
SESSION_MINUTES = 1.2
SESSION_YAML = f"""
minutes: {SESSION_MINUTES}
piece_bars: 4
fade_seconds: 3
max_tempo_change_per_minute_bpm: 30
"""


def cadence(value: float) -> st.ListenerSignal:
    return st.ListenerSignal(
        station="walk-it", measured_unix_ns=time.time_ns(), kind=st.STEP_CADENCE, value=value
    )


def test_a_closed_loop_walk_session(gateway_address, stack, tmp_path):
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(gateway_address, options=options) as channel:
        stub, composer = st_grpc.StationStub(channel), api_grpc.ComposerStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.PlanSession(st.PlanRequest(preset="jog", plan_name="walk-it"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("preset")

        reply = stub.PlanSession(
            st.PlanRequest(preset="walk", session_yaml=SESSION_YAML, plan_name="walk-it"),
            timeout=30,
        )
        assert reply.steps and reply.steps[-1].last  # the open-loop reference
        status = _wait(stub, lambda s: True)
        assert status.HasField("session")

        # A bad reading ends the call naming it; the ones before it were sent.
        with pytest.raises(grpc.RpcError) as caught:
            stub.SendSignals(iter([cadence(96.0), cadence(400.0)]), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("signals[1].value")
        with pytest.raises(grpc.RpcError) as caught:
            stub.SendSignals(iter([st.ListenerSignal(station="nobody", measured_unix_ns=1,
                                                     kind=st.HEART_RATE, value=70)]),
                             timeout=30)  # fmt: skip
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        # The walker follows the music: it reports the tempo the last decided step ends on.
        # Once a piece has streamed, the station service is restarted mid-session (kill -9,
        # started again). Once the restarted station reports again, the listener asks for
        # more intensity, however early in playback: a session holds its prebuffer in hand
        # and releases only the lead ahead from the start (Program.start_playback; before,
        # the stream was released the prebuffer plus the lead ahead, 20 + 8 s, and a change
        # asked 7.6 s into playback was heard 20.4 s later).
        asyncio.run(_send_through_kafka(stack, cadence(96.5)))
        deadline = time.monotonic() + 300
        restarted: st.StationStatus | None = None
        restarted_ns = 0
        intensity_sent = False
        while time.monotonic() < deadline:
            status = stub.GetStation(st.StationName(name="walk-it"), timeout=10)
            if not status.running:
                break
            if restarted is None and any(e.status == "streamed" for e in status.program):
                restarted = status
                stack.kill("station")
                stack.start_service("station")
                restarted_ns = time.time_ns()
                continue
            back = restarted is not None and status.updated_unix_ns > restarted_ns
            if back and not intensity_sent:
                stub.SendSignals(iter([st.ListenerSignal(station="walk-it", kind=st.INTENSITY,
                                                         measured_unix_ns=time.time_ns(),
                                                         value=0.8)]), timeout=30)  # fmt: skip
                intensity_sent = True
            last = status.plan[-1] if status.plan else None
            walker = (last.tempo_end_bpm or last.tempo_bpm) if last else 96.0
            stub.SendSignals(iter([cadence(walker)]), timeout=30)
            time.sleep(2.0)
        assert not status.running, "the session did not end within 300 s"
        # No underrun before the restart: a session's stream is only its 8 s lead ahead of
        # playback (its prebuffer is in hand, not published). The kill comes once the first
        # piece is streamed, usually before playback starts (20 s in hand), so the figure
        # printed at the end counts the session after the restart (0 on an idle machine); it
        # is not asserted, since render slower than real time on a loaded machine runs any
        # stream dry (cantus bench therapy measures the start on the station's own path).
        assert restarted is not None
        started_ns = restarted.stream_started_unix_ns
        playing = (restarted.updated_unix_ns - started_ns) / 1e9 if started_ns else 0.0
        print(
            f"before the restart: playback {playing:.1f} s, {restarted.ahead_seconds:.1f} s "
            f"ahead, {restarted.underruns} underruns; at the end {status.underruns}"
        )
        assert restarted.underruns == 0
        # The session resumed from its last snapshot: the same session, its steps and
        # signal state kept, and it went on to its end.
        assert restarted is not None and intensity_sent
        assert status.session.session_id == restarted.session.session_id != ""
        assert list(status.plan)[: len(restarted.plan)] == list(restarted.plan)
        assert status.session.signals_accepted > restarted.session.signals_accepted
        assert status.session.intensity == pytest.approx(0.8)

        plan = list(status.plan)
        assert len(plan) >= 3 and plan[-1].last and not any(s.last for s in plan[:-1])
        for before, after in itertools.pairwise(plan):
            assert after.tempo_bpm == pytest.approx(before.tempo_end_bpm or before.tempo_bpm)
            assert abs(after.tempo_end_bpm - after.tempo_bpm) <= 4.0 + 1e-6  # the preset's step
        assert any("cadence" in s.adjusted for s in plan[1:])  # the signals steered
        end = plan[-1].start_seconds + plan[-1].duration_seconds
        assert abs(end - SESSION_MINUTES * 60) < 6.0

        # A ramped piece's MIDI: tempo changes on beats, in small steps, no ritardando.
        streamed = [e for e in status.program if e.status == "streamed"]
        assert sorted({e.plan_step for e in streamed}) == [s.index for s in plan]
        # Pieces join on the beat: each starts where the one before it ends its last bar.
        # (but the one join across the restart: what was encoded but not published is lost)
        by_step = sorted(streamed, key=lambda e: e.plan_step)
        off_beat = 0
        joins = []
        for before, after in itertools.pairwise(by_step):
            bar_line = before.stream_start_seconds + plan[before.plan_step].duration_seconds
            joins.append(round(after.stream_start_seconds - bar_line, 2))
            off_beat += after.stream_start_seconds != pytest.approx(bar_line, abs=0.15)
        # printed for a failing run: which join was off, by how much, and where the stream was
        pieces = [
            (round(e.stream_start_seconds, 2), round(e.fed_seconds, 2),
             round(plan[e.plan_step].duration_seconds, 2)) for e in by_step
        ]  # fmt: skip
        print(
            f"restart at stream {restarted.stream_seconds:.2f} s; pieces (start, fed, planned):"
            f" {pieces}; joins off the bar line by {joins} s"
        )
        # The join across the restart is on the beat too unless the kill came after the
        # piece's last bar line had been published: then the next piece comes in where the
        # stream ended, at most its release (the render's 2 s tail and the last notes) late,
        # never early (which would cut the piece's bars).
        assert off_beat <= 1 and all(-0.15 <= join <= 3.5 for join in joins)
        # and the final cadence lands on time in the stream itself: where the plan ends (a
        # closed loop's last step ends within a piece of the session's length, checked above)
        last = by_step[-1]
        assert last.stream_start_seconds + plan[last.plan_step].duration_seconds == (
            pytest.approx(end, abs=max(joins) + 0.15)
        )
        ramped = next(e for e in streamed if e.tempo_end_bpm and not plan[e.plan_step].last)
        files = composer.GetPiece(api.GetPieceRequest(piece_id=ramped.piece_id), timeout=30)
        midi = mido.MidiFile(file=io.BytesIO(next(f.content for f in files.files
                                                   if f.name == "piece.mid")))  # fmt: skip
        tempos = []
        for track in midi.tracks:
            tick = 0
            for message in track:
                tick += message.time
                if message.type == "set_tempo":
                    tempos.append((tick, mido.tempo2bpm(message.tempo)))
        tempos.sort()
        assert len(tempos) > 4 and all(t % midi.ticks_per_beat == 0 for t, _ in tempos)
        steps = [abs(b - a) for (_, a), (_, b) in itertools.pairwise(tempos)]
        assert max(steps) < 1.0
        assert tempos[-1][1] == pytest.approx(ramped.tempo_end_bpm, abs=0.05)

        http = f"http://{stack.settings.host}:{stack.settings.gateway_http_port}"
        playlist = _get(f"{http}/stations/walk-it/live.m3u8").decode()
        assert "#EXT-X-ENDLIST" in playlist
        log = json.loads(_get(f"{http}/stations/walk-it/session.json"))
        assert log["started"] is not None and log["ended"] is not None
        kinds = {(s.get("kind"), s["rejected"]) for s in log["signals"]}
        assert ("STEP_CADENCE", "") in kinds
        assert log["session_id"] == status.session.session_id
        # a piece taken back at the restart is played (and logged) again
        assert {p["piece_id"] for p in log["played"]} == {e.piece_id for e in streamed}
        assert all(p.get("energy_measured", 0) > 0 for p in log["played"])
        # the intensity change was heard within the release lead (8 s)
        (change,) = [a for a in log["adjustments"] if "gain_db" in a]
        heard = change.get("heard_after_seconds", 0.0)
        print(f"intensity heard {heard} s after the signal")
        assert 0 <= heard <= 8.0 and change["gain_db"] > 0
        assert len(log["adjustments"]) >= len(plan)
        rows = list(csv.DictReader(io.StringIO(_get(f"{http}/stations/walk-it/session.csv")
                                               .decode())))  # fmt: skip
        assert {r["record"] for r in rows} >= {"started", "signal", "adjustment", "played", "ended"}

    if chromium_binary() is not None:  # the web player plots the session's log
        plotted = asyncio.run(_plot(f"{http}/?station=walk-it", tmp_path))
        # every played record of the log, the piece taken back at the restart twice
        assert plotted["played"] == len(log["played"]) >= len(streamed)
        assert plotted["plan"] >= 1
        assert plotted["rates"] >= 1
        if os.environ.get("CANTUS_SAVE_SCREENSHOTS"):
            shutil.copy(tmp_path / "session_player.png", "docs/session_player.png")


async def _plot(url, tmp_path):
    async with HeadlessPage(url) as page:
        await page.wait_for(
            "window.cantus && cantus.sessionPlot && cantus.sessionPlot.played > 0", 60
        )
        plotted = await page.evaluate("cantus.sessionPlot")
        await page.screenshot(tmp_path / "session_player.png")
    return plotted


def _wait(stub, check, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = stub.GetStation(st.StationName(name="walk-it"), timeout=10)
            if check(status):
                return status
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        time.sleep(0.5)
    pytest.fail("the session did not start")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.read()


async def _send_through_kafka(stack, signal: st.ListenerSignal) -> None:
    """A reading as a device gateway would publish it, straight to the signal topic."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.broker)
    await producer.start()
    try:
        key, value, headers = encode_station_record(
            "station_signal", signal, signal.station, source="test"
        )
        await producer.send_and_wait(
            stack.settings.topics.station_signal, value, key=key, headers=headers
        )
    finally:
        await producer.stop()
