"""Repetition structure of a melody, bar by bar: how much of it returns to earlier material.

Bar similarity. A bar is the set of its notes as (onset in the bar, pitch) pairs. The
similarity of two bars is the Jaccard index of those sets (shared notes over all distinct
notes) under the best transposition of one of them (-12..+12 semitones), so a sequence (a
phrase repeated a step higher) counts as a repeat. Bars with fewer than
``MIN_NOTES_TO_TRANSPOSE`` notes are compared untransposed: any two one-note bars would
otherwise be identical. Two empty bars (whole-bar rests) are identical; an empty bar and a
bar with notes share nothing. Durations are not compared (the next onset mostly fixes them).

Measures:

* ``repetition(melody)``: of the bars after the first, the share that exactly repeat an
  earlier bar (the same notes at the same places, untransposed) and the share that vary one
  (similarity ≥ ``VARIATION_SIMILARITY`` to some earlier bar, not an exact repeat: e.g. one
  note of four changed is 3/5 = 0.6; a transposed repeat is 1.0).
* ``structureness(melody)``: a bar-level version of MusDr's structureness indicator SI (Wu &
  Yang 2020, after Müller's audio thumbnailing fitness scape plot). For every segment α of
  ``L`` bars (``MIN_SEGMENT_BARS`` ≤ L ≤ half the melody), the best family of non-overlapping
  ``L``-bar segments that repeat it is found on the self-similarity matrix (cells below
  ``ENHANCE_THRESHOLD`` count ``PENALTY``, as in Müller's enhanced matrix, so a segment
  counts as a repeat only where its similar bars outweigh its dissimilar ones at least two
  to one; bars are aligned, so paths are diagonals without time warping). Its fitness is
  the harmonic mean of the normalised score (how similar the repeats are) and the
  normalised coverage (how much of the melody they cover, beyond α itself). SI is the
  largest fitness over all segments: 0 for a melody that never returns, toward 1 for one
  made of a single repeated segment.
* ``phrase_end_weight(melody)``: how much longer the longest note of a phrase's last bar is
  than that of the other bars (each as a share of its bar), phrases taken as the four-bar
  units of the tune's own opening: bars 4, 8, 12… of a tune that opens on the downbeat,
  5, 9, 13… of one that opens with a pickup bar. Real tunes breathe at their phrase ends
  (held notes, cadences), so a melody whose long notes fall elsewhere, or nowhere, reads
  as having no phrases.
* ``phrase_pattern(bars)``: the melody's form at the phrase level, as a listener names it:
  each four-bar phrase labelled by the earlier phrase it returns to (``A A~ B C``: a phrase, its
  varied return, two new ones). A phrase returns to the earlier first statement it is most
  like, by the mean ``bar_similarity`` of its bars to that phrase's: ``=`` from
  ``REPEAT_SIMILARITY`` (a repeat, or a sequence), ``~`` from ``VARIATION_SIMILARITY`` (a
  variation: a changed cadence, a bar or two new); below that it is new material.
* ``varied_returns(bars)``: each ``~`` phrase's bars against its source's, one by one.
* ``self_similarity_matrix(melody)`` and ``plot_self_similarity(melody, path)``: the bar by
  bar matrix and its picture (PNG).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cantus.music.notes import Bar, Melody, MusicError

MIN_NOTES_TO_TRANSPOSE = 3
"""Fewest notes both bars need before a transposed match counts."""
TRANSPOSITION_LIMIT = 12
"""Largest transposition (semitones, either way) tried when comparing bars."""
VARIATION_SIMILARITY = 0.5
"""Bar similarity from which a bar counts as a variation of an earlier one: at most about a
third of the notes of two bars of equal size differ (3 of 4 kept: 0.6; 6 of 8 kept: 0.6;
2 of 4 kept: 0.33)."""
MIN_SEGMENT_BARS = 2
"""Shortest segment the structureness indicator looks for repeats of."""
REPEAT_SIMILARITY = 0.9
"""Mean bar similarity from which a phrase counts as a repeat of an earlier one in
``phrase_pattern`` (``=``), not a variation (``~``)."""
ENHANCE_THRESHOLD = VARIATION_SIMILARITY
"""Self-similarity below which a cell counts ``PENALTY`` in the structureness indicator."""
PENALTY = -2.0
"""Score of a dissimilar cell on a repeat path (MusDr's and Müller's value)."""


def _notes(bar: Bar) -> frozenset[tuple[int, int]]:
    return frozenset((n.onset, n.pitch) for n in bar.notes)


def bar_similarity(a: Bar, b: Bar) -> float:
    """Jaccard index of two bars' (onset, pitch) sets under the best transposition (see the
    module docstring); 0..1."""
    notes_a, notes_b = _notes(a), _notes(b)
    if not notes_a and not notes_b:
        return 1.0
    if not notes_a or not notes_b:
        return 0.0
    shifts = {0}
    if min(len(notes_a), len(notes_b)) >= MIN_NOTES_TO_TRANSPOSE:
        shifts |= {
            pb - pa for _, pa in notes_a for _, pb in notes_b if abs(pb - pa) <= TRANSPOSITION_LIMIT
        }
    best = 0
    for shift in shifts:
        best = max(best, len({(o, p + shift) for o, p in notes_a} & notes_b))
    return best / (len(notes_a) + len(notes_b) - best)


def self_similarity_matrix(melody: Melody) -> np.ndarray:
    """[bars, bars] ``bar_similarity`` of every two bars (symmetric, 1 on the diagonal)."""
    bars = melody.bars
    matrix = np.eye(len(bars))
    for i in range(len(bars)):
        for j in range(i + 1, len(bars)):
            matrix[i, j] = matrix[j, i] = bar_similarity(bars[i], bars[j])
    return matrix


@dataclass(frozen=True)
class Repetition:
    """Of the bars after the first: ``exact`` share repeating an earlier bar note for note,
    ``varied`` share varying one (and not an exact repeat), ``returning`` their sum."""

    exact: float
    varied: float

    @property
    def returning(self) -> float:
        return self.exact + self.varied


def repetition(melody: Melody, similarity: np.ndarray | None = None) -> Repetition:
    """Exact repeats and variations of earlier bars (``similarity``: the melody's
    ``self_similarity_matrix``, computed when not given)."""
    bars = melody.bars
    if len(bars) < 2:
        return Repetition(0.0, 0.0)
    similarity = self_similarity_matrix(melody) if similarity is None else similarity
    exact = varied = 0
    for j in range(1, len(bars)):
        if any(bars[i].notes == bars[j].notes for i in range(j)):
            exact += 1
        elif similarity[:j, j].max() >= VARIATION_SIMILARITY:
            varied += 1
    return Repetition(exact / (len(bars) - 1), varied / (len(bars) - 1))


@dataclass(frozen=True)
class Structureness:
    """The structureness indicator ``si`` (0..1) and the segment that reaches it: its first
    bar and length in bars (0-based; length 0 when no segment repeats), and the bars where
    its repeats start (itself included)."""

    si: float
    start: int
    length: int
    repeats: tuple[int, ...]


def _best_family(weights: np.ndarray, length: int) -> list[int]:
    """Starts of the non-overlapping ``length``-bar segments with the largest total weight
    (weighted interval scheduling; ``weights[t]`` is the segment starting at bar t)."""
    n_rows = len(weights) + length - 1
    best = np.zeros(n_rows + 1)  # best[x]: largest total within bars [0, x)
    took = np.zeros(n_rows + 1, dtype=bool)
    for x in range(1, n_rows + 1):
        best[x] = best[x - 1]
        t = x - length
        if t >= 0 and weights[t] > 0 and best[t] + weights[t] > best[x]:
            best[x], took[x] = best[t] + weights[t], True
    starts, x = [], n_rows
    while x > 0:
        if took[x]:
            starts.append(x - length)
            x -= length
        else:
            x -= 1
    return starts[::-1]


def _diagonal_sums(enhanced: np.ndarray) -> np.ndarray:
    """[n+1, n+1] running sums along diagonals: ``sums[i + L, j + L] - sums[i, j]`` is the sum
    of ``enhanced[i + k, j + k]`` for k < L."""
    n = len(enhanced)
    sums = np.zeros((n + 1, n + 1))
    for i in range(n):
        sums[i + 1, 1:] = sums[i, :-1] + enhanced[i]
    return sums


def structureness(
    melody: Melody,
    similarity: np.ndarray | None = None,
    *,
    min_bars: int = MIN_SEGMENT_BARS,
    max_bars: int | None = None,
) -> Structureness:
    """The bar-level structureness indicator (module docstring) over segments of ``min_bars``
    to ``max_bars`` bars (default: half the melody)."""
    similarity = self_similarity_matrix(melody) if similarity is None else similarity
    n = len(similarity)
    max_bars = n // 2 if max_bars is None else min(max_bars, n // 2)
    enhanced = np.where(similarity >= ENHANCE_THRESHOLD, similarity, PENALTY)
    sums = _diagonal_sums(enhanced)
    best = Structureness(0.0, 0, 0, ())
    for length in range(min_bars, max_bars + 1):
        rows = np.arange(n - length + 1)
        for start in range(n - length + 1):
            # score of the diagonal path of each candidate segment [t, t + length) against α
            weights = sums[rows + length, start + length] - sums[rows, start]
            family = _best_family(weights, length)
            if len(family) < 2:
                continue
            score_n = (weights[family].sum() - length) / (len(family) * length)
            if score_n <= 0:
                continue
            coverage_n = (len(family) - 1) * length / n
            fitness = 2 * score_n * coverage_n / (score_n + coverage_n + 1e-16)
            if fitness > best.si:
                best = Structureness(float(fitness), start, length, tuple(family))
    return best


@dataclass(frozen=True)
class StructureMeasures:
    """``repetition`` and ``structureness`` of one melody."""

    repetition: Repetition
    structureness: Structureness


PHRASE_BARS = 4
"""Bars per phrase in ``phrase_end_weight``: the corpus's and the form plans' unit."""


def phrase_end_weight(melody: Melody) -> float:
    """Mean longest-note share of the bars that end a phrase minus that of the other bars
    (0 for a melody too short to hold a phrase and a bar after it)."""
    pickup = 1 if melody.bars and melody.bars[0].notes and melody.bars[0].notes[0].onset else 0
    longest = [
        max((n.duration for n in bar.notes), default=0) / bar.meter.bar_ticks for bar in melody.bars
    ]
    ends = set(range(pickup + PHRASE_BARS - 1, len(longest), PHRASE_BARS))
    at_ends = [v for i, v in enumerate(longest) if i in ends]
    elsewhere = [v for i, v in enumerate(longest) if i not in ends and i >= pickup]
    if not at_ends or not elsewhere:
        return 0.0
    return float(np.mean(at_ends) - np.mean(elsewhere))


def phrase_pattern(bars: Sequence[Bar], phrases: int, phrase_bars: int = PHRASE_BARS) -> str:
    """The first ``phrases`` phrases of ``bars`` (which start on a phrase's first bar: leave a
    pickup bar out) labelled as the module docstring says, space-separated: ``"A A~ B C"``.
    ``MusicError`` if the bars are too few."""
    return " ".join(label for label, _ in _phrase_labels(bars, phrases, phrase_bars))


def varied_returns(
    bars: Sequence[Bar], phrases: int, phrase_bars: int = PHRASE_BARS
) -> list[tuple[float, ...]]:
    """Each varied return (``~`` of ``phrase_pattern``) among the first ``phrases`` phrases
    of ``bars``: the ``bar_similarity`` of each of its bars to the same bar of the phrase it
    returns to. A listener hears where a return goes its own way: a changed first bar, a
    new cadence."""
    out = []
    for index, (label, origin) in enumerate(_phrase_labels(bars, phrases, phrase_bars)):
        if label.endswith("~"):
            out.append(
                tuple(
                    bar_similarity(bars[origin * phrase_bars + i], bars[index * phrase_bars + i])
                    for i in range(phrase_bars)
                )
            )
    return out


def _phrase_labels(bars: Sequence[Bar], phrases: int, phrase_bars: int) -> list[tuple[str, int]]:
    """Each phrase's label and the phrase it returns to (its own index if it is new)."""
    if len(bars) < phrases * phrase_bars:
        needed = phrases * phrase_bars
        raise MusicError(f"{phrases} phrases of {phrase_bars} bars need {needed} bars")

    def likeness(first: int, second: int) -> float:
        pairs = zip(
            bars[first * phrase_bars : (first + 1) * phrase_bars],
            bars[second * phrase_bars : (second + 1) * phrase_bars],
            strict=True,
        )
        return float(np.mean([bar_similarity(a, b) for a, b in pairs]))

    letters: list[str] = []
    originals: list[int] = []  # phrases that state new material, the only ones returned to
    labels: list[tuple[str, int]] = []
    for phrase in range(phrases):
        scored = [(likeness(origin, phrase), origin) for origin in originals]
        best, origin = max(scored, default=(0.0, -1))
        if best >= VARIATION_SIMILARITY:
            mark = "=" if best >= REPEAT_SIMILARITY else "~"
            labels.append((letters[originals.index(origin)] + mark, origin))
            continue
        letters.append(chr(ord("A") + len(letters)))
        originals.append(phrase)
        labels.append((letters[-1], phrase))
    return labels


