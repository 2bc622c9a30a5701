"""Reading melodies from Standard MIDI Files and writing pieces to them, with mido.

Reading (``midi_bytes_to_melody``) accepts type 0 and 1 files with any resolution, running
status, several tracks and tempo / time-signature changes; it picks the melody track,
reduces it to one voice, quantizes to the sixteenth grid and cuts it into bars along the
file's time-signature map. Anything it cannot read raises ``MidiError`` saying what is
wrong and where (track numbers count from 0, byte offsets from the start of the file).

Writing (``tracks_to_midi_bytes``) produces type 1 files at 480 ticks per quarter: a
conductor track (title, tempo, time signature, key signature) and one track per ``Track``.
"""

from __future__ import annotations

import io
import struct
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import mido

from cantus.music.melody_reading import (
    FORMAT_MIDI,
    MAX_MELODY_NOTES,
    MAX_SPAN_BARS,
    MONOPHONIC_OVERLAP,
    KeySignature,
    MelodyReading,
    names_melody,
)
from cantus.music.notes import (
    TICKS_PER_QUARTER,
    Key,
    Melody,
    Meter,
    Mode,
    MusicError,
    Note,
    Track,
)
from cantus.music.pickup import estimate_pickup, right_align_pickup
from cantus.music.transcription import (
    TimedNote,
    estimate_key,
    notes_to_bars,
    skyline,
    snap_to_grid,
)

__all__ = [
    "MidiError",
    "estimate_key",
    "melody_to_midi_bytes",
    "midi_bytes_to_melody",
    "read_midi_melody",
    "tracks_to_midi_bytes",
]

DRUM_CHANNEL = 9
"""MIDI channel (0-based) reserved for percussion in General MIDI; never a melody."""

DEFAULT_TEMPO_BPM = 120.0
"""Tempo a MIDI file has when it holds no set_tempo event (the standard's default)."""

MELODY_TRACK_NAME = "melody"
"""Track name that marks the melody track, on reading and writing."""

# Key signature names mido accepts, spelled with the fewest accidentals.
_MAJOR_KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_KEY_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")


class MidiError(MusicError):
    """MIDI data cannot be read (or a piece cannot be written); the message says what is
    wrong and where, e.g. ``truncated track 2 at byte 812``."""


# ---------------------------------------------------------------- reading: chunk framing


@dataclass(frozen=True)
class _Header:
    file_format: int
    track_count: int
    ticks_per_beat: int


def _read_header(data: bytes) -> tuple[_Header, int]:
    """Validate the MThd chunk; returns the header and the byte offset after it."""
    if not data:
        raise MidiError("not a MIDI file (no data: 0 bytes)")
    if data[:4] != b"MThd":
        raise MidiError(f"not a MIDI file (missing MThd header; starts with {data[:4]!r})")
    if len(data) < 14:
        raise MidiError(f"truncated MIDI header: the file has only {len(data)} bytes, need 14")
    length = int.from_bytes(data[4:8], "big")
    if length < 6:
        raise MidiError(f"bad MThd chunk length {length} at byte 4 (must be at least 6)")
    if 8 + length > len(data):
        raise MidiError(
            f"bad MThd chunk length {length} at byte 4: only {len(data) - 8} bytes follow"
        )
    file_format, track_count, division = struct.unpack(">HHH", data[8:14])
    if file_format == 2:
        raise MidiError("type 2 MIDI files (independent sequences) are not supported")
    if file_format not in (0, 1):
        raise MidiError(f"unknown MIDI file format {file_format} (expected 0 or 1)")
    if division & 0x8000:
        raise MidiError("SMPTE time division is not supported (need ticks per quarter note)")
    if division == 0:
        raise MidiError("bad time division: 0 ticks per quarter note")
    if track_count == 0:
        raise MidiError("the MIDI header declares no tracks")
    if file_format == 0 and track_count != 1:
        raise MidiError(f"type 0 MIDI file declares {track_count} tracks (must be 1)")
    return _Header(file_format, track_count, division), 8 + length


