"""The infilling evaluation's measures on hand-made bars: join intervals at an edge, the
corpus's bar-line intervals, the importance estimate's log-mean-exp."""

from __future__ import annotations

import math

import pytest

from cantus.eval.infill import JoinStats, bar_line_intervals, join_interval
from cantus.melody.infill import logmeanexp
from cantus.music.notes import Bar, Meter, Note

METER = Meter(4, 4)


def bar(*pitches: int) -> Bar:
    return Bar(METER, tuple(Note(i * 480, p, 480) for i, p in enumerate(pitches)))


def test_the_join_skips_bars_of_rest_and_is_signed():
    assert join_interval([bar(60, 62), bar()], [bar(), bar(67)]) == 5
    assert join_interval([bar(72)], [bar(60)]) == -12
    assert join_interval([bar()], [bar(60)]) is None


def test_bar_line_intervals_and_smooth_rate():
    intervals = bar_line_intervals([[bar(60, 64), bar(65), bar(), bar(50)]])
    assert intervals == [1]
    stats = JoinStats([1, -2, 7, 0])
    assert stats.smooth_rate(2) == 0.75 and stats.mean_abs() == 2.5


def test_logmeanexp_is_stable():
    assert logmeanexp([0.0, 0.0]) == 0.0
    assert logmeanexp([-1000.0, -1000.0 + math.log(3)]) == pytest.approx(-1000.0 + math.log(2))
