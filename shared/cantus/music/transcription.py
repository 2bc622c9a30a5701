"""Turning timed notes from any source (MIDI files, music21 scores) into a ``Melody``.

The steps every reader shares: measure how much of a line is off the sixteenth grid,
snap it to the grid, reduce it to one voice (the highest sounding note), cut it into
bars at the barlines of a meter map, and estimate a key from pitch content when the
source names none. All times here are ticks at ``TICKS_PER_QUARTER`` (480).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from cantus.music.key_finding import ALL_KEYS, key_correlations
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Meter, Mode, MusicError, Note

GRID_TICKS = TICKS_PER_QUARTER // 4
"""The quantization grid: one sixteenth note, 120 ticks."""


@dataclass(frozen=True)
class TimedNote:
    """A note as a source gives it, before quantization: ``onset`` and ``end`` in ticks from
    the start of the piece (exact fractions, possibly off the grid), MIDI ``pitch`` 0..127."""

    onset: Fraction
    end: Fraction
    pitch: int
    velocity: int = 90


def off_grid_fraction(notes: Sequence[TimedNote], grid_ticks: int = GRID_TICKS) -> float:
    """Fraction 0..1 of notes whose onset or end is not a multiple of ``grid_ticks``."""
    if not notes:
        return 0.0
    off = sum(1 for n in notes if n.onset % grid_ticks or n.end % grid_ticks)
    return off / len(notes)


def _round_to_grid(ticks: Fraction, grid_ticks: int) -> int:
    # Round half up (not banker's rounding) so equal inputs always land the same way.
    return math.floor(ticks / grid_ticks + Fraction(1, 2)) * grid_ticks


def snap_to_grid(notes: Iterable[TimedNote], grid_ticks: int = GRID_TICKS) -> list[Note]:
    """Snap onsets and ends to the nearest grid line (ticks). A note that would collapse to
    zero length keeps one grid step, so no note is lost; overlaps this creates are left for
    ``skyline`` to resolve. Negative onsets (never expected) are clamped to 0."""
    snapped = []
    for note in notes:
        onset = max(0, _round_to_grid(note.onset, grid_ticks))
        end = max(onset + grid_ticks, _round_to_grid(note.end, grid_ticks))
        snapped.append(Note(onset, note.pitch, end - onset, note.velocity))
    return snapped


def skyline(notes: Iterable[Note]) -> tuple[list[Note], int]:
    """Reduce notes (absolute onsets, ticks) to one voice by keeping the highest sounding
    note: a note is kept when, at its onset, no other note of higher pitch sounds; a kept
    note is cut short where the next kept note begins. Returns the monophonic notes and the
    number of notes dropped because an independent voice sounded above them (the lower
    notes of a chord, struck together with a kept note, are not counted)."""
    ordered = sorted(notes, key=lambda n: (n.onset, -n.pitch, -n.duration))
    kept: list[Note] = []
    dropped_voices = 0
    # ``sounding`` holds every note (kept or not) that may still sound; pruned as time moves.
    sounding: list[Note] = []
    index = 0
    while index < len(ordered):
        onset = ordered[index].onset
        group_end = index
        while group_end < len(ordered) and ordered[group_end].onset == onset:
            group_end += 1
        group = ordered[index:group_end]
        index = group_end
        sounding = [n for n in sounding if n.end > onset]
        top = group[0]
        if any(n.pitch > top.pitch for n in sounding):
            dropped_voices += len(group)
        else:
            if kept and kept[-1].end > onset:
                previous = kept[-1]
                kept[-1] = Note(
                    previous.onset, previous.pitch, onset - previous.onset, previous.velocity
                )
            kept.append(top)
        sounding.extend(group)
    return kept, dropped_voices


def bar_starts(
    meter_changes: Sequence[tuple[int, Meter]], end_tick: int
) -> list[tuple[int, Meter]]:
    """Bar start ticks and meters covering ``0 .. end_tick``. ``meter_changes`` lists
    (tick, meter) time-signature events sorted by tick; the first meter also applies before
    its tick, and a change that falls inside a bar takes effect at the next barline (which
    is where every sane file puts it)."""
    if not meter_changes:
        raise MusicError("no meter given: need at least one (tick, meter) time signature")
    bars: list[tuple[int, Meter]] = []
    change_index = 0
    meter = meter_changes[0][1]
    start = 0
    while start < end_tick:
        while change_index + 1 < len(meter_changes) and meter_changes[change_index + 1][0] <= start:
            change_index += 1
            meter = meter_changes[change_index][1]
        bars.append((start, meter))
        start += meter.bar_ticks
    return bars


def notes_to_bars(notes: Sequence[Note], meter_changes: Sequence[tuple[int, Meter]]) -> list[Bar]:
    """Cut monophonic notes (absolute onsets, ticks, sorted, non-overlapping) into bars by the
    meter map, splitting every note that crosses a barline into one piece per bar. Returns
    bars up to the one holding the last note end (trailing empty bars never appear)."""
    if not notes:
        return []
    end_tick = max(n.end for n in notes)
    layout = bar_starts(meter_changes, end_tick)
    bar_notes: list[list[Note]] = [[] for _ in layout]
    bar_index = 0
    for note in notes:
        onset = note.onset
        while onset < note.end:
            while layout[bar_index][0] + layout[bar_index][1].bar_ticks <= onset:
                bar_index += 1
            bar_start, meter = layout[bar_index]
            piece_end = min(note.end, bar_start + meter.bar_ticks)
            bar_notes[bar_index].append(
                Note(onset - bar_start, note.pitch, piece_end - onset, note.velocity)
            )
            onset = piece_end
    return [Bar(meter, tuple(ns)) for (_, meter), ns in zip(layout, bar_notes, strict=True)]


def drop_trailing_empty_bars(bars: Sequence[Bar]) -> list[Bar]:
    """The bars without the run of note-less bars at the end."""
    last = len(bars)
    while last > 0 and bars[last - 1].is_rest:
        last -= 1
    return list(bars[:last])


def estimate_key(notes: Iterable[Note], *, candidates: Iterable[Key] | None = None) -> Key:
    """Estimate the key of notes by the Krumhansl-Schmuckler method: correlate the
    duration-weighted pitch-class histogram with the major and minor profiles rotated to
    each tonic (``key_finding.key_correlations``, Krumhansl-Kessler profiles) and return the
    best key. ``candidates`` restricts the choice (e.g. to the major and relative minor of a
    known key signature); default all 24 keys, ties going to the earlier in
    ``key_finding.ALL_KEYS``. With no notes the first candidate (C major by default) is
    returned."""
    keys = tuple(candidates) if candidates is not None else ALL_KEYS
    if not keys:
        raise MusicError("estimate_key needs at least one candidate key")
    best_key, best_score = keys[0], -math.inf
    for key, score in zip(keys, key_correlations(notes, keys), strict=True):
        if score > best_score:
            best_key, best_score = key, score
    return best_key


def key_signature_candidates(sharps: int) -> tuple[Key, Key]:
    """The major key and its relative minor for a key signature of ``sharps`` sharps
    (negative: flats), -7..7."""
    major_tonic = (sharps * 7) % 12
    return Key(major_tonic, Mode.MAJOR), Key((major_tonic + 9) % 12, Mode.MINOR)
