"""Harmony end to end against the real stack (broker, Triton serving the trained harmony
model, every service): a user's melody harmonised through gRPC bar by bar with one bar of
lookahead, odd meters, a bar of rests, a chromatic melody, and bad melody bars that go to
dead letters while the service keeps serving."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cantus.cli.compose import compose
from cantus.events.codec import decode_event, encode_event, new_meta
from cantus.events.conversions import pb_to_notes
from cantus.harmony.voicing import BASS_RANGE, CHORALE_VOICE_RANGES
from cantus.music.chords import ChordSymbol, chord_from_roman
from cantus.music.midi_io import melody_to_midi_bytes
from cantus.music.notes import Bar, Key, Melody, Meter, Note
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

pytestmark = pytest.mark.integration

Q = 480
BAD_NOTES, BAD_STYLE = "badbad01" * 4, "badbad02" * 4


def melody_of(meter: str, bars: list[list[tuple[int, int, int]]], key: Key) -> bytes:
    parsed = Meter.parse(meter)
    return melody_to_midi_bytes(
        Melody(key, 100.0, tuple(Bar(parsed, tuple(Note(*n) for n in bar)) for bar in bars))
    )


def harmonize(gateway_address, tmp_path, midi: bytes, **fields) -> dict[str, list]:
    request = api.ComposeRequest(tempo_bpm=100, mood="calm", seed=3, harmonize_midi=midi, **fields)
    piece = compose(gateway_address, request, tmp_path, timeout_s=240)
    events: dict[str, list] = {}
    for event in piece.events:
        kind = event.WhichOneof("event")
        events.setdefault(kind, []).append(getattr(event, kind))
    assert "completed" in events, "the piece did not complete"
    return events


def check_harmony_bars(events: dict[str, list], bars: int, meter: Meter, key: Key) -> list:
    harmony = sorted(events["harmony_bar"], key=lambda h: h.meta.index)
    assert [h.meta.index for h in harmony] == list(range(bars))
    melody = {m.meta.index: m for m in events["melody_bar"]}
    for bar in harmony:
        spans = list(bar.chords)
        assert spans[0].onset_ticks == 0
        assert sum(s.duration_ticks for s in spans) == meter.bar_ticks
        for span in spans:
            symbol = ChordSymbol.parse(span.symbol)
            assert sorted(symbol.pitch_classes) == list(span.pitch_classes)
            # The Roman numeral names the same chord in the piece's key.
            assert chord_from_roman(span.roman, key).without_bass == symbol.without_bass
        assert all(BASS_RANGE[0] <= n.pitch <= BASS_RANGE[1] for n in bar.bass)
        index = bar.meta.index
        if index + 1 < bars:
            # One bar of lookahead, no more: bar i is made when bar i+1 has arrived.
            assert bar.meta.received_at_unix_ns >= melody[index + 1].meta.produced_at_unix_ns
    return harmony


def test_user_melody_harmonised_through_grpc_with_a_bar_of_rests(gateway_address, tmp_path):
    key = Key.parse("G")
    tune = [
        [(0, 67, Q), (Q, 71, Q), (2 * Q, 74, Q), (3 * Q, 71, Q)],
        [(0, 72, Q), (Q, 76, Q), (2 * Q, 74, 2 * Q)],
        [],  # a whole bar of rests
        [(0, 74, Q), (Q, 72, Q), (2 * Q, 71, Q), (3 * Q, 69, Q)],
        [(0, 67, 2 * Q), (2 * Q, 66, Q), (3 * Q, 69, Q)],
        [(0, 67, 4 * Q)],
    ]
    events = harmonize(
        gateway_address,
        tmp_path,
        melody_of("4/4", tune, key),
        key="G",
        meter="4/4",
        style="chorale",
    )
    harmony = check_harmony_bars(events, len(tune), Meter(4, 4), key)
    for bar in harmony:
        if bar.meta.index == 2:
            assert bar.harmonizer.startswith("rules-v1 (bar of rests")
            previous = harmony[1].chords[-1].symbol
            assert [s.symbol for s in bar.chords] == [previous]  # the chord is held
        else:
            assert bar.harmonizer.startswith("harmony@"), bar.harmonizer
        # Chorale voicing: bass, tenor and alto in range, the alto under the tune.
        notes = pb_to_notes(bar.voicing)
        tune_notes = tune[bar.meta.index]
        for onset in sorted({n.onset for n in notes}):
            sounding = sorted(n.pitch for n in notes if n.onset == onset)
            assert len(sounding) == 3
            for pitch, (low, high) in zip(sounding, CHORALE_VOICE_RANGES, strict=True):
                assert low <= pitch <= high
            soprano = [p for o, p, d in tune_notes if o <= onset < o + d]
            if soprano:
                assert sounding[-1] < soprano[0]
    # The final bar cadences on the tonic.
    assert ChordSymbol.parse(harmony[-1].chords[-1].symbol).root == key.tonic


@pytest.mark.parametrize(
    ("meter", "tune"),
    [
        (
            "5/4",
            [
                [(0, 60, Q), (Q, 64, Q), (2 * Q, 67, Q), (3 * Q, 65, Q), (4 * Q, 64, Q)],
                [(0, 62, Q), (Q, 65, Q), (2 * Q, 69, 2 * Q), (4 * Q, 67, Q)],
                [(0, 64, 3 * Q), (3 * Q, 62, 2 * Q)],
                [(0, 60, 5 * Q)],
            ],
        ),
        (
            "7/8",
            [
                [(0, 62, 240), (240, 65, 240), (480, 69, 480), (960, 67, 480), (1440, 65, 240)],
                [(0, 64, 480), (480, 62, 480), (960, 61, 720)],
                [(0, 62, 1680)],
            ],
        ),
    ],
)
def test_odd_meters_get_chords_on_their_beats(gateway_address, tmp_path, meter, tune):
    key = Key.parse("C" if meter == "5/4" else "D", "major" if meter == "5/4" else "minor")
    events = harmonize(
        gateway_address,
        tmp_path,
        melody_of(meter, tune, key),
        key="C" if meter == "5/4" else "D",
        mode="major" if meter == "5/4" else "minor",
        meter=meter,
        style="folk",
    )
    harmony = check_harmony_bars(events, len(tune), Meter.parse(meter), key)
    assert all(h.harmonizer.startswith("harmony@") for h in harmony)


def test_chromatic_melody_gets_chords(gateway_address, tmp_path):
    key = Key.parse("C")
    chromatic = [[(i * Q, 60 + 4 * b + i, Q) for i in range(4)] for b in range(3)]
    chromatic.append([(0, 72, Q), (Q, 66, Q), (2 * Q, 61, Q), (3 * Q, 71, Q)])  # atonal leaps
    events = harmonize(
        gateway_address,
        tmp_path,
        melody_of("4/4", chromatic, key),
        key="C",
        meter="4/4",
        style="celtic",
    )
    harmony = check_harmony_bars(events, len(chromatic), Meter(4, 4), key)
    assert all(h.harmonizer.startswith("harmony@") for h in harmony)


def test_bad_melody_bars_are_dead_lettered_and_harmony_keeps_serving(
    stack, gateway_address, tmp_path
):
    settings = stack.settings
    topics = settings.topics
    spec = pb.PieceSpec(
        key_tonic=0,
        mode=pb.MODE_MAJOR,
        tempo_bpm=100,
        meter_numerator=7,
        meter_denominator=8,
        bars=2,
        style="folk",
        mood="calm",
        energy="low",
    )
    too_long = pb.MelodyBar(
        meta=new_meta(BAD_NOTES, 0, "test"),
        spec=spec,
        notes=[pb.Note(onset_ticks=0, pitch=60, duration_ticks=4 * Q, velocity=80)],
    )
    bad_spec = pb.PieceSpec()
    bad_spec.CopyFrom(spec)
    bad_spec.style = "polka"
    unknown_style = pb.MelodyBar(
        meta=new_meta(BAD_STYLE, 0, "test"),
        spec=bad_spec,
        notes=[pb.Note(onset_ticks=0, pitch=60, duration_ticks=Q, velocity=80)],
    )

    async def send_and_collect() -> dict[str, str]:
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
        consumer = AIOKafkaConsumer(
            topics.dead_letter,
            bootstrap_servers=settings.broker,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await producer.start()
        await consumer.start()
        try:
            for event in (too_long, unknown_style):
                key, value, headers = encode_event(event, source="test")
                await producer.send_and_wait(topics.melody_bar, value, key=key, headers=headers)
            reasons: dict[str, str] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(reasons) < 2:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        letter = decode_event("dead_letter", record.value, record.headers)
                        if letter.service == "harmony":
                            reasons[letter.meta.piece_id] = letter.reason
            return reasons
        finally:
            await producer.stop()
            await consumer.stop()

    reasons = asyncio.run(send_and_collect())
    assert "past the end of a 7/8 bar" in reasons[BAD_NOTES]
    assert "polka" in reasons[BAD_STYLE]
    # The service goes on harmonising.
    key = Key.parse("F")
    events = harmonize(
        gateway_address,
        tmp_path,
        melody_of("3/4", [[(0, 65, Q), (Q, 69, Q), (2 * Q, 72, Q)], [(0, 65, 3 * Q)]], key),
        key="F",
        meter="3/4",
        style="folk",
    )
    check_harmony_bars(events, 2, Meter(3, 4), key)


def test_cli_compose_harmonize_uses_the_trained_model(stack, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    key = Key.parse("D")
    tune = [
        [(0, 62, Q), (Q, 66, Q), (2 * Q, 69, Q), (3 * Q, 66, Q)],
        [(0, 67, Q), (Q, 71, Q), (2 * Q, 69, 2 * Q)],
        [(0, 66, Q), (Q, 64, Q), (2 * Q, 62, 2 * Q)],
    ]
    melody_file = tmp_path / "melody.mid"
    melody_file.write_bytes(melody_of("4/4", tune, key))
    result = subprocess.run(
        [
            sys.executable, "-m", "cantus.cli.main", "compose", "--harmonize", str(melody_file),
            "--key", "D", "--meter", "4/4", "--style", "chorale", "--seed", "1",
            "--out", str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / "piece.json").read_text())
    assert summary["bars"] == 3 and len(summary["chords_per_bar"]) == 3
    assert [h.split("@")[0] for h in summary["models"]["harmony"]] == ["harmony"]
    # The user's melody is kept as it is.
    assert [len(bar) for bar in summary["melody_per_bar"]] == [4, 3, 3]


def test_cli_harmonises_an_essen_midi_export_in_its_own_meter_key_and_pickup(stack, tmp_path):
    """The issue's case: a 2/4 minor folk tune exported as a notation program writes MIDI,
    harmonised with no --key or --meter, reads as the file says and keeps its pickup."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent.parent / "data" / "given_melodies"
    expected = json.loads((fixtures / "expected.json").read_text())["fink0-497-unmarked.mid"]
    result = subprocess.run(
        [
            sys.executable, "-m", "cantus.cli.main", "compose",
            "--harmonize", str(fixtures / "fink0-497-unmarked.mid"),
            "--seed", "1", "--out", str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "key G minor (from the key signature, mode from the notes)" in result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / "piece.json").read_text())
    assert (summary["meter"], summary["key"], summary["tempo_bpm"]) == ("2/4", "G minor", 96.0)
    assert summary["bars"] == expected["bars"] == len(summary["chords_per_bar"])
    given = summary["request"]["given_melody"]
    assert (given["meter_from"], given["key_from"]) == ("time_signature", "key_signature_and_notes")
    assert given["pickup_ticks"] == expected["pickup_ticks"]
    # The pickup ends the first bar; the melody is the file's, note for note.
    first_bar = summary["melody_per_bar"][0]
    assert first_bar[0][0] == 960 - expected["pickup_ticks"]
    notes = [
        [index * 960 + onset, pitch, duration]
        for index, bar in enumerate(summary["melody_per_bar"])
        for onset, pitch, duration in bar
    ]
    assert notes == expected["notes"]
