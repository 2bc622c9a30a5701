"""Lyrics in song form: how the piece's form plan (``cantus.music.form``) shapes its lines.

* A line never crosses a section's end (``section_end``), so each section is a stanza, and
  the rhyme scheme starts again with each section (``stanza_start``).
* A chorus (``CHORUS_LABELS``) whose melody repeats an earlier chorus's (treatment
  ``repeat`` or ``vary``) sings that chorus's words again, line for line, wherever the line
  has as many syllables, strong on the same slots, over as many bars at the same place in
  the section (``repeated_line``): every stress and rhyme guarantee then holds for the copy
  too. A varied phrase with another rhythm gets new words. Verses get new words: their
  context is the lines sung before, so the story moves on.
* The title is the first line of the first chorus; without a chorus, the first line
  (``title_line``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cantus.music.form import FormPlan, Treatment

CHORUS_LABELS = ("chorus", "refrain")


def base_label(label: str) -> str:
    """``chorus''`` → ``chorus``: a section's label without primes, lower-case."""
    return label.rstrip("'").lower()


def is_chorus(label: str) -> bool:
    return base_label(label) in CHORUS_LABELS


def section_end(plan: FormPlan | None, bar: int, total_bars: int) -> int:
    """One past the last bar of the section holding ``bar`` (the piece's end without a
    plan, or past the plan's end). A pickup bar's line goes on into the section it leads
    into: its upbeat is the first line's first words, not a line of its own."""
    if plan is None or bar >= plan.total_bars:
        return total_bars
    return min(total_bars, plan.sections[plan.heard_section_index(bar)].end_bar)


@dataclass(frozen=True)
class SungLine:
    """What a later line needs of an earlier one: where it lies, its melody's shape and its
    words."""

    index: int
    first_bar: int
    bar_count: int
    melody: tuple[tuple[int, int, int, bool], ...]
    """Per slot: (bar offset from the line's first bar, onset in ticks, MIDI pitch, strong)."""
    words: tuple[str, ...]
    syllables: tuple[str, ...]
    rhyme: str = ""
    clauses: tuple[int, ...] = ()
    """Words per clause (``DecodedLine.clauses``)."""


def line_melody(first_bar: int, slots) -> tuple[tuple[int, int, int, bool], ...]:
    """``SungLine.melody`` of a line's slots."""
    return tuple(
        (slot.bar_index - first_bar, slot.onset_ticks, slot.pitch, slot.strong) for slot in slots
    )


def stanza_start(plan: FormPlan | None, first_bar: int, earlier: Sequence[SungLine]) -> int:
    """Index of the first line of the section that a line starting at ``first_bar`` is in
    (a line from a pickup bar in the section it leads into): the rhyme scheme counts from
    there."""
    if plan is None or first_bar >= plan.total_bars:
        return 0
    start = plan.heard_first_bar(plan.heard_section_index(first_bar))
    inside = [line.index for line in earlier if line.first_bar >= start]
    return min(inside) if inside else len(earlier)


def repeated_line(
    plan: FormPlan | None,
    first_bar: int,
    bar_count: int,
    melody: tuple[tuple[int, int, int, bool], ...],
    earlier: Sequence[SungLine],
) -> SungLine | None:
    """The earlier chorus line whose words this line sings again, or None (new words)."""
    if plan is None or first_bar >= plan.total_bars:
        return None
    section = plan.sections[plan.heard_section_index(first_bar)]
    if not is_chorus(section.label) or section.treatment is Treatment.NEW or section.source is None:
        return None
    source = plan.sections[section.source]
    target = source.first_bar + (first_bar - section.first_bar)
    for line in earlier:
        if (
            line.first_bar == target
            and line.bar_count == bar_count
            and _rhythm(line.melody) == _rhythm(melody)
            and line.words
        ):
            return line
    return None


def _rhythm(melody: tuple[tuple[int, int, int, bool], ...]) -> tuple[bool, ...]:
    """What the words of a line depend on: its slots and which of them are strong (the
    pitches may change: a varied chorus sings the same words to a new cadence)."""
    return tuple(strong for _, _, _, strong in melody)


def title_line(
    plan: FormPlan | None, lines: Mapping[int, tuple[int, str]]
) -> tuple[int, str] | None:
    """(index, text) of the title line among ``lines`` (line index → (first bar, text)):
    the first sung line of the first chorus, else the first sung line."""
    sung = sorted((i, bar, text) for i, (bar, text) in lines.items() if text)
    if not sung:
        return None
    if plan is not None:
        for index, bar, text in sung:
            if bar < plan.total_bars and is_chorus(
                plan.sections[plan.heard_section_index(bar)].label
            ):
                return index, text
    return sung[0][0], sung[0][2]
