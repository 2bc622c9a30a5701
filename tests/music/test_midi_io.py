"""Tests for MIDI reading and writing: round trips, file variants (type 0, running status,
meter and tempo changes, other resolutions) and broken files."""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from pathlib import Path

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.music.midi_io import (
    MidiError,
    estimate_key,
    melody_to_midi_bytes,
    midi_bytes_to_melody,
    tracks_to_midi_bytes,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note, Track
from cantus.music.styles import SUPPORTED_METERS

CORRUPTED = Path(__file__).parent.parent / "data" / "midi" / "corrupted"
GRID = 120


def _melody() -> Melody:
    meter = Meter(3, 4)
    return Melody(
        Key.parse("A", "minor"),
        110.0,
        (
            Bar(meter, (Note(240, 69, 240, 80), Note(480, 72, 960))),
            Bar(meter, ()),
            Bar(meter, (Note(0, 76, 1440, 100),)),
            Bar(meter, (Note(0, 76, 480), Note(480, 74, 240, 127), Note(1200, 72, 240, 1))),
        ),
    )


def test_round_trip_is_exact() -> None:
    melody = _melody()
    assert midi_bytes_to_melody(melody_to_midi_bytes(melody)) == melody


def test_round_trip_keeps_meter_changes() -> None:
    bars = (
        Bar(Meter(4, 4), (Note(0, 60, 1920),)),
        Bar(Meter(3, 4), (Note(0, 62, 1440),)),
        Bar(Meter(6, 8), (Note(0, 64, 720), Note(720, 65, 720))),
    )
    melody = Melody(Key(0), 96.5, bars)
    assert midi_bytes_to_melody(melody_to_midi_bytes(melody)) == melody


@st.composite
def melodies(draw: st.DrawFn) -> Melody:
    meter = draw(st.sampled_from(SUPPORTED_METERS))
    slots = meter.bar_ticks // GRID
    bar_count = draw(st.integers(1, 5))
    bars = []
    for index in range(bar_count):
        notes = []
        slot = draw(st.integers(0, slots - 1))
        # The last bar holds a note: trailing empty bars do not survive a MIDI file.
        must_fill = index == bar_count - 1
        while slot < slots and (must_fill or draw(st.booleans())):
            length = draw(st.integers(1, slots - slot))
            pitch = draw(st.integers(0, 127))
            velocity = draw(st.integers(1, 127))
            notes.append(Note(slot * GRID, pitch, length * GRID, velocity))
            slot += length + draw(st.integers(0, 3))
            must_fill = False
        bars.append(Bar(meter, tuple(notes)))
    key = Key(draw(st.integers(0, 11)), draw(st.sampled_from(list(Mode))))
    tempo = draw(st.integers(4000, 24000)) / 100
    return Melody(key, tempo, tuple(bars))


@settings(max_examples=60, deadline=None)
@given(melodies())
def test_round_trip_property(melody: Melody) -> None:
    assert midi_bytes_to_melody(melody_to_midi_bytes(melody)) == melody


def _file(
    midi_type: int, tracks: list[list[mido.Message | mido.MetaMessage]], tpb: int = 480
) -> bytes:
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=tpb)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def test_type_0_file_with_drums_and_two_channels() -> None:
    data = _file(
        0,
        [
            [
                mido.MetaMessage("time_signature", numerator=2, denominator=4),
                mido.Message("note_on", channel=9, note=36, velocity=100),
                mido.Message("note_on", channel=0, note=67, velocity=90),
                mido.Message("note_on", channel=1, note=48, velocity=90),
                mido.Message("note_off", channel=9, note=36, time=120),
                mido.Message("note_off", channel=0, note=67, time=360),
                mido.Message("note_on", channel=0, note=69, velocity=90),
                mido.Message("note_off", channel=0, note=69, time=960),
                mido.Message("note_off", channel=1, note=48),
            ]
        ],
    )
    melody = midi_bytes_to_melody(data, default_key=Key(7))
    assert melody.meter == Meter(2, 4)
    assert melody.key == Key(7)  # no key signature: default_key wins over estimation
    assert melody.tempo_bpm == 120.0
    notes = [(n.onset, n.pitch, n.duration) for n in melody.notes_absolute()]
    # The top voice (not the bass on channel 1, not the kick drum), split at the barline.
    assert notes == [(0, 67, 480), (480, 69, 480), (960, 69, 480)]