def _track_chunks(data: bytes, header: _Header, offset: int) -> list[tuple[int, bytes]]:
    """(byte offset, chunk bytes including its 8-byte header) of each MTrk chunk; chunks of
    other types are skipped, as the standard asks; bytes after the last track are ignored."""
    chunks: list[tuple[int, bytes]] = []
    while len(chunks) < header.track_count:
        if offset >= len(data):
            raise MidiError(
                f"truncated file: it ends after {len(chunks)} of the "
                f"{header.track_count} tracks its header declares (at byte {offset})"
            )
        if len(data) - offset < 8:
            raise MidiError(
                f"truncated track {len(chunks)} at byte {offset}: incomplete chunk header"
            )
        name = data[offset : offset + 4]
        length = int.from_bytes(data[offset + 4 : offset + 8], "big")
        if not all(0x20 <= byte < 0x7F for byte in name):
            raise MidiError(f"garbage at byte {offset}: expected a chunk (MTrk), found {name!r}")
        end = offset + 8 + length
        if end > len(data):
            if name == b"MTrk":
                raise MidiError(
                    f"truncated track {len(chunks)} at byte {offset}: its chunk length says "
                    f"{length} bytes but only {len(data) - offset - 8} remain"
                )
            raise MidiError(f"bad chunk length {length} of chunk {name!r} at byte {offset}")
        if name == b"MTrk":
            chunks.append((offset, data[offset:end]))
        offset = end
    return chunks


def _parse_track(index: int, offset: int, chunk: bytes, ticks_per_beat: int) -> mido.MidiTrack:
    """Parse one MTrk chunk with mido, alone, so an error can name the track."""
    single = b"MThd" + struct.pack(">LHHH", 6, 0, 1, ticks_per_beat) + chunk
    try:
        return mido.MidiFile(file=io.BytesIO(single), clip=True).tracks[0]
    except EOFError:
        raise MidiError(
            f"truncated track {index} at byte {offset}: its events run past the end of its "
            f"{len(chunk) - 8}-byte chunk"
        ) from None
    except Exception as error:  # mido raises OSError, ValueError, KeyError, ... on bad bytes
        raise MidiError(
            f"corrupt track {index} at byte {offset}: {type(error).__name__}: {error}"
        ) from None


# ---------------------------------------------------------------- reading: events


@dataclass
class _Voice:
    """The notes of one track (all channels but drums) gathered while reading, and the
    channel of each note (``channels[i]`` for ``notes[i]``)."""

    name: str = ""
    instrument: str = ""
    notes: list[TimedNote] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)


@dataclass
class _Conductor:
    tempo_bpm: float | None = None
    tempo_tick: int = -1
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, n, d)
    key: Key | None = None
    key_tick: int = -1
    # Whether the key signature says minor: a MIDI key signature's mode byte is 0 (major)
    # in most exports whatever the tune, so only the minor flag is taken as stated.
    key_mode_stated: bool = False


def _key_from_meta(name: str) -> Key:
    mode = Mode.MINOR if name.endswith("m") else Mode.MAJOR
    return Key.parse(name.removesuffix("m"), mode)


