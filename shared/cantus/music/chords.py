"""Chord symbols (``Am7/G``), their pitch classes, and Roman numerals relative to a key.

``ChordSymbol.parse`` and ``str`` round-trip; ``roman_numeral`` and ``chord_from_roman``
round-trip for diatonic chords and secondary dominants (``V/V``, ``V7/ii``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cantus.music.notes import PITCH_CLASS_NAMES, Key, Mode, MusicError, pitch_class_from_name


class ChordQuality(enum.Enum):
    """Quality: (symbol suffix, intervals in semitones above the root)."""

    MAJOR = ("", (0, 4, 7))
    MINOR = ("m", (0, 3, 7))
    DIMINISHED = ("dim", (0, 3, 6))
    AUGMENTED = ("aug", (0, 4, 8))
    DOMINANT_7 = ("7", (0, 4, 7, 10))
    MAJOR_7 = ("maj7", (0, 4, 7, 11))
    MINOR_7 = ("m7", (0, 3, 7, 10))
    HALF_DIMINISHED_7 = ("m7b5", (0, 3, 6, 10))
    DIMINISHED_7 = ("dim7", (0, 3, 6, 9))
    SUS2 = ("sus2", (0, 2, 7))
    SUS4 = ("sus4", (0, 5, 7))
    DOMINANT_7_SUS4 = ("7sus4", (0, 5, 7, 10))
    MAJOR_6 = ("6", (0, 4, 7, 9))
    MINOR_6 = ("m6", (0, 3, 7, 9))

    @property
    def suffix(self) -> str:
        return self.value[0]

    @property
    def intervals(self) -> tuple[int, ...]:
        return self.value[1]


_BY_SUFFIX = {quality.suffix: quality for quality in ChordQuality}
_SYMBOL = re.compile(r"^([A-G][#b]?)([a-z0-9]*)(?:/([A-G][#b]?))?$")


@dataclass(frozen=True)
class ChordSymbol:
    """A chord: root pitch class 0..11, quality, optional bass pitch class (slash chord)."""

    root: int
    quality: ChordQuality = ChordQuality.MAJOR
    bass: int | None = None

    @classmethod
    def parse(cls, text: str) -> ChordSymbol:
        match = _SYMBOL.match(text.strip())
        if not match or match.group(2) not in _BY_SUFFIX:
            raise MusicError(f"chord symbol {text!r} is not understood (e.g. C, Am7, F#m7b5, G/B)")
        root, suffix, bass = match.groups()
        return cls(
            pitch_class_from_name(root),
            _BY_SUFFIX[suffix],
            pitch_class_from_name(bass) if bass else None,
        )

    def __str__(self) -> str:
        text = PITCH_CLASS_NAMES[self.root] + self.quality.suffix
        if self.bass is not None and self.bass != self.root:
            text += "/" + PITCH_CLASS_NAMES[self.bass]
        return text

    @property
    def pitch_classes(self) -> frozenset[int]:
        classes = {(self.root + interval) % 12 for interval in self.quality.intervals}
        if self.bass is not None:
            classes.add(self.bass)
        return frozenset(classes)

    @property
    def bass_pitch_class(self) -> int:
        return self.root if self.bass is None else self.bass


# --- Roman numerals ---------------------------------------------------------------------

_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")
_ROMAN = re.compile(r"^([b#]?)(VII|VI|IV|V|III|II|I|vii|vi|iv|v|iii|ii|i)(o7|ø7|o|\+|maj7|7)?$")


def _scale_degree(pitch_class: int, key: Key) -> tuple[int, str] | None:
    """(degree 0..6, accidental '' / 'b' / '#') of a root in the key's scale."""
    scale = key.scale_pitch_classes
    if pitch_class in scale:
        return scale.index(pitch_class), ""
    if (pitch_class + 1) % 12 in scale:
        return scale.index((pitch_class + 1) % 12), "b"
    return None


