"""The therapy bench on a few simulated listeners: the closed loop reaches the target with
no jump heard, today's open loop jumps at every piece, and both are reported."""

from cantus.bench.therapy import format_report, run_therapy_bench
from cantus.stations.listeners import ListenerModel, SimulatedListener


def test_a_listener_follows_only_music_within_its_basin():
    import random

    model = ListenerModel(start_bpm=100, natural_bpm=100, floor_bpm=60, basin=0.1,
                          follow_seconds=10, relax_seconds=100)  # fmt: skip
    near, far = (
        SimulatedListener(model, random.Random(1)),
        SimulatedListener(model, random.Random(1)),
    )
    for _ in range(60):
        near.advance(95, 1.0)
        far.advance(70, 1.0)
    assert abs(near.rate_bpm - 95) < 0.1
    assert far.rate_bpm == 100  # 30 % away: no pull
    readings = [near.reading(t) for t in range(1000)]
    assert any(r is None for r in readings)  # the dropout


def test_closed_loop_against_open_loop_on_walkers():
    results = run_therapy_bench(listeners=3, seed=5, presets=("walk",))
    closed = results["walk"]["closed"].summary()
    today = results["walk"]["open"].summary()
    assert closed["reached"] == 1.0
    assert closed["max_step_between_bpm"] < 0.5 and closed["max_step_within_bpm"] < 0.5
    assert today["max_step_between_bpm"] > 20  # the ritardando, then the next piece's tempo
    assert closed["median_end_error_s"] < 10
    report = format_report(results, 3, 5)
    assert report.count("| walk") == 3


def test_focus_listeners_reports_and_intensity_steer_the_closed_loop():
    from cantus.bench.therapy_reports import format_report_section, run_report_bench

    results = run_report_bench(listeners=2, seed=5, minutes=6)
    today, next_piece, mid_stream = (results[loop] for loop in results)
    # today's plan never moves: the reports go on; closed loops act on them
    assert sum(r.reports for r in today) > sum(r.reports for r in next_piece)
    assert all(not r.delays_s for r in today)
    # the 8 s lead + half the ramp, on the bench's 1 s clock
    assert max(d for r in mid_stream for d in r.delays_s) <= 9.0
    assert min(d for r in next_piece for d in r.delays_s) > 9.0  # the next piece decided
    share = [sum(r.comfortable) / len(r.comfortable) for r in mid_stream]
    assert max(share) > 0.5
    assert format_report_section(results, 2).count("| closed") == 2
