"""Reading a musician's melody file: Essen tunes exported as notation programs write MIDI,
multi-track and type 0 files, polyphony, pickups, meter changes, key signatures and key
analysis, MusicXML (plain and compressed) and ABC, and clear errors for what cannot be read."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import mido
import pytest

from cantus.music.melody_files import MelodyFileError, read_melody_file, sniff_format
from cantus.music.melody_reading import (
    KEY_FROM_NOTES,
    KEY_FROM_SIGNATURE,
    KEY_FROM_SIGNATURE_AND_NOTES,
)
from cantus.music.notes import Key, Meter, Mode

FIXTURES = Path(__file__).parent.parent / "data" / "given_melodies"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
Q = 480


def _file(tracks: list[list[mido.Message | mido.MetaMessage]], midi_type: int = 1) -> bytes:
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=Q)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _line(pitches: list[int], length: int = Q, channel: int = 0, name: str = "") -> list:
    messages: list = [mido.MetaMessage("track_name", name=name)] if name else []
    for pitch in pitches:
        messages.append(mido.Message("note_on", channel=channel, note=pitch, velocity=80))
        messages.append(mido.Message("note_off", channel=channel, note=pitch, time=length))
    return messages


def _conductor(numerator: int = 4, denominator: int = 4, key: str | None = None) -> list:
    messages: list = [
        mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)
    ]
    if key:
        messages.append(mido.MetaMessage("key_signature", key=key))
    return messages


def _notes(reading) -> list[tuple[int, int, int]]:
    melody = reading.melody(Key(0), 100.0)
    return [(n.onset, n.pitch, n.duration) for n in melody.notes_absolute()]


# ------------------------------------------------------------------ Essen tunes as MIDI


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_essen_tunes_exported_to_midi_read_with_their_meter_key_tempo_and_pickup(name):
    expected = EXPECTED[name]
    reading = read_melody_file((FIXTURES / name).read_bytes())
    assert str(reading.meter) == expected["meter"] and reading.meter_from_file
    assert reading.pickup_ticks == expected["pickup_ticks"]
    assert reading.tempo_bpm == expected["tempo_bpm"]
    assert reading.key is not None and reading.key.name == expected["key"]
    assert reading.key_source == KEY_FROM_SIGNATURE_AND_NOTES
    assert [list(n) for n in _notes(reading)] == expected["notes"]
    assert "named as the melody" in reading.part or "the only part" in reading.part


def test_a_pickup_found_from_the_rhythm_is_reported_and_a_bar_of_rest_keeps_the_barlines():
    name = "ballad40-96-unmarked.mid"  # 3/4 with a pickup of three eighths, not marked
    reading = read_melody_file((FIXTURES / name).read_bytes())
    assert reading.pickup_ticks == 720
    assert (
        "the file marks no pickup, but its rhythm puts the first barline after 720"
        in (reading.notices[0])
    )
    # A downbeat tune begun with a bar of rest is read with the file's barlines.
    rest_first = [mido.MetaMessage("track_name", name="melody")]
    rest_first += [mido.Message("note_on", note=72, velocity=80, time=1440)]
    rest_first += [mido.Message("note_off", note=72, time=240)]
    rest_first += _line([71, 69, 67, 65, 64], length=240)
    reading = read_melody_file(_file([_conductor(3, 4), rest_first]))
    assert reading.pickup_ticks == 0 and _notes(reading)[0] == (0, 72, 240)


def test_the_fixtures_cover_the_issue_cases():
    meters = {tune["meter"] for tune in EXPECTED.values()}
    assert {"2/4", "3/4", "4/4", "6/8"} <= meters
    assert any(t["key"].endswith("minor") and t["meter"] == "4/4" for t in EXPECTED.values())
    assert any(name.endswith("-unmarked.mid") for name in EXPECTED)  # pickups found by rhythm
    assert sum(1 for t in EXPECTED.values() if t["pickup_ticks"]) >= 4


# ------------------------------------------------------------------ which line is the melody


def test_the_track_named_lead_is_the_melody_and_the_choice_is_reported():
    data = _file(
        [
            _conductor(),
            _line([84, 86, 88, 89], name="Flute"),
            _line([67, 69, 71, 72], name="Lead Vocal"),
        ]
    )
    reading = read_melody_file(data)
    assert [p for _, p, _ in _notes(reading)] == [67, 69, 71, 72]
    assert reading.part == "track 2 'Lead Vocal' (channel 1), named as the melody"


def test_an_instrument_name_marks_the_melody_when_the_track_has_no_name():
    voice = [mido.MetaMessage("instrument_name", name="Voice"), *_line([60, 62, 64])]
    reading = read_melody_file(_file([_conductor(), _line([79, 81, 83]), voice]))
    assert [p for _, p, _ in _notes(reading)] == [60, 62, 64]
    assert reading.part == "track 2 'Voice' (channel 1), named as the melody"


def test_without_a_name_the_highest_single_note_line_is_the_melody():
    chords = [mido.MetaMessage("track_name", name="Piano")]
    for root in (60, 65, 67, 60):
        chords += [
            mido.Message("note_on", channel=1, note=root + i, velocity=60) for i in (12, 16, 19)
        ]
        chords += [
            mido.Message("note_off", channel=1, note=root + i, time=Q * 4 if i == 12 else 0)
            for i in (12, 16, 19)
        ]
    bass = _line([36, 41, 43, 36], length=4 * Q, channel=2, name="Bass")
    tune = _line([76, 77, 79, 76], length=4 * Q, channel=0, name="Violin")
    reading = read_melody_file(_file([_conductor(), chords, bass, tune]))
    assert [p for _, p, _ in _notes(reading)] == [76, 77, 79, 76]
    assert reading.part == "track 3 'Violin' (channel 1), the highest of 2 single-note parts"
    assert reading.notices == ()


def test_type_0_file_with_several_channels_takes_the_highest_line():
    events: list = [mido.MetaMessage("time_signature", numerator=3, denominator=4)]
    for melody_pitch, bass_pitch in ((72, 48), (74, 43), (76, 48)):
        events += [
            mido.Message("note_on", channel=3, note=bass_pitch, velocity=70),
            mido.Message("note_on", channel=0, note=melody_pitch, velocity=90),
            mido.Message("note_on", channel=9, note=36, velocity=100),  # drums: never
            mido.Message("note_off", channel=9, note=36, time=Q),
            mido.Message("note_off", channel=0, note=melody_pitch, time=2 * Q),
            mido.Message("note_off", channel=3, note=bass_pitch),
        ]
    reading = read_melody_file(_file([events], midi_type=0))
    assert reading.meter == Meter(3, 4)
    assert [p for _, p, _ in _notes(reading)] == [72, 74, 76]
    assert reading.part.startswith("track 0 (channel 1), the highest of 2 single-note parts")


def test_a_polyphonic_melody_is_reduced_to_its_top_line_with_a_notice():
    messages: list = [mido.MetaMessage("track_name", name="melody")]
    for top in (72, 74, 76, 77):
        messages += [
            mido.Message("note_on", note=top, velocity=80),
            mido.Message("note_on", note=top - 4, velocity=80),
            mido.Message("note_off", note=top, time=Q),
            mido.Message("note_off", note=top - 4),
        ]
    reading = read_melody_file(_file([_conductor(), messages]))
    assert [p for _, p, _ in _notes(reading)] == [72, 74, 76, 77]
    assert len(reading.notices) == 1
    assert "kept its top line, 4 of 8 notes left out" in reading.notices[0]


# ------------------------------------------------------------------ meter, pickup, key


def test_a_meter_change_is_an_error_naming_the_bar():
    conductor = [
        mido.MetaMessage("time_signature", numerator=2, denominator=4),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=4 * 960),
    ]
    with pytest.raises(MelodyFileError) as caught:
        read_melody_file(_file([conductor, _line([60] * 12, name="melody")]))
    assert str(caught.value).startswith("the meter changes from 2/4 to 3/4 at bar 5;")


def test_a_meter_change_after_a_pickup_counts_the_pickup_bar():
    conductor = [
        mido.MetaMessage("time_signature", numerator=1, denominator=4),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=Q),
        mido.MetaMessage("time_signature", numerator=2, denominator=4, time=2 * 1440),
    ]
    with pytest.raises(MelodyFileError, match="from 3/4 to 2/4 at bar 4;"):
        read_melody_file(_file([conductor, _line([60] * 12, name="melody")]))


def test_a_last_bar_cut_short_to_balance_the_pickup_is_no_meter_change():
    conductor = [
        mido.MetaMessage("time_signature", numerator=1, denominator=4),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=Q),
        mido.MetaMessage("time_signature", numerator=2, denominator=4, time=2 * 1440),
    ]
    reading = read_melody_file(_file([conductor, _line([60] * 9, name="melody")]))
    assert reading.meter == Meter(3, 4) and reading.pickup_ticks == Q
    assert len(reading.bars) == 4 and len(reading.bars[-1].notes) == 2


def test_a_pickup_written_as_a_leading_rest_is_kept():
    tune = [mido.MetaMessage("track_name", name="melody")]
    tune += [mido.Message("note_on", note=67, velocity=80, time=3 * Q)]  # rests, then beat 4
    tune += [mido.Message("note_off", note=67, time=Q), *_line([72, 71, 69, 67])]
    reading = read_melody_file(_file([_conductor(), tune]))
    assert reading.pickup_ticks == Q
    assert _notes(reading)[0] == (3 * Q, 67, Q)


def test_without_a_time_signature_the_file_is_in_the_midi_default_4_4():
    reading = read_melody_file(_file([_line([60, 62, 64, 65, 67], name="melody")]))
    assert reading.meter == Meter(4, 4) and not reading.meter_from_file
    assert reading.pickup_ticks == 0
    assert reading.tempo_bpm is None


def test_leading_empty_bars_are_dropped_with_a_notice():
    tune = [mido.MetaMessage("track_name", name="melody")]
    tune += [mido.Message("note_on", note=64, velocity=80, time=2 * 1920)]
    tune += [mido.Message("note_off", note=64, time=1920)]
    reading = read_melody_file(_file([_conductor(), tune]))
    assert _notes(reading) == [(0, 64, 1920)]
    assert reading.notices == ("left out 2 empty bar(s) before the melody's first note",)


def test_a_stated_minor_key_signature_is_the_key():
    tune = _line([64, 67, 71, 72, 71, 67, 64], name="melody")  # E minor notes, signature G
    reading = read_melody_file(_file([_conductor(key="Em"), tune]))
    assert reading.key == Key(4, Mode.MINOR) and reading.key_source == KEY_FROM_SIGNATURE


def test_a_major_signature_over_a_minor_tune_gives_the_relative_minor():
    # The issue's case: an A minor tune whose file says only "no sharps or flats".
    tune = _line([69, 72, 76, 74, 72, 71, 68, 69], name="melody")
    reading = read_melody_file(_file([_conductor(key="C"), tune]))
    assert reading.key == Key(9, Mode.MINOR)
    assert reading.key_source == KEY_FROM_SIGNATURE_AND_NOTES


def test_without_a_key_signature_the_key_comes_from_music21s_analysis():
    tune = _line([62, 66, 69, 74, 73, 71, 69, 66, 67, 64, 62], name="melody")
    reading = read_melody_file(_file([_conductor(), tune]))
    assert reading.key == Key(2, Mode.MAJOR) and reading.key_source == KEY_FROM_NOTES


# ------------------------------------------------------------------ MusicXML and ABC


@pytest.fixture(scope="module")
def essen_score():
    """The Essen tune of altdeu20-10.mid as ABC text and as music21's MusicXML."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from cantus.melody.corpus import _abc_jobs
    from cantus.music.music21_io import parse_abc_tune

    job = next(j for j in _abc_jobs("essen", None) if j.tune_id == "essen/altdeu20.abc#10")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xml = GeneralObjectExporter(parse_abc_tune(job.payload)).parse()
    return job.payload, xml


