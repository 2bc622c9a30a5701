"""The edit bench's report: the regeneration's first bar against the new piece's, per piece."""

from cantus.bench.edit import EditBench, Timed, first_bar_ratio, format_edit_bench


def bench(pairs: list[tuple[float, float]]) -> EditBench:
    return EditBench(
        pieces=len(pairs),
        bars=16,
        regen_bars=8,
        compose=[Timed(c, 5.0) for c, _ in pairs],
        regenerate=[Timed(r, 6.0, stages={"decode_start": 0.002, "bars": 1.0}) for _, r in pairs],
        palette=[Timed(None, 4.0) for _ in pairs],
        rendered_seconds=[10.0 for _ in pairs],
        piece_seconds=[20.0 for _ in pairs],
        regen_segments=[3 for _ in pairs],
        segments=[4 for _ in pairs],
    )


def test_the_first_bar_ratio_is_the_median_of_each_pieces_own_ratio():
    # medians of each column would give 0.2 / 0.2 = 1.0; per piece: 0.5, 2.0, 3.0 -> 2.0
    assert first_bar_ratio(bench([(0.2, 0.1), (0.1, 0.2), (0.3, 0.9)])) == 2.0


def test_the_report_gives_the_ratio_and_each_regenerations_first_request():
    report = format_edit_bench(bench([(0.2, 0.1), (0.1, 0.2)]), command="cantus bench edit")
    assert "regeneration over new piece: median 1.25" in report
    assert "regenerate first bar 0.20 (its first request to melody_lm at 0.00)" in report
