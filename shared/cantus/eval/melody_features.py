"""What a listener hears in a melody, as numbers: pitch, interval and note-length histograms,
a few scalar rates (repeated notes, steps, direction changes, the dominant pitch class) and
rhythm measures (density, notes on beats, syncopation, rests).

``melody_features(melody, key)`` computes them for one ``Melody``; ``feature_vector`` flattens
them (in the order of ``feature_names``) for a classifier or a distance.

The representation has no ties: a note that crosses a barline is stored as two notes of the
same pitch (the corpus and the model's tokens alike), so such a note counts as one repeated
note here. Real and generated melodies are treated the same way, so comparisons stay fair,
but absolute repeated-note rates are a little higher than a musician would count.

Undefined values (a rate of a melody with fewer than two notes) are 0, so every melody has a
finite vector.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from cantus.music.notes import TICKS_PER_QUARTER, Key, Melody, Note

INTERVAL_LIMIT = 12
"""Intervals are histogrammed in -12..+12 semitones; wider leaps go to the end bins."""
SIXTEENTH_TICKS = TICKS_PER_QUARTER // 4
NOTE_LENGTH_BINS = (1, 2, 3, 4, 6, 8, 12, 16)
"""Lower edges of the note-length bins, in sixteenths: a length goes to the largest edge not
above it (5 sixteenths count as 4, 7 as 6, 9-11 as 8, 13-15 as 12, 16 and more as 16)."""
STEP_SEMITONES = (1, 2)
"""Interval sizes (absolute) that count as a step."""

HISTOGRAMS = ("pitch_class", "interval", "note_length")
"""The histogram features, each normalised to sum 1 (all zeros for a melody without the
notes to fill it)."""
SCALARS = (
    "repeated_note_rate",
    "stepwise_rate",
    "top_pitch_class_share",
    "pitch_range",
    "direction_change_rate",
    "notes_per_bar",
    "on_beat_share",
    "syncopation_rate",
    "rest_share",
)
"""The scalar features, in ``feature_names`` order."""


@dataclass(frozen=True)
class MelodyFeatures:
    """One melody's features. Histograms:

    * ``pitch_class`` [12]: share of notes per pitch class relative to the tonic (0 = tonic);
    * ``interval`` [25]: share of successive-note intervals, -12..+12 semitones (clipped);
    * ``note_length`` [8]: share of notes per ``NOTE_LENGTH_BINS`` bin.

    Scalars (shares are 0..1):

    * ``repeated_note_rate``: intervals of 0 semitones among all intervals;
    * ``stepwise_rate``: intervals of 1 or 2 semitones (either direction);
    * ``top_pitch_class_share``: notes on the most frequent pitch class;
    * ``pitch_range``: highest minus lowest pitch, semitones;
    * ``direction_change_rate``: contour. Of the successive pairs of non-zero intervals (repeated
      notes skipped), the share whose signs differ: 1 is a zig-zag, 0 a straight run;
    * ``notes_per_bar``: notes per bar of the time from the first note on;
    * ``on_beat_share``: notes whose onset is on a beat (``Meter.beat_ticks``: the dotted
      quarter in 6/8);
    * ``syncopation_rate``: notes that start off the beat and sound through the next beat;
    * ``rest_share``: share of the time from the first note on with no note sounding (a
      pickup's padding before it is not counted).
    """

    pitch_class: np.ndarray
    interval: np.ndarray
    note_length: np.ndarray
    repeated_note_rate: float
    stepwise_rate: float
    top_pitch_class_share: float
    pitch_range: float
    direction_change_rate: float
    notes_per_bar: float
    on_beat_share: float
    syncopation_rate: float
    rest_share: float

    def scalars(self) -> dict[str, float]:
        """The scalar features by name."""
        return {name: float(getattr(self, name)) for name in SCALARS}

    def histograms(self) -> dict[str, np.ndarray]:
        """The histogram features by name."""
        return {name: getattr(self, name) for name in HISTOGRAMS}


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def _share(count: int, total: int) -> float:
    return count / total if total > 0 else 0.0


def note_length_bin(duration_ticks: int) -> int:
    """Index into ``NOTE_LENGTH_BINS`` of a note length in ticks (rounded to sixteenths,
    at least one)."""
    sixteenths = max(1, round(duration_ticks / SIXTEENTH_TICKS))
    return max(i for i, edge in enumerate(NOTE_LENGTH_BINS) if edge <= sixteenths)


def intervals(notes: Sequence[Note]) -> list[int]:
    """Successive-note intervals in semitones (positive: up)."""
    return [b.pitch - a.pitch for a, b in itertools.pairwise(notes)]


def direction_change_rate(steps: Sequence[int]) -> float:
    """Of successive pairs of non-zero intervals, the share whose directions differ."""
    signs = [1 if i > 0 else -1 for i in steps if i != 0]
    changes = sum(a != b for a, b in itertools.pairwise(signs))
    return _share(changes, len(signs) - 1)


def leading_silence(melody: Melody) -> int:
    """Ticks before the first note of bar 1: a pickup's padding (0 if the tune opens on
    the downbeat or its first bar is empty)."""
    if not melody.bars or not melody.bars[0].notes:
        return 0
    return melody.bars[0].notes[0].onset


def _rhythm(melody: Melody) -> tuple[int, int, int]:
    """Notes on a beat, syncopated notes and ticks covered by notes, over all bars."""
    on_beat = syncopated = sounding = 0
    for bar in melody.bars:
        beat = bar.meter.beat_ticks
        for note in bar.notes:
            sounding += note.duration
            if note.onset % beat == 0:
                on_beat += 1
            else:
                next_beat = (note.onset // beat + 1) * beat
                syncopated += int(note.end > next_beat)
    return on_beat, syncopated, sounding


def melody_features(melody: Melody, key: Key | None = None) -> MelodyFeatures:
    """The features of ``melody``; pitch classes relative to ``key``'s tonic (default: the
    melody's own key: the requested key of a generated piece, the labelled key of a tune)."""
    tonic = (key or melody.key).tonic
    notes = melody.notes_absolute()
    pitches = np.array([n.pitch for n in notes], dtype=int)
    steps = intervals(notes)

    pitch_class = np.bincount((pitches - tonic) % 12, minlength=12).astype(float)
    clipped = np.clip(np.array(steps, dtype=int), -INTERVAL_LIMIT, INTERVAL_LIMIT)
    interval = np.bincount(clipped + INTERVAL_LIMIT, minlength=2 * INTERVAL_LIMIT + 1)
    note_length = np.bincount(
        [note_length_bin(n.duration) for n in notes], minlength=len(NOTE_LENGTH_BINS)
    )
    absolute_classes = np.bincount(pitches % 12, minlength=12) if len(pitches) else np.zeros(12)
    on_beat, syncopated, sounding = _rhythm(melody)
    # time from the first note on: the rest that pads a pickup to a full bar 1 is how the
    # corpus writes an anacrusis (71 % of its tunes), not a rest anyone hears
    total_ticks = sum(bar.meter.bar_ticks for bar in melody.bars) - leading_silence(melody)
    played_bars = total_ticks / melody.bars[0].meter.bar_ticks if melody.bars else 0.0
    return MelodyFeatures(
        pitch_class=_normalised(pitch_class),
        interval=_normalised(interval.astype(float)),
        note_length=_normalised(note_length.astype(float)),
        repeated_note_rate=_share(sum(i == 0 for i in steps), len(steps)),
        stepwise_rate=_share(sum(abs(i) in STEP_SEMITONES for i in steps), len(steps)),
        top_pitch_class_share=_share(int(absolute_classes.max()), len(notes)),
        pitch_range=float(pitches.max() - pitches.min()) if len(pitches) else 0.0,
        direction_change_rate=direction_change_rate(steps),
        notes_per_bar=len(notes) / played_bars if played_bars else 0.0,
        on_beat_share=_share(on_beat, len(notes)),
        syncopation_rate=_share(syncopated, len(notes)),
        rest_share=1.0 - _share(sounding, total_ticks) if total_ticks else 0.0,
    )


