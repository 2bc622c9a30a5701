"""The form bench's endings table (``cantus.bench.form``): per palette and over all."""

import numpy as np
import pytest

from cantus.bench.form import ENDING_PALETTES, EndingRow, format_endings, momentary_loudness


def test_the_endings_table_reports_each_palette_and_all_of_them():
    rows = [
        EndingRow(palette, "A B C", "folk", 24.0, -14.0 + error, hold, peak)
        for palette in ENDING_PALETTES
        for error, hold, peak in ((0.5, -3.0, 2.0), (-0.1, 1.0, -1.0))
    ]
    lines = format_endings(rows, -14.0)
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0].strip("| ") for line in table] == [*ENDING_PALETTES, "**all**"]
    cells = table[-1].split(" | ")
    # pieces, seconds, mean error, mean abs. error, worst, hold mean and max, peak mean and max
    count = str(2 * len(ENDING_PALETTES))
    assert cells[1:] == [count, "24.0", "+0.20", "0.30", "+0.50", "-1.0", "+1.0", "+0.5", "+2.0 |"]
    assert "2 short pieces" in lines[2]


def test_momentary_loudness_follows_a_swell():
    rate = 44100
    quiet = np.random.default_rng(0).standard_normal((rate * 2, 2)).astype(np.float32) * 0.01
    levels = momentary_loudness(np.concatenate([quiet, quiet * 10]), rate)
    assert levels.max() - levels.min() == pytest.approx(20.0, abs=0.5)
    assert len(levels) == int((4.0 - 0.4) / 0.1) + 1
