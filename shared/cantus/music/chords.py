"""Chord vocabulary and the bit of theory the harmoniser needs.

A ``ChordSymbol`` is a lead-sheet chord (``Am7/G``): a root pitch class, a ``ChordQuality``
and an optional bass pitch class. ``ChordSymbol.parse`` reads the usual spellings and
``str`` prints one canonical spelling that parses back to the same symbol.

Roman numerals name a chord by its function in a ``Key``: ``roman_numeral`` writes them
(``I``, ``ii``, ``V7``, ``viio``, ``viiø7``, ``V65``, secondary dominants ``V/V``,
``V7/ii``, ``viio7/V``) and ``chord_from_roman`` reads them back. Diminished is written
with a plain ``o`` (``°`` is read too). Minor keys follow harmonic minor for the dominant
(``V``, ``V7``) and the leading-tone chords (``viio``, ``viio7``).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from cantus.music.notes import (
    PITCH_CLASS_NAMES,
    Key,
    Mode,
    MusicError,
    pitch_class_from_name,
)


class ChordQuality(enum.Enum):
    """The kinds of chord Cantus knows. The value is a readable name; ``suffix`` is the
    lead-sheet spelling after the root and ``intervals`` the chord tones in semitones
    above the root, root first."""

    MAJOR = "major"
    MINOR = "minor"
    DIMINISHED = "diminished"
    AUGMENTED = "augmented"
    DOMINANT_7 = "dominant 7"
    MAJOR_7 = "major 7"
    MINOR_7 = "minor 7"
    HALF_DIMINISHED_7 = "half-diminished 7"
    DIMINISHED_7 = "diminished 7"
    SUS2 = "sus2"
    SUS4 = "sus4"
    DOMINANT_7_SUS4 = "7sus4"
    MAJOR_6 = "6"
    MINOR_6 = "minor 6"

    @property
    def suffix(self) -> str:
        """Canonical lead-sheet suffix: ``""``, ``m``, ``dim``, ``m7b5`` ..."""
        return _SUFFIX[self]

    @property
    def intervals(self) -> tuple[int, ...]:
        """Chord tones as semitones above the root (0..11), root first, in stacking order."""
        return _INTERVALS[self]

    @property
    def is_triad(self) -> bool:
        """Major, minor, diminished or augmented: the chords with inversion figures 6, 64."""
        return self in _TRIADS

    @property
    def is_seventh(self) -> bool:
        """A stacked-thirds seventh chord: the chords with inversion figures 65, 43, 42."""
        return self in _SEVENTHS


_SUFFIX = {
    ChordQuality.MAJOR: "",
    ChordQuality.MINOR: "m",
    ChordQuality.DIMINISHED: "dim",
    ChordQuality.AUGMENTED: "aug",
    ChordQuality.DOMINANT_7: "7",
    ChordQuality.MAJOR_7: "maj7",
    ChordQuality.MINOR_7: "m7",
    ChordQuality.HALF_DIMINISHED_7: "m7b5",
    ChordQuality.DIMINISHED_7: "dim7",
    ChordQuality.SUS2: "sus2",
    ChordQuality.SUS4: "sus4",
    ChordQuality.DOMINANT_7_SUS4: "7sus4",
    ChordQuality.MAJOR_6: "6",
    ChordQuality.MINOR_6: "m6",
}

_INTERVALS = {
    ChordQuality.MAJOR: (0, 4, 7),
    ChordQuality.MINOR: (0, 3, 7),
    ChordQuality.DIMINISHED: (0, 3, 6),
    ChordQuality.AUGMENTED: (0, 4, 8),
    ChordQuality.DOMINANT_7: (0, 4, 7, 10),
    ChordQuality.MAJOR_7: (0, 4, 7, 11),
    ChordQuality.MINOR_7: (0, 3, 7, 10),
    ChordQuality.HALF_DIMINISHED_7: (0, 3, 6, 10),
    ChordQuality.DIMINISHED_7: (0, 3, 6, 9),
    ChordQuality.SUS2: (0, 2, 7),
    ChordQuality.SUS4: (0, 5, 7),
    ChordQuality.DOMINANT_7_SUS4: (0, 5, 7, 10),
    ChordQuality.MAJOR_6: (0, 4, 7, 9),
    ChordQuality.MINOR_6: (0, 3, 7, 9),
}

_TRIADS = frozenset(
    {ChordQuality.MAJOR, ChordQuality.MINOR, ChordQuality.DIMINISHED, ChordQuality.AUGMENTED}
)
_SEVENTHS = frozenset(
    {
        ChordQuality.DOMINANT_7,
        ChordQuality.MAJOR_7,
        ChordQuality.MINOR_7,
        ChordQuality.HALF_DIMINISHED_7,
        ChordQuality.DIMINISHED_7,
    }
)

# Every spelling ``ChordSymbol.parse`` accepts after the root, including the canonical ones.
_SUFFIX_ALIASES: dict[str, ChordQuality] = {
    **{suffix: quality for quality, suffix in _SUFFIX.items()},
    "M": ChordQuality.MAJOR,
    "maj": ChordQuality.MAJOR,
    "min": ChordQuality.MINOR,
    "-": ChordQuality.MINOR,
    "°": ChordQuality.DIMINISHED,
    "o": ChordQuality.DIMINISHED,
    "+": ChordQuality.AUGMENTED,
    "dom7": ChordQuality.DOMINANT_7,
    "M7": ChordQuality.MAJOR_7,
    "ma7": ChordQuality.MAJOR_7,
    "Δ": ChordQuality.MAJOR_7,
    "Δ7": ChordQuality.MAJOR_7,
    "min7": ChordQuality.MINOR_7,
    "-7": ChordQuality.MINOR_7,
    "ø": ChordQuality.HALF_DIMINISHED_7,
    "ø7": ChordQuality.HALF_DIMINISHED_7,
    "min7b5": ChordQuality.HALF_DIMINISHED_7,
    "m7-5": ChordQuality.HALF_DIMINISHED_7,
    "-7b5": ChordQuality.HALF_DIMINISHED_7,
    "°7": ChordQuality.DIMINISHED_7,
    "o7": ChordQuality.DIMINISHED_7,
    "sus": ChordQuality.SUS4,
    "7sus": ChordQuality.DOMINANT_7_SUS4,
    "min6": ChordQuality.MINOR_6,
    "-6": ChordQuality.MINOR_6,
}

_NOTE_NAME = r"[A-G][#b♯♭]?"
# Longest suffixes first so that ``m7b5`` is not read as ``m7`` followed by junk.
_SUFFIX_PATTERN = "|".join(re.escape(s) for s in sorted(_SUFFIX_ALIASES, key=len, reverse=True))
_CHORD_SYMBOL = re.compile(
    rf"^(?P<root>{_NOTE_NAME})(?P<suffix>{_SUFFIX_PATTERN})(?:/(?P<bass>{_NOTE_NAME}))?$"
)


@dataclass(frozen=True)
class ChordSymbol:
    """A lead-sheet chord: ``root`` pitch class 0..11 (0 = C), ``quality``, and ``bass``,
    the pitch class 0..11 written after a slash, or None for a chord over its root. A bass
    equal to the root is stored as None, so ``C/C`` and ``C`` are the same chord."""

    root: int
    quality: ChordQuality
    bass: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.root <= 11:
            raise MusicError(f"chord root must be a pitch class 0..11, got {self.root}")
        if self.bass is not None and not 0 <= self.bass <= 11:
            raise MusicError(f"chord bass must be a pitch class 0..11 or None, got {self.bass}")
        if not isinstance(self.quality, ChordQuality):
            raise MusicError(f"chord quality must be a ChordQuality, got {self.quality!r}")
        if self.bass == self.root:
            # One spelling per chord keeps parse/print an exact round trip.
            object.__setattr__(self, "bass", None)

    @classmethod
    def parse(cls, text: str) -> ChordSymbol:
        """``ChordSymbol.parse("Am7/G")``. Accepts ``#``/``b`` (or ``♯``/``♭``) roots and
        common suffix spellings (``min``, ``-``, ``M7``, ``Δ``, ``ø``, ``°``, ``+``,
        ``sus``); raises ``MusicError`` naming the text otherwise."""
        match = _CHORD_SYMBOL.match(text.strip())
        if not match:
            raise MusicError(
                f"cannot parse chord symbol {text!r}: expected a root A-G with optional # or b, "
                "a quality such as m, dim, aug, 7, maj7, m7, m7b5, dim7, sus2, sus4, 7sus4, 6, "
                "m6, and an optional /bass note"
            )
        bass = match.group("bass")
        return cls(
            root=pitch_class_from_name(match.group("root")),
            quality=_SUFFIX_ALIASES[match.group("suffix")],
            bass=pitch_class_from_name(bass) if bass is not None else None,
        )

    def __str__(self) -> str:
        text = PITCH_CLASS_NAMES[self.root] + self.quality.suffix
        if self.bass is not None:
            text += "/" + PITCH_CLASS_NAMES[self.bass]
        return text

    @property
    def tones(self) -> tuple[int, ...]:
        """Chord tones as pitch classes in stacking order, root first (bass not included)."""
        return tuple((self.root + interval) % 12 for interval in self.quality.intervals)

    @property
    def pitch_classes(self) -> frozenset[int]:
        """Every pitch class the chord sounds, the slash bass included."""
        tones = frozenset(self.tones)
        return tones if self.bass is None else tones | {self.bass}

    @property
    def bass_pitch_class(self) -> int:
        """The pitch class in the bass: the slash bass if given, else the root."""
        return self.root if self.bass is None else self.bass

    @property
    def without_bass(self) -> ChordSymbol:
        """The same chord over its root."""
        return ChordSymbol(self.root, self.quality)

    def transpose(self, semitones: int) -> ChordSymbol:
        """The chord moved by ``semitones`` (any integer; pitch classes wrap mod 12)."""
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return ChordSymbol((self.root + semitones) % 12, self.quality, bass)


# --- Roman numerals ------------------------------------------------------------------------

_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")

_UPPER_CASE_QUALITIES = frozenset(
    {
        ChordQuality.MAJOR,
        ChordQuality.AUGMENTED,
        ChordQuality.DOMINANT_7,
        ChordQuality.MAJOR_7,
        ChordQuality.SUS2,
        ChordQuality.SUS4,
        ChordQuality.DOMINANT_7_SUS4,
        ChordQuality.MAJOR_6,
    }
)
"""Qualities with a major third (or none, for sus chords): written with an upper-case numeral."""

_DIMINISHED_FAMILY = frozenset(
    {ChordQuality.DIMINISHED, ChordQuality.DIMINISHED_7, ChordQuality.HALF_DIMINISHED_7}
)

# Quality marker written between the numeral and the figure.
_ROMAN_MARKER = {
    ChordQuality.DIMINISHED: "o",
    ChordQuality.AUGMENTED: "+",
    ChordQuality.HALF_DIMINISHED_7: "ø",
    ChordQuality.DIMINISHED_7: "o",
    ChordQuality.MAJOR_7: "maj",
}
# Suffixes of the chords that take no inversion figure.
_ROMAN_PLAIN_SUFFIX = {
    ChordQuality.SUS2: "sus2",
    ChordQuality.SUS4: "sus4",
    ChordQuality.DOMINANT_7_SUS4: "7sus4",
    ChordQuality.MAJOR_6: "add6",
    ChordQuality.MINOR_6: "add6",
}
_TRIAD_FIGURES = ("", "6", "64")
_SEVENTH_FIGURES = ("7", "65", "43", "42")
_FIGURE_INVERSION = {"": 0, "7": 0, "6": 1, "65": 1, "64": 2, "43": 2, "42": 3, "2": 3}

_ROMAN = re.compile(
    r"^(?P<accidental>[b#♭♯]?)"
    r"(?P<numeral>VII|VI|V|IV|III|II|I|vii|vi|v|iv|iii|ii|i)"
    r"(?P<marker>°|o|ø|\+|maj|M)?"
    r"(?P<figure>7sus4|sus2|sus4|add6|64|65|43|42|7|6|2)?$"
)

# Chromatic roots (semitones above the tonic, off the scale) and how to spell them:
# (scale degree index 0..6, accidental -1 flat / +1 sharp). Flats for the borrowed chords
# folk and pop use (bII, bIII, bVI, bVII), a sharp for the raised fourth.
_CHROMATIC_SPELLING = {
    Mode.MAJOR: {1: (1, -1), 3: (2, -1), 6: (3, +1), 8: (5, -1), 10: (6, -1)},
    Mode.MINOR: {1: (1, -1), 4: (2, +1), 6: (3, +1), 9: (5, +1)},
}


def _degree_root(key: Key, degree: int, quality: ChordQuality) -> int:
    """Root pitch class of scale degree ``degree`` (0..6) in ``key`` before any written
    accidental. In minor, the seventh degree of a diminished-family chord is the raised
    leading tone (harmonic minor ``viio``); otherwise the natural-minor subtonic (``VII``)."""
    root = key.scale_pitch_classes[degree]
    if key.mode is Mode.MINOR and degree == 6 and quality in _DIMINISHED_FAMILY:
        root = (root + 1) % 12
    return root


@functools.cache  # 24 keys; consulted for every numeral written
def _diatonic_chords(key: Key) -> frozenset[ChordSymbol]:
    """Triads and seventh chords native to ``key`` (harmonic minor V, V7, viio, viio7 too)."""
    scale = key.scale_pitch_classes
    chords = set()
    for degree in range(7):
        third = (scale[(degree + 2) % 7] - scale[degree]) % 12
        fifth = (scale[(degree + 4) % 7] - scale[degree]) % 12
        seventh = (scale[(degree + 6) % 7] - scale[degree]) % 12
        for quality in ChordQuality:
            intervals = quality.intervals
            if intervals[1:] == (third, fifth) or intervals[1:] == (third, fifth, seventh):
                chords.add(ChordSymbol(scale[degree], quality))
    if key.mode is Mode.MINOR:
        dominant, leading_tone = (key.tonic + 7) % 12, (key.tonic + 11) % 12
        chords |= {
            ChordSymbol(dominant, ChordQuality.MAJOR),
            ChordSymbol(dominant, ChordQuality.DOMINANT_7),
            ChordSymbol(leading_tone, ChordQuality.DIMINISHED),
            ChordSymbol(leading_tone, ChordQuality.DIMINISHED_7),
        }
    return frozenset(chords)


def diatonic_triads(key: Key) -> list[ChordSymbol]:
    """The seven triads on the degrees of ``key``, tonic first. Minor keys use harmonic
    minor for the dominant (``V``) and the leading-tone chord (``viio``) and keep the
    natural subtonic out of this list (``VII`` is available via ``chord_from_roman``)."""
    numerals = (
        ("I", "ii", "iii", "IV", "V", "vi", "viio")
        if key.mode is Mode.MAJOR
        else ("i", "iio", "III", "iv", "V", "VI", "viio")
    )
    return [chord_from_roman(numeral, key) for numeral in numerals]


def _numeral_and_accidental(root: int, key: Key, quality: ChordQuality) -> str:
    """The numeral, case-marked for ``quality``, with a ``b``/``#`` if the root is off the
    degree's default root."""
    for degree in range(7):
        if _degree_root(key, degree, quality) == root:
            accidental = ""
            break
    else:
        interval = (root - key.tonic) % 12
        if key.mode is Mode.MINOR and interval == 11:
            degree, accidental = 6, "#"  # raised seventh under a non-diminished chord
        elif key.mode is Mode.MINOR and interval == 10:
            degree, accidental = 6, "b"  # subtonic under a diminished chord
        else:
            degree, step = _CHROMATIC_SPELLING[key.mode][interval]
            accidental = "b" if step < 0 else "#"
    numeral = _NUMERALS[degree]
    if quality not in _UPPER_CASE_QUALITIES:
        numeral = numeral.lower()
    return accidental + numeral


