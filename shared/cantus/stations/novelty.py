"""Near-duplicate melodies, found by interval n-grams, so a station never repeats a piece.

A melody is reduced to the semitone steps between successive notes: transposing a tune
changes none of them, so a tune recomposed in another key is still caught. Two melodies
are compared by the Jaccard similarity of their sets of interval n-grams (n successive
steps); identical melodies score 1, unrelated ones near 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet

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


NGrams = AbstractSet[tuple[int, ...]]


def jaccard(grams_a: NGrams, grams_b: NGrams) -> float:
    """Jaccard similarity (0..1) of two n-gram sets (two empty sets are identical)."""
    if not grams_a and not grams_b:
        return 1.0
    shared = len(grams_a & grams_b)
    return shared / (len(grams_a) + len(grams_b) - shared)  # the union, without building it


def similarity(a: Sequence[int], b: Sequence[int], n: int = DEFAULT_N) -> float:
    """Jaccard similarity (0..1) of the interval n-gram sets of two interval sequences."""
    return jaccard(interval_ngrams(a, n), interval_ngrams(b, n))


def most_similar(
    candidate: Sequence[int], earlier: Iterable[tuple[str, Sequence[int]]], n: int = DEFAULT_N
) -> tuple[str, float] | None:
    """The earlier melody (id, similarity) closest to ``candidate``; None when there is none."""
    return most_similar_ngrams(
        interval_ngrams(candidate, n),
        ((piece_id, interval_ngrams(intervals, n)) for piece_id, intervals in earlier),
    )


class MelodyIndex:
    """Past melodies' n-gram sets, indexed by n-gram: the most similar one to a new melody
    is found by counting shared n-grams over the melodies that have any, not by comparing
    it with every one (a station checks each piece against a thousand)."""

    def __init__(self) -> None:
        self._grams: dict[str, NGrams] = {}
        self._holders: dict[tuple[int, ...], set[str]] = {}
        """n-gram → ids of the melodies that have it."""

    def __len__(self) -> int:
        return len(self._grams)

    def add(self, piece_id: str, grams: NGrams) -> None:
        self.remove(piece_id)
        self._grams[piece_id] = grams
        for gram in grams:
            self._holders.setdefault(gram, set()).add(piece_id)

    def remove(self, piece_id: str) -> None:
        for gram in self._grams.pop(piece_id, ()):
            holders = self._holders[gram]
            holders.discard(piece_id)
            if not holders:
                del self._holders[gram]

    def most_similar(self, candidate: NGrams) -> tuple[str, float] | None:
        """The same answer as ``most_similar_ngrams`` over every melody here, up to which
        one is named when several score the same."""
        if not self._grams:
            return None
        shared: dict[str, int] = {}
        for gram in candidate:
            for piece_id in self._holders.get(gram, ()):
                shared[piece_id] = shared.get(piece_id, 0) + 1
        if not candidate:  # only another empty set is like it (jaccard)
            empty = next((i for i, grams in self._grams.items() if not grams), None)
            return (empty, 1.0) if empty is not None else (next(iter(self._grams)), 0.0)
        best: tuple[str, float] = (next(iter(self._grams)), 0.0)
        for piece_id, count in shared.items():
            score = count / (len(candidate) + len(self._grams[piece_id]) - count)
            if score > best[1]:
                best = (piece_id, score)
        return best


def most_similar_ngrams(
    candidate: NGrams, earlier: Iterable[tuple[str, NGrams]]
) -> tuple[str, float] | None:
    """``most_similar`` over n-gram sets already made (a station keeps those of its past
    melodies rather than remaking them for every new one)."""
    best: tuple[str, float] | None = None
    for piece_id, grams in earlier:
        score = jaccard(candidate, grams)
        if best is None or score > best[1]:
            best = (piece_id, score)
    return best
