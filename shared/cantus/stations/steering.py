"""How a station chooses its next piece, and how likes and skips steer those choices.

The steering is a style weight per style and a centre for tempo (BPM) and energy (0..1).
Each next piece draws its style by weight and its tempo and energy around the centres,
always inside the station's configured ranges. A like pulls the centres towards the liked
piece and raises its style's weight; a skip pushes them away and lowers it. Weights never
fall below ``MIN_WEIGHT_SHARE`` of the total, so a style is never switched off entirely.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cantus.music.styles import Energy
from cantus.stations.config import StationConfig
from cantus.v1 import station_pb2 as st

LIKE_WEIGHT_FACTOR = 1.5
SKIP_WEIGHT_FACTOR = 0.6
CENTRE_STEP = 0.35
"""Fraction of the way a like moves a centre towards the piece (a skip: away from it)."""
MIN_WEIGHT_SHARE = 0.05
TEMPO_SPREAD = 0.15
"""Tempo is drawn within ± this fraction of the configured range around the centre."""
ENERGY_SPREAD = 0.12


@dataclass(frozen=True)
class PieceChoice:
    """What to ask the composer for next."""

    style: str
    tempo_bpm: float
    energy: float
    mood: str
    key: str
    mode: str
    meter: str
    bars: int


def initial_steering(config: StationConfig) -> st.Steering:
    return st.Steering(
        style_weights=dict(config.styles),
        tempo_center_bpm=sum(config.tempo_bpm) / 2,
        energy_center=sum(config.energy) / 2,
    )


def energy_level(energy: float) -> Energy:
    """Energy 0..1 as the models' three levels (tertiles)."""
    if energy < 1 / 3:
        return Energy.LOW
    if energy < 2 / 3:
        return Energy.MID
    return Energy.HIGH


def energy_of_level(level: str) -> float:
    """The centre (0..1) of an energy level, for feedback on a piece."""
    return {"low": 1 / 6, "mid": 0.5, "high": 5 / 6}.get(level, 0.5)


def mood_for(energy: float, valence: float) -> str:
    """A mood word the composer knows for an energy (0..1) and a valence (0 dark … 1 bright)."""
    level = energy_level(energy)
    if level is Energy.LOW:
        return ("sad" if valence < 0.25 else "dreamy") if valence < 0.5 else "calm"
    if level is Energy.MID:
        return "hopeful" if valence < 0.5 else ("bright" if valence > 0.75 else "happy")
    return "driving" if valence < 0.5 else ("triumphant" if valence > 0.75 else "energetic")


def choose_next(config: StationConfig, steering: st.Steering, rng: random.Random) -> PieceChoice:
    """The next piece: style by weight, tempo and energy around the centres, within bounds."""
    styles = [s for s in config.styles if steering.style_weights.get(s, 0) > 0] or list(
        config.styles
    )
    weights = [steering.style_weights.get(s, config.styles[s]) for s in styles]
    style = rng.choices(styles, weights=weights)[0]

    low, high = config.tempo_bpm
    spread = (high - low) * TEMPO_SPREAD
    tempo = _clamp(steering.tempo_center_bpm + rng.uniform(-spread, spread), low, high)
    e_low, e_high = config.energy
    energy = _clamp(
        steering.energy_center + rng.uniform(-ENERGY_SPREAD, ENERGY_SPREAD), e_low, e_high
    )
    mode = rng.choice(config.modes)
    valence = 0.7 if mode == "major" else 0.3
    return PieceChoice(
        style=style,
        tempo_bpm=round(tempo, 1),
        energy=round(energy, 3),
        mood=mood_for(energy, valence),
        key=rng.choice(config.keys),
        mode=mode,
        meter=rng.choice(config.meters),
        bars=config.bars,
    )


def apply_feedback(
    config: StationConfig, steering: st.Steering, piece: st.ProgramEntry, kind: str
) -> st.Steering:
    """The steering after a ``like`` or ``skip`` of ``piece``, kept inside the config's bounds."""
    if kind not in ("like", "skip"):
        raise ValueError(f"kind: {kind!r} is not like or skip")
    liked = kind == "like"
    weights = dict(steering.style_weights) or dict(config.styles)
    if piece.style in weights:
        weights[piece.style] *= LIKE_WEIGHT_FACTOR if liked else SKIP_WEIGHT_FACTOR
    total = sum(weights.values())
    floor = MIN_WEIGHT_SHARE * total
    weights = {s: max(w, floor) for s, w in weights.items()}
    total = sum(weights.values())
    weights = {s: w / total * len(weights) for s, w in weights.items()}  # mean weight 1

    sign = 1.0 if liked else -1.0
    low, high = config.tempo_bpm
    tempo = steering.tempo_center_bpm + sign * CENTRE_STEP * (
        piece.tempo_bpm - steering.tempo_center_bpm
    )
    if not liked and abs(piece.tempo_bpm - steering.tempo_center_bpm) < 1e-6:
        tempo += CENTRE_STEP * (high - low) / 2 * (1 if tempo < (low + high) / 2 else -1)
    e_low, e_high = config.energy
    piece_energy = energy_of_level(piece.energy)
    energy = steering.energy_center + sign * CENTRE_STEP * (piece_energy - steering.energy_center)
    return st.Steering(
        style_weights=weights,
        tempo_center_bpm=_clamp(tempo, low, high),
        energy_center=_clamp(energy, e_low, e_high),
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