def _read_voices(
    tracks: Sequence[mido.MidiTrack], ticks_per_beat: int
) -> tuple[list[_Voice], _Conductor]:
    scale = Fraction(TICKS_PER_QUARTER, ticks_per_beat)
    conductor = _Conductor()
    voices: list[_Voice] = []
    for track in tracks:
        voice = _Voice()
        open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = defaultdict(deque)
        tick = 0
        for message in track:
            tick += message.time
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                if message.channel != DRUM_CHANNEL:
                    open_notes[message.channel, message.note].append((tick, message.velocity))
            elif kind in ("note_off", "note_on"):
                starts = open_notes.get((message.channel, message.note))
                # First in, first out: a note_off ends the oldest sounding copy of its pitch.
                if starts:
                    start, velocity = starts.popleft()
                    if tick > start:
                        voice.notes.append(
                            TimedNote(start * scale, tick * scale, message.note, velocity)
                        )
                        voice.channels.append(message.channel)
            elif kind == "track_name" and not voice.name:
                voice.name = message.name.strip()
            elif kind == "instrument_name" and not voice.instrument:
                voice.instrument = message.name.strip()
            elif (
                kind == "set_tempo"
                and message.tempo > 0  # 0 µs per quarter is no tempo (and divides by zero)
                and (conductor.tempo_bpm is None or tick < conductor.tempo_tick)
            ):
                conductor.tempo_bpm = round(mido.tempo2bpm(message.tempo), 2)
                conductor.tempo_tick = tick
            elif kind == "time_signature":
                conductor.time_signatures.append((tick, message.numerator, message.denominator))
            elif kind == "key_signature" and (conductor.key is None or tick < conductor.key_tick):
                try:
                    conductor.key = _key_from_meta(message.key)
                except MusicError:
                    continue
                conductor.key_tick = tick
                conductor.key_mode_stated = message.key.endswith("m")
        # Notes still sounding when the track ends stop there.
        for (channel, pitch), starts in open_notes.items():
            for start, velocity in starts:
                if tick > start:
                    voice.notes.append(TimedNote(start * scale, tick * scale, pitch, velocity))
                    voice.channels.append(channel)
        voices.append(voice)
    return voices, conductor


def _melody_voice(voices: Sequence[_Voice]) -> _Voice:
    named = [v for v in voices if v.name.lower() == MELODY_TRACK_NAME and v.notes]
    if named:
        return named[0]
    best = max(voices, key=lambda v: len(v.notes))
    if not best.notes:
        raise MidiError("no notes: the file holds no note events outside the drum channel")
    return best


def _meter_map(conductor: _Conductor, ticks_per_beat: int) -> list[tuple[int, Meter]]:
    changes: dict[int, Meter] = {}
    for tick, numerator, denominator in sorted(conductor.time_signatures, key=lambda e: e[0]):
        try:
            meter = Meter(numerator, denominator)
        except MusicError as error:
            raise MidiError(f"unsupported time signature at tick {tick}: {error}") from None
        # A change lands on our tick scale; later events at the same tick win.
        changes[round(Fraction(tick * TICKS_PER_QUARTER, ticks_per_beat))] = meter
    if not changes:
        return [(0, Meter(4, 4))]
    return sorted(changes.items())


def midi_bytes_to_melody(
    data: bytes,
    *,
    default_key: Key | None = None,
    default_tempo_bpm: float = DEFAULT_TEMPO_BPM,
) -> Melody:
    """Read the melody of a type 0 or 1 Standard MIDI File.

    The melody is the track named ``melody`` if there is one, else the track with the most
    notes outside the drum channel; it is reduced to its highest sounding note, snapped to
    the sixteenth grid (120 ticks at 480 per quarter, whatever the file's resolution) and
    split into bars at the barlines of the file's time-signature map (4/4 if none), notes
    crossing a barline split in two. Trailing empty bars are dropped. Tempo (bpm, 2 decimals)
    is the first set_tempo, else ``default_tempo_bpm`` (120, the MIDI default); the key is the
    first key_signature, else ``default_key``, else ``estimate_key`` of the notes. Velocities
    are kept.

    Raises ``MidiError`` (and no other exception) for data that is not MIDI, is truncated or
    corrupt, is a type 2 file, or has no notes.
    """
    header, offset = _read_header(bytes(data))
    chunks = _track_chunks(bytes(data), header, offset)
    tracks = [
        _parse_track(index, chunk_offset, chunk, header.ticks_per_beat)
        for index, (chunk_offset, chunk) in enumerate(chunks)
    ]
    voices, conductor = _read_voices(tracks, header.ticks_per_beat)
    voice = _melody_voice(voices)
    line, _ = skyline(snap_to_grid(voice.notes))
    bars = notes_to_bars(line, _meter_map(conductor, header.ticks_per_beat))
    key = conductor.key or default_key or estimate_key(line)
    tempo = conductor.tempo_bpm if conductor.tempo_bpm is not None else default_tempo_bpm
    return Melody(key, tempo, tuple(bars))