def _quality_and_figure(symbol: ChordSymbol) -> str:
    """Everything after the numeral: quality marker plus inversion figure or plain suffix.
    A slash bass that is not a chord tone (or on a chord without figures) is left out."""
    quality = symbol.quality
    if quality in _ROMAN_PLAIN_SUFFIX:
        return _ROMAN_PLAIN_SUFFIX[quality]
    inversion = 0
    if symbol.bass is not None and symbol.bass in symbol.tones:
        inversion = symbol.tones.index(symbol.bass)
    figures = _SEVENTH_FIGURES if quality.is_seventh else _TRIAD_FIGURES
    return _ROMAN_MARKER.get(quality, "") + figures[inversion]


def _tonicised_degree(root: int, key: Key) -> int | None:
    """The degree (1..6, not the tonic) whose diatonic major or minor triad has root
    ``root``, if any: a chord that a secondary dominant can point at."""
    diatonic = _diatonic_chords(key)
    for degree in range(1, 7):
        if key.scale_pitch_classes[degree] != root:
            continue
        for quality in (ChordQuality.MAJOR, ChordQuality.MINOR):
            if ChordSymbol(root, quality) in diatonic:
                return degree
    return None


def _diatonic_triad_numeral(degree: int, key: Key) -> str:
    root = key.scale_pitch_classes[degree]
    quality = (
        ChordQuality.MAJOR
        if ChordSymbol(root, ChordQuality.MAJOR) in _diatonic_chords(key)
        else ChordQuality.MINOR
    )
    return _numeral_and_accidental(root, key, quality)


