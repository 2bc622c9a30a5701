"""Validation of a client's compose request into a ``PieceSpec`` with every default filled in.

Every rejection is a ``RequestError`` that names the offending field, which the gateway
returns as gRPC ``INVALID_ARGUMENT`` and ``cantus compose`` prints.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cantus.events.conversions import mode_to_pb, notes_to_pb
from cantus.lyrics.slots import DEFAULT_RHYME_SCHEME, RHYME_SCHEME_PATTERN
from cantus.melody.tokenizer import PITCH_RANGE as MELODY_PITCH_RANGE
from cantus.music.notes import Key, Melody, Meter, MusicError
from cantus.music.styles import MOOD_ENERGY, SUPPORTED_METERS, TEMPO_RANGE_BPM, Style
from cantus.settings import MASTERING_PRESETS
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

DEFAULT_BARS = 16
DEFAULT_TEMPO_BPM = 100.0
LYRICS_LANGUAGES = ("en", "zh")
MAX_THEME_CHARS = 500
MAX_MIDI_BYTES = 1_000_000


class RequestError(ValueError):
    """An invalid request field. ``field`` is the request field's name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ValidatedRequest:
    spec: pb.PieceSpec
    given_bars: list[pb.BarNotes]


def validate_compose_request(request: api.ComposeRequest, *, max_bars: int) -> ValidatedRequest:
    """The request as a complete ``PieceSpec``; raises ``RequestError`` naming the field."""
    try:
        key = Key.parse(request.key or "C", request.mode or "major")
    except MusicError as error:
        field = "mode" if "mode" in str(error) else "key"
        raise RequestError(field, str(error)) from None

    tempo = request.tempo_bpm if request.HasField("tempo_bpm") else DEFAULT_TEMPO_BPM
    low, high = TEMPO_RANGE_BPM
    if not low <= tempo <= high:
        raise RequestError("tempo_bpm", f"{tempo:g} is outside {low:g}..{high:g} beats per minute")

    try:
        meter = Meter.parse(request.meter or "4/4")
    except MusicError as error:
        raise RequestError("meter", str(error)) from None
    if meter not in SUPPORTED_METERS:
        supported = ", ".join(str(m) for m in SUPPORTED_METERS)
        raise RequestError("meter", f"{meter} is not supported (supported: {supported})")

    bars = request.bars if request.HasField("bars") else DEFAULT_BARS
    if not 1 <= bars <= max_bars:
        raise RequestError("bars", f"{bars} is outside 1..{max_bars}")

    styles = [s.value for s in Style]
    style = request.style or Style.FOLK.value
    if style not in styles:
        raise RequestError("style", f"unknown style {style!r} (known: {', '.join(styles)})")

    mood = request.mood or "calm"
    if mood not in MOOD_ENERGY:
        raise RequestError("mood", f"unknown mood {mood!r} (known: {', '.join(MOOD_ENERGY)})")

    language = request.lyrics_language or "en"
    if language not in LYRICS_LANGUAGES:
        raise RequestError("lyrics_language", f"unsupported language {language!r} (en, zh)")
    theme = request.lyrics_theme.strip()
    if len(theme) > MAX_THEME_CHARS:
        raise RequestError("lyrics_theme", f"{len(theme)} characters; at most {MAX_THEME_CHARS}")
    if request.lyrics_theme and not theme:
        raise RequestError("lyrics_theme", "is only white space; leave it empty for no lyrics")
    if theme and not any(character.isalnum() for character in theme):
        raise RequestError("lyrics_theme", "has no words (only punctuation or symbols)")
    rhyme_scheme = (request.lyrics_rhyme_scheme or DEFAULT_RHYME_SCHEME).upper()
    if not RHYME_SCHEME_PATTERN.match(rhyme_scheme):
        raise RequestError(
            "lyrics_rhyme_scheme",
            f"{request.lyrics_rhyme_scheme!r} is not 2..8 letters A..H (e.g. AABB, ABAB, ABCB)",
        )

    if request.loudness_preset and request.loudness_preset not in MASTERING_PRESETS:
        raise RequestError(
            "loudness_preset",
            f"unknown preset {request.loudness_preset!r} (known: {', '.join(MASTERING_PRESETS)})",
        )

    if request.continue_midi and request.harmonize_midi:
        raise RequestError(
            "harmonize_midi", "give either continue_midi or harmonize_midi, not both"
        )
    source = pb.MELODY_SOURCE_COMPOSE
    given_bars: list[pb.BarNotes] = []
    for field in ("continue_midi", "harmonize_midi"):
        data: bytes = getattr(request, field)
        if not data:
            continue
        melody = _parse_melody(field, data, meter)
        given_bars = [pb.BarNotes(notes=notes_to_pb(bar.notes)) for bar in melody.bars]
        if field == "continue_midi":
            source = pb.MELODY_SOURCE_CONTINUE
            if len(given_bars) >= bars:
                raise RequestError(
                    "bars",
                    f"{bars} bars leave nothing to continue after the {len(given_bars)} "
                    "bars of continue_midi",
                )
        else:
            source = pb.MELODY_SOURCE_HARMONIZE
            bars = len(given_bars)
            if bars > max_bars:
                raise RequestError("harmonize_midi", f"{bars} bars; at most {max_bars}")

    seed = request.seed if request.HasField("seed") else secrets.randbits(63)
    spec = pb.PieceSpec(
        key_tonic=key.tonic,
        mode=mode_to_pb(key.mode),
        tempo_bpm=tempo,
        meter_numerator=meter.numerator,
        meter_denominator=meter.denominator,
        bars=bars,
        style=style,
        mood=mood,
        energy=MOOD_ENERGY[mood].value,
        seed=seed,
        lyrics_theme=theme,
        lyrics_language=language,
        melody_source=source,
        lyrics_rhyme_scheme=rhyme_scheme if theme else "",
        loudness_preset=request.loudness_preset,
    )
    return ValidatedRequest(spec=spec, given_bars=given_bars)


def _parse_melody(field: str, data: bytes, meter: Meter) -> Melody:
    from cantus.music.midi_io import midi_bytes_to_melody

    if len(data) > MAX_MIDI_BYTES:
        raise RequestError(field, f"{len(data)} bytes; at most {MAX_MIDI_BYTES}")
    try:
        melody = midi_bytes_to_melody(data)
    except MusicError as error:
        raise RequestError(field, str(error)) from None
    if not melody.bars or not any(bar.notes for bar in melody.bars):
        raise RequestError(field, "the MIDI file has no melody notes")
    if melody.meter != meter:
        raise RequestError(
            field,
            f"the melody is in {melody.meter} but the request asks for {meter}; "
            f"pass --meter {melody.meter}",
        )
    if any(bar.meter != meter for bar in melody.bars):
        raise RequestError(
            field, "the melody changes meter; only single-meter melodies are supported"
        )
    low, high = MELODY_PITCH_RANGE
    for index, bar in enumerate(melody.bars):
        for note in bar.notes:
            if not low <= note.pitch <= high:
                raise RequestError(
                    field,
                    f"bar {index + 1}: pitch {note.pitch} is outside the melody range "
                    f"{low}..{high} (MIDI numbers)",
                )
    return melody