def test_abc_and_musicxml_read_like_the_midi_export(essen_score):
    abc, xml = essen_score
    expected = EXPECTED["altdeu20-10.mid"]
    for data, file_format in ((abc.encode(), "abc"), (xml, "musicxml")):
        reading = read_melody_file(data)
        assert reading.file_format == file_format
        assert str(reading.meter) == expected["meter"]
        assert reading.pickup_ticks == expected["pickup_ticks"]
        assert reading.key is not None and reading.key.name == expected["key"]
        assert [list(n) for n in _notes(reading)] == expected["notes"]


def test_compressed_musicxml_reads(essen_score):
    _, xml = essen_score
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", "<container/>")
        archive.writestr("tune.musicxml", xml)
    reading = read_melody_file(buffer.getvalue())
    assert reading.file_format == "musicxml" and str(reading.meter) == "4/4"


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tune.xml", b"<" + b" " * 20_000_000)
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(MelodyFileError, match="unpacks to 20000001 bytes"):
        read_melody_file(buffer.getvalue())


def test_a_musicxml_part_named_voice_is_the_melody_and_a_meter_change_names_the_bar():
    from music21 import meter, note, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = stream.Score()
    for name, pitch in (("Piano", "C6"), ("Voice", "E4")):
        part = stream.Part()
        part.partName = name
        for number in range(1, 4):
            measure = stream.Measure(number=number)
            if number == 1:
                measure.append(meter.TimeSignature("3/4"))
            measure.append(note.Note(pitch, quarterLength=3))
            part.append(measure)
        score.insert(0, part)
    reading = read_melody_file(GeneralObjectExporter(score).parse())
    assert reading.part == "part 2 'Voice', named as the melody"
    assert [p for _, p, _ in _notes(reading)] == [64, 64, 64]
    score.parts[1].getElementsByClass(stream.Measure)[2].insert(0, meter.TimeSignature("2/4"))
    score.parts[1].getElementsByClass(stream.Measure)[2].notes[0].quarterLength = 2
    with pytest.raises(MelodyFileError, match="from 3/4 to 2/4 at bar 3"):
        read_melody_file(GeneralObjectExporter(score).parse())