def roman_numeral(symbol: ChordSymbol, key: Key) -> str:
    """The Roman numeral of ``symbol`` in ``key``: upper case for major-third chords, lower
    for minor; ``o``, ``ø``, ``+``, ``maj`` mark the quality; inversion figures ``6``,
    ``64`` (triads) and ``65``, ``43``, ``42`` (sevenths) come from a slash bass on a chord
    tone; ``sus2``, ``sus4``, ``7sus4`` and ``add6`` chords carry no figure. A chromatic
    major or dominant-seventh chord a fifth above a diatonic triad is a secondary dominant
    (``V/V``, ``V7/ii``), a chromatic diminished chord a semitone below one a secondary
    leading-tone chord (``viio7/V``); other chromatic chords get ``b``/``#`` (``bVII``).
    A slash bass that is not a chord tone does not appear in the numeral."""
    plain = symbol.without_bass
    if plain not in _diatonic_chords(key):
        secondary_target = None
        if symbol.quality in (ChordQuality.MAJOR, ChordQuality.DOMINANT_7):
            secondary_target = _tonicised_degree((symbol.root - 7) % 12, key)
        elif symbol.quality in _DIMINISHED_FAMILY:
            secondary_target = _tonicised_degree((symbol.root + 1) % 12, key)
        if secondary_target is not None:
            target = chord_from_roman(_diatonic_triad_numeral(secondary_target, key), key)
            local_key = Key(
                target.root, Mode.MAJOR if target.quality is ChordQuality.MAJOR else Mode.MINOR
            )
            return (
                roman_numeral(symbol, local_key)
                + "/"
                + _diatonic_triad_numeral(secondary_target, key)
            )
    numeral = _numeral_and_accidental(symbol.root, key, symbol.quality)
    return numeral + _quality_and_figure(symbol)


