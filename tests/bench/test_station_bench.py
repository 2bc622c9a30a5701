"""The station bench report: sustained stations and the ratio to the one-station baseline."""

from cantus.bench.station import PhaseResult, format_report


def phase(stations, factor, underruns):
    return PhaseResult(
        stations=stations,
        minutes=2,
        sustained=sum(1 for u in underruns if u == 0),
        realtime_factors=[factor] * stations,
        min_ahead_s=[5.0] * stations,
        median_ahead_s=[20.0] * stations,
        first_audio_s=[3.0] * stations,
        underruns=underruns,
        pieces=4 * stations,
    )


def test_report_names_the_command_and_the_ratio():
    text = format_report(
        phase(1, 4.0, [0]),
        phase(4, 2.0, [0, 0, 1, 0]),
        command="cantus bench station",
        bars=8,
        buffer=2,
    )
    assert text.splitlines()[2] == "`cantus bench station`"
    assert "| 4 stations at once | 4 | 3/4 | 2.00" in text
    assert "**0.50×**" in text


def test_bench_config_is_a_valid_station():
    from cantus.bench.station import BENCH_CONFIG
    from cantus.stations.config import parse_station_config

    config = parse_station_config(BENCH_CONFIG.format(bars=16, buffer=2))
    assert config.bars == 16 and config.buffer_pieces == 2


def test_report_gives_a_late_station_first_audio():
    loaded = phase(4, 2.0, [0, 0, 0, 0])
    loaded.late_first_audio_s = 12.5
    text = format_report(
        phase(1, 4.0, [0]), loaded, command="cantus bench station", bars=8, buffer=2
    )
    assert "first audio after **12.5 s** (one station alone: 3.0 s)" in text
    assert "halfway" not in format_report(
        phase(1, 4.0, [0]), phase(4, 2.0, [0] * 4), command="c", bars=8, buffer=2
    )
