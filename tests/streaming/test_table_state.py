"""The per-piece records stream services keep in Faust tables: one note codec, velocity
kept, round trips through the table's plain values, and versions checked."""

from __future__ import annotations

import json

import pytest

from cantus.music.notes import Bar, Meter, Note
from cantus.streaming.table_state import (
    DEFAULT_VELOCITY,
    HarmonyState,
    LyricState,
    MelodyProgress,
    RenderEvent,
    RenderState,
    StateVersionError,
    WrittenLine,
    bar_from_rows,
    note_rows,
    notes_from_rows,
)

BAR = Bar(Meter(3, 4), (Note(0, 60, 480, 70), Note(480, 64, 960, 100)))


def _through_the_changelog(value: dict) -> dict:
    return json.loads(json.dumps(value))  # what a Faust changelog gives back


def test_notes_keep_their_velocity() -> None:
    assert bar_from_rows(note_rows(BAR.notes), BAR.meter) == BAR
    # rows stored before velocities were kept (the lyric service's) read with the default
    assert notes_from_rows([[0, 60, 480]]) == (Note(0, 60, 480, DEFAULT_VELOCITY),)


@pytest.mark.parametrize(
    "record",
    [
        MelodyProgress(bars=[note_rows(BAR.notes), []], done=True),
        HarmonyState(
            next_index=3,
            pending=(2, note_rows(BAR.notes)),
            history=[(note_rows(BAR.notes), [(0, 0), (4, 1), (-1, 0)])],
            history_complete=False,
            voicing=[55, 59, 62],
            melody_before=[64],
        ),
        LyricState(
            bars={"4": note_rows(BAR.notes)},
            line_start=4,
            lines={"0": WrittenLine(words=["the", "sea"], syllables=["the", "sea"], rhyme="IY")},
        ),
        RenderState(received={"melody_bar": [(0, 3), (5, 5)]}, segments=1),
        RenderEvent(event="CgQ=", log={"kind": "melody_bar", "index": 0}),
    ],
    ids=lambda record: type(record).__name__,
)
def test_records_round_trip_through_the_table(record) -> None:
    assert type(record).from_table(_through_the_changelog(record.to_table())) == record


def test_a_missing_value_is_a_fresh_record() -> None:
    assert HarmonyState.from_table(None) == HarmonyState()
    assert MelodyProgress.from_table(None).bars == []


def test_values_from_before_versions_read_as_version_1() -> None:
    old = {"bars": [[[0, 60, 480, 90]]], "done": False}  # the melody service's shape then
    assert MelodyProgress.from_table(old).bars == [[[0, 60, 480, 90]]]


def test_another_version_or_shape_is_refused_by_name() -> None:
    with pytest.raises(StateVersionError, match="MelodyProgress: table value of version 2"):
        MelodyProgress.from_table({"version": 2, "bars": []})
    with pytest.raises(ValueError, match="cursor"):
        MelodyProgress.from_table({"bars": [], "cursor": 3})
    with pytest.raises(StateVersionError, match="mapping"):
        LyricState.from_table([1, 2])


def test_the_render_record_of_before_is_refused_by_name() -> None:
    """RenderState version 1 held every event of the piece; version 2 holds their indices."""
    old = {"events": {"melody_bar": {"0": "CgQ="}}, "log": [], "segments": 0}
    with pytest.raises(StateVersionError, match="RenderState: table value of version 1"):
        RenderState.from_table(old)


def test_the_render_record_keeps_its_indices_as_ranges() -> None:
    state = RenderState()
    for index in (0, 1, 2, 5, 4, 3, 2, 9):  # out of order and redelivered
        state.add("melody_bar", index)
    assert state.received == {"melody_bar": [(0, 5), (9, 9)]}
    assert state.holds("melody_bar", 4) and not state.holds("melody_bar", 7)
    assert not state.holds("harmony_bar", 0)
    assert state.indices("melody_bar") == [0, 1, 2, 3, 4, 5, 9]
    assert state.event_count() == 7
