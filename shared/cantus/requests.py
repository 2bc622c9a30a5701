"""Validation of a client's compose request into a ``PieceSpec`` with every default filled in.

Every rejection is a ``RequestError`` that names the offending field, which the gateway
returns as gRPC ``INVALID_ARGUMENT`` and ``cantus compose`` prints.

The length is ``bars`` or ``duration_seconds`` (whole phrases closest to it at the tempo and
meter), never both. Every spec gets a form plan (``PieceSpec.form``, ``cantus.music.form``):
the request's ``form``, or ``auto`` (chosen by length: 16 bars give AABA in 4-bar sections).
A continued melody (``continue_midi``) keeps the plan of the whole piece when the given bars
end on a section boundary (they are its first sections, and later returns reuse them);
otherwise they form one section of their own, labelled ``given``, and the form is planned
over the bars after them. A harmonised melody (``harmonize_midi``) has one section covering
its bars: its form is the melody's own, so the request takes no form for it. A composed
piece may open with a pickup bar before its plan (``ComposeRequest.pickup``; unset: as often
as the corpus's tunes of its style and meter, ``cantus.melody.openings``), and is then a bar
longer than asked. A melody file (MIDI, MusicXML or ABC) sets the key, mode, meter and tempo
the request leaves unset, and what was read goes into ``PieceSpec.given_melody``
(``cantus.given_melody``).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from cantus.events.conversions import form_to_pb, mode_to_pb, notes_to_pb
from cantus.given_melody import GivenMelodyError, read_given_melody
from cantus.lyrics import LYRICS_LANGUAGES, REGISTERS
from cantus.lyrics.slots import DEFAULT_RHYME_SCHEME, RHYME_SCHEME_PATTERN
from cantus.lyrics.theme import theme_problem
from cantus.melody.openings import draw_opening
from cantus.melody.phrase_patterns import draw_form
from cantus.music.form import (
    AUTO,
    Cadence,
    FormPlan,
    KeyArea,
    Section,
    Treatment,
    after_opening,
    bars_for_duration,
    normalise_form_name,
    plan_form,
    with_pickup,
)
from cantus.music.notes import Key, Meter, MusicError, parse_mode
from cantus.music.styles import MOOD_ENERGY, SUPPORTED_METERS, TEMPO_RANGE_BPM, Energy, Style
from cantus.render.exports import segment_codec
from cantus.render.palettes import PALETTES, default_palette
from cantus.render.vocals import VOCAL_LANGUAGES
from cantus.scheduling import priority_name
from cantus.settings import MASTERING_PRESETS
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

DEFAULT_BARS = 16
DEFAULT_TEMPO_BPM = 100.0
MAX_THEME_CHARS = 500
RETRY_AFTER_METADATA = "retry-after-s"
"""Trailing metadata of a Compose refused with RESOURCE_EXHAUSTED: seconds to wait before
trying again (the gateway is streaming as many pieces as it takes)."""
DURATION_RANGE_S = (1.0, 300.0)
"""Accepted ``duration_seconds``: up to five minutes."""
GIVEN_SECTION_LABEL = "given"
"""Label of the section of a continued melody's given bars when they end inside a section."""


MAX_PROBLEM_CHARS = 400
"""Longest problem text an error carries: a rejection that echoes a client's megabyte-long
value would not fit in gRPC's status (16 KiB of metadata), and the client would get a bare
RESOURCE_EXHAUSTED instead of the field (found by cantus bench chaos --scenario hostile)."""


def clip_problem(problem: str) -> str:
    if len(problem) <= MAX_PROBLEM_CHARS:
        return problem
    return f"{problem[:MAX_PROBLEM_CHARS]}… ({len(problem)} characters)"


class RequestError(ValueError):
    """An invalid request field. ``field`` is the request field's name; the problem is
    clipped to ``MAX_PROBLEM_CHARS``."""

    def __init__(self, field: str, problem: str) -> None:
        problem = clip_problem(problem)
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ValidatedRequest:
    spec: pb.PieceSpec
    given_bars: list[pb.BarNotes]


