"""REMI-like tokens for monophonic melodies: the melody model's words.

A melody with its controls is written as::

    BOS KEY_<pc> MODE_<mode> METER_<n/d> TEMPO_<bucket> STYLE_<style> ENERGY_<energy>
    BAR POS_<p> PITCH_<m> DUR_<d>  POS_<p> PITCH_<m> DUR_<d> ...
    BAR ...
    EOS

Time is on a sixteenth-note grid (``GRID_TICKS`` = 120 ticks). ``POS_p`` is a note's onset in
sixteenths from the start of its bar, ``DUR_d`` its length in sixteenths; rests are the gaps
between notes, so an empty bar (``BAR BAR``) is a whole-bar rest. Velocity is not encoded
(decoded notes get ``DEFAULT_VELOCITY``).

Vocabulary, 205 tokens (ids in this order; ``Vocabulary.to_json`` stores the list beside a
checkpoint):

==============  ============================================  =====
token           meaning                                       count
==============  ============================================  =====
PAD             padding in training batches (never sampled)   1
BOS, EOS, BAR   start, end, start of a bar                    3
KEY_0..KEY_11   tonic pitch class (0 = C)                     12
MODE_m          major, minor                                  2
METER_n/d       one per ``SUPPORTED_METERS``                  12
TEMPO_0..7      tempo bucket (``controls.tempo_bucket``)      8
STYLE_s         folk, celtic, chorale                         3
ENERGY_e        low, mid, high                                3
POS_0..47       onset in sixteenths from the bar start        48
PITCH_36..96    MIDI pitch                                    61
DUR_1..48       duration in sixteenths                        48
NOKEY, NOMODE   key and mode not given (``NO_KEY``)           2
FIM_SUF         the bars after a gap follow (fill-in-middle)  1
FIM_MID         the gap's bars follow (fill-in-middle)        1
==============  ============================================  =====

Fill-in-the-middle (FIM, as code LMs are trained: Bavarian et al. 2022, in their
"suffix, prefix, middle" order): a gap between given bars is written as ::

    <controls> FIM_SUF <bars after> FIM_MID <bars before> <the gap's bars> EOS

so the model reads both sides before it writes the gap, left to right as always, and the
gap continues the bars before it directly (``MelodyTokenizer.infill_prompt`` builds the
part up to the gap).

Bars are at most 48 sixteenths (12 quarter notes) long. ``BarAssembler`` turns a stream of
sampled tokens back into bars, each returned the moment the next ``BAR`` or ``EOS`` closes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from cantus.melody.controls import (
    N_TEMPO_BUCKETS,
    Controls,
    bucket_tempo,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, MusicError, Note
from cantus.music.styles import SUPPORTED_METERS, Energy, Style

GRID_TICKS = 120
"""Ticks per grid step (a sixteenth note at 480 ticks per quarter)."""
MAX_BAR_STEPS = 48
"""Longest bar in grid steps (12 quarter notes)."""
PITCH_RANGE = (36, 96)
"""Lowest and highest MIDI pitch the vocabulary can write (inclusive)."""
DEFAULT_VELOCITY = 90
"""Velocity of decoded notes (velocity is not tokenized)."""

PAD, BOS, EOS, BAR = "PAD", "BOS", "EOS", "BAR"
NO_KEY, NO_MODE = "NOKEY", "NOMODE"
"""Stand-ins for the KEY and MODE tokens of a prefix whose key is not given: training drops a
tune's key to them now and then (control dropout), and classifier-free guidance decodes a
key-free twin of each sequence with them. Appended after the other tokens, so the ids of a
vocabulary without them do not move, and named without ``KEY_``/``MODE_`` so the token
groups stay contiguous."""
FIM_SUFFIX, FIM_MIDDLE = "FIM_SUF", "FIM_MID"
"""Fill-in-the-middle markers (module docstring), appended last for the same reason."""
PREFIX_LENGTH = 7
"""Tokens in the control prefix: BOS KEY MODE METER TEMPO STYLE ENERGY."""


def _default_tokens() -> list[str]:
    tokens = [PAD, BOS, EOS, BAR]
    tokens += [f"KEY_{pc}" for pc in range(12)]
    tokens += [f"MODE_{mode.value}" for mode in Mode]
    tokens += [f"METER_{meter}" for meter in SUPPORTED_METERS]
    tokens += [f"TEMPO_{bucket}" for bucket in range(N_TEMPO_BUCKETS)]
    tokens += [f"STYLE_{style.value}" for style in Style]
    tokens += [f"ENERGY_{energy.value}" for energy in Energy]
    tokens += [f"POS_{p}" for p in range(MAX_BAR_STEPS)]
    tokens += [f"PITCH_{m}" for m in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1)]
    tokens += [f"DUR_{d}" for d in range(1, MAX_BAR_STEPS + 1)]
    tokens += [NO_KEY, NO_MODE]
    tokens += [FIM_SUFFIX, FIM_MIDDLE]
    return tokens


def vocabulary_path(checkpoint: Path) -> Path:
    """The vocabulary saved beside a checkpoint: ``melody_lm.pt`` → ``melody_lm.vocab.json``
    (read by services that tokenize without loading the model)."""
    return Path(checkpoint).with_suffix(".vocab.json")


class Contour(NamedTuple):
    """Where the pitches sit in the vocabulary, for the melody model's contour embedding
    (``cantus.melody.model``): ``first_pitch_id`` (the lowest pitch's token id), ``n_pitches``
    consecutive pitch tokens a semitone apart, and ``reset_ids``: tokens after which the next
    pitch does not continue the one before (fill-in-the-middle markers: the bars after a gap
    come first)."""

    first_pitch_id: int
    n_pitches: int
    reset_ids: tuple[int, ...]


class Tonality(NamedTuple):
    """Where the key sits in the vocabulary, for the melody model's scale-degree embedding
    (``cantus.melody.model``): ``first_key_id`` (``KEY_0``'s id; ``KEY_0..KEY_11`` follow a
    semitone apart), ``mode_ids`` (``MODE_major``, ``MODE_minor``) and ``lowest_pitch``, the
    MIDI pitch of ``Contour.first_pitch_id``. A prefix with ``NOKEY NOMODE`` has no key."""

    first_key_id: int
    mode_ids: tuple[int, int]
    lowest_pitch: int


@dataclass(frozen=True)
class Vocabulary:
    """Token strings and their ids, with the id of the first token of each group."""

    tokens: tuple[str, ...] = field(default_factory=lambda: tuple(_default_tokens()))
    # caches derived from ``tokens``, set in __post_init__
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _groups: dict[str, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {token: i for i, token in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            raise MusicError("vocabulary has duplicate tokens")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_groups", {})  # every new decode grammar asks for 6 groups
        for needed in (PAD, BOS, EOS, BAR, "KEY_0", "POS_0", "DUR_1", f"PITCH_{PITCH_RANGE[0]}"):
            if needed not in index:
                raise MusicError(f"vocabulary lacks token {needed}")

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """Id of a token string; ``MusicError`` if unknown."""
        try:
            return self._index[token]
        except KeyError:
            raise MusicError(f"unknown token {token!r}") from None

    def token(self, token_id: int) -> str:
        if not 0 <= token_id < len(self.tokens):
            raise MusicError(f"token id {token_id} is outside the vocabulary (0..{len(self) - 1})")
        return self.tokens[token_id]

    def group(self, prefix: str) -> list[int]:
        """Ids of all tokens starting with ``prefix`` (e.g. ``"METER_"``), in id order."""
        groups = self._groups
        if prefix not in groups:
            groups[prefix] = [i for i, token in enumerate(self.tokens) if token.startswith(prefix)]
        return list(groups[prefix])

    # Frequently used ids and group bases (groups are contiguous).
    @property
    def pad(self) -> int:
        return self.id(PAD)

    @property
    def bos(self) -> int:
        return self.id(BOS)

    @property
    def eos(self) -> int:
        return self.id(EOS)

    @property
    def bar(self) -> int:
        return self.id(BAR)

    def pos(self, step: int) -> int:
        """Id of ``POS_step`` (step 0..47)."""
        return self.id(f"POS_{step}")

    def pitch(self, midi: int) -> int:
        """Id of ``PITCH_midi`` (midi 36..96)."""
        return self.id(f"PITCH_{midi}")

    def dur(self, steps: int) -> int:
        """Id of ``DUR_steps`` (steps 1..48)."""
        return self.id(f"DUR_{steps}")

    def contour(self) -> Contour:
        """The pitch tokens and the fill-in-the-middle markers, for the model's contour
        embedding (``MelodyLMConfig.contour``)."""
        low, high = PITCH_RANGE
        resets = tuple(self.id(token) for token in (FIM_SUFFIX, FIM_MIDDLE) if token in self.tokens)
        return Contour(self.pitch(low), high - low + 1, resets)

    def tonality(self) -> Tonality:
        """The key and mode tokens, for the model's scale-degree embedding
        (``MelodyLMConfig.tonality``)."""
        modes = (self.id(f"MODE_{Mode.MAJOR.value}"), self.id(f"MODE_{Mode.MINOR.value}"))
        return Tonality(self.id("KEY_0"), modes, PITCH_RANGE[0])

    def to_json(self) -> str:
        return json.dumps({"format": "cantus-melody-vocab/1", "tokens": list(self.tokens)})

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        data = json.loads(text)
        if data.get("format") != "cantus-melody-vocab/1":
            raise MusicError(f"not a melody vocabulary: format {data.get('format')!r}")
        return cls(tuple(data["tokens"]))


def _kind_and_value(token: str) -> tuple[str, str]:
    kind, _, value = token.partition("_")
    return kind, value


class MelodyTokenizer:
    """Encode (melody, controls) to token ids and back."""

    def __init__(self, vocab: Vocabulary | None = None) -> None:
        self.vocab = vocab or Vocabulary()

    # --- encoding ---------------------------------------------------------------------------

    def controls_prefix(self, controls: Controls) -> list[int]:
        """The 7 control tokens: BOS KEY MODE METER TEMPO STYLE ENERGY."""
        if controls.meter not in SUPPORTED_METERS:
            raise MusicError(
                f"meter {controls.meter} has no token (supported: "
                f"{', '.join(str(m) for m in SUPPORTED_METERS)})"
            )
        v = self.vocab
        return [
            v.bos,
            v.id(f"KEY_{controls.key.tonic}"),
            v.id(f"MODE_{controls.key.mode.value}"),
            v.id(f"METER_{controls.meter}"),
            v.id(f"TEMPO_{controls.tempo_bucket}"),
            v.id(f"STYLE_{Style(controls.style).value}"),
            v.id(f"ENERGY_{Energy(controls.energy).value}"),
        ]

    def prompt(self, controls: Controls, bars: Iterable[Bar] = ()) -> list[int]:
        """The control prefix then ``bars``: what the model continues with the next ``BAR``."""
        tokens = self.controls_prefix(controls)
        for bar in bars:
            tokens += self.bar_to_tokens(bar)
        return tokens

    def infill_prompt(
        self, controls: Controls, before: Iterable[Bar], after: Iterable[Bar]
    ) -> list[int]:
        """A fill-in-the-middle prompt: controls, ``FIM_SUF``, ``after``, ``FIM_MID``,
        ``before``; the model continues with the gap's bars (``BAR`` first), then ``EOS``.
        ``MusicError`` if the vocabulary has no FIM markers (a checkpoint older than them)."""
        if FIM_SUFFIX not in self.vocab.tokens:
            raise MusicError("this melody vocabulary has no fill-in-the-middle tokens")
        tokens = self.controls_prefix(controls)
        tokens.append(self.vocab.id(FIM_SUFFIX))
        for bar in after:
            tokens += self.bar_to_tokens(bar)
        tokens.append(self.vocab.id(FIM_MIDDLE))
        for bar in before:
            tokens += self.bar_to_tokens(bar)
        return tokens

    @property
    def has_infill(self) -> bool:
        """Whether the vocabulary (and so the model trained on it) knows the FIM markers."""
        return FIM_MIDDLE in self.vocab.tokens

    def bar_to_tokens(self, bar: Bar) -> list[int]:
        """``BAR`` then ``POS PITCH DUR`` per note. ``MusicError`` if a note is off the
        sixteenth grid, out of the pitch range, or the bar is longer than 48 sixteenths."""
        if bar.meter.bar_ticks > MAX_BAR_STEPS * GRID_TICKS or bar.meter.bar_ticks % GRID_TICKS:
            raise MusicError(f"a {bar.meter} bar does not fit the tokenizer's sixteenth grid")
        v = self.vocab
        tokens = [v.bar]
        for note in bar.notes:
            if note.onset % GRID_TICKS or note.duration % GRID_TICKS:
                raise MusicError(
                    f"note at {note.onset} ticks lasting {note.duration} is off the "
                    f"sixteenth grid ({GRID_TICKS} ticks)"
                )
            if not PITCH_RANGE[0] <= note.pitch <= PITCH_RANGE[1]:
                raise MusicError(
                    f"pitch {note.pitch} outside the tokenizer's range "
                    f"{PITCH_RANGE[0]}..{PITCH_RANGE[1]}"
                )
            tokens += [
                v.pos(note.onset // GRID_TICKS),
                v.pitch(note.pitch),
                v.dur(note.duration // GRID_TICKS),
            ]
        return tokens

    def encode(self, melody: Melody, controls: Controls, *, end: bool = True) -> list[int]:
        """Controls prefix, every bar, then ``EOS`` (left out with ``end=False``, for a prompt
        the model continues). All bars must be in ``controls.meter``."""
        tokens = self.controls_prefix(controls)
        for index, bar in enumerate(melody.bars):
            if bar.meter != controls.meter:
                raise MusicError(
                    f"bar {index} is in {bar.meter} but the controls say {controls.meter}"
                )
            tokens += self.bar_to_tokens(bar)
        if end:
            tokens.append(self.vocab.eos)
        return tokens

    # --- decoding ---------------------------------------------------------------------------

    def decode_controls(self, tokens: Sequence[int]) -> Controls:
        """Controls from the first 7 tokens; ``MusicError`` if they are not a control prefix."""
        if len(tokens) < PREFIX_LENGTH:
            raise MusicError(
                f"a sequence needs the {PREFIX_LENGTH}-token control prefix, "
                f"got {len(tokens)} tokens"
            )
        names = [self.vocab.token(t) for t in tokens[:PREFIX_LENGTH]]
        expected = ("BOS", "KEY", "MODE", "METER", "TEMPO", "STYLE", "ENERGY")
        values: dict[str, str] = {}
        for position, (name, kind) in enumerate(zip(names, expected, strict=True)):
            found_kind, value = _kind_and_value(name)
            if found_kind != kind:
                raise MusicError(f"token {position} is {name}, expected a {kind} token")
            values[kind] = value
        return Controls(
            key=Key(int(values["KEY"]), Mode(values["MODE"])),
            meter=Meter.parse(values["METER"]),
            tempo_bpm=bucket_tempo(int(values["TEMPO"])),
            style=Style(values["STYLE"]),
            energy=Energy(values["ENERGY"]),
        )

    def decode(self, tokens: Sequence[int]) -> tuple[Controls, Melody]:
        """Controls and melody of a token sequence (``EOS`` optional at the very end).
        The melody's tempo is the tempo bucket's representative. ``MusicError`` on any
        sequence that breaks the grammar in the module docstring."""
        controls = self.decode_controls(tokens)
        assembler = BarAssembler(self.vocab, controls.meter)
        bars: list[Bar] = []
        body = list(tokens[PREFIX_LENGTH:])
        for index, token in enumerate(body):
            if assembler.finished:
                raise MusicError(f"token {PREFIX_LENGTH + index} follows EOS")
            bar = assembler.push(token)
            if bar is not None:
                bars.append(bar)
        if not assembler.finished:
            bars.extend(assembler.finish(strict=True))
        melody = Melody(key=controls.key, tempo_bpm=controls.tempo_bpm, bars=tuple(bars))
        return controls, melody

    def bar_assembler(self, meter: Meter | None = None) -> BarAssembler:
        """A streaming decoder of bars (see ``BarAssembler``)."""
        return BarAssembler(self.vocab, meter)


class BarAssembler:
    """Turns sampled tokens into bars as they arrive.

    ``push(token_id)`` returns a ``Bar`` exactly when a bar is complete: when the next ``BAR``
    or the ``EOS`` arrives. Control tokens before the first ``BAR`` are accepted (a ``METER``
    token sets the meter when none was given). ``finish()`` closes the stream early and returns
    the open bar, if any. Out-of-grammar tokens raise ``MusicError``.
    """

    def __init__(self, vocab: Vocabulary, meter: Meter | None = None) -> None:
        self.vocab = vocab
        self.meter = meter
        self.finished = False
        self._notes: list[Note] | None = None  # None: no bar open yet
        self._pending: list[int] = []  # POS [, PITCH] of the note being read, in grid steps/midi

    def push(self, token_id: int) -> Bar | None:
        if self.finished:
            raise MusicError("token after EOS")
        name = self.vocab.token(token_id)
        kind, value = _kind_and_value(name)
        if kind in ("BOS", "KEY", "MODE", "TEMPO", "STYLE", "ENERGY", "METER"):
            if self._notes is not None:
                raise MusicError(f"control token {name} inside the melody")
            if kind == "METER" and self.meter is None:
                self.meter = Meter.parse(value)
            return None
        if kind == "BAR":
            closed = self._close(strict=True)
            self._notes = []
            return closed
        if kind == "EOS":
            closed = self._close(strict=True)
            self.finished = True
            return closed
        if self._notes is None:
            raise MusicError(f"{name} before the first BAR")
        expected = ("POS", "PITCH", "DUR")[len(self._pending)]
        if kind != expected:
            raise MusicError(f"{name} where a {expected} token was expected")
        if kind == "DUR":
            self._add_note(self._pending[0], self._pending[1], int(value))
            self._pending = []
        else:
            self._pending.append(int(value))
        return None

    def finish(self, *, strict: bool = False) -> list[Bar]:
        """End the stream: the open bar (a half-written last note is dropped unless
        ``strict``, which raises ``MusicError`` instead), or nothing."""
        if self.finished:
            return []
        if not strict:
            self._pending = []
        closed = self._close(strict=strict)
        self.finished = True
        return [closed] if closed is not None else []

    def _add_note(self, pos: int, pitch: int, dur: int) -> None:
        assert self._notes is not None
        if self.meter is None:
            raise MusicError("no meter: give one to the assembler or a METER token first")
        bar_steps = self.meter.bar_ticks // GRID_TICKS
        previous_end = self._notes[-1].end // GRID_TICKS if self._notes else 0
        if pos < previous_end:
            raise MusicError(f"POS_{pos} starts before the previous note ends ({previous_end})")
        if pos + dur > bar_steps:
            raise MusicError(f"note POS_{pos} DUR_{dur} runs past the end of a {self.meter} bar")
        self._notes.append(Note(pos * GRID_TICKS, pitch, dur * GRID_TICKS, DEFAULT_VELOCITY))

    def _close(self, *, strict: bool) -> Bar | None:
        if self._pending:
            raise MusicError("bar closed in the middle of a note (POS/PITCH without DUR)")
        if self._notes is None:
            return None
        if self.meter is None:
            raise MusicError("no meter: give one to the assembler or a METER token first")
        bar = Bar(self.meter, tuple(self._notes))
        self._notes = None
        return bar


def snap_to_grid(melody: Melody) -> Melody:
    """The melody with onsets and ends rounded to the nearest sixteenth (for triplets and
    grace notes in a corpus). Notes that collapse to nothing or would overlap the previous
    note are dropped; a note ending past the bar is cut at the bar line."""
    bars = []
    for bar in melody.bars:
        bar_steps = bar.meter.bar_ticks // GRID_TICKS
        notes: list[Note] = []
        previous_end = 0
        for note in bar.notes:
            start = round(note.onset / GRID_TICKS)
            end = min(round(note.end / GRID_TICKS), bar_steps)
            start = max(start, previous_end)
            if end <= start:
                continue
            notes.append(
                Note(start * GRID_TICKS, note.pitch, (end - start) * GRID_TICKS, note.velocity)
            )
            previous_end = end
        bars.append(Bar(bar.meter, tuple(notes)))
    return Melody(melody.key, melody.tempo_bpm, tuple(bars))