def _parse_quality(numeral: str, marker: str, figure: str, text: str) -> ChordQuality:
    upper = numeral.isupper()
    if figure in ("sus2", "sus4", "7sus4"):
        if marker or not upper:
            raise MusicError(f"Roman numeral {text!r}: {figure} takes an upper-case numeral")
        return {
            "sus2": ChordQuality.SUS2,
            "sus4": ChordQuality.SUS4,
            "7sus4": ChordQuality.DOMINANT_7_SUS4,
        }[figure]
    if figure == "add6":
        if marker:
            raise MusicError(f"Roman numeral {text!r}: add6 takes no quality marker")
        return ChordQuality.MAJOR_6 if upper else ChordQuality.MINOR_6
    seventh = figure in ("7", "65", "43", "42", "2")
    if marker == "ø":
        # ``ø`` alone means the half-diminished seventh in root position.
        if upper or figure in ("6", "64"):
            raise MusicError(f"Roman numeral {text!r}: ø needs a lower-case numeral, figure 7")
        return ChordQuality.HALF_DIMINISHED_7
    candidates = {
        ("", True, False): ChordQuality.MAJOR,
        ("", False, False): ChordQuality.MINOR,
        ("", True, True): ChordQuality.DOMINANT_7,
        ("", False, True): ChordQuality.MINOR_7,
        ("o", False, False): ChordQuality.DIMINISHED,
        ("o", False, True): ChordQuality.DIMINISHED_7,
        ("+", True, False): ChordQuality.AUGMENTED,
        ("maj", True, True): ChordQuality.MAJOR_7,
    }
    normalised_marker = {"°": "o", "M": "maj"}.get(marker, marker)
    quality = candidates.get((normalised_marker, upper, seventh))
    if quality is None:
        raise MusicError(
            f"Roman numeral {text!r}: numeral case, quality marker {marker!r} and "
            f"figure {figure!r} do not make a known chord"
        )
    return quality


