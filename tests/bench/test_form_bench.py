"""The form bench's endings table (``cantus.bench.form``): per palette and over all."""

from cantus.bench.form import ENDING_PALETTES, EndingRow, format_endings


def test_the_endings_table_reports_each_palette_and_all_of_them():
    rows = [
        EndingRow(palette, "A B C", "folk", 24.0, -14.0 + error, hold)
        for palette in ENDING_PALETTES
        for error, hold in ((0.5, -3.0), (-0.1, 1.0))
    ]
    lines = format_endings(rows, -14.0)
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0].strip("| ") for line in table] == [*ENDING_PALETTES, "**all**"]
    cells = table[-1].split(" | ")
    # pieces, seconds, mean error, mean abs. error, worst, hold mean, hold max
    assert cells[1:] == ["12", "24.0", "+0.20", "0.30", "+0.50", "-1.0", "+1.0 |"]
    assert "2 short pieces" in lines[2]
