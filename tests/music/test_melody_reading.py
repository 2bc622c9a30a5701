"""The record of what was read from a melody file: key signature candidates and the JSON
the isolated reader sends."""

from __future__ import annotations

from cantus.music.melody_reading import (
    KEY_FROM_SIGNATURE_AND_NOTES,
    KeySignature,
    MelodyReading,
)
from cantus.music.notes import Bar, Key, Meter, Mode, Note


def _reading() -> MelodyReading:
    meter = Meter(2, 4)
    return MelodyReading(
        file_format="midi",
        bars=(Bar(meter, (Note(720, 69, 240, 80),)), Bar(meter, (Note(0, 72, 960),))),
        meter=meter,
        meter_from_file=True,
        pickup_ticks=240,
        tempo_bpm=96.0,
        key_signature=KeySignature(Key(0), mode_stated=False),
        part="track 1 'Melody' (channel 1), named as the melody",
        notices=("something was changed",),
    ).with_key(Key(9, Mode.MINOR), KEY_FROM_SIGNATURE_AND_NOTES)


def test_json_round_trip_is_exact():
    reading = _reading()
    assert MelodyReading.from_json(reading.to_json()) == reading


def test_a_signature_without_a_stated_mode_allows_major_and_relative_minor():
    assert KeySignature(Key(0), False).candidates() == (Key(0), Key(9, Mode.MINOR))
    assert KeySignature(Key(9, Mode.MINOR), False).candidates() == (Key(0), Key(9, Mode.MINOR))
    assert KeySignature(Key(4, Mode.MINOR), True).candidates() == (Key(4, Mode.MINOR),)


def test_the_defaults_fill_what_the_file_leaves():
    reading = MelodyReading("abc", (), Meter(4, 4), True, 0, None, None, "part 1")
    melody = reading.melody(Key(2), 100.0)
    assert (melody.key, melody.tempo_bpm) == (Key(2), 100.0)
