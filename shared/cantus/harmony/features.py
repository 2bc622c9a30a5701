"""What the harmony model sees of a melody: one feature vector per beat.

A beat is ``pulse_ticks(meter)`` long (a dotted quarter in 6/8, an eighth in 7/8), so a
bar has ``beats_in_bar(meter)`` beats (5/4: 5, 7/8: 7, 6/8: 2). Pitch classes are taken
relative to the key's tonic, so the features are the same in every key. A beat sees its
own bar and at most one bar of lookahead (the next bar's pitch-class profile); the
previous chords reach the model separately, as its autoregressive input.

Layout of a feature vector (``FEATURES`` = 70 values):

* 0..11   pitch-class durations inside the beat, in beats (0..1)
* 12..23  pitch class sounding at the beat's onset (one-hot; zeros on a rest)
* 24..35  the current bar's pitch-class profile (sums to 1; zeros for a bar of rests)
* 36..47  the next bar's profile (zeros when there is none yet, or it is silent)
* 48..55  beat position in the bar, one-hot, beats past the eighth share the last slot
* 56..61  flags: downbeat, last beat of the bar, final bar, bar is rest, beat is silent,
  next bar known
* 62      register: (pitch at the onset - 66) / 12, 0 on a rest
* 63      minor mode
* 64..66  style (folk, celtic, chorale), one-hot
* 67..69  energy (low, mid, high), one-hot
"""

from __future__ import annotations

import numpy as np

from cantus.harmony.rules import pulse_ticks
from cantus.music.notes import Bar, Key, Meter, Mode
from cantus.music.styles import Energy, Style

FEATURES = 70
POSITION_SLOTS = 8
REGISTER_COLUMN = 62
STYLES = (Style.FOLK, Style.CELTIC, Style.CHORALE)
ENERGIES = (Energy.LOW, Energy.MID, Energy.HIGH)


def beats_in_bar(meter: Meter) -> int:
    """Beats of ``pulse_ticks(meter)`` in one bar (a partial last beat counts as a beat)."""
    pulse = pulse_ticks(meter)
    return -(-meter.bar_ticks // pulse)


def beat_spans(meter: Meter) -> list[tuple[int, int]]:
    """(onset, duration) of each beat in ticks from the bar start; the last one is cut at
    the barline."""
    pulse = pulse_ticks(meter)
    return [
        (start, min(pulse, meter.bar_ticks - start)) for start in range(0, meter.bar_ticks, pulse)
    ]


def _profile(bar: Bar | None, key: Key) -> np.ndarray:
    profile = np.zeros(12, dtype=np.float32)
    if bar is None:
        return profile
    for note in bar.notes:
        profile[(note.pitch - key.tonic) % 12] += note.duration
    total = profile.sum()
    return profile / total if total > 0 else profile


def bar_features(
    bar: Bar,
    key: Key,
    *,
    next_bar: Bar | None,
    is_final: bool,
    style: Style,
    energy: Energy,
) -> np.ndarray:
    """Features of every beat of ``bar``: float32 array [beats_in_bar, FEATURES]."""
    spans = beat_spans(bar.meter)
    features = np.zeros((len(spans), FEATURES), dtype=np.float32)
    bar_profile = _profile(bar, key)
    next_profile = _profile(next_bar, key)
    for index, (start, length) in enumerate(spans):
        row = features[index]
        end = start + length
        onset_pitch = None
        for note in bar.notes:
            overlap = min(end, note.end) - max(start, note.onset)
            if overlap > 0:
                row[(note.pitch - key.tonic) % 12] += overlap / length
            if note.onset <= start < note.end:
                onset_pitch = note.pitch
        if onset_pitch is not None:
            row[12 + (onset_pitch - key.tonic) % 12] = 1.0
            row[REGISTER_COLUMN] = (onset_pitch - 66) / 12
        row[24:36] = bar_profile
        row[36:48] = next_profile
        row[48 + min(index, POSITION_SLOTS - 1)] = 1.0
        row[56] = index == 0
        row[57] = index == len(spans) - 1
        row[58] = is_final
        row[59] = bar.is_rest
        row[60] = row[:12].sum() == 0
        row[61] = next_bar is not None
        row[63] = key.mode is Mode.MINOR
        row[64 + STYLES.index(style)] = 1.0
        row[67 + ENERGIES.index(energy)] = 1.0
    return features
