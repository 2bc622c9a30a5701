"""Listening sessions (issue #17): a therapy plan that listens. A session is a plan station
with a ``SessionConfig``: how it is controlled (open loop, following the listener, or
entraining a rhythm), the bounds control keeps to, how long it lasts and how it ends.

Modes (``ControlMode``):

* ``open`` — today's iso-principle plan (``cantus.stations.plans``): every piece's tempo,
  energy and key fixed at the start; signals are logged but change nothing.
* ``follow`` — closed loop on a rate (heart rate or step cadence) or on self-reported mood:
  each next piece starts where the music is and ramps one bounded step from where the
  listener *is* towards the target (the iso principle, re-planned from measurements).
* ``entrain`` — for a rhythm the music can carry (cadence, or heart rate): first match the
  measured rate within ``match_tolerance`` (±3 %), then lead it by ``lead_fraction`` per
  piece towards the target; a listener who falls behind is matched again.

Every mode keeps to ``tempo_floor_bpm``..``tempo_ceiling_bpm``, ``energy_floor``..
``energy_ceiling``, at most ``max_tempo_step_per_piece_bpm`` per piece and
``max_tempo_change_per_minute_bpm`` per minute of music; a piece's tempo changes by a ramp,
one equal step per beat (``cantus.render.tempo.ramp_tempos``), so it never jumps.

Presets (``PRESETS``), each a documented config:

``sleep``
    Follow heart rate down to 55 BPM over 30 minutes: lullaby palette, low energy, steps of
    at most 4 BPM a piece and 2 BPM a minute, a one-minute fade.
``relax``
    Follow heart rate from an active 90 to 65 BPM over 20 minutes (ambient palette),
    30 s fade.
``focus``
    A steady 100 BPM, mid-low energy, bright, for 45 minutes (solo piano); the tempo stays
    and self-reports ("too fast", "more calm") and intensity move it within 90..110.
``walk``
    Entrain step cadence: match the walker, then lead to 120 steps per minute in 2 %
    steps (folk band), 20 minutes, 15 s fade.

A ``PlanRequest`` names a preset and may override any field with ``session_yaml``.
"""

from __future__ import annotations

import re
from enum import StrEnum

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cantus.music.styles import TEMPO_RANGE_BPM
from cantus.stations.config import load_yaml_text
from cantus.stations.plans import PlanError, State, plan_session
from cantus.v1 import station_pb2 as st


class ControlMode(StrEnum):
    OPEN = "open"
    FOLLOW = "follow"
    ENTRAIN = "entrain"


class RateSignal(StrEnum):
    """The measured rate a session follows."""

    HEART_RATE = "heart_rate"
    STEP_CADENCE = "step_cadence"
    MOOD = "mood"
    """No rate: self-reported arousal (and the other self-reports) steer."""