def _parse_plain_roman(text: str, key: Key, whole: str) -> ChordSymbol:
    match = _ROMAN.match(text)
    if not match:
        raise MusicError(
            f"cannot parse Roman numeral {whole!r}: expected e.g. I, ii, V7, viiø7, IV6, "
            "bVII, V/V or V7/ii"
        )
    numeral = match.group("numeral")
    marker = match.group("marker") or ""
    figure = match.group("figure") or ""
    quality = _parse_quality(numeral, marker, figure, whole)
    degree = _NUMERALS.index(numeral.upper())
    root = _degree_root(key, degree, quality)
    accidental = match.group("accidental")
    if accidental in ("b", "♭"):
        root = (root - 1) % 12
    elif accidental in ("#", "♯"):
        root = (root + 1) % 12
    inversion = _FIGURE_INVERSION.get(figure, 0)
    intervals = quality.intervals
    bass = (root + intervals[inversion]) % 12 if inversion else None
    return ChordSymbol(root, quality, bass)


def chord_from_roman(text: str, key: Key) -> ChordSymbol:
    """The chord a Roman numeral (as ``roman_numeral`` writes it) names in ``key``:
    ``chord_from_roman("V7/ii", Key(0))`` is ``A7``. Also reads ``°`` for ``o`` and ``M``
    for ``maj``. Raises ``MusicError`` naming the text if it cannot be read or names a
    diminished or augmented chord as the target of a secondary function."""
    stripped = text.strip()
    function, _, target_text = stripped.partition("/")
    if not target_text:
        return _parse_plain_roman(stripped, key, text)
    target = chord_from_roman(target_text, key)
    if target.quality not in (ChordQuality.MAJOR, ChordQuality.MINOR):
        raise MusicError(
            f"Roman numeral {text!r}: only a major or minor chord can be tonicised, "
            f"not {target_text!r}"
        )
    local_key = Key(target.root, Mode.MAJOR if target.quality is ChordQuality.MAJOR else Mode.MINOR)
    return _parse_plain_roman(function, local_key, text)
