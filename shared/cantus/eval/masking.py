"""Is the melody the top voice? The masking rate of a piece, read from its MIDI file.

The melody masks nothing but can be masked: a note of another pitched part (chords, bass,
pad, any track but the melody's and the drums') that sounds at or above a melody note while
it sounds hides it, most of all when the two share a register. ``masking_rate`` counts the
melody notes under which that happens at least once; issue #15 asks for at most 5 %.

The measure reads ``piece.mid`` as the render service writes it (a track named ``melody``,
drums on channel 10) or any list of ``Track``s, so the same rule serves the tests, the
``cantus eval arrangement`` report and a look at a file on disk.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import mido

from cantus.music.notes import Note, Track

DRUM_CHANNEL = 9
MELODY_TRACK = "melody"


@dataclass(frozen=True)
class Masking:
    """How often the melody is not the top voice: ``masked`` of ``melody_notes`` melody
    notes had a note of another pitched part sounding at or above them."""

    melody_notes: int
    masked: int

    @property
    def rate(self) -> float:
        """The share of melody notes masked, 0..1 (0 for a piece without melody notes)."""
        return self.masked / self.melody_notes if self.melody_notes else 0.0


def masked_notes(melody: Sequence[Note], others: Sequence[Note]) -> list[Note]:
    """The melody notes under which some note of ``others`` sounds at or above them: the
    two overlap in time (by at least one tick) and the other's pitch is not lower."""
    by_onset = sorted(others)
    out = []
    for note in melody:
        for other in by_onset:
            if other.onset >= note.end:
                break  # sorted by onset: none later can overlap
            if other.end > note.onset and other.pitch >= note.pitch:
                out.append(note)
                break
    return out


def track_masking(tracks: Sequence[Track]) -> Masking:
    """``Masking`` of arranged tracks: the track named ``melody`` against every other
    track that is not on the drum channel."""
    melody = [n for t in tracks if t.name == MELODY_TRACK for n in t.notes]
    others = [
        n for t in tracks if t.name != MELODY_TRACK and t.channel != DRUM_CHANNEL for n in t.notes
    ]
    return Masking(len(melody), len(masked_notes(melody, others)))


def midi_tracks(data: bytes) -> list[Track]:
    """The tracks of a MIDI file as ``Track``s (name, first program, first channel, notes
    with onsets in the file's ticks); a note-on without its note-off ends at the track's
    end. Tracks without notes (the conductor) are left out."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    tracks = []
    for index, raw in enumerate(midi.tracks):
        name, program, channel = f"track {index}", 0, None
        started: dict[tuple[int, int], list[tuple[int, int]]] = {}
        notes: list[Note] = []
        tick = 0
        for message in raw:
            tick += message.time
            if message.type == "track_name":
                name = message.name
            elif message.type == "program_change":
                program = message.program
            elif message.type in ("note_on", "note_off"):
                channel = message.channel if channel is None else channel
                key = (message.channel, message.note)
                if message.type == "note_on" and message.velocity > 0:
                    started.setdefault(key, []).append((tick, message.velocity))
                elif started.get(key):
                    onset, velocity = started[key].pop(0)
                    if tick > onset:
                        notes.append(Note(onset, message.note, tick - onset, velocity))
        for (_, pitch), pending in started.items():
            for onset, velocity in pending:
                if tick > onset:
                    notes.append(Note(onset, pitch, tick - onset, velocity))
        if notes:
            tracks.append(Track(name, program, channel or 0, sorted(notes)))
    return tracks


def midi_masking(data: bytes) -> Masking:
    """``Masking`` of a MIDI file (``piece.mid``): its track named ``melody`` against the
    other pitched tracks."""
    return track_masking(midi_tracks(data))
