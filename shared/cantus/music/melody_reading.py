"""What was read from a musician's melody file (MIDI, MusicXML or ABC), as one record.

The readers (``midi_io.read_midi_melody``, ``music21_io.read_score_melody``) fill in what
the file says; ``melody_files.read_melody_file`` then settles the key. The record travels
as JSON between the isolated reader process and the gateway (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note

FORMAT_MIDI = "midi"
FORMAT_MUSICXML = "musicxml"
FORMAT_ABC = "abc"

MELODY_PART_WORDS = frozenset(
    {"melody", "lead", "vocal", "vocals", "voice", "soprano", "singer", "tune", "song"}
)
"""Words that mark a track or part as the melody when they occur in its name."""

MONOPHONIC_OVERLAP = 0.1
"""A track or part counts as playing one note at a time when at most this fraction of its
notes start while another of its notes still sounds (or are chords)."""


MAX_MELODY_NOTES = 5_000
"""Most notes a file's melody track or part may hold (a 64-bar tune has under 1,100
sixteenths); more is not a melody, and reducing it to one line would take long."""

MAX_SPAN_BARS = 1_000
"""Longest a file's melody may span, in bars; beyond it the file is refused before bars are
built, so a huge delta time or duration cannot make a huge list."""


def names_melody(name: str) -> bool:
    """Whether a track or part name says it holds the melody (``Lead Vocal``, ``Melody``)."""
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    return any(word in MELODY_PART_WORDS for word in words)


KEY_FROM_SIGNATURE = "key_signature"
"""The key is the file's key signature with the mode it states."""
KEY_FROM_SIGNATURE_AND_NOTES = "key_signature_and_notes"
"""The file's key signature without a stated mode: major or relative minor from the notes."""
KEY_FROM_NOTES = "notes"
"""No key signature: music21's key analysis of the notes."""


@dataclass(frozen=True)
class KeySignature:
    """A key signature as the file gives it: ``key`` is the key it names (C major for a
    MIDI key signature of no sharps in major mode), ``mode_stated`` whether the file says
    the mode (MIDI's minor flag, MusicXML's <mode>, an ABC K: such as Am or Ador) or only
    the sharps and flats, which major and relative minor share."""

    key: Key
    mode_stated: bool

    def candidates(self) -> tuple[Key, ...]:
        """The keys the signature allows: itself when the mode is stated, else its major
        and relative minor."""
        if self.mode_stated:
            return (self.key,)
        major_tonic = self.key.tonic if self.key.mode is Mode.MAJOR else (self.key.tonic + 3) % 12
        return (Key(major_tonic, Mode.MAJOR), Key((major_tonic + 9) % 12, Mode.MINOR))


@dataclass(frozen=True)
class MelodyReading:
    """A melody read from a file, before the request's explicit values are applied.

    ``bars`` are in ``meter``, a pickup right-aligned in bar 1 (``pickup_ticks`` long, 0:
    none); ``meter_from_file`` is False when the file has no time signature (MIDI's 4/4
    default); ``tempo_bpm`` is None when the file names no tempo; ``part`` says which
    track or part holds the melody and why; ``notices`` are what the reader changed (a
    polyphonic line reduced to its top voice, ...). ``key`` and ``key_source`` (one of the
    ``KEY_FROM_*`` values) are set once the key is settled."""

    file_format: str
    bars: tuple[Bar, ...]
    meter: Meter
    meter_from_file: bool
    pickup_ticks: int
    tempo_bpm: float | None
    key_signature: KeySignature | None
    part: str
    notices: tuple[str, ...] = ()
    key: Key | None = None
    key_source: str = ""

    def melody(self, default_key: Key, default_tempo_bpm: float) -> Melody:
        """The reading as a ``Melody``; the defaults fill what the file and analysis left."""
        tempo = self.tempo_bpm if self.tempo_bpm is not None else default_tempo_bpm
        return Melody(self.key or default_key, tempo, self.bars)

    def to_json(self) -> dict:
        """A JSON-ready dict (notes as [onset, pitch, duration, velocity] per bar)."""
        signature = self.key_signature
        return {
            "file_format": self.file_format,
            "meter": str(self.meter),
            "bars": [
                [[n.onset, n.pitch, n.duration, n.velocity] for n in bar.notes] for bar in self.bars
            ],
            "meter_from_file": self.meter_from_file,
            "pickup_ticks": self.pickup_ticks,
            "tempo_bpm": self.tempo_bpm,
            "key_signature": None
            if signature is None
            else [signature.key.tonic, signature.key.mode.value, signature.mode_stated],
            "part": self.part,
            "notices": list(self.notices),
            "key": None if self.key is None else [self.key.tonic, self.key.mode.value],
            "key_source": self.key_source,
        }

    @classmethod
    def from_json(cls, record: dict) -> MelodyReading:
        """The reading ``to_json`` wrote; raises ``MusicError`` (or ``KeyError``,
        ``TypeError``) on a malformed record."""
        meter = Meter.parse(record["meter"])
        signature = record["key_signature"]
        key = record["key"]
        return cls(
            file_format=str(record["file_format"]),
            bars=tuple(Bar(meter, tuple(Note(*n) for n in notes)) for notes in record["bars"]),
            meter=meter,
            meter_from_file=bool(record["meter_from_file"]),
            pickup_ticks=int(record["pickup_ticks"]),
            tempo_bpm=None if record["tempo_bpm"] is None else float(record["tempo_bpm"]),
            key_signature=None
            if signature is None
            else KeySignature(Key(signature[0], Mode(signature[1])), bool(signature[2])),
            part=str(record["part"]),
            notices=tuple(str(n) for n in record["notices"]),
            key=None if key is None else Key(key[0], Mode(key[1])),
            key_source=str(record["key_source"]),
        )

    def with_key(self, key: Key, source: str) -> MelodyReading:
        return dataclasses.replace(self, key=key, key_source=source)