def test_running_status_written_by_hand() -> None:
    events = bytes(
        [
            0x00, 0x90, 60, 100,  # note_on C4
            0x83, 0x60, 62, 100,  # 480 ticks later, running status: note_on D4
            0x00, 60, 0,  # running status: note_on C4 velocity 0 (= note off)
            0x83, 0x60, 62, 0,  # 480 ticks later: D4 off
            0x00, 0xFF, 0x2F, 0x00,
        ]
    )  # fmt: skip
    data = b"MThd" + struct.pack(">LHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">L", len(events))
    melody = midi_bytes_to_melody(data + events)
    assert [(n.onset, n.pitch, n.duration) for n in melody.notes_absolute()] == [
        (0, 60, 480),
        (480, 62, 480),
    ]


def test_tempo_and_meter_changes_and_other_resolution() -> None:
    # 96 ticks per quarter; meter 4/4, then 3/4 from bar 2; tempo 90 then 140.
    conductor = [
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)),
        mido.MetaMessage("time_signature", numerator=4, denominator=4),
        mido.MetaMessage("key_signature", key="Bb"),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=384),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(140), time=96),
    ]
    melody_track = [
        mido.MetaMessage("track_name", name="Melody"),
        mido.Message("note_on", note=70, velocity=90),
        mido.Message("note_off", note=70, time=384),
        mido.Message("note_on", note=72, velocity=90),
        mido.Message("note_off", note=72, time=290),  # 290/96 quarters: snapped to 1440 ticks
    ]
    louder_track = [mido.Message("note_on", channel=1, note=40, velocity=90)] + [
        m for i in range(10) for m in (mido.Message("note_off", channel=1, note=40, time=10),
                                       mido.Message("note_on", channel=1, note=40, velocity=90))
    ]  # fmt: skip
    melody = midi_bytes_to_melody(_file(1, [conductor, melody_track, louder_track], tpb=96))
    assert melody.tempo_bpm == 90.0
    assert melody.key == Key.parse("Bb")
    assert [bar.meter for bar in melody.bars] == [Meter(4, 4), Meter(3, 4)]
    assert [(n.onset, n.pitch, n.duration) for n in melody.bars[1].notes] == [(0, 72, 1440)]


def test_multi_track_file_reads_back_everywhere(tmp_path: Path) -> None:
    melody = Track(
        "melody", 73, 0, [Note(0, 72, 480), Note(480, 74, 480)], [(0, "la"), (480, "lü")]
    )
    chords = Track("chords", 0, 1, [Note(0, 60, 960), Note(0, 64, 960), Note(0, 67, 960)])
    drums = Track("drums", 0, 9, [Note(0, 36, 120), Note(480, 38, 120)])
    data = tracks_to_midi_bytes(
        [melody, chords, drums],
        tempo_bpm=100,
        meter=Meter(6, 8),
        key=Key(9, Mode.MINOR),
        title="Song",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        midi = mido.MidiFile(file=io.BytesIO(data), charset="utf-8")
    assert midi.type == 1 and midi.ticks_per_beat == 480
    assert [t.name for t in midi.tracks] == ["Song", "melody", "chords", "drums"]
    assert all(track[-1].type == "end_of_track" for track in midi.tracks)
    conductor = {m.type: m for m in midi.tracks[0]}
    assert conductor["key_signature"].key == "Am"
    assert (conductor["time_signature"].numerator, conductor["time_signature"].denominator) == (
        6,
        8,
    )
    assert round(mido.tempo2bpm(conductor["set_tempo"].tempo), 2) == 100
    tick, lyrics, programs = 0, [], []
    for message in midi.tracks[1]:
        tick += message.time
        if message.type == "lyrics":
            lyrics.append((tick, message.text))
        if message.type == "program_change":
            programs.append((message.channel, message.program))
    assert lyrics == [(0, "la"), (480, "lü")]
    assert programs == [(0, 73)]
    read = midi_bytes_to_melody(data)
    assert [n.pitch for n in read.notes_absolute()] == [72, 74]  # the track named melody

    from music21 import converter

    path = tmp_path / "song.mid"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = converter.parse(path, forceSource=True)
    assert len(list(score.recurse().getElementsByClass("Part"))) >= 3


@pytest.mark.parametrize("path", sorted(CORRUPTED.glob("*.mid")), ids=lambda p: p.name)
def test_corrupted_files_raise_midi_error(path: Path) -> None:
    with pytest.raises(MidiError) as caught:
        midi_bytes_to_melody(path.read_bytes())
    assert str(caught.value)


def test_corrupted_file_messages_name_the_problem() -> None:
    def message(name: str) -> str:
        with pytest.raises(MidiError) as caught:
            midi_bytes_to_melody((CORRUPTED / name).read_bytes())
        return str(caught.value)

    assert "missing MThd header" in message("bad_header_magic.mid")
    assert message("truncated_track.mid").startswith("truncated track 0 at byte 14")
    assert "type 2" in message("type2.mid")
    assert "no notes" in message("no_notes.mid")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_files_raise_only_midi_error(data: st.DataObject) -> None:
    original = bytearray(melody_to_midi_bytes(_melody()))
    cut = data.draw(st.integers(0, len(original)))
    damaged = original[:cut] if data.draw(st.booleans()) else original
    for _ in range(data.draw(st.integers(0, 3))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    # Either a melody comes back or MidiError is raised; any other exception fails.
    with contextlib.suppress(MidiError):
        midi_bytes_to_melody(bytes(damaged))


def test_estimate_key() -> None:
    c_major = [
        Note(i * 480, p, 480) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 60])
    ]
    assert estimate_key(c_major) == Key(0, Mode.MAJOR)
    a_minor = [
        Note(i * 480, p, 480) for i, p in enumerate([69, 71, 72, 74, 76, 77, 80, 81, 76, 69])
    ]
    assert estimate_key(a_minor) == Key(9, Mode.MINOR)
    assert estimate_key([]) == Key(0, Mode.MAJOR)


def test_write_rejects_bad_channel() -> None:
    with pytest.raises(MidiError, match="channel"):
        tracks_to_midi_bytes(
            [Track("x", 0, 16, [Note(0, 60, 480)])], tempo_bpm=100, meter=Meter(4, 4), key=Key(0)
        )
