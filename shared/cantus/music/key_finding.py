"""Key finding by profile correlation (Krumhansl-Schmuckler), without music21.

A melody's duration-weighted pitch-class histogram is correlated with a key profile rotated
to each of the 24 keys; the best correlation is the likeliest key. Two profile sets:
``KRUMHANSL_KESSLER`` (listeners' probe-tone ratings, 1982; what the file readers estimate a
missing key with, ``transcription.estimate_key``) and ``AARDEN_ESSEN`` (Aarden's pitch-class
shares of the Essen folk songs, 2003; what music21's ``analyze('key')`` weighs with, and what
the melody's in-key chooser reads, ``cantus.melody.key_choice``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from cantus.music.notes import Key, Mode, Note

KeyProfiles = tuple[tuple[float, ...], tuple[float, ...]]
"""A major and a minor profile, 12 weights each, tonic first."""

KRUMHANSL_KESSLER: KeyProfiles = (
    (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
    (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
)
AARDEN_ESSEN: KeyProfiles = (
    (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587,
     0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122),
    (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362,
     0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623),
)  # fmt: skip

ALL_KEYS = tuple(Key(tonic, mode) for mode in (Mode.MAJOR, Mode.MINOR) for tonic in range(12))
"""The 24 major and minor keys, majors first."""


def pitch_class_durations(notes: Iterable[Note]) -> list[float]:
    """Sounding time per pitch class [12] (ticks)."""
    histogram = [0.0] * 12
    for note in notes:
        histogram[note.pitch % 12] += note.duration
    return histogram


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation of two equally long sequences; 0 where either is flat."""
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return 0.0
    return cov / math.sqrt(var_x * var_y)


def key_correlations(
    notes: Iterable[Note], keys: Sequence[Key] = ALL_KEYS, profiles: KeyProfiles = KRUMHANSL_KESSLER
) -> list[float]:
    """The correlation of the notes' ``pitch_class_durations`` with each key's profile, in
    the order of ``keys``."""
    histogram = pitch_class_durations(notes)
    major, minor = profiles
    scores = []
    for key in keys:
        profile = major if key.mode is Mode.MAJOR else minor
        scores.append(correlation(histogram, [profile[(pc - key.tonic) % 12] for pc in range(12)]))
    return scores
