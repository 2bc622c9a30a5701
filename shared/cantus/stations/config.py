"""A station's configuration: what it plays (style mix, tempo range, energy, keys, lyrics,
loudness) and how far ahead it composes. Written as YAML, checked by pydantic; a bad value
is a ``StationConfigError`` naming the field.

Example ``station.yaml``::

    styles: {folk: 2, celtic: 1}
    palettes: {piano-strings: 1, harp-flute: 1}   # optional; default: from style and mood
    forms: {AABA: 2, AABB: 1}   # optional; default: auto (see cantus.music.form)
    tempo_bpm: [80, 110]
    energy: [0.2, 0.6]
    keys: [C, G, D, F]
    modes: [major, minor]
    lyrics: false          # true: sung lyrics on a theme drawn per piece
    lyrics_theme: ""       # or lyrics_themes: [the sea at night, a road home]
    lyrics_language: en    # or zh; lyrics_register: song, modern, … (optional)
    loudness_preset: streaming
    bars: 16
    buffer_pieces: 2
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cantus.music.notes import Key, Meter, MusicError
from cantus.music.styles import SUPPORTED_METERS, TEMPO_RANGE_BPM, Style
from cantus.requests import clip_problem, lyrics_theme_problem
from cantus.settings import MASTERING_PRESETS

STATION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class StationConfigError(ValueError):
    """An invalid station name or configuration; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        problem = clip_problem(problem)
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def check_station_name(name: str) -> str:
    if not STATION_NAME.match(name or ""):
        raise StationConfigError(
            "name", f"{name[:60]!r} is not 1..40 lower-case letters, digits and dashes"
        )
    return name


def _one_of(kind: str, known: list[str]) -> Callable[[str], str]:
    """A check that a name is one of ``known`` (``ValueError`` listing them)."""

    def check(name: str) -> str:
        if name not in known:
            raise ValueError(f"unknown {kind} {name!r} (known: {', '.join(known)})")
        return name

    return check


def _weights(value: dict[str, float], canonical: Callable[[str], str]) -> dict[str, float]:
    """Name → weight, each name checked and made canonical, each weight > 0."""
    weights: dict[str, float] = {}
    for name, weight in value.items():
        key = canonical(name)
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"weight of {name!r} is {weight}; it must be > 0")
        weights[key] = weight
    return weights