# ---------------------------------------------------------------- reading: a given melody


@dataclass(frozen=True)
class _Line:
    """One candidate melody line: the notes of one channel of one track."""

    track: int
    channel: int
    name: str
    notes: list[TimedNote]

    @property
    def label(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"track {self.track}{name} (channel {self.channel + 1})"

    @property
    def overlap_fraction(self) -> float:
        ordered = sorted(self.notes, key=lambda n: n.onset)
        overlapping, sounding_until = 0, Fraction(-1)
        for note in ordered:
            if note.onset < sounding_until:
                overlapping += 1
            sounding_until = max(sounding_until, note.end)
        return overlapping / len(ordered) if ordered else 0.0

    @property
    def mean_pitch(self) -> float:
        return sum(n.pitch for n in self.notes) / len(self.notes)


def _lines(voices: Sequence[_Voice]) -> list[_Line]:
    """Every (track, channel) with notes: a type 0 file keeps each instrument on its own
    channel of its one track."""
    lines = []
    for index, voice in enumerate(voices):
        by_channel: dict[int, list[TimedNote]] = defaultdict(list)
        for note, channel in zip(voice.notes, voice.channels, strict=True):
            by_channel[channel].append(note)
        for channel in sorted(by_channel):
            # Some programs name a track only by its instrument ("Voice", "Lead Synth").
            name = voice.name or voice.instrument
            lines.append(_Line(index, channel, name, by_channel[channel]))
    return lines


def _choose_line(lines: Sequence[_Line]) -> tuple[_Line, str]:
    """The melody line and why: the first line whose track name says melody (lead, vocal,
    ...), else the highest monophonic line, else the highest line."""
    if not lines:
        raise MidiError("no notes: the file holds no note events outside the drum channel")
    if len(lines) == 1:
        return lines[0], f"{lines[0].label}, the only part with notes"
    named = [line for line in lines if names_melody(line.name)]
    if named:
        return named[0], f"{named[0].label}, named as the melody"
    monophonic = [line for line in lines if line.overlap_fraction <= MONOPHONIC_OVERLAP]
    if monophonic:
        best = max(monophonic, key=lambda line: line.mean_pitch)
        return best, f"{best.label}, the highest of {len(monophonic)} single-note parts"
    best = max(lines, key=lambda line: line.mean_pitch)
    return best, f"{best.label}, the highest of {len(lines)} parts (none plays one note at a time)"


def _bar_number(tick: int, pickup: int, meter: Meter) -> int:
    """1-based bar number of ``tick`` (file ticks at 480 per quarter) in a tune whose first
    full bar starts at ``pickup`` (the pickup bar, if any, is bar 1)."""
    full_bars = (tick - pickup) // meter.bar_ticks
    return full_bars + (2 if pickup else 1)


def _single_meter(changes: Sequence[tuple[int, Meter]], notes_end: int) -> tuple[Meter, int]:
    """The melody's meter and the pickup a short first bar marks (0: none), from the file's
    (tick, meter) map and where the notes end; ``MidiError`` naming the bar where the meter
    changes. A shorter last bar, which balances a pickup, is no change of meter."""
    meter = changes[0][1]
    pickup = 0
    rest = list(changes[1:])
    if rest and rest[0][0] == meter.bar_ticks and meter.bar_ticks < rest[0][1].bar_ticks:
        # A short first bar then the tune's meter: how notation programs write a pickup.
        pickup, meter = meter.bar_ticks, rest[0][1]
        rest = rest[1:]
    for tick, changed in rest:
        if changed.bar_ticks < meter.bar_ticks and notes_end <= tick + changed.bar_ticks:
            continue  # the tune ends inside this shorter bar: its last bar, cut short
        if changed != meter:
            raise MidiError(
                f"the meter changes from {meter} to {changed} at bar "
                f"{_bar_number(tick, pickup, meter)}; a melody must keep one meter "
                "(a shorter pickup bar is fine)"
            )
    return meter, pickup


def _drop_leading_empty_bars(notes: list[Note], meter: Meter) -> tuple[list[Note], int]:
    """Notes moved earlier by the whole empty bars before the first one (an intro other
    tracks play, a count-in), and how many bars that was."""
    empty_bars = notes[0].onset // meter.bar_ticks if notes else 0
    if not empty_bars:
        return notes, 0
    shift = empty_bars * meter.bar_ticks
    return [Note(n.onset - shift, n.pitch, n.duration, n.velocity) for n in notes], empty_bars


def read_midi_melody(data: bytes) -> MelodyReading:
    """Read a musician's melody from a type 0 or 1 Standard MIDI File, saying what was read.

    The melody is the track named melody (lead, vocal, voice, ...), else the highest line
    that plays one note at a time, else the highest line, where a line is one channel of
    one track (so type 0 files with several instruments work); a line with chords or
    overlapping voices is reduced to its top note, with a notice. The meter is the file's
    time signature (4/4 when it has none, as the standard says); a pickup is a short
    first bar, a leading rest, or, when the notes start at once, found by
    ``estimate_pickup``, and it is kept right-aligned in bar 1. Whole empty bars before
    the first note are dropped. The tempo is the first set_tempo (None if none); the key
    signature is reported for ``melody_files`` to settle the key.

    Raises ``MidiError`` (and no other exception) for data that is not MIDI, is truncated
    or corrupt, has no notes, changes meter after the first bar (naming the bar), spans
    more than ``MAX_SPAN_BARS`` bars or holds more than ``MAX_MELODY_NOTES`` notes in the
    chosen line.
    """
    header, offset = _read_header(bytes(data))
    chunks = _track_chunks(bytes(data), header, offset)
    tracks = [
        _parse_track(index, chunk_offset, chunk, header.ticks_per_beat)
        for index, (chunk_offset, chunk) in enumerate(chunks)
    ]
    voices, conductor = _read_voices(tracks, header.ticks_per_beat)
    line, part = _choose_line(_lines(voices))
    if len(line.notes) > MAX_MELODY_NOTES:
        raise MidiError(
            f"{line.label} holds {len(line.notes)} notes; a melody may have at most "
            f"{MAX_MELODY_NOTES}"
        )
    changes = _meter_map(conductor, header.ticks_per_beat)
    snapped = snap_to_grid(line.notes)
    span_bars = max(n.end for n in snapped) // min(m.bar_ticks for _, m in changes) + 1
    if span_bars > MAX_SPAN_BARS:
        raise MidiError(
            f"the notes of {line.label} span {span_bars} bars; at most {MAX_SPAN_BARS} "
            "can be read (is a time value corrupt?)"
        )
    meter, pickup = _single_meter(changes, max(n.end for n in snapped))
    notes, dropped = skyline(snapped)
    notices = []
    if len(notes) < len(snapped):
        notices.append(
            f"{line.label} plays several notes at once: kept its top line, "
            f"{len(snapped) - len(notes)} of {len(snapped)} notes left out"
            + (f" ({dropped} of them under a higher voice)" if dropped else "")
        )
    if pickup:
        # The file's barlines fall a pickup after tick 0: move the pickup to the end of bar 1.
        notes = right_align_pickup(notes, pickup, meter)
    elif notes[0].onset == 0 and conductor.time_signatures:
        # Bar 1 starts with a note and nothing marks a pickup: find where the barlines
        # fall (without a time signature there is no meter to measure against).
        pickup = estimate_pickup(notes, meter)
        notes = right_align_pickup(notes, pickup, meter)
        if pickup:
            notices.append(
                f"the file marks no pickup, but its rhythm puts the first barline after "
                f"{pickup} ticks, so the melody opens with a pickup of that length (if it "
                "starts on a downbeat, begin the file with a bar of rest)"
            )
    elif notes[0].onset % meter.bar_ticks:
        # A leading rest already places the pickup against the file's barlines.
        pickup = meter.bar_ticks - notes[0].onset % meter.bar_ticks
    notes, empty_bars = _drop_leading_empty_bars(notes, meter)
    if empty_bars:
        notices.append(f"left out {empty_bars} empty bar(s) before the melody's first note")
    key_signature = (
        KeySignature(conductor.key, conductor.key_mode_stated) if conductor.key else None
    )
    return MelodyReading(
        file_format=FORMAT_MIDI,
        bars=tuple(notes_to_bars(notes, [(0, meter)])),
        meter=meter,
        meter_from_file=bool(conductor.time_signatures),
        pickup_ticks=pickup,
        tempo_bpm=conductor.tempo_bpm,
        key_signature=key_signature,
        part=part,
        notices=tuple(notices),
    )


# ---------------------------------------------------------------- writing


def _key_signature_name(key: Key) -> str:
    names = _MAJOR_KEY_NAMES if key.mode is Mode.MAJOR else _MINOR_KEY_NAMES
    return names[key.tonic]


def _delta_track(
    events: Iterable[tuple[int, int, mido.Message | mido.MetaMessage]], end_tick: int
) -> mido.MidiTrack:
    """A track from (absolute tick, order, message) events: sorted by tick then ``order``,
    times turned into deltas, closed by end_of_track at ``end_tick`` (or the last event)."""
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


# Event order within one tick: names and settings, then note offs before note ons (so a
# repeated pitch is released before it sounds again), lyrics with their notes.
_ORDER_SETUP, _ORDER_NOTE_OFF, _ORDER_LYRIC, _ORDER_NOTE_ON = 0, 1, 2, 3


def _write(
    tracks: Sequence[Track],
    *,
    tempo_bpm: float,
    meter_changes: Sequence[tuple[int, Meter]],
    key: Key,
    title: str | None,
    end_tick: int,
    tempo_changes: Sequence[tuple[int, float]] = (),
) -> bytes:
    for bpm in (tempo_bpm, *(bpm for _, bpm in tempo_changes)):
        if not 1 <= bpm <= 1000:
            raise MidiError(f"tempo must be 1..1000 bpm to be written, got {bpm}")
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER, charset="utf-8")
    end_tick = max(
        [
            end_tick,
            *(n.end for t in tracks for n in t.notes),
            *(tick for t in tracks for tick, _ in t.lyrics),
        ]
    )
    conductor: list[tuple[int, int, mido.MetaMessage]] = []
    if title:
        conductor.append((0, _ORDER_SETUP, mido.MetaMessage("track_name", name=title)))
    conductor.append(
        (0, _ORDER_SETUP, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)))
    )
    for tick, bpm in tempo_changes:
        if tick < 0:
            raise MidiError(f"tempo change at negative tick {tick}")
        conductor.append(
            (tick, _ORDER_SETUP, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
        )
    for tick, meter in meter_changes:
        conductor.append(
            (
                tick,
                _ORDER_SETUP,
                mido.MetaMessage(
                    "time_signature", numerator=meter.numerator, denominator=meter.denominator
                ),
            )
        )
    conductor.append(
        (0, _ORDER_SETUP, mido.MetaMessage("key_signature", key=_key_signature_name(key)))
    )
    midi.tracks.append(_delta_track(conductor, end_tick))

    for part in tracks:
        if not 0 <= part.channel <= 15:
            raise MidiError(f"track {part.name!r}: channel must be 0..15, got {part.channel}")
        if not 0 <= part.program <= 127:
            raise MidiError(f"track {part.name!r}: program must be 0..127, got {part.program}")
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, _ORDER_SETUP, mido.MetaMessage("track_name", name=part.name)),
            (
                0,
                _ORDER_SETUP,
                mido.Message("program_change", channel=part.channel, program=part.program),
            ),
        ]
        for tick, program in part.program_changes:
            if not 0 <= program <= 127:
                raise MidiError(f"track {part.name!r}: program must be 0..127, got {program}")
            events.append(
                (
                    tick,
                    _ORDER_SETUP,
                    mido.Message("program_change", channel=part.channel, program=program),
                )
            )
        for note in part.notes:
            events.append(
                (
                    note.onset,
                    _ORDER_NOTE_ON,
                    mido.Message(
                        "note_on", channel=part.channel, note=note.pitch, velocity=note.velocity
                    ),
                )
            )
            events.append(
                (
                    note.end,
                    _ORDER_NOTE_OFF,
                    mido.Message("note_off", channel=part.channel, note=note.pitch, velocity=0),
                )
            )
        for tick, syllable in part.lyrics:
            if tick < 0:
                raise MidiError(f"track {part.name!r}: lyric {syllable!r} at negative tick {tick}")
            events.append((tick, _ORDER_LYRIC, mido.MetaMessage("lyrics", text=syllable)))
        midi.tracks.append(_delta_track(events, end_tick))

    buffer = io.BytesIO()
    try:
        midi.save(file=buffer)
    except (ValueError, TypeError, UnicodeEncodeError) as error:
        raise MidiError(f"cannot write MIDI file: {error}") from error
    return buffer.getvalue()


