"""The conditioning of the melody model: what a melody is asked to be before its first note.

``Controls`` bundles key, meter, tempo, style and energy. The tokenizer writes them as the
sequence's control prefix; the model learns melodies conditioned on them. Tempo is coarsened
into ``TEMPO_BUCKETS``; energy is the tertile of a tune's note density (notes per quarter
note), with the tertile thresholds measured on the training split (``EnergyThresholds``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from cantus.music.notes import TICKS_PER_QUARTER, Key, Melody, Meter, MusicError
from cantus.music.styles import TEMPO_RANGE_BPM, Energy, Style

TEMPO_BUCKET_EDGES_BPM = (60.0, 76.0, 92.0, 108.0, 124.0, 144.0, 176.0)
"""Upper (exclusive) edges of the tempo buckets 0..6, quarter-note bpm; bucket 7 is >= 176.

Buckets: 0: <60 (largo), 1: 60-76 (adagio), 2: 76-92 (andante), 3: 92-108 (moderato),
4: 108-124 (allegretto), 5: 124-144 (allegro), 6: 144-176 (vivace), 7: >=176 (presto).
Tempos outside ``TEMPO_RANGE_BPM`` (40..240) are clamped into the first or last bucket."""

TEMPO_BUCKET_CENTERS_BPM = (50.0, 68.0, 84.0, 100.0, 116.0, 134.0, 160.0, 200.0)
"""The tempo (quarter-note bpm) each bucket decodes to."""

N_TEMPO_BUCKETS = len(TEMPO_BUCKET_CENTERS_BPM)


def tempo_bucket(tempo_bpm: float) -> int:
    """Tempo bucket 0..7 of a quarter-note tempo in bpm (any positive value; clamped)."""
    if not tempo_bpm > 0:
        raise MusicError(f"tempo must be > 0 bpm, got {tempo_bpm}")
    return bisect.bisect_right(TEMPO_BUCKET_EDGES_BPM, tempo_bpm)


def bucket_tempo(bucket: int) -> float:
    """Representative tempo (bpm) of bucket 0..7."""
    if not 0 <= bucket < N_TEMPO_BUCKETS:
        raise MusicError(f"tempo bucket must be 0..{N_TEMPO_BUCKETS - 1}, got {bucket}")
    return TEMPO_BUCKET_CENTERS_BPM[bucket]


@dataclass(frozen=True)
class Controls:
    """What the melody is conditioned on. ``tempo_bpm`` is quarter-note beats per minute
    (``TEMPO_RANGE_BPM``, 40..240); the tokenizer keeps only its bucket."""

    key: Key
    meter: Meter
    tempo_bpm: float
    style: Style
    energy: Energy

    def __post_init__(self) -> None:
        low, high = TEMPO_RANGE_BPM
        if not low <= self.tempo_bpm <= high:
            raise MusicError(f"tempo must be {low:g}..{high:g} bpm, got {self.tempo_bpm}")

    @property
    def tempo_bucket(self) -> int:
        return tempo_bucket(self.tempo_bpm)


def note_density(melody: Melody) -> float:
    """Notes per quarter note over the whole melody (0 for an empty melody)."""
    total_ticks = sum(bar.meter.bar_ticks for bar in melody.bars)
    if total_ticks == 0:
        return 0.0
    n_notes = sum(len(bar.notes) for bar in melody.bars)
    return n_notes * TICKS_PER_QUARTER / total_ticks


@dataclass(frozen=True)
class EnergyThresholds:
    """Note-density tertile edges (notes per quarter note) measured on a training split:
    density < ``low_below`` is LOW, < ``high_from`` is MID, else HIGH."""

    low_below: float
    high_from: float

    @classmethod
    def from_melodies(cls, melodies: list[Melody]) -> EnergyThresholds:
        """Tertile edges of the melodies' note densities."""
        densities = sorted(note_density(m) for m in melodies)
        if not densities:
            raise MusicError("cannot measure energy thresholds on no melodies")
        n = len(densities)
        return cls(densities[n // 3], densities[min(n - 1, (2 * n) // 3)])

    def energy(self, melody: Melody) -> Energy:
        density = note_density(melody)
        if density < self.low_below:
            return Energy.LOW
        if density < self.high_from:
            return Energy.MID
        return Energy.HIGH

    def to_dict(self) -> dict[str, float]:
        return {"low_below": self.low_below, "high_from": self.high_from}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> EnergyThresholds:
        return cls(float(data["low_below"]), float(data["high_from"]))