def feature_names() -> list[str]:
    """Names of ``feature_vector``'s entries: the histogram bins (``pitch_class[0]`` …,
    ``interval[-12]`` …, ``note_length[16+]`` …), then the scalars."""
    names = [f"pitch_class[{pc}]" for pc in range(12)]
    names += [f"interval[{i:+d}]" for i in range(-INTERVAL_LIMIT, INTERVAL_LIMIT + 1)]
    names += [f"note_length[{edge}]" for edge in NOTE_LENGTH_BINS[:-1]]
    names.append(f"note_length[{NOTE_LENGTH_BINS[-1]}+]")
    return names + list(SCALARS)


def feature_vector(features: MelodyFeatures) -> np.ndarray:
    """All features as one float vector, in ``feature_names`` order."""
    return np.concatenate(
        [*(features.histograms()[name] for name in HISTOGRAMS), list(features.scalars().values())]
    ).astype(float)


def feature_matrix(melodies: Sequence[Melody], keys: Sequence[Key] | None = None) -> np.ndarray:
    """``feature_vector`` of each melody as the rows of a [melodies, features] matrix
    (``keys``: each melody's key, default its own)."""
    keys = keys if keys is not None else [m.key for m in melodies]
    rows = [feature_vector(melody_features(m, k)) for m, k in zip(melodies, keys, strict=True)]
    return np.array(rows).reshape(len(rows), len(feature_names()))


def first_bars(melody: Melody, n_bars: int) -> Melody | None:
    """The melody's first ``n_bars`` bars, or None when it is shorter: sets compared over the
    same window, so that length gives nothing away."""
    if len(melody.bars) < n_bars:
        return None
    return replace(melody, bars=tuple(melody.bars[:n_bars]))