def lyrics_theme_problem(theme: str, language: str) -> str | None:
    """Why a (stripped, non-empty) lyrics theme is refused in ``language``, or None: too long,
    no words, or ``theme_problem`` (script, blocked words). A station's config checks its
    themes with it too, so that it does not start with a theme every piece would lose."""
    if len(theme) > MAX_THEME_CHARS:
        return f"{len(theme)} characters; at most {MAX_THEME_CHARS}"
    if not any(character.isalnum() for character in theme):
        return "has no words (only punctuation or symbols)"
    return theme_problem(theme, language)


def validate_compose_request(
    request: api.ComposeRequest,
    *,
    max_bars: int,
    urgent_allowed: bool = False,
    pickups: bool = True,
    corpus_forms: bool = True,
) -> ValidatedRequest:
    """The request as a complete ``PieceSpec``; raises ``RequestError`` naming the field.
    A melody file is read in an isolated process and sets the key, mode, meter and tempo
    the request leaves unset (``cantus.given_melody``). ``urgent_allowed``: the caller is a
    station, which may ask for ``PRIORITY_URGENT``; a gateway client may not. ``pickups``:
    a composed piece whose request leaves ``pickup`` unset opens with a pickup bar as often
    as the corpus's tunes of its style and meter (``settings.melody_pickups``); off: on the
    downbeat. ``corpus_forms``: a composed piece of a length the corpus's phrase patterns
    cover, whose request leaves ``form`` at ``auto``, draws its form from them as its seed
    says (``settings.melody_corpus_forms``, ``cantus.melody.phrase_patterns``); off: ``auto``
    picks by length alone."""
    try:
        given = read_given_melody(request, default_tempo_bpm=DEFAULT_TEMPO_BPM)
    except GivenMelodyError as error:
        raise RequestError(error.field, error.problem) from None
    if given is not None:
        key, tempo, meter = given.key, given.tempo_bpm, given.meter
    else:
        key, tempo, meter = _key_tempo_meter(request)

    bars = _requested_bars(request, tempo, meter, max_bars)
    length_field = "duration_seconds" if request.HasField("duration_seconds") else "bars"
    try:
        form = normalise_form_name(request.form)
    except MusicError as error:
        raise RequestError("form", str(error)) from None

    styles = [s.value for s in Style]
    style = request.style or Style.FOLK.value
    if style not in styles:
        raise RequestError("style", f"unknown style {style!r} (known: {', '.join(styles)})")

    mood = request.mood or "calm"
    if mood not in MOOD_ENERGY:
        raise RequestError("mood", f"unknown mood {mood!r} (known: {', '.join(MOOD_ENERGY)})")

    palette = request.palette or default_palette(Style(style), mood)
    if palette not in PALETTES:
        raise RequestError("palette", f"unknown palette {palette!r} (known: {', '.join(PALETTES)})")

    language = request.lyrics_language or "en"
    if language not in LYRICS_LANGUAGES:
        raise RequestError("lyrics_language", f"unsupported language {language!r} (en, zh)")
    theme = request.lyrics_theme.strip()
    if request.lyrics_theme and not theme:
        raise RequestError("lyrics_theme", "is only white space; leave it empty for no lyrics")
    if theme and (problem := lyrics_theme_problem(theme, language)):
        raise RequestError("lyrics_theme", problem)
    # Sung lyrics: on by default when there are lyrics (cantus.render.vocals).
    vocals = request.vocals if request.HasField("vocals") else bool(theme)
    if vocals and not theme:
        raise RequestError("vocals", "sings the lyrics, and there are none: give lyrics_theme")
    if vocals and language not in VOCAL_LANGUAGES:
        raise RequestError(
            "lyrics_language",
            f"no singing voice for {language!r} (vocals in: {', '.join(VOCAL_LANGUAGES)})",
        )
    register = request.lyrics_register.strip().lower()
    if register and not theme:
        raise RequestError("lyrics_register", "sets the lyrics' register: give lyrics_theme too")
    if register and register not in REGISTERS[language]:
        raise RequestError(
            "lyrics_register",
            f"{request.lyrics_register[:40]!r} is not a register of {language} lyrics "
            f"(known: {', '.join(REGISTERS[language])})",
        )
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

    source = pb.MELODY_SOURCE_COMPOSE
    given_bars: list[pb.BarNotes] = []
    if given is not None:
        field = given.field
        given_bars = [pb.BarNotes(notes=notes_to_pb(bar.notes)) for bar in given.bars]
        if field == "continue_midi":
            source = pb.MELODY_SOURCE_CONTINUE
            if len(given_bars) >= bars:
                raise RequestError(
                    length_field,
                    f"{bars} bars leave nothing to continue after the {len(given_bars)} "
                    "bars of continue_midi",
                )
        else:
            source = pb.MELODY_SOURCE_HARMONIZE
            if request.HasField("duration_seconds"):
                raise RequestError(
                    "duration_seconds",
                    "harmonize_midi sets the length; give no duration_seconds with it",
                )
            if form != AUTO:
                raise RequestError(
                    "form",
                    f"{form}: a harmonised melody keeps its own form; give no form with "
                    "harmonize_midi",
                )
            bars = len(given_bars)
            if bars > max_bars:
                raise RequestError("harmonize_midi", f"{bars} bars; at most {max_bars}")

    energy = MOOD_ENERGY[mood]
    seed = request.seed if request.HasField("seed") else secrets.randbits(63)
    if source == pb.MELODY_SOURCE_COMPOSE and form == AUTO and corpus_forms:
        plan = draw_form(
            form, bars=bars, key=key, energy=energy, style=style, meter=meter, seed=seed
        )
    else:
        plan = _form_plan(form, bars, key, energy, source, len(given_bars), length_field)

    if request.HasField("pickup") and source != pb.MELODY_SOURCE_COMPOSE:
        raise RequestError(
            "pickup", "a given melody keeps its own opening; give no pickup with a melody file"
        )
    if source == pb.MELODY_SOURCE_COMPOSE:
        if request.HasField("pickup"):
            plan = with_pickup(plan) if request.pickup else plan
        elif pickups:
            plan = draw_opening(plan, style, meter, seed)
    bars = plan.total_bars
    spec = pb.PieceSpec(
        key_tonic=key.tonic,
        mode=mode_to_pb(key.mode),
        tempo_bpm=tempo,
        meter_numerator=meter.numerator,
        meter_denominator=meter.denominator,
        bars=bars,
        style=style,
        mood=mood,
        energy=energy.value,
        seed=seed,
        lyrics_theme=theme,
        lyrics_language=language,
        melody_source=source,
        lyrics_rhyme_scheme=rhyme_scheme if theme else "",
        lyrics_register=register,
        loudness_preset=request.loudness_preset,
        form=form_to_pb(plan),
        palette=palette,
        vocals=vocals,
    )
    if given is not None:
        spec.given_melody.CopyFrom(given.info)
    if request.HasField("tempo_end_bpm"):
        low, high = TEMPO_RANGE_BPM
        if not low <= request.tempo_end_bpm <= high:
            raise RequestError(
                "tempo_end_bpm",
                f"{request.tempo_end_bpm:g} is outside {low:g}..{high:g} beats per minute",
            )
        spec.tempo_end_bpm = request.tempo_end_bpm
    spec.no_ritardando = request.no_ritardando
    spec.outputs.extend(_outputs(request.outputs))
    spec.priority = _priority(request.priority, urgent_allowed=urgent_allowed)
    spec.segment_audio = _segment_audio(request.segment_audio)
    return ValidatedRequest(spec=spec, given_bars=given_bars)


