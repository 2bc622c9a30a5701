"""A user's melody file in a compose request (``continue_midi`` / ``harmonize_midi``): read
it, and settle the piece's key, meter and tempo from it unless the user gave them.

The file speaks for itself: the key, mode, meter and tempo a request leaves unset (empty
``key``, ``mode`` and ``meter``, no ``tempo_bpm``) are the file's (``melody_files``), and
only what the user sets explicitly overrides it; a meter the user sets re-bars the notes,
the pickup kept. What was read, and where each value comes from, goes into the spec as
``PieceSpec.given_melody`` so every event and piece.json show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.melody.tokenizer import PITCH_RANGE as MELODY_PITCH_RANGE
from cantus.music.isolated_reading import read_melody_file_isolated
from cantus.music.melody_files import MAX_FILE_BYTES, MelodyFileError
from cantus.music.melody_reading import MelodyReading
from cantus.music.notes import PITCH_CLASS_NAMES, Bar, Key, Meter, MusicError, Note, parse_mode
from cantus.music.styles import SUPPORTED_METERS, TEMPO_RANGE_BPM
from cantus.music.transcription import notes_to_bars
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

MELODY_FIELDS = ("continue_midi", "harmonize_midi")
"""The request fields that carry a melody file."""

FROM_REQUEST = "request"
FROM_DEFAULT = "default"
FROM_FILE = "file"
METER_FROM_TIME_SIGNATURE = "time_signature"
METER_FROM_MIDI_DEFAULT = "midi_default"


class GivenMelodyError(ValueError):
    """The melody file or a value given with it is invalid; ``field`` names the request
    field, ``problem`` says what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class GivenMelody:
    """The melody of a request's file in the piece's meter, and the piece's key, meter and
    tempo settled from the file and the request."""

    field: str
    bars: tuple[Bar, ...]
    key: Key
    meter: Meter
    tempo_bpm: float
    info: pb.GivenMelody


def rebar(reading: MelodyReading, meter: Meter) -> tuple[Bar, ...]:
    """The reading's notes in bars of ``meter``, its pickup (if any) ending bar 1."""
    old_bar, pickup = reading.meter.bar_ticks, reading.pickup_ticks
    # Ticks from the first note's bar line: the pickup's start when there is one.
    lead = old_bar - pickup if pickup else 0
    new_lead = (meter.bar_ticks - pickup) % meter.bar_ticks if pickup else 0
    notes, bar_start = [], 0
    for bar in reading.bars:
        for n in bar.notes:
            notes.append(
                Note(bar_start + n.onset - lead + new_lead, n.pitch, n.duration, n.velocity)
            )
        bar_start += bar.meter.bar_ticks
    return tuple(notes_to_bars(notes, [(0, meter)]))


def _key(request: api.ComposeRequest, reading: MelodyReading) -> tuple[Key, str]:
    file_key = reading.key or Key(0)
    if not (request.key or request.mode):
        return file_key, reading.key_source
    try:
        mode = parse_mode(request.mode or file_key.mode)
    except MusicError as error:
        raise GivenMelodyError("mode", str(error)) from None
    try:
        key = Key.parse(request.key or PITCH_CLASS_NAMES[file_key.tonic], mode)
    except MusicError as error:
        raise GivenMelodyError("key", str(error)) from None
    return key, FROM_REQUEST


def _tempo(
    request: api.ComposeRequest, reading: MelodyReading, default: float
) -> tuple[float, str, list[str]]:
    if request.HasField("tempo_bpm"):
        return request.tempo_bpm, FROM_REQUEST, []
    if reading.tempo_bpm is None:
        return default, FROM_DEFAULT, []
    low, high = TEMPO_RANGE_BPM
    tempo = min(high, max(low, reading.tempo_bpm))
    notices = []
    if tempo != reading.tempo_bpm:
        notices.append(
            f"the file's tempo {reading.tempo_bpm:g} bpm is outside {low:g}..{high:g}: "
            f"played at {tempo:g}"
        )
    return tempo, FROM_FILE, notices


def read_given_melody(
    request: api.ComposeRequest,
    *,
    default_tempo_bpm: float,
) -> GivenMelody | None:
    """The request's melody file read (in an isolated child process) and applied; None
    without one. Raises ``GivenMelodyError`` naming the field."""
    fields = [field for field in MELODY_FIELDS if getattr(request, field)]
    if not fields:
        return None
    if len(fields) > 1:
        raise GivenMelodyError(
            "harmonize_midi", "give either continue_midi or harmonize_midi, not both"
        )
    field = fields[0]
    data: bytes = getattr(request, field)
    if len(data) > MAX_FILE_BYTES:
        raise GivenMelodyError(field, f"{len(data)} bytes; at most {MAX_FILE_BYTES}")
    try:
        reading = read_melody_file_isolated(data)
    except MelodyFileError as error:
        raise GivenMelodyError(field, str(error)) from None

    key, key_from = _key(request, reading)
    tempo, tempo_from, notices = _tempo(request, reading, default_tempo_bpm)
    low, high = TEMPO_RANGE_BPM
    if not low <= tempo <= high:
        raise GivenMelodyError(
            "tempo_bpm", f"{tempo:g} is outside {low:g}..{high:g} beats per minute"
        )
    supported = ", ".join(str(m) for m in SUPPORTED_METERS)
    if request.meter:
        try:
            meter = Meter.parse(request.meter)
        except MusicError as error:
            raise GivenMelodyError("meter", str(error)) from None
        if meter not in SUPPORTED_METERS:
            raise GivenMelodyError("meter", f"{meter} is not supported (supported: {supported})")
        meter_from = FROM_REQUEST
        bars = reading.bars if meter == reading.meter else rebar(reading, meter)
    else:
        meter, bars = reading.meter, reading.bars
        if meter not in SUPPORTED_METERS:
            raise GivenMelodyError(
                field,
                f"the melody is in {meter}, which is not supported (supported: {supported}); "
                "pass a meter to re-bar it",
            )
        meter_from = (
            METER_FROM_TIME_SIGNATURE if reading.meter_from_file else METER_FROM_MIDI_DEFAULT
        )
    _check_pitches(field, bars)
    info = pb.GivenMelody(
        file_format=reading.file_format,
        part=reading.part,
        key_from=key_from,
        meter_from=meter_from,
        tempo_from=tempo_from,
        pickup_ticks=reading.pickup_ticks if meter == reading.meter else _pickup_in(bars),
        notices=[*reading.notices, *notices],
        file_key=reading.key.name if reading.key else "",
        file_meter=str(reading.meter),
        file_tempo_bpm=reading.tempo_bpm or 0.0,
    )
    return GivenMelody(field, bars, key, meter, tempo, info)


def _pickup_in(bars: tuple[Bar, ...]) -> int:
    first = bars[0] if bars else None
    if first is None or not first.notes or first.notes[0].onset == 0:
        return 0
    return first.meter.bar_ticks - first.notes[0].onset


def _check_pitches(field: str, bars: tuple[Bar, ...]) -> None:
    low, high = MELODY_PITCH_RANGE
    for index, bar in enumerate(bars):
        for note in bar.notes:
            if not low <= note.pitch <= high:
                raise GivenMelodyError(
                    field,
                    f"bar {index + 1}: pitch {note.pitch} is outside the melody range "
                    f"{low}..{high} (MIDI numbers)",
                )
