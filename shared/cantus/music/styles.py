"""The request vocabulary shared by the API, the models and the arrangement: styles,
moods and the energy level each mood implies, and the accepted ranges of a request."""

from __future__ import annotations

import enum

from cantus.music.notes import Meter


class Style(str, enum.Enum):
    """A style the models were trained on. ``folk``: Essen folk songs; ``celtic``: O'Neill's
    and Ryan's dance tunes; ``chorale``: Bach chorale soprano lines."""

    FOLK = "folk"
    CELTIC = "celtic"
    CHORALE = "chorale"


class Energy(str, enum.Enum):
    """Energy (arousal) level: in training data, the tune's note density tertile."""

    LOW = "low"
    MID = "mid"
    HIGH = "high"


MOOD_ENERGY: dict[str, Energy] = {
    "calm": Energy.LOW,
    "tender": Energy.LOW,
    "sad": Energy.LOW,
    "dreamy": Energy.LOW,
    "happy": Energy.MID,
    "bright": Energy.MID,
    "playful": Energy.MID,
    "hopeful": Energy.MID,
    "energetic": Energy.HIGH,
    "triumphant": Energy.HIGH,
    "driving": Energy.HIGH,
}
"""Every accepted mood and the energy level it asks the models for."""

SUPPORTED_METERS = tuple(
    Meter.parse(m)
    for m in ("2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "5/4", "7/8", "6/4", "3/2")
)
"""Meters the tokenizer has tokens for (bar length at most 12 quarter notes)."""

TEMPO_RANGE_BPM = (40.0, 240.0)
"""Accepted tempo range, quarter-note beats per minute."""