def _priority(asked: int, *, urgent_allowed: bool) -> pb.Priority:
    if asked not in pb.Priority.values():
        known = ", ".join(priority_name(value) for value in pb.Priority.values())
        raise RequestError("priority", f"unknown priority {asked} (known: {known})")
    if asked == pb.PRIORITY_URGENT and not urgent_allowed:
        raise RequestError(
            "priority", "urgent is kept for stations with nothing to play; ask normal or background"
        )
    return cast(pb.Priority, asked)  # checked against the enum's values above


PIECE_OUTPUTS = ("leadsheet", "pictures", "wav", "wav24", "flac", "flac24", "ogg", "opus", "mp3")
"""What ``ComposeRequest.outputs`` may ask for besides the files every piece gets (piece.mid,
its parts, piece.json); the audio formats are ``cantus.render.exports.EXPORT_FORMATS``."""


def _outputs(asked: Sequence[str]) -> list[str]:
    """The outputs asked for, each known, in the order given, once."""
    if len(asked) > len(PIECE_OUTPUTS):
        raise RequestError("outputs", f"{len(asked)} entries; at most {len(PIECE_OUTPUTS)}")
    for name in asked:
        if name not in PIECE_OUTPUTS:
            raise RequestError(
                "outputs", f"unknown output {name[:40]!r} (known: {', '.join(PIECE_OUTPUTS)})"
            )
    return list(dict.fromkeys(asked))