class SessionConfig(BaseModel):
    """How a session is controlled and bounded. Tempi in quarter-note BPM, rates in beats
    (or steps) per minute, energy 0..1, times in seconds unless named minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ControlMode = ControlMode.FOLLOW
    signal: RateSignal = RateSignal.HEART_RATE
    start: tuple[float, float, float] = Field(
        (90.0, 0.5, 0.5), description="the listener's assumed start: tempo, energy, valence"
    )
    target: tuple[float, float, float] = Field(
        (65.0, 0.15, 0.5), description="the target state: tempo, energy, valence"
    )
    minutes: float = Field(20.0, gt=0.0, le=240.0, description="session length")
    fade_seconds: float = Field(30.0, ge=0.0, le=180.0, description="fade-out at the end")
    piece_bars: int = Field(8, ge=4, le=64, description="bars per piece (the last is fitted)")
    style: str = "folk"
    palette: str = ""
    max_tempo_step_per_piece_bpm: float = Field(6.0, gt=0.0, le=60.0)
    max_tempo_change_per_minute_bpm: float = Field(4.0, gt=0.0, le=60.0)
    tempo_floor_bpm: float = 50.0
    tempo_ceiling_bpm: float = 140.0
    energy_floor: float = Field(0.0, ge=0.0, le=1.0)
    energy_ceiling: float = Field(1.0, ge=0.0, le=1.0)
    match_tolerance: float = Field(
        0.03, gt=0.0, le=0.2, description="entrainment: matched within ± this fraction"
    )
    lead_fraction: float = Field(
        0.02, gt=0.0, le=0.1, description="entrainment: lead by this fraction per piece"
    )
    follow_lead_fraction: float = Field(
        0.05,
        ge=0.0,
        le=0.2,
        description="follow: aim this fraction of the rate beyond the listener's rate",
    )
    nudge_fraction: float = Field(
        0.04, gt=0.0, le=0.2, description="tempo change of a too fast / too slow report"
    )
    dropout_seconds: float = Field(
        30.0, gt=0.0, le=600.0, description="no good reading for this long: hold"
    )
    outlier_bpm: float = Field(
        12.0, gt=0.0, le=100.0, description="a reading this far from the rate is an outlier…"
    )
    outlier_bpm_per_second: float = Field(
        0.5, ge=0.0, le=20.0, description="…plus this much per second since the last reading"
    )
    confirm_readings: int = Field(
        4, ge=2, le=20, description="outliers in a row that agree become the new rate"
    )
    intensity_lead_seconds: float = Field(
        8.0,
        ge=2.0,
        le=60.0,
        description="stream audio released ahead of playback: an intensity change is heard "
        "within this, plus up to one HLS segment (cantus.stations.intensity)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> SessionConfig:
        low, high = TEMPO_RANGE_BPM
        if not low <= self.tempo_floor_bpm <= self.tempo_ceiling_bpm <= high:
            raise ValueError(
                f"tempo_floor_bpm: {self.tempo_floor_bpm:g}..{self.tempo_ceiling_bpm:g} is not "
                f"a range within {low:g}..{high:g}"
            )
        if self.energy_floor > self.energy_ceiling:
            raise ValueError(
                f"energy_floor: {self.energy_floor:g} is above energy_ceiling "
                f"{self.energy_ceiling:g}"
            )
        for name in ("start", "target"):
            tempo, energy, valence = getattr(self, name)
            if not self.tempo_floor_bpm <= tempo <= self.tempo_ceiling_bpm:
                raise ValueError(
                    f"{name}: tempo {tempo:g} is outside the floor and ceiling "
                    f"{self.tempo_floor_bpm:g}..{self.tempo_ceiling_bpm:g}"
                )
            if not (0 <= energy <= 1 and 0 <= valence <= 1):
                raise ValueError(f"{name}: energy and valence must be within 0..1")
        if self.mode is ControlMode.ENTRAIN and self.signal is RateSignal.MOOD:
            raise ValueError("signal: entrain needs a rate (heart_rate or step_cadence)")
        return self

    @property
    def start_state(self) -> State:
        return State(*self.start)

    @property
    def target_state(self) -> State:
        return State(*self.target)

    def clamp_tempo(self, tempo_bpm: float) -> float:
        return min(max(tempo_bpm, self.tempo_floor_bpm), self.tempo_ceiling_bpm)

    def clamp_energy(self, energy: float) -> float:
        return min(max(energy, self.energy_floor), self.energy_ceiling)


PRESETS: dict[str, dict[str, object]] = {
    "sleep": {
        "mode": "follow",
        "signal": "heart_rate",
        "start": (75.0, 0.3, 0.45),
        "target": (55.0, 0.05, 0.35),
        "minutes": 30.0,
        "fade_seconds": 60.0,
        "palette": "lullaby",
        "style": "folk",
        "max_tempo_step_per_piece_bpm": 4.0,
        "max_tempo_change_per_minute_bpm": 2.0,
        "tempo_floor_bpm": 50.0,
        "tempo_ceiling_bpm": 90.0,
        "energy_floor": 0.0,
        "energy_ceiling": 0.4,
    },
    "relax": {
        "mode": "follow",
        "signal": "heart_rate",
        "start": (90.0, 0.5, 0.55),
        "target": (65.0, 0.15, 0.5),
        "minutes": 20.0,
        "fade_seconds": 30.0,
        "palette": "ambient",
        "style": "folk",
        "max_tempo_step_per_piece_bpm": 6.0,
        "max_tempo_change_per_minute_bpm": 4.0,
        "tempo_floor_bpm": 55.0,
        "tempo_ceiling_bpm": 110.0,
        "energy_floor": 0.05,
        "energy_ceiling": 0.6,
    },
    "focus": {
        "mode": "follow",
        "signal": "mood",
        "start": (100.0, 0.4, 0.65),
        "target": (100.0, 0.4, 0.65),
        "minutes": 45.0,
        "fade_seconds": 20.0,
        "palette": "piano",
        "style": "folk",
        "max_tempo_step_per_piece_bpm": 4.0,
        "max_tempo_change_per_minute_bpm": 2.0,
        "tempo_floor_bpm": 90.0,
        "tempo_ceiling_bpm": 110.0,
        "energy_floor": 0.2,
        "energy_ceiling": 0.6,
    },
    "walk": {
        "mode": "entrain",
        "signal": "step_cadence",
        "start": (100.0, 0.6, 0.7),
        "target": (120.0, 0.7, 0.7),
        "minutes": 20.0,
        "fade_seconds": 15.0,
        "style": "folk",
        "max_tempo_step_per_piece_bpm": 4.0,
        "max_tempo_change_per_minute_bpm": 6.0,
        "tempo_floor_bpm": 80.0,
        "tempo_ceiling_bpm": 140.0,
        "energy_floor": 0.4,
        "energy_ceiling": 0.9,
        "match_tolerance": 0.03,
        "lead_fraction": 0.02,
    },
}
"""The presets' settings over ``SessionConfig``'s defaults (documented in the module)."""


def session_config(
    preset: str = "",
    overrides_yaml: str = "",
    *,
    start: State | None = None,
    target: State | None = None,
) -> SessionConfig:
    """A preset (or the defaults) with ``overrides_yaml`` and a start and target over it;
    a bad value raises ``PlanError`` naming the field (``preset``, ``session_yaml.<field>``,
    ``start``, ``target``)."""
    values: dict[str, object] = {}
    if preset:
        if preset not in PRESETS:
            raise PlanError("preset", f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        values.update(PRESETS[preset])
    if overrides_yaml.strip():
        overrides = load_yaml_text(overrides_yaml, "session_yaml", PlanError)
        if not isinstance(overrides, dict):
            raise PlanError("session_yaml", "the YAML must be a mapping of settings")
        values.update(overrides)
    for name, state in (("start", start), ("target", target)):
        if state is not None:
            values[name] = (state.tempo_bpm, state.energy, state.valence)
    try:
        return SessionConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field, problem = ".".join(str(part) for part in first["loc"]), first["msg"]
        if not field:  # a check across fields names its field first: "tempo_floor_bpm: …"
            named = re.match(r"(?:Value error, )?([a-z_]+): (.*)", problem, re.DOTALL)
            field, problem = named.groups() if named else ("", problem)
        if field in ("start", "target") and (start if field == "start" else target) is not None:
            raise PlanError(field, problem) from None
        raise PlanError(f"session_yaml.{field}" if field else "session_yaml", problem) from None


def reference_plan(config: SessionConfig) -> list[st.PlanStep]:
    """The open-loop plan of a session: today's iso-principle plan over its length, its last
    step marked. An ``open`` session plays it; a closed loop logs its adjustments against it."""
    steps = plan_session(
        config.start_state, config.target_state, minutes=config.minutes, bars=config.piece_bars
    )
    steps[-1].last = True
    return steps


def session_config_to_yaml(config: SessionConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def session_config_from_yaml(text: str) -> SessionConfig:
    """The config a snapshot holds (written by ``session_config_to_yaml``)."""
    return SessionConfig.model_validate(yaml.safe_load(text) or {})
