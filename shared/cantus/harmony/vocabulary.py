"""The harmony model's chord vocabulary: chord classes as integers, key-relative, and the
reading of a vertical sonority (a chorale's four voices on a beat) as a chord.

A chord class is a root *relative to the key's tonic* (0..11) and one of
``MODEL_QUALITIES``: ``class = relative_root * len(MODEL_QUALITIES) + quality index``. The
inversion (which chord tone is in the bass, 0..3) is a separate small label. Working
key-relative makes the model the same in every key; ``class_to_chord`` puts the chord back
into a key.
"""

from __future__ import annotations

from collections.abc import Mapping

from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Key

MODEL_QUALITIES: tuple[ChordQuality, ...] = (
    ChordQuality.MAJOR,
    ChordQuality.MINOR,
    ChordQuality.DIMINISHED,
    ChordQuality.AUGMENTED,
    ChordQuality.DOMINANT_7,
    ChordQuality.MAJOR_7,
    ChordQuality.MINOR_7,
    ChordQuality.HALF_DIMINISHED_7,
    ChordQuality.DIMINISHED_7,
    ChordQuality.SUS4,
)
"""The qualities the harmony model predicts: triads, the five stacked sevenths and sus4."""

CHORD_CLASSES = 12 * len(MODEL_QUALITIES)
"""Number of chord classes (120)."""

INVERSIONS = 4
"""Inversion labels: 0 root position, 1 first (third in the bass), 2 second, 3 third."""

NO_CHORD = -1
"""Label of a beat that has no chord to learn (padding, or a silent slice)."""

_QUALITY_INDEX = {quality: index for index, quality in enumerate(MODEL_QUALITIES)}

# Cost of a chord tone missing from the sonority, by stacking position: a missing root
# costs most, a missing fifth little (chorales often leave it out of sevenths).
_MISSING_COST = (1.0, 0.7, 0.3, 0.5)
_EXTRA_COST = 1.0
_BASS_ROOT_BONUS = 0.15
_SEVENTH_COST = 0.05
"""A seventh chord must explain strictly more than its triad to win."""


def chord_to_class(chord: ChordSymbol, key: Key) -> int:
    """The class of ``chord`` (its bass ignored) in ``key``; ``ValueError`` for a quality
    outside ``MODEL_QUALITIES``."""
    if chord.quality not in _QUALITY_INDEX:
        raise ValueError(f"chord quality {chord.quality.value!r} is not in the model vocabulary")
    return ((chord.root - key.tonic) % 12) * len(MODEL_QUALITIES) + _QUALITY_INDEX[chord.quality]


def class_to_chord(chord_class: int, key: Key, inversion: int = 0) -> ChordSymbol:
    """The chord of ``chord_class`` (0..119) in ``key`` with chord tone ``inversion`` (0..3)
    in the bass; an inversion the chord does not have (a triad's third) is root position."""
    if not 0 <= chord_class < CHORD_CLASSES:
        raise ValueError(f"chord class must be 0..{CHORD_CLASSES - 1}, got {chord_class}")
    relative_root, quality_index = divmod(chord_class, len(MODEL_QUALITIES))
    quality = MODEL_QUALITIES[quality_index]
    root = (key.tonic + relative_root) % 12
    tones = ChordSymbol(root, quality).tones
    bass = tones[inversion] if 0 < inversion < len(tones) else None
    return ChordSymbol(root, quality, bass)


def chord_inversion(chord: ChordSymbol) -> int:
    """0..3: the index of the slash bass among the chord tones (0 for a root-position chord
    or a bass that is not a chord tone)."""
    if chord.bass is None or chord.bass not in chord.tones:
        return 0
    return chord.tones.index(chord.bass)


def identify_chord(weights: Mapping[int, float], bass: int | None) -> ChordSymbol | None:
    """The vocabulary chord that best explains a sonority: ``weights`` maps pitch class →
    weight (e.g. how many voices sound it), ``bass`` is the lowest sounding pitch class.
    Scored by the weight of chord tones, minus non-chord tones and missing chord tones;
    a bass on the root breaks ties. The bass becomes a slash bass when it is a chord tone
    other than the root. None when fewer than two pitch classes sound."""
    present = {pc: w for pc, w in weights.items() if w > 0}
    if len(present) < 2:
        return None
    best: tuple[float, ChordSymbol] | None = None
    for root in range(12):
        for quality in MODEL_QUALITIES:
            chord = ChordSymbol(root, quality)
            tones = chord.tones
            score = sum(w if pc in tones else -_EXTRA_COST * w for pc, w in present.items())
            score -= sum(
                _MISSING_COST[position]
                for position, tone in enumerate(tones)
                if tone not in present
            )
            if bass == root:
                score += _BASS_ROOT_BONUS
            if quality.is_seventh:
                score -= _SEVENTH_COST
            if quality is ChordQuality.SUS4 or quality is ChordQuality.AUGMENTED:
                score -= 0.2  # rare in the corpora: only when nothing else explains it
            if best is None or score > best[0]:
                best = (score, chord)
    assert best is not None
    chord = best[1]
    if bass is not None and bass in chord.tones and bass != chord.root:
        return ChordSymbol(chord.root, chord.quality, bass)
    return chord
