"""Finding a pickup the file does not mark, and keeping it at the end of bar 1."""

from __future__ import annotations

from cantus.music.notes import Bar, Meter, Note
from cantus.music.pickup import estimate_pickup, pickup_bars, right_align_pickup

Q = 480


def _line(lengths: list[int], pitch: int = 67) -> list[Note]:
    notes, onset = [], 0
    for length in lengths:
        notes.append(Note(onset, pitch, length))
        onset += length
    return notes


def test_a_tune_that_starts_on_the_downbeat_keeps_its_barlines():
    # 3/4: half note then quarter, each bar; the half notes fall on tick 0, 1440, ...
    assert estimate_pickup(_line([2 * Q, Q] * 4 + [3 * Q]), Meter(3, 4)) == 0


def test_a_quarter_note_pickup_is_found_from_the_long_notes():
    # The same 3/4 tune after a one-beat pickup: the half notes now start one beat later.
    assert estimate_pickup(_line([Q] + [2 * Q, Q] * 4 + [2 * Q]), Meter(3, 4)) == Q


def test_an_eighth_note_pickup_in_6_8():
    line = _line([240] + [720, 480, 240] * 4 + [1440])
    assert estimate_pickup(line, Meter(6, 8)) == 240


def test_no_notes_no_pickup():
    assert estimate_pickup([], Meter(4, 4)) == 0


def test_right_align_moves_the_pickup_to_the_end_of_the_first_bar():
    notes = _line([Q, 4 * Q])
    moved = right_align_pickup(notes, Q, Meter(4, 4))
    assert [(n.onset, n.duration) for n in moved] == [(3 * Q, Q), (4 * Q, 4 * Q)]
    assert right_align_pickup(notes, 0, Meter(4, 4)) == notes


def test_a_pickup_bar_is_a_first_bar_whose_first_note_starts_after_the_downbeat():
    meter = Meter(3, 4)
    upbeat = Bar(meter, (Note(960, 67, 480, 90),))
    full = Bar(meter, (Note(0, 72, 1440, 90),))
    assert pickup_bars([upbeat, full]) == 1
    assert pickup_bars([full, upbeat]) == 0
    assert pickup_bars([Bar(meter, ()), full]) == 0  # a silent bar is no pickup
    assert pickup_bars([]) == 0