def test_an_abc_file_of_several_tunes_reads_the_first_with_a_notice():
    text = "X:1\nT:one\nM:3/4\nL:1/4\nK:D\nDFA|d3|\n\nX:2\nT:two\nM:2/4\nL:1/8\nK:G\nGABc|d4|\n"
    reading = read_melody_file(text.encode())
    assert reading.meter == Meter(3, 4)
    assert reading.notices[0] == "the ABC file holds 2 tunes: read the first"


# ------------------------------------------------------------------ what cannot be read


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"RIFF\x00\x00", "not a MIDI, MusicXML or ABC file"),
        (b"<html><body/></html>", "an XML file that is not MusicXML"),
        (b"x" * 1_000_001, "the file has 1000001 bytes; at most 1000000"),
        (b"X:1\nM:4/4\nL:1/7\nK:C\nCDEF|\n", "ABC unit note length L:1/7"),
    ],
)
def test_unreadable_files_say_why(data, message):
    with pytest.raises(MelodyFileError) as caught:
        read_melody_file(data)
    assert message in str(caught.value)


def test_sniffing_tells_the_formats_apart():
    assert sniff_format(b"MThd\x00") == "midi"
    assert sniff_format(b"\xef\xbb\xbf<?xml?><score-partwise>") == "musicxml"
    assert sniff_format(b"PK\x03\x04") == "mxl"
    assert sniff_format(b"%abc\nX:1\nK:G\nGAB|\n") == "abc"
