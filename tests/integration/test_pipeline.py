"""End to end against the real stack: a piece streams bar by bar, files are complete and
correct, bad requests and poison events are refused without losing anything, and a piece
survives ``kill -9`` of any stream service."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import mido
import pyloudnorm
import pytest
import soundfile
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cantus.cli.compose import ComposeFailed, compose, open_channel
from cantus.events.codec import decode_event, encode_event, new_meta
from cantus.events.conversions import spec_form
from cantus.music.chords import ChordSymbol
from cantus.music.form import Cadence
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from cantus.v1 import events_pb2 as pb

pytestmark = pytest.mark.integration


def kinds(events: list[api.PieceEvent]) -> list[tuple[str, int]]:
    out = []
    for event in events:
        kind = event.WhichOneof("event")
        out.append((kind, getattr(event, kind).meta.index))
    return out


def assert_piece_complete(folder, bars: int) -> dict:
    """piece.mid has the four named parts covering every bar once; piece.json agrees."""
    summary = json.loads((folder / "piece.json").read_text())
    assert summary["bars"] == bars
    assert len(summary["melody_per_bar"]) == bars
    assert len(summary["chords_per_bar"]) == bars
    midi = mido.MidiFile(file=io.BytesIO((folder / "piece.mid").read_bytes()))
    names = [track.name for track in midi.tracks]
    for part in ("melody", "chords", "bass", "drums"):
        assert part in names
    melody = midi.tracks[names.index("melody")]
    onsets, now = [], 0
    for message in melody:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            onsets.append(now)
    expected = sum(len(bar) for bar in summary["melody_per_bar"])
    assert len(onsets) == expected  # every bar's notes exactly once, no duplicates
    log = summary["event_log"]
    produced = [entry["produced_at_unix_ns"] for entry in log]
    assert produced == sorted(produced)
    for kind in ("melody_bar", "harmony_bar", "lyric_line"):
        assert sorted(e["index"] for e in log if e["kind"] == kind) == list(range(bars))
    return summary


def test_compose_streams_bars_and_writes_the_piece(gateway_address, tmp_path):
    request = api.ComposeRequest(
        key="D",
        mode="minor",
        tempo_bpm=120,
        meter="6/8",
        bars=12,
        style="celtic",
        mood="happy",
        seed=7,
        pickup=True,
    )
    piece = compose(gateway_address, request, tmp_path)
    order = kinds(piece.events)
    assert order[0] == ("requested", 0)
    assert order[-1] == ("completed", 13)
    # The first event carries the piece's form: a plan whose sections cover the bars (a
    # pickup bar, then auto over 12 bars: three four-bar phrases in the pattern the seed
    # draws from the corpus's celtic 6/8 tunes, all in the home key).
    spec = piece.events[0].requested.spec
    plan = spec_form(spec)
    assert plan is not None and plan.total_bars == spec.bars == 13
    sections = [(s.first_bar, s.bars) for s in plan.sections]
    assert sections == [(0, 1), (1, 4), (5, 4), (9, 4)]
    assert plan.labels()[:2] == ["pickup", "A"]
    # Streaming is real: bar 0's melody and chords reach the client before the last bar
    # of melody has been decoded.
    last_melody = order.index(("melody_bar", 12))
    assert order.index(("melody_bar", 0)) < last_melody
    assert order.index(("harmony_bar", 0)) < last_melody
    by_kind = {k: [e for e in piece.events if e.WhichOneof("event") == k] for k, _ in order}
    first_harmony = by_kind["harmony_bar"][0].harmony_bar.meta.produced_at_unix_ns
    assert first_harmony < by_kind["melody_bar"][-1].melody_bar.meta.produced_at_unix_ns
    # Each bar exactly once on the stream.
    assert sorted(i for k, i in order if k == "melody_bar") == list(range(13))
    assert sorted(i for k, i in order if k == "render_segment") == [0, 1, 2, 3]
    # The tune comes in with an upbeat: bar 0 rests until its pickup.
    first_bar = by_kind["melody_bar"][0].melody_bar
    assert first_bar.meta.index == 0 and 0 < first_bar.notes[0].onset_ticks < 1440
    # The request that reaches the last bar asks for a cadence: the piece ends on D.
    last_bar = max(by_kind["melody_bar"], key=lambda e: e.melody_bar.meta.index).melody_bar
    assert last_bar.notes and max(last_bar.notes, key=lambda n: n.onset_ticks).pitch % 12 == 2
    summary = assert_piece_complete(piece.folder, 13)
    assert summary["key"] == "D minor"
    assert [s["label"] for s in summary["form"]["sections"]] == plan.labels()
    musicxml = (piece.folder / "piece.musicxml").read_bytes()
    assert musicxml.count(b"<rehearsal") == 3  # the sections; the pickup is an anacrusis
    assert b'<measure implicit="yes" number="0">' in musicxml
    assert summary["meter"] == "6/8"
    assert summary["models"]["melody"][0].startswith("melody_lm")
    # Every segment carries its mastered audio, back to back, in small events.
    segments = [e.render_segment for e in by_kind["render_segment"]]
    position = 0.0
    for segment in sorted(segments, key=lambda s: s.meta.index):
        assert segment.audio[:4] == b"OggS", segment.meta.index
        assert segment.audio_media_type == "audio/ogg; codecs=opus"
        assert len(segment.SerializeToString()) < 512 * 1024
        assert segment.audio_start_seconds == pytest.approx(position, abs=1e-6)
        assert segment.audio_duration_seconds > 0.9 * segment.duration_seconds
        position += segment.audio_duration_seconds
    # The finished files: a mastered mix at -14 LUFS, its encodings, the lead sheet, the roll.
    audio, rate = soundfile.read(io.BytesIO((piece.folder / "piece.wav").read_bytes()))
    # Streamed segment by segment, a 20-second piece lands on the target too: its ending
    # (the held final note) is mastered as one (session 29; it landed at -12.9 LUFS before).
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(audio) + 14.0) <= 0.5
    files = ("piece.flac", "piece.mp3", "piece.opus", "piece.musicxml", "piece.pdf", "piece.png")
    for name in (*files, "pianoroll.png"):
        assert (piece.folder / name).stat().st_size > 0, name
    assert sorted(summary["files"]) == sorted(p.name for p in piece.folder.iterdir())
    assert summary["loudness"]["preset"] == "streaming"
    assert abs(summary["loudness"]["integrated_lufs"] + 14.0) <= 0.5
    completed = by_kind["completed"][0].completed
    assert completed.target_lufs == -14.0
    assert abs(completed.integrated_lufs + 14.0) <= 0.5
    assert summary["render_errors"] == {}
    # Harmony follows the plan's cadences: each section's last bar ends on the dominant of
    # its key area (half) or its tonic (authentic), the piece on the home tonic.
    harmony = {e.harmony_bar.meta.index: e.harmony_bar for e in by_kind["harmony_bar"]}
    for section in plan.sections[1:]:  # the pickup ends no phrase
        end = section.end_bar - 1
        key = plan.home_key if end == plan.total_bars - 1 else section.key
        half = plan.cadence_at(end) is Cadence.HALF
        last = ChordSymbol.parse(harmony[end].chords[-1].symbol)
        assert last.root == (key.tonic + (7 if half else 0)) % 12, (section.label, last)
    # It ends slowing down (piece.mid's tempo map) and has its self-similarity picture.
    midi = mido.MidiFile(file=io.BytesIO((piece.folder / "piece.mid").read_bytes()))
    tempos = [mido.tempo2bpm(m.tempo) for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos[0] == pytest.approx(120.0) and tempos[-1] < 0.75 * 120.0
    assert (piece.folder / "selfsim.png").read_bytes().startswith(b"\x89PNG")


def test_get_piece_errors(gateway_address):
    with open_channel(gateway_address) as channel:
        stub = api_grpc.ComposerStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetPiece(api.GetPieceRequest(piece_id="0" * 32))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetPiece(api.GetPieceRequest(piece_id="../../etc/passwd"))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "piece_id" in raised.value.details()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"key": "H"}, "key"),
        ({"bars": 0}, "bars"),
        ({"bars": 1000}, "bars"),
        ({"tempo_bpm": 5}, "tempo_bpm"),
        ({"style": "polka"}, "style"),
        ({"continue_midi": b"MThd garbage"}, "continue_midi"),
        ({"form": "sonata"}, "form"),
        ({"duration_seconds": 60, "bars": 16}, "duration_seconds"),
        ({"duration_seconds": 301}, "duration_seconds"),
    ],
)
def test_invalid_request_is_refused_naming_the_field(gateway_address, tmp_path, fields, field):
    with pytest.raises(ComposeFailed) as raised:
        compose(gateway_address, api.ComposeRequest(**fields), tmp_path)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(raised.value).startswith(f"{field}: ")


def test_poison_events_go_to_dead_letters_and_service_keeps_serving(
    stack, gateway_address, tmp_path
):
    topics = stack.settings.topics
    poison = {
        topics.compose_requested: (b"\x08\x96\x01garbage", "cantus.compose.requested.v1"),
        topics.melody_bar: (b"not protobuf at all", "cantus.melody.bar.v1"),
        topics.harmony_bar: (b"", "cantus.harmony.bar.v1"),
        topics.lyric_line: (b"\xff\xfe", "cantus.lyric.line.v1"),
    }
    # A schema-valid protobuf that breaks an invariant (pitch 300) on the melody topic.
    bad_bar = pb.MelodyBar(
        meta=new_meta("feedfeedfeedfeedfeedfeedfeedfeed", 0, "test"),
        spec=pb.PieceSpec(
            key_tonic=0,
            mode=pb.MODE_MAJOR,
            tempo_bpm=100,
            meter_numerator=4,
            meter_denominator=4,
            bars=4,
            style="folk",
            mood="calm",
            energy="low",
        ),
        notes=[pb.Note(onset_ticks=0, pitch=300, duration_ticks=480, velocity=90)],
    )

    async def publish_and_collect() -> list[pb.DeadLetter]:
        consumer = AIOKafkaConsumer(
            topics.dead_letter,
            bootstrap_servers=stack.settings.broker,
            group_id=None,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(bootstrap_servers=stack.settings.broker)
        await consumer.start()
        await producer.start()
        try:
            for topic, (value, ce_type) in poison.items():
                await producer.send_and_wait(
                    topic, value, key=b"poison", headers=[("ce_type", ce_type.encode())]
                )
            key, value, headers = encode_event(bad_bar, source="test")
            await producer.send_and_wait(topics.melody_bar, value, key=key, headers=headers)
            await producer.send_and_wait(topics.harmony_bar, b"no headers", key=b"x")
            letters: list[pb.DeadLetter] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        letters.append(decode_event("dead_letter", record.value, record.headers))
                reasons = {(letter.source_topic, letter.service) for letter in letters}
                # two poison records share (harmony_bar, render): wait for both of them too
                texts = " | ".join(letter.reason for letter in letters)
                if len(reasons) >= 6 and "pitch 300" in texts and "missing ce_type" in texts:
                    break
            return letters
        finally:
            await consumer.stop()
            await producer.stop()

    letters = asyncio.run(publish_and_collect())
    seen = {(letter.source_topic, letter.service): letter.reason for letter in letters}
    # Every consumer of a topic dead-letters what it cannot read, saying why.
    assert (
        "not a valid" in seen[(topics.compose_requested, "melody")]
        or "piece_id" in seen[(topics.compose_requested, "melody")]
    )
    assert (
        "not a valid" in seen[(topics.melody_bar, "harmony")]
        or "pitch 300" in seen[(topics.melody_bar, "harmony")]
    )
    assert (topics.melody_bar, "lyric") in seen
    assert (topics.harmony_bar, "render") in seen
    assert (topics.lyric_line, "render") in seen
    assert any("pitch 300" in letter.reason for letter in letters)
    assert any("missing ce_type" in letter.reason for letter in letters)
    # …and every service still serves.
    piece = compose(gateway_address, api.ComposeRequest(bars=4, seed=3, pickup=False), tmp_path)
    assert_piece_complete(piece.folder, 4)


def test_services_expose_prometheus_metrics(stack):
    for name in ("melody", "harmony", "lyric", "render"):
        port = stack.settings.web_port(name)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert "cantus_events_in_total" in text
        assert "cantus_stage_latency_seconds" in text
    port = stack.settings.gateway_metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert "cantus_gateway_requests_total" in response.read().decode()


@pytest.mark.parametrize("victim", ["melody", "harmony", "render"])
def test_piece_completes_when_a_service_is_killed_mid_piece(
    stack, gateway_address, tmp_path, victim
):
    bars = 48
    first_bar_seen = threading.Event()
    seen_bars: list[int] = []
    segments: dict[int, pb.RenderSegment] = {}
    result: dict = {}

    def on_event(event: api.PieceEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "melody_bar":
            seen_bars.append(event.melody_bar.meta.index)
            if victim != "render":
                first_bar_seen.set()
        elif kind == "render_segment":
            segments[event.render_segment.meta.index] = event.render_segment
            first_bar_seen.set()  # render dies with a piece's audio half rendered

    def run() -> None:
        try:
            result["piece"] = compose(
                gateway_address,
                api.ComposeRequest(bars=bars, seed=11, tempo_bpm=140, pickup=False),
                tmp_path,
                on_event=on_event,
                timeout_s=240,
            )
        except Exception as error:  # surfaced below
            result["error"] = error

    client = threading.Thread(target=run)
    client.start()
    assert first_bar_seen.wait(120), "no melody bars arrived"
    stack.kill(victim)
    killed_at_ns = time.time_ns()
    time.sleep(1.0)
    stack.start_service(victim)
    client.join(300)
    assert "error" not in result, result.get("error")
    piece = result["piece"]
    summary = assert_piece_complete(piece.folder, bars)
    assert sorted(set(seen_bars)) == list(range(bars))
    # The kill really came mid-piece: the restarted service still had work to do.
    after_restart = [
        e
        for e in summary["event_log"]
        if e["producer"] == victim and e["produced_at_unix_ns"] > killed_at_ns
    ]
    assert after_restart, f"{victim} produced nothing after it was killed"
    # Audio goes on after a restart (render rebuilds its synthesizer by replay), back to back.
    assert sorted(segments) == list(range(bars // 4))
    position = 0.0
    for index in sorted(segments):
        assert segments[index].audio[:4] == b"OggS", index
        assert segments[index].audio_start_seconds == pytest.approx(position, abs=1e-6)
        position += segments[index].audio_duration_seconds


def run_cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cantus.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_cli_compose_writes_the_piece(stack, tmp_path):
    result = run_cli(
        stack,
        "compose",
        "--key",
        "F#",
        "--mode",
        "minor",
        "--tempo",
        "90",
        "--meter",
        "3/4",
        "--bars",
        "6",
        "--style",
        "folk",
        "--mood",
        "sad",
        "--seed",
        "5",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path
    summary = assert_piece_complete(folder, 6)
    assert summary["key"] == "F# minor"
    assert summary["request"]["seed"] == "5"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--bars", "0"], "bars"),
        (["--key", "X#"], "key"),
        (["--style", "polka"], "style"),
        (["--meter", "4/5"], "meter"),
    ],
)
def test_cli_compose_exits_non_zero_naming_the_field(stack, tmp_path, args, field):
    result = run_cli(stack, "compose", *args, "--out", str(tmp_path))
    assert result.returncode != 0
    assert f"{field}: " in result.stderr
