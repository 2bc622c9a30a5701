"""What a stream service keeps per piece in its Faust table: one typed, versioned record per
service, and one codec for notes.

A Faust table holds plain JSON-like values (its changelog topic carries them), so each
record turns into dicts and lists (``to_table``) and back (``from_table``). Every record
carries ``version``: a value written by another version of the record is refused by name
instead of being misread after an upgrade (values written before versions existed read as
version 1, the shapes they had). Notes travel as ``[onset, pitch, duration, velocity]``
rows (``note_rows``, ``notes_from_rows``), velocity included, in every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from cantus.music.notes import Bar, Meter, Note

STATE_VERSION = 1
DEFAULT_VELOCITY = 90
"""Velocity of a note row written without one (the lyric service's rows before version 1)."""

NoteRow = list[int]
"""``[onset, pitch, duration, velocity]`` in ticks and MIDI numbers."""


def note_rows(notes: Iterable[Note]) -> list[NoteRow]:
    return [[n.onset, n.pitch, n.duration, n.velocity] for n in notes]


def notes_from_rows(rows: Iterable[Sequence[int]]) -> tuple[Note, ...]:
    return tuple(
        Note(row[0], row[1], row[2], row[3] if len(row) > 3 else DEFAULT_VELOCITY) for row in rows
    )


def bar_from_rows(rows: Iterable[Sequence[int]], meter: Meter) -> Bar:
    return Bar(meter, notes_from_rows(rows))


class StateVersionError(ValueError):
    """A table value written by another version of its record."""


class TableState(BaseModel):
    """Base of the per-piece records: ``from_table(table.get(piece_id))`` to read one (a
    fresh record when there is none), ``table[piece_id] = record.to_table()`` to store it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    version: int = STATE_VERSION

    @classmethod
    def from_table(cls, value: Any) -> Self:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise StateVersionError(f"{cls.__name__}: a table value must be a mapping")
        version = value.get("version", 1)
        expected = cls.model_fields["version"].default
        if version != expected:
            raise StateVersionError(
                f"{cls.__name__}: table value of version {version}, this code reads "
                f"version {expected}"
            )
        return cls.model_validate(value)

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MelodyProgress(TableState):
    """The melody service's piece: the bars published so far, and whether it is complete
    (a restarted service resumes after the last recorded bar)."""

    bars: list[list[NoteRow]] = Field(default_factory=list)
    done: bool = False


class HarmonyState(TableState):
    """The harmony service's piece: the next bar index it expects, the bar held back for its
    lookahead (``pending``: index and notes), the recent bars with their chords for the
    model's context (``history``: notes and ``[chord class, inversion]`` per beat, relative
    to the piece's key; ``history_complete`` until older bars are dropped), the last
    chord's voicing and the melody just before the next bar."""

    next_index: int = 0
    pending: tuple[int, list[NoteRow]] | None = None
    history: list[tuple[list[NoteRow], list[tuple[int, int]]]] = Field(default_factory=list)
    history_complete: bool = True
    voicing: list[int] | None = None
    melody_before: list[int] = Field(default_factory=list)


class RenderState(TableState):
    """The render service's piece: which input events it holds (kind → ranges of indices,
    first and last inclusive), the segments published, and whether the piece is complete
    (then a tombstone that holds nothing, so late duplicates are ignored).

    The events themselves are ``RenderEvent`` records, one key each (``render_event_key``),
    so that each event is written to the changelog once. A record that held every event
    was rewritten whole by each new one: its changelog grew with the square of the piece's
    length (27 MiB for a 160-bar piece's melody and harmony alone), and a broker that keeps
    every record (Tansu's memory engine compacts nothing) kept all of it."""

    version: int = 2
    received: dict[str, list[tuple[int, int]]] = Field(default_factory=dict)
    segments: int = 0
    completed: bool = False

    def holds(self, kind: str, index: int) -> bool:
        return any(first <= index <= last for first, last in self.received.get(kind, ()))

    def add(self, kind: str, index: int) -> None:
        """Note that the event (``kind``, ``index``) is held, merging adjacent ranges (bars
        come in order, so each kind stays one range)."""
        ranges = sorted([*self.received.get(kind, []), (index, index)])
        merged: list[tuple[int, int]] = []
        for first, last in ranges:
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        self.received[kind] = merged

    def indices(self, kind: str) -> list[int]:
        return [i for first, last in self.received.get(kind, ()) for i in range(first, last + 1)]

    def event_count(self) -> int:
        return sum(last - first + 1 for ranges in self.received.values() for first, last in ranges)


class RenderEvent(TableState):
    """One entry of a piece in the render service's event table: an input event (base64
    protobuf: the render needs whole events, spec and all; empty for a segment it
    published) and its entry in the event log that piece.json reports."""

    event: str = ""
    log: dict[str, Any] = Field(default_factory=dict)


def render_event_key(piece_id: str, kind: str, index: int) -> str:
    """The event table's key of a piece's event (or of a segment it published)."""
    return f"{piece_id}/{kind}/{index}"


class WrittenLine(BaseModel):
    """A lyric line written: its words, one text per slot, and its rhyme key (what later
    lines rhyme with and avoid repeating)."""

    model_config = ConfigDict(extra="forbid")

    words: list[str]
    syllables: list[str]
    rhyme: str = ""
    first_bar: int = -1
    bar_count: int = 0
    melody: list[tuple[int, int, int, bool]] = Field(default_factory=list)
    """Per slot: bar offset, onset in ticks, pitch, strong (``song_form.SungLine``): a
    repeated chorus line is recognised by it."""
    clauses: list[int] = Field(default_factory=list)
    """Words per clause (``DecodedLine.clauses``; empty: one): the LM reads the line's
    clauses as lines, so a restarted service prompts as the first run did."""


class CiLinePlan(BaseModel):
    """How a line carries its section's ci stanza (``cantus.lyrics.ci.CiLine``), fitted
    when the section's bars were all in, and the line it rhymes with."""

    model_config = ConfigDict(extra="forbid")

    stanza: str
    merged: list[int] = Field(default_factory=list)
    clauses: list[int] = Field(default_factory=list)
    rhymes: list[bool] = Field(default_factory=list)
    rhymes_with: int | None = None
    is_anchor: bool = False


class LyricState(TableState):
    """The lyric service's piece: melody bars not yet in a written line (by bar index, as
    text: table keys are strings), the first bar of the next line, and the lines written
    (by line index)."""

    bars: dict[str, list[NoteRow]] = Field(default_factory=dict)
    line_start: int = 0
    lines: dict[str, WrittenLine] = Field(default_factory=dict)
    ci_sections: dict[str, str] = Field(default_factory=dict)
    """Group of sections (index in ``ci.ci_groups``) → the last ci stanza it carries ("":
    none), once decided: the next group prefers the 下片 after a 上片."""
    ci_lines: dict[str, CiLinePlan] = Field(default_factory=dict)
    """First bar of a line → how it carries its section's stanza."""
    ci_shapes: dict[str, str] = Field(default_factory=dict)
    """``ci.group_shape`` of each group that carries a stanza → the stanza's name."""
