"""Golden files for the MIDI writers of cantus.music.midi_io: a melody (meter changes, a
rest bar, velocities, a flat key) and a multi-track file (title, UTF-8 lyrics, chords,
drums) must come out byte for byte as tests/data/golden/melody.mid and tracks.mid.

Regenerate the golden files with ``make golden`` (``CANTUS_UPDATE_GOLDEN=1 pytest`` on them)."""

from __future__ import annotations

from pathlib import Path

from cantus.music.midi_io import melody_to_midi_bytes, midi_bytes_to_melody, tracks_to_midi_bytes
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note, Track

GOLDEN_DIR = Path(__file__).parent.parent / "data" / "golden"
GOLDEN_MELODY = "melody.mid"
GOLDEN_TRACKS = "tracks.mid"

MELODY = Melody(
    Key.parse("Bb"),
    96.5,
    (
        Bar(
            Meter(4, 4),
            (Note(480, 70, 480), Note(960, 72, 240, 70), Note(1200, 74, 240), Note(1440, 75, 480)),
        ),
        Bar(Meter(3, 4), (Note(0, 77, 960, 110), Note(960, 74, 120), Note(1080, 72, 360))),
        Bar(Meter(3, 4), ()),
        Bar(Meter(6, 8), (Note(0, 70, 720, 127), Note(720, 69, 360, 1), Note(1080, 70, 360))),
    ),
)
"""Bb major at 96.5 bpm: 4/4 opening on a rest, 3/4, a silent 3/4 bar, then 6/8."""

TRACKS = (
    Track(
        "melody",
        73,
        0,
        (Note(0, 69, 720, 100), Note(720, 72, 360), Note(1080, 71, 360), Note(1440, 69, 1440)),
        ((0, "Grü-"), (720, "ße"), (1080, "an"), (1440, "dich")),
    ),
    Track(
        "chords",
        24,
        1,
        (
            *(Note(0, pitch, 1440) for pitch in (57, 60, 64)),  # A minor
            *(Note(1440, pitch, 1440) for pitch in (56, 59, 64)),  # E major, first inversion
        ),
    ),
    Track("bass", 33, 2, (Note(0, 45, 1440, 85), Note(1440, 40, 1440, 85))),
    Track("drums", 0, 9, (Note(0, 36, 120, 100), Note(720, 38, 120), Note(1440, 36, 120, 100))),
)
"""Two bars of 6/8 in A minor: melody with lyrics, sustained chords, bass and drums."""


def test_melody_midi_matches_golden(golden) -> None:
    golden(GOLDEN_MELODY, melody_to_midi_bytes(MELODY))


def test_tracks_midi_matches_golden(golden) -> None:
    data = tracks_to_midi_bytes(
        TRACKS, tempo_bpm=100.0, meter=Meter(6, 8), key=Key(9, Mode.MINOR), title="Grüße"
    )
    golden(GOLDEN_TRACKS, data)


def test_golden_melody_reads_back_as_the_melody() -> None:
    assert midi_bytes_to_melody((GOLDEN_DIR / GOLDEN_MELODY).read_bytes()) == MELODY


def test_golden_tracks_read_back_as_their_melody_track() -> None:
    melody = midi_bytes_to_melody((GOLDEN_DIR / GOLDEN_TRACKS).read_bytes())
    assert melody.key == Key(9, Mode.MINOR) and melody.tempo_bpm == 100.0
    assert [bar.meter for bar in melody.bars] == [Meter(6, 8), Meter(6, 8)]
    assert melody.notes_absolute() == list(TRACKS[0].notes)
