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
        RenderState(
            events={"melody_bar": {"0": "CgQ="}},
            log=[{"kind": "melody_bar", "index": 0}],
            segments=1,
        ),
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