def _segment_audio(asked: str) -> str:
    """The render segments' codec (``cantus.render.exports.SEGMENT_CODECS``); empty: opus."""
    try:
        return segment_codec(asked).name
    except ValueError as error:
        raise RequestError("segment_audio", str(error)) from None


def _requested_bars(request: api.ComposeRequest, tempo: float, meter: Meter, max_bars: int) -> int:
    """The piece's length in bars: ``bars``, or ``duration_seconds`` at the tempo and meter
    (whole phrases), or ``DEFAULT_BARS``."""
    if request.HasField("duration_seconds"):
        if request.HasField("bars"):
            raise RequestError("duration_seconds", "give either bars or duration_seconds, not both")
        seconds = request.duration_seconds
        low, high = DURATION_RANGE_S
        if not (math.isfinite(seconds) and low <= seconds <= high):
            raise RequestError("duration_seconds", f"{seconds:g} is outside {low:g}..{high:g} s")
        bars = bars_for_duration(seconds, tempo, meter)
        if bars > max_bars:
            raise RequestError(
                "duration_seconds",
                f"{seconds:g} s at {tempo:g} beats per minute in {meter} is {bars} bars; at "
                f"most {max_bars} (a slower tempo or a longer meter fits more time)",
            )
        return bars
    bars = request.bars if request.HasField("bars") else DEFAULT_BARS
    if not 1 <= bars <= max_bars:
        raise RequestError("bars", f"{bars} is outside 1..{max_bars}")
    return bars


def _form_plan(
    form: str,
    bars: int,
    key: Key,
    energy: Energy,
    source: pb.MelodySource,
    given: int,
    length_field: str,
) -> FormPlan:
    """The plan of the piece (see the module docstring for continued and harmonised
    melodies); ``RequestError`` naming ``form`` if the form does not fit the bars."""
    if source == pb.MELODY_SOURCE_HARMONIZE:
        section = Section("A", 0, bars, key, KeyArea.HOME, energy, Treatment.NEW, Cadence.AUTHENTIC)
        return FormPlan("through", (section,), key)
    try:
        plan = plan_form(form, bars=bars, key=key, energy=energy)
        if source != pb.MELODY_SOURCE_CONTINUE or any(s.first_bar == given for s in plan.sections):
            return plan
        rest = plan_form(form, bars=bars - given, key=key, energy=energy)
    except MusicError:
        shortest = _shortest_bars(form, key, energy)
        if source == pb.MELODY_SOURCE_CONTINUE:
            have = f"{bars - given} bars after the {given} given bars of continue_midi"
        else:
            have = f"{bars} bars"
        raise RequestError(
            "form",
            f"{form} needs at least {shortest} bars and the piece has {have}; ask for a "
            f"longer piece ({length_field}) or another form",
        ) from None
    opening = Section(
        GIVEN_SECTION_LABEL, 0, given, key, KeyArea.HOME, energy, Treatment.NEW, Cadence.HALF
    )
    return after_opening(opening, rest)


def _shortest_bars(form: str, key: Key, energy: Energy) -> int:
    """The fewest bars ``form`` can be planned over (for the error message)."""
    for bars in range(1, 65):
        try:
            plan_form(form, bars=bars, key=key, energy=energy)
        except MusicError:
            continue
        return bars
    return 65


def _key_tempo_meter(request: api.ComposeRequest) -> tuple[Key, float, Meter]:
    """The key, tempo and meter of a request without a melody file, defaults filled in."""
    try:
        mode = parse_mode(request.mode or "major")
    except MusicError as error:
        raise RequestError("mode", str(error)) from None
    try:
        key = Key.parse(request.key or "C", mode)
    except MusicError as error:
        raise RequestError("key", str(error)) from None

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
    return key, tempo, meter