def tracks_to_midi_bytes(
    tracks: Sequence[Track],
    *,
    tempo_bpm: float,
    meter: Meter,
    key: Key,
    title: str | None = None,
    tempo_changes: Sequence[tuple[int, float]] = (),
) -> bytes:
    """A type 1 MIDI file (480 ticks per quarter) of the tracks: track 0 is the conductor
    (``title`` as track name, tempo in bpm, time signature, key signature, and a set_tempo
    at each of ``tempo_changes``, (tick, bpm) pairs after the start: a ritardando), then one
    track per ``Track`` with its name, a program change on its channel, its notes (onsets in
    ticks from the start of the piece) and its lyrics as ``lyrics`` meta events (UTF-8).
    Every track ends with end_of_track at the end of the last note."""
    return _write(
        tracks,
        tempo_bpm=tempo_bpm,
        meter_changes=[(0, meter)],
        key=key,
        title=title,
        end_tick=0,
        tempo_changes=tempo_changes,
    )


def melody_to_midi_bytes(melody: Melody, *, name: str = MELODY_TRACK_NAME) -> bytes:
    """A type 1 MIDI file of one melody (program 0, channel 0, track named ``name``); every
    change of meter between bars becomes a time_signature event, and the file lasts to the
    end of the last bar, so ``midi_bytes_to_melody`` gives back the same melody (up to
    trailing empty bars)."""
    meter_changes: list[tuple[int, Meter]] = []
    bar_start = 0
    for bar in melody.bars:
        if not meter_changes or meter_changes[-1][1] != bar.meter:
            meter_changes.append((bar_start, bar.meter))
        bar_start += bar.meter.bar_ticks
    if not meter_changes:
        meter_changes = [(0, melody.meter)]
    track = Track(name, program=0, channel=0, notes=melody.notes_absolute())
    return _write(
        [track],
        tempo_bpm=melody.tempo_bpm,
        meter_changes=meter_changes,
        key=melody.key,
        title=None,
        end_tick=bar_start,
    )
