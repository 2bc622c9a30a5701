"""The offset guard: records a Faust consumer skipped are noticed."""

from cantus.streaming import OffsetGuard


def test_contiguous_offsets_report_nothing():
    guard = OffsetGuard({"t-0": 10}.get)
    assert [guard.take("t-0", offset) for offset in (10, 11, 12)] == [None, None, None]


def test_a_hole_after_the_first_record_is_reported_once():
    guard = OffsetGuard({"t-0": 10}.get)
    assert guard.take("t-0", 10) is None
    assert guard.take("t-0", 15) == (11, 15)
    assert guard.take("t-0", 16) is None


def test_a_hole_before_the_first_record_is_found_from_the_committed_offset():
    guard = OffsetGuard({"t-0": 4}.get)
    assert guard.take("t-0", 6) == (4, 6)


def test_redelivered_records_are_not_holes_and_do_not_move_back():
    guard = OffsetGuard({}.get)
    assert guard.take("t-0", 7) is None  # no committed offset known: trust the first record
    assert guard.take("t-0", 5) is None
    assert guard.take("t-0", 8) is None
    assert guard.take("t-0", 10) == (9, 10)


def test_reset_forgets_positions():
    guard = OffsetGuard({}.get)
    guard.take("t-0", 3)
    guard.reset()
    assert guard.take("t-0", 9) is None


def test_a_dropped_tail_shows_as_a_stalled_partition():
    guard = OffsetGuard({"t-0": 10}.get)
    highwater = {"t-0": 20}.get
    guard.begin("t-0")
    guard.take("t-0", 10)
    assert guard.stalled(["t-0"], highwater, idle_s=0.0) == []  # still being handled
    guard.end("t-0")
    assert guard.stalled(["t-0"], highwater, idle_s=60.0) == []  # not idle long enough
    assert guard.stalled(["t-0"], highwater, idle_s=0.0) == [("t-0", 11)]
    assert guard.stalled(["t-0"], {"t-0": 11}.get, idle_s=0.0) == []  # nothing waiting
