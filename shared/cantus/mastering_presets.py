"""Delivery loudness targets by name: the one table the mixer masters to and that requests,
settings and station configs check names against, kept free of audio imports so that the
gateway and the settings can read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MasterPreset:
    """A delivery target: integrated loudness in LUFS and a true-peak ceiling in dBTP."""

    name: str
    target_lufs: float
    ceiling_dbtp: float


PRESETS: dict[str, MasterPreset] = {
    "streaming": MasterPreset("streaming", -14.0, -1.0),
    "broadcast": MasterPreset("broadcast", -23.0, -1.0),  # EBU R 128
}
"""``streaming`` (the default: -14 LUFS, -1 dBTP, as the big streaming services
normalise) and ``broadcast`` (EBU R 128: -23 LUFS, -1 dBTP)."""

DEFAULT_PRESET = "streaming"