def _figure(quality: ChordQuality) -> tuple[bool, str]:
    """(written upper case, figure) for a quality."""
    return {
        ChordQuality.MAJOR: (True, ""),
        ChordQuality.MINOR: (False, ""),
        ChordQuality.DIMINISHED: (False, "o"),
        ChordQuality.AUGMENTED: (True, "+"),
        ChordQuality.DOMINANT_7: (True, "7"),
        ChordQuality.MAJOR_7: (True, "maj7"),
        ChordQuality.MINOR_7: (False, "7"),
        ChordQuality.HALF_DIMINISHED_7: (False, "ø7"),
        ChordQuality.DIMINISHED_7: (False, "o7"),
    }.get(quality, (True, ""))


def roman_numeral(symbol: ChordSymbol, key: Key) -> str:
    """``V7``, ``ii``, ``viiø7``, ``bVII``, or a secondary dominant such as ``V7/V``."""
    if symbol.quality in (ChordQuality.MAJOR, ChordQuality.DOMINANT_7):
        target = (symbol.root + 5) % 12  # the chord a dominant resolves to
        diatonic = {_diatonic_triad(key, d).root: d for d in range(7)}
        own = _scale_degree(symbol.root, key)
        is_diatonic = own is not None and own[1] == "" and (
            _diatonic_triad(key, own[0]).quality is ChordQuality.MAJOR
        )
        if not is_diatonic and target in diatonic and diatonic[target] != 0:
            degree = diatonic[target]
            target_chord = _diatonic_triad(key, degree)
            if target_chord.quality is not ChordQuality.DIMINISHED:
                upper = target_chord.quality is ChordQuality.MAJOR
                numeral = _NUMERALS[degree] if upper else _NUMERALS[degree].lower()
                return f"V{symbol.quality.suffix}/{numeral}"
    placed = _scale_degree(symbol.root, key)
    if placed is None:
        return "?"
    degree, accidental = placed
    upper, figure = _figure(symbol.quality)
    numeral = _NUMERALS[degree] if upper else _NUMERALS[degree].lower()
    return accidental + numeral + figure


def _diatonic_triad(key: Key, degree: int) -> ChordSymbol:
    scale = key.scale_pitch_classes
    root, third, fifth = scale[degree], scale[(degree + 2) % 7], scale[(degree + 4) % 7]
    intervals = ((third - root) % 12, (fifth - root) % 12)
    quality = {
        (4, 7): ChordQuality.MAJOR,
        (3, 7): ChordQuality.MINOR,
        (3, 6): ChordQuality.DIMINISHED,
        (4, 8): ChordQuality.AUGMENTED,
    }[intervals]
    return ChordSymbol(root, quality)


def chord_from_roman(text: str, key: Key) -> ChordSymbol:
    """The chord a Roman numeral names in ``key``; raises ``MusicError`` if unreadable."""
    primary, _, secondary = text.partition("/")
    if secondary:
        target = chord_from_roman(secondary, key)
        dominant = chord_from_roman(primary, Key(target.root, Mode.MAJOR))
        return dominant
    match = _ROMAN.match(primary)
    if not match:
        raise MusicError(f"Roman numeral {text!r} is not understood (e.g. I, ii, V7, V7/V)")
    accidental, numeral, figure = match.groups()
    degree = _NUMERALS.index(numeral.upper())
    root = key.scale_pitch_classes[degree]
    if accidental == "b":
        root = (root - 1) % 12
    elif accidental == "#":
        root = (root + 1) % 12
    upper = numeral.isupper()
    quality = {
        (True, None): ChordQuality.MAJOR,
        (False, None): ChordQuality.MINOR,
        (False, "o"): ChordQuality.DIMINISHED,
        (True, "+"): ChordQuality.AUGMENTED,
        (True, "7"): ChordQuality.DOMINANT_7,
        (True, "maj7"): ChordQuality.MAJOR_7,
        (False, "7"): ChordQuality.MINOR_7,
        (False, "ø7"): ChordQuality.HALF_DIMINISHED_7,
        (False, "o7"): ChordQuality.DIMINISHED_7,
    }.get((upper, figure))
    if quality is None:
        raise MusicError(f"Roman numeral {text!r}: figure {figure!r} does not fit its case")
    return ChordSymbol(root, quality)


def diatonic_triads(key: Key) -> list[ChordSymbol]:
    """The seven triads on the key's scale degrees (natural minor for minor keys)."""
    return [_diatonic_triad(key, degree) for degree in range(7)]