class StationConfig(BaseModel):
    """What a station plays. Ranges are inclusive ``[low, high]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    styles: dict[str, float] = Field(
        default_factory=lambda: {"folk": 1.0}, description="style → relative weight (> 0)"
    )
    palettes: dict[str, float] = Field(
        default_factory=dict,
        description="palette → relative weight (> 0); empty: each piece's style and mood pick",
    )
    forms: dict[str, float] = Field(
        default_factory=dict,
        description="form → relative weight (> 0); empty: auto, drawn per piece from the "
        "corpus's phrase patterns (8-20 bars) or chosen by its length",
    )
    tempo_bpm: tuple[float, float] = Field((80.0, 120.0), description="quarter-note BPM range")
    energy: tuple[float, float] = Field((0.0, 1.0), description="energy (arousal) range, 0..1")
    keys: list[str] = Field(default_factory=lambda: ["C", "G", "D", "F", "A", "Bb"])
    modes: list[str] = Field(default_factory=lambda: ["major", "minor"])
    meters: list[str] = Field(default_factory=lambda: ["4/4", "3/4", "6/8"])
    lyrics: bool = False
    lyrics_theme: str = Field("", description="theme sent with each piece when lyrics is on")
    lyrics_themes: list[str] = Field(
        default_factory=list,
        description="themes drawn one per piece when lyrics is on, beside lyrics_theme: a "
        "station's songs are about more than one thing",
    )
    lyrics_language: str = Field("en", description="language of the lyrics: en or zh")
    lyrics_register: str = Field(
        "",
        description="register of the lyrics (en: song, modern, literary, scripture; zh: ci, "
        "shi, qu); empty: the served lyric LM's own",
    )
    loudness_preset: str = "streaming"
    bars: int = Field(16, ge=2, le=128, description="bars per piece")
    buffer_pieces: int = Field(2, ge=1, le=16, description="pieces composed ahead of playback")
    crossfade_seconds: float = Field(2.0, ge=0.0, le=10.0)
    segment_seconds: float = Field(4.0, ge=1.0, le=10.0, description="HLS segment length")
    prebuffer_seconds: float = Field(
        20.0, ge=0.0, le=600.0, description="stream audio in before real-time playback starts"
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="files each piece gets besides its MIDI, its summary and piece.opus (the "
        "stream's audio, which a restarted station reads back): any of leadsheet, pictures, "
        "wav, flac, mp3, … (ComposeRequest.outputs); none by default, since listeners hear "
        "the stream and the rest costs CPU",
    )
    similarity_threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="interval n-gram similarity that counts as a repeat"
    )

    @field_validator("styles")
    @classmethod
    def _known_styles(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("give at least one style")
        return _weights(value, _one_of("style", [s.value for s in Style]))

    @field_validator("palettes")
    @classmethod
    def _known_palettes(cls, value: dict[str, float]) -> dict[str, float]:
        from cantus.render.palettes import PALETTES

        return _weights(value, _one_of("palette", list(PALETTES)))

    @field_validator("forms")
    @classmethod
    def _known_forms(cls, value: dict[str, float]) -> dict[str, float]:
        from cantus.music.form import normalise_form_name

        # MusicError (a ValueError) names the known forms
        return _weights(value, normalise_form_name)

    @field_validator("outputs")
    @classmethod
    def _known_outputs(cls, value: list[str]) -> list[str]:
        from cantus.requests import PIECE_OUTPUTS

        return [_one_of("output", list(PIECE_OUTPUTS))(name) for name in dict.fromkeys(value)]

    @field_validator("tempo_bpm")
    @classmethod
    def _tempo_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = TEMPO_RANGE_BPM
        if not low <= value[0] <= value[1] <= high:
            raise ValueError(f"{list(value)} is not a range within {low:g}..{high:g} BPM")
        return value

    @field_validator("energy")
    @classmethod
    def _energy_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] <= value[1] <= 1.0:
            raise ValueError(f"{list(value)} is not a range within 0..1")
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one key")
        for name in value:
            try:
                Key.parse(name)
            except MusicError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("modes")
    @classmethod
    def _modes(cls, value: list[str]) -> list[str]:
        if not value or any(mode not in ("major", "minor") for mode in value):
            raise ValueError(f"{value} must list major and/or minor")
        return value

    @field_validator("meters")
    @classmethod
    def _meters(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one meter")
        for text in value:
            try:
                meter = Meter.parse(text)
            except MusicError as error:
                raise ValueError(str(error)) from None
            if meter not in SUPPORTED_METERS:
                raise ValueError(f"{text} is not a supported meter")
        return value

    @field_validator("loudness_preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        if value not in MASTERING_PRESETS:
            raise ValueError(f"{value!r} is not one of {MASTERING_PRESETS}")
        return value

    @model_validator(mode="after")
    def _forms_fit_bars(self) -> StationConfig:
        from cantus.music.form import plan_form
        from cantus.music.styles import Energy

        for form in self.forms:
            try:
                plan_form(form, bars=self.bars, key=Key(0), energy=Energy.MID)
            except MusicError:
                raise ValueError(
                    f"forms: {form} does not fit pieces of {self.bars} bars; "
                    "give more bars or another form"
                ) from None
        return self

    @model_validator(mode="after")
    def _theme_with_lyrics(self) -> StationConfig:
        from cantus.lyrics import LYRICS_LANGUAGES, REGISTERS

        if self.lyrics_language not in LYRICS_LANGUAGES:
            raise ValueError(
                f"lyrics_language: {self.lyrics_language[:40]!r} is not one of "
                f"{', '.join(LYRICS_LANGUAGES)}"
            )
        register = self.lyrics_register
        if register and register not in REGISTERS[self.lyrics_language]:
            raise ValueError(
                f"lyrics_register: {register[:40]!r} is not a register of "
                f"{self.lyrics_language} lyrics (known: "
                f"{', '.join(REGISTERS[self.lyrics_language])})"
            )
        if self.lyrics and not self.themes():
            raise ValueError("lyrics_theme: lyrics is on, so give a theme")
        named = [("lyrics_theme", self.lyrics_theme)] if self.lyrics_theme.strip() else []
        named += [(f"lyrics_themes[{i}]", theme) for i, theme in enumerate(self.lyrics_themes)]
        for field, theme in named:
            if not theme.strip():
                raise ValueError(f"{field}: is empty")
            if problem := lyrics_theme_problem(theme.strip(), self.lyrics_language):
                raise ValueError(f"{field}: {problem}")
        return self

    def themes(self) -> list[str]:
        """The lyric themes a piece's theme is drawn from: ``lyrics_theme`` and then
        ``lyrics_themes``, blank ones left out."""
        named = [self.lyrics_theme, *self.lyrics_themes]
        return [theme.strip() for theme in named if theme.strip()]


MAX_CONFIG_CHARS = 64_000
"""Longest station config or session YAML taken (a real one is under 2 000 characters)."""


def load_yaml_text(text: str, field: str, error_type: Callable[[str, str], Exception]) -> Any:
    """``yaml.safe_load`` of a client's text, refused as ``error_type(field, problem)`` when
    it is longer than ``MAX_CONFIG_CHARS``, not YAML, or nested too deeply for the parser
    (a RecursionError, which would otherwise end the call with an internal error)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise error_type(field, f"{len(text)} characters; at most {MAX_CONFIG_CHARS}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise error_type(field, f"not valid YAML: {error}") from None
    except RecursionError:
        raise error_type(field, "not valid YAML: nested too deeply") from None


def parse_station_config(text: str) -> StationConfig:
    """A ``StationConfig`` from YAML text (empty text: the defaults)."""
    raw = load_yaml_text(text, "config_yaml", StationConfigError) if text.strip() else {}
    if not isinstance(raw, dict):
        raise StationConfigError("config_yaml", "the YAML must be a mapping of settings")
    try:
        return StationConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field, problem = ".".join(str(part) for part in first["loc"]), first["msg"]
        if not field:  # a check across fields names its field in its message: "forms: …"
            named = re.match(r"(?:Value error, )?([a-z_]+(?:\[\d+\])?): (.*)", problem, re.DOTALL)
            field, problem = named.groups() if named else ("config_yaml", problem)
        raise StationConfigError(field, problem) from None


def station_config_to_yaml(config: StationConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
