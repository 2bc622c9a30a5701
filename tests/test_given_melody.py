"""A melody file in a compose request: the key, mode, meter and tempo the request leaves
unset come from the file, explicit ones win (a meter re-bars the notes), and the spec
carries what was read. The file is read by the real isolated reader."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import pytest

from cantus.given_melody import rebar
from cantus.music.melody_files import read_melody_file
from cantus.music.notes import Key, Meter, Mode
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

FIXTURES = Path(__file__).parent / "data" / "given_melodies"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
MINOR_TUNE = "altdeu20-10.mid"  # 4/4, B minor written with the D major signature, pickup
TWO_FOUR_TUNE = "ballad20-47.mid"  # 2/4, E major, an eighth-note pickup


def validate(**fields) -> pb.PieceSpec:
    return validate_compose_request(api.ComposeRequest(**fields), max_bars=64).spec


def rejected(**fields) -> RequestError:
    with pytest.raises(RequestError) as caught:
        validate(**fields)
    return caught.value


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def spec_key(spec: pb.PieceSpec) -> str:
    return Key(spec.key_tonic, Mode.MINOR if spec.mode == pb.MODE_MINOR else Mode.MAJOR).name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_essen_export_harmonises_in_its_own_meter_key_and_tempo(name):
    expected = EXPECTED[name]
    spec = validate(harmonize_midi=fixture(name))
    assert f"{spec.meter_numerator}/{spec.meter_denominator}" == expected["meter"]
    assert spec_key(spec) == expected["key"]
    assert spec.tempo_bpm == expected["tempo_bpm"]
    assert spec.bars == expected["bars"]
    given = spec.given_melody
    assert (given.meter_from, given.key_from, given.tempo_from) == (
        "time_signature",
        "key_signature_and_notes",
        "file",
    )
    assert given.pickup_ticks == expected["pickup_ticks"]
    assert given.file_format == "midi" and "Melody" in given.part


def test_explicit_key_mode_and_tempo_win_and_the_files_values_stay_visible():
    spec = validate(harmonize_midi=fixture(MINOR_TUNE), key="D", mode="major", tempo_bpm=120)
    assert spec_key(spec) == "D major" and spec.tempo_bpm == 120
    given = spec.given_melody
    assert (given.key_from, given.tempo_from) == ("request", "request")
    assert (given.file_key, given.file_tempo_bpm) == ("B minor", 96.0)


def test_a_mode_alone_keeps_the_files_tonic():
    spec = validate(harmonize_midi=fixture(MINOR_TUNE), mode="major")
    assert spec_key(spec) == "B major" and spec.given_melody.key_from == "request"


def test_an_explicit_meter_rebars_the_melody_keeping_the_pickup():
    spec = validate(harmonize_midi=fixture(TWO_FOUR_TUNE), meter="4/4")
    assert (spec.meter_numerator, spec.meter_denominator) == (4, 4)
    assert spec.given_melody.meter_from == "request"
    assert spec.given_melody.file_meter == "2/4"
    assert spec.given_melody.pickup_ticks == 240
    assert spec.bars == -(-(EXPECTED[TWO_FOUR_TUNE]["bars"] * 960) // 1920)


def test_rebar_moves_the_pickup_to_the_end_of_the_new_first_bar():
    reading = read_melody_file(fixture(TWO_FOUR_TUNE))
    bars = rebar(reading, Meter(3, 4))
    assert bars[0].notes[0].onset == 1440 - 240
    # Every note keeps its time from the start of the pickup (split at the new barlines).
    old = {(n.onset - (960 - 240), n.pitch) for n in reading.melody(Key(0), 100.0).notes_absolute()}
    pieces = [
        (bar_index * 1440 + n.onset - (1440 - 240), n.pitch, n.duration)
        for bar_index, bar in enumerate(bars)
        for n in bar.notes
    ]
    assert old <= {(onset, pitch) for onset, pitch, _ in pieces}
    assert sum(d for _, _, d in pieces) == sum(
        n.duration for n in reading.melody(Key(0), 100.0).notes_absolute()
    )


def test_continuing_a_file_keeps_its_bars_and_settings():
    spec = validate(continue_midi=fixture(MINOR_TUNE), bars=32)
    assert spec.melody_source == pb.MELODY_SOURCE_CONTINUE
    assert spec_key(spec) == "B minor" and spec.meter_numerator == 4
    assert spec.given_melody.pickup_ticks == 480


def test_bad_values_given_with_a_file_name_their_field():
    assert rejected(harmonize_midi=fixture(MINOR_TUNE), key="H").field == "key"
    assert rejected(harmonize_midi=fixture(MINOR_TUNE), mode="lydian").field == "mode"
    assert rejected(harmonize_midi=fixture(MINOR_TUNE), meter="11/8").field == "meter"
    assert rejected(harmonize_midi=fixture(MINOR_TUNE), tempo_bpm=500).field == "tempo_bpm"


def _midi(meter: tuple[int, int], tempo_bpm: float | None, pitches=(60, 62, 64, 65)) -> bytes:
    messages: list = [mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1])]
    if tempo_bpm is not None:
        messages.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)))
    for pitch in pitches:
        messages.append(mido.Message("note_on", note=pitch, velocity=80))
        messages.append(mido.Message("note_off", note=pitch, time=480))
    midi = mido.MidiFile(type=0)
    midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def test_a_file_in_an_unsupported_meter_names_the_file_field_and_the_way_out():
    error = rejected(harmonize_midi=_midi((7, 4), 100))
    assert error.field == "harmonize_midi"
    assert "the melody is in 7/4, which is not supported" in error.problem
    assert validate(harmonize_midi=_midi((7, 4), 100), meter="4/4").bars == 1


def test_a_file_tempo_out_of_range_is_clamped_with_a_notice_and_none_is_the_default():
    spec = validate(harmonize_midi=_midi((4, 4), 20))
    assert spec.tempo_bpm == 40 and "outside 40..240" in spec.given_melody.notices[0]
    spec = validate(harmonize_midi=_midi((4, 4), None))
    assert spec.tempo_bpm == 100 and spec.given_melody.tempo_from == "default"


def test_without_a_file_the_request_defaults_are_unchanged():
    spec = validate()
    assert not spec.HasField("given_melody")
    assert (spec_key(spec), spec.tempo_bpm, spec.meter_numerator) == ("C major", 100.0, 4)


def test_abc_text_is_a_melody_file_too():
    abc = b"X:1\nT:Air\nM:3/4\nL:1/4\nQ:1/4=90\nK:Em\nE|GAB|e2d|B3|E2|]\n"
    spec = validate(harmonize_midi=abc)
    assert spec.given_melody.file_format == "abc"
    assert (spec.meter_numerator, spec.meter_denominator) == (3, 4)
    assert spec_key(spec) == "E minor" and spec.given_melody.key_from == "key_signature"
    assert spec.tempo_bpm == 90 and spec.given_melody.pickup_ticks == 480
