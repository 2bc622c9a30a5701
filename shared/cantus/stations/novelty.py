"""Near-duplicate melodies, found by interval n-grams, so a station never repeats a piece.

A melody is reduced to the semitone steps between successive notes: transposing a tune
changes none of them, so a tune recomposed in another key is still caught. Two melodies
are compared by the Jaccard similarity of their sets of interval n-grams (n successive
steps); identical melodies score 1, unrelated ones near 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

DEFAULT_N = 4
"""Steps per n-gram: four intervals (five notes) identify a motif without matching scales."""


def pitches_to_intervals(pitches: Sequence[int]) -> list[int]:
    """Semitone steps between successive MIDI pitches (repeated notes give 0)."""
    return [b - a for a, b in itertools.pairwise(pitches)]


def interval_ngrams(intervals: Sequence[int], n: int = DEFAULT_N) -> set[tuple[int, ...]]:
    """The set of runs of ``n`` successive intervals (one run of all of them when shorter)."""
    if n < 1:
        raise ValueError(f"n is {n}; it must be >= 1")
    if len(intervals) < n:
        return {tuple(intervals)} if intervals else set()
    return {tuple(intervals[i : i + n]) for i in range(len(intervals) - n + 1)}


def similarity(a: Sequence[int], b: Sequence[int], n: int = DEFAULT_N) -> float:
    """Jaccard similarity (0..1) of the interval n-gram sets of two interval sequences."""
    grams_a, grams_b = interval_ngrams(a, n), interval_ngrams(b, n)
    if not grams_a and not grams_b:
        return 1.0
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def most_similar(
    candidate: Sequence[int], earlier: Iterable[tuple[str, Sequence[int]]], n: int = DEFAULT_N
) -> tuple[str, float] | None:
    """The earlier melody (id, similarity) closest to ``candidate``; None when there is none."""
    best: tuple[str, float] | None = None
    for piece_id, intervals in earlier:
        score = similarity(candidate, intervals, n)
        if best is None or score > best[1]:
            best = (piece_id, score)
    return best
