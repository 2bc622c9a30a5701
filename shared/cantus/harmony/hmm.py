"""An HMM harmoniser, the statistical baseline of ``cantus eval harmony``.

Hidden states are the key-relative chord classes seen in training (root position); one
state per beat. Transitions are bigram counts of the training chords (add-0.1 smoothing),
emissions a multinomial over the melody's key-relative pitch classes in the beat, weighted
by duration (add-0.5 smoothing), so a beat's likelihood is the product over its pitch
classes. Viterbi picks the most likely chord sequence for a whole melody at once (it sees
the whole melody, more than the model's one bar of lookahead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cantus.harmony.dataset import HarmonizedTune
from cantus.harmony.features import bar_features
from cantus.harmony.vocabulary import CHORD_CLASSES, chord_to_class
from cantus.music.notes import Bar, Key
from cantus.music.styles import Energy, Style


@dataclass(frozen=True)
class HMMHarmonizer:
    """``states`` the chord classes; log start [S], log transition [S, S], log emission
    [S, 12] probabilities."""

    states: np.ndarray
    log_start: np.ndarray
    log_transition: np.ndarray
    log_emission: np.ndarray

    @classmethod
    def fit(cls, tunes: Sequence[HarmonizedTune]) -> HMMHarmonizer:
        sequences: list[list[tuple[int, np.ndarray]]] = []
        for tune in tunes:
            sequence = []
            for bar, chords in zip(tune.bars, tune.chord_symbols(), strict=True):
                profiles = _beat_profiles(bar, tune.key)
                for chord, profile in zip(chords, profiles, strict=True):
                    if chord is not None:
                        sequence.append((chord_to_class(chord.without_bass, tune.key), profile))
            sequences.append(sequence)
        states = np.array(sorted({c for seq in sequences for c, _ in seq}), dtype=np.int64)
        index = {int(c): i for i, c in enumerate(states)}
        size = len(states)
        start = np.full(size, 0.1)
        transition = np.full((size, size), 0.1)
        emission = np.full((size, 12), 0.5)
        for seq in sequences:
            for position, (chord_class, profile) in enumerate(seq):
                state = index[chord_class]
                emission[state] += profile
                if position == 0:
                    start[state] += 1
                else:
                    transition[index[seq[position - 1][0]], state] += 1
        return cls(
            states,
            np.log(start / start.sum()),
            np.log(transition / transition.sum(axis=1, keepdims=True)),
            np.log(emission / emission.sum(axis=1, keepdims=True)),
        )

    def harmonize(self, bars: Sequence[Bar], key: Key) -> list[list[tuple[int, int]]]:
        """(chord class, inversion 0) for every beat of ``bars``, bar by bar."""
        profiles = [_beat_profiles(bar, key) for bar in bars]
        flat = np.concatenate(profiles)
        scores = flat @ self.log_emission.T  # [beats, states]
        back = np.zeros(scores.shape, dtype=np.int64)
        current = self.log_start + scores[0]
        for t in range(1, len(flat)):
            candidates = current[:, None] + self.log_transition
            back[t] = candidates.argmax(axis=0)
            current = candidates.max(axis=0) + scores[t]
        path = [int(current.argmax())]
        for t in range(len(flat) - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        path.reverse()
        chords = [(int(self.states[s]), 0) for s in path]
        result, position = [], 0
        for bar_profiles in profiles:
            result.append(chords[position : position + len(bar_profiles)])
            position += len(bar_profiles)
        assert all(0 <= c < CHORD_CLASSES for bar in result for c, _ in bar)
        return result


def _beat_profiles(bar: Bar, key: Key) -> np.ndarray:
    """Key-relative pitch-class durations in each beat, in beats [beats, 12]."""
    features = bar_features(
        bar, key, next_bar=None, is_final=False, style=Style.CHORALE, energy=Energy.MID
    )
    return features[:, :12].astype(np.float64)
