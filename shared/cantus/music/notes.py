"""The symbolic music model every part of Cantus shares.

Time is counted in integer ticks at ``TICKS_PER_QUARTER`` (480, the usual MIDI
resolution), which represents sixteenths (120), eighth-note triplets (160) and
thirty-seconds (60) exactly. A ``Note`` inside a ``Bar`` has its onset counted
from the start of that bar; a ``Track`` (a whole part of a piece, ready for
MIDI) counts from the start of the piece.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

TICKS_PER_QUARTER = 480
"""Ticks per quarter note, for every onset and duration in this package."""

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Preferred spelling of each pitch class (0 = C), used when printing keys and chords."""

_LETTER_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_NAME = re.compile(r"^([A-Ga-g])([#b♯♭]?)$")


class MusicError(ValueError):
    """A musical value is out of range or cannot be parsed; the message names it."""


def pitch_class_from_name(name: str) -> int:
    """Parse a key or note name without octave (``C``, ``F#``, ``Bb``) to a pitch class 0..11."""
    match = _KEY_NAME.match(name.strip())
    if not match:
        raise MusicError(f"unknown key name {name!r}: expected a letter A-G with optional # or b")
    letter, accidental = match.groups()
    pitch_class = _LETTER_PITCH_CLASS[letter.upper()]
    if accidental in ("#", "♯"):
        pitch_class += 1
    elif accidental in ("b", "♭"):
        pitch_class -= 1
    return pitch_class % 12


class Mode(str, enum.Enum):
    """Mode of a key. Only the two modes the models are conditioned on."""

    MAJOR = "major"
    MINOR = "minor"


def parse_mode(mode: str | Mode) -> Mode:
    """``Mode`` from its name; ``MusicError`` naming the accepted ones."""
    try:
        return Mode(mode)
    except ValueError:
        raise MusicError(f"unknown mode {mode!r}: expected 'major' or 'minor'") from None


MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0 = C .. 11 = B) and mode."""

    tonic: int
    mode: Mode = Mode.MAJOR

    def __post_init__(self) -> None:
        if not 0 <= self.tonic <= 11:
            raise MusicError(f"key tonic must be a pitch class 0..11, got {self.tonic}")

    @classmethod
    def parse(cls, tonic_name: str, mode: str | Mode = Mode.MAJOR) -> Key:
        """``Key.parse("Bb", "minor")``; raises ``MusicError`` naming the bad part."""
        return cls(pitch_class_from_name(tonic_name), parse_mode(mode))

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode.value}"

    @property
    def scale_pitch_classes(self) -> tuple[int, ...]:
        """The seven pitch classes of the key's scale (natural minor for minor keys)."""
        steps = MAJOR_SCALE if self.mode is Mode.MAJOR else NATURAL_MINOR_SCALE
        return tuple((self.tonic + step) % 12 for step in steps)

    def transpose(self, semitones: int) -> Key:
        return Key((self.tonic + semitones) % 12, self.mode)


@dataclass(frozen=True)
class Meter:
    """A time signature such as 4/4 or 6/8."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if not 1 <= self.numerator <= 32:
            raise MusicError(f"meter numerator must be 1..32, got {self.numerator}")
        if self.denominator not in (1, 2, 4, 8, 16, 32):
            raise MusicError(
                f"meter denominator must be a power of two 1..32, got {self.denominator}"
            )

    @classmethod
    def parse(cls, text: str) -> Meter:
        """``Meter.parse("6/8")``; raises ``MusicError`` on anything else."""
        parts = text.strip().split("/")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise MusicError(f"meter {text!r} is not of the form N/D, e.g. 4/4 or 6/8")
        return cls(int(parts[0]), int(parts[1]))

    @property
    def bar_ticks(self) -> int:
        """Length of one bar in ticks."""
        return self.numerator * TICKS_PER_QUARTER * 4 // self.denominator

    @property
    def beat_ticks(self) -> int:
        """Length of one beat in ticks: a dotted note in compound meters (6/8, 9/8, 12/8),
        otherwise one 1/denominator note."""
        unit = TICKS_PER_QUARTER * 4 // self.denominator
        compound = self.denominator >= 8 and self.numerator % 3 == 0 and self.numerator > 3
        return 3 * unit if compound else unit

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, order=True)
class Note:
    """One note. ``onset`` and ``duration`` are in ticks; inside a ``Bar`` the onset is
    counted from the bar's start, inside a ``Track`` from the piece's start."""

    onset: int
    pitch: int
    duration: int
    velocity: int = 90

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise MusicError(f"note pitch must be a MIDI number 0..127, got {self.pitch}")
        if self.onset < 0:
            raise MusicError(f"note onset must be >= 0 ticks, got {self.onset}")
        if self.duration <= 0:
            raise MusicError(f"note duration must be > 0 ticks, got {self.duration}")
        if not 1 <= self.velocity <= 127:
            raise MusicError(f"note velocity must be 1..127, got {self.velocity}")

    @property
    def end(self) -> int:
        return self.onset + self.duration


@dataclass(frozen=True)
class Bar:
    """One bar of a monophonic line: notes sorted by onset, none overlapping, all inside
    the bar (``0 <= onset`` and ``end <= meter.bar_ticks``). Gaps are rests."""

    meter: Meter
    notes: tuple[Note, ...] = ()

    def __post_init__(self) -> None:
        previous_end = 0
        for note in self.notes:
            if note.onset < previous_end:
                raise MusicError(
                    f"bar notes overlap or are unsorted at onset {note.onset} ticks "
                    f"(previous note ends at {previous_end})"
                )
            if note.end > self.meter.bar_ticks:
                raise MusicError(
                    f"note at onset {note.onset} lasts {note.duration} ticks, past the end "
                    f"of a {self.meter} bar ({self.meter.bar_ticks} ticks)"
                )
            previous_end = note.end

    @property
    def is_rest(self) -> bool:
        return not self.notes


@dataclass(frozen=True)
class Melody:
    """A monophonic melody: key, tempo and a sequence of bars."""

    key: Key
    tempo_bpm: float
    bars: tuple[Bar, ...]

    @property
    def meter(self) -> Meter:
        """The meter of the first bar (the piece's opening time signature)."""
        return self.bars[0].meter if self.bars else Meter(4, 4)

    def notes_absolute(self) -> list[Note]:
        """All notes with onsets counted from the start of the melody."""
        notes: list[Note] = []
        bar_start = 0
        for bar in self.bars:
            notes.extend(
                Note(bar_start + n.onset, n.pitch, n.duration, n.velocity) for n in bar.notes
            )
            bar_start += bar.meter.bar_ticks
        return notes


@dataclass(frozen=True)
class Track:
    """One part of a finished piece, ready for a MIDI track: name (``melody``, ``chords``,
    ``bass``, ``drums``), General MIDI program 0..127, channel 0..15 (9 is drums), notes
    with onsets from the start of the piece (polyphony allowed), and optional lyrics as
    (tick, syllable) pairs. ``program`` sounds from the start; ``program_changes`` are
    (tick, program) pairs, ticks increasing, from which the part plays another program (a
    section in another palette)."""

    name: str
    program: int
    channel: int
    notes: Sequence[Note]
    lyrics: Sequence[tuple[int, str]] = field(default_factory=tuple)
    program_changes: Sequence[tuple[int, int]] = field(default_factory=tuple)

    def program_at(self, tick: int) -> int:
        """The program sounding at ``tick``."""
        program = self.program
        for change_tick, changed in self.program_changes:
            if change_tick > tick:
                break
            program = changed
        return program