def structure_measures(melody: Melody) -> StructureMeasures:
    """Both measures from one self-similarity matrix."""
    similarity = self_similarity_matrix(melody)
    return StructureMeasures(repetition(melody, similarity), structureness(melody, similarity))


@dataclass(frozen=True)
class Band:
    """The 5th percentile, median and 95th percentile of a measure over a set of melodies."""

    low: float
    median: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Band:
        low, median, high = np.percentile(np.asarray(values, dtype=float), (5, 50, 95))
        return cls(float(low), float(median), float(high), len(values))

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def plot_self_similarity(melody: Melody, path: Path, *, title: str = "") -> Path:
    """Draw the melody's bar self-similarity matrix as a PNG at ``path`` (bars on both axes,
    1 = identical bars; the title gives SI and the share of returning bars)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window (services have no display); before pyplot
    import matplotlib.pyplot as plt

    similarity = self_similarity_matrix(melody)
    measures = StructureMeasures(repetition(melody, similarity), structureness(melody, similarity))
    n = len(similarity)
    figure, axes = plt.subplots(figsize=(4.2, 3.8), dpi=100)
    image = axes.imshow(
        similarity, origin="lower", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    ticks = list(range(0, n, 4 if n > 8 else 1))
    axes.set_xticks(ticks, [str(t + 1) for t in ticks])
    axes.set_yticks(ticks, [str(t + 1) for t in ticks])
    axes.set_xlabel("bar")
    axes.set_ylabel("bar")
    summary = (
        f"SI {measures.structureness.si:.2f}, {measures.repetition.returning:.0%} of bars return"
    )
    axes.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="bar similarity")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
