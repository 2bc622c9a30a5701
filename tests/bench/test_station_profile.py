"""The station profile: samples charged to steps, CPU per process, the report."""

from collections import Counter

from cantus.bench.station_profile import (
    ProcessCpu,
    ProcessSpent,
    StationProfile,
    format_station_profile,
    frame_step,
    read_folded,
    spent_between,
)

LOOP = "run (asyncio/runners.py:190);BaseEventLoop._run_once (asyncio/base_events.py:1922)"


def test_a_sample_goes_to_the_leaf_most_frame_that_names_a_step():
    mixer = f"{LOOP};Mixer._mix (cantus/render/mix.py:590);_mean (numpy/core/_methods.py:118)"
    assert frame_step(mixer.split(";")) == "mixing and mastering"
    fetch = f"{LOOP};Fetcher._proc_fetch_request (aiokafka/consumer/fetcher.py:862)"
    assert frame_step(fetch.split(";")) == "Kafka I/O (aiokafka)"
    idle = f"{LOOP};EpollSelector.select (selectors.py:468)"
    assert frame_step(idle.split(";")) == "event loop"
    assert frame_step(["main (services/odd/thing.py:3)", "work (odd/place.py:9)"]) == (
        "other: place.py"
    )


def test_folded_stacks_are_counted_by_step():
    text = "\n".join(
        [
            f"{LOOP};SegmentRenderer._synthesise_into (cantus/render/synth.py:397) 30",
            f"{LOOP};Mixer._mix (cantus/render/mix.py:601) 10",
            f"{LOOP};Mixer._mix (cantus/render/mix.py:590) 5",
            "garbage line without a count",
        ]
    )
    assert read_folded(text) == Counter({"synthesis (FluidSynth)": 30, "mixing and mastering": 15})


def test_cpu_between_two_tables_counts_new_and_reused_pids_from_zero():
    before = {
        10: ProcessCpu("render", "render", own=5.0, reaped=1.0, python=True),
        11: ProcessCpu("station", "ffmpeg", own=2.0, reaped=0.0, python=False),
    }
    after = {
        10: ProcessCpu("render", "render", own=9.0, reaped=4.0, python=True),
        11: ProcessCpu("triton", "model melody_lm", own=3.0, reaped=0.0, python=True),
        12: ProcessCpu("station", "ffmpeg", own=1.5, reaped=0.0, python=False),
    }
    spent = {p.pid: (p.own, p.reaped) for p in spent_between(before, after)}
    assert spent == {10: (4.0, 3.0), 11: (3.0, 0.0), 12: (1.5, 0.0)}


def test_steps_share_a_process_cpu_by_samples_and_the_report_is_per_station_minute():
    render = ProcessSpent(1, "render", "render", own=8.0, reaped=2.0)
    render.steps = Counter({"synthesis (FluidSynth)": 3, "mixing and mastering": 1})
    model = ProcessSpent(2, "triton", "model melody_lm", own=4.0, reaped=0.0)
    model.steps = Counter({"model forward (torch)": 1})
    broker = ProcessSpent(3, "broker", "broker", own=6.0, reaped=0.0)
    profile = StationProfile(
        stations=2,
        wall_seconds=60,
        stream_seconds=120,
        processes=[render, model, broker],
        machine_busy=25.0,
        idle_percent={"broker": 10.0, "render": 1.0},
        synthesis_floor=0.5,
        rss_start_mb={"render": 300.0},
        rss_end_mb={"render": 310.4},
    )
    assert profile.stack_cpu == 20.0
    assert profile.by_component() == {"render": 10.0, "broker": 6.0, "triton": 4.0}
    assert dict(profile.steps("render")) == {
        "synthesis (FluidSynth)": 6.0,
        "mixing and mastering": 2.0,
        "render: programs run and reaped (ffmpeg, LilyPond)": 2.0,
    }
    assert dict(profile.steps("triton")) == {"model melody_lm: model forward (torch)": 4.0}
    text = format_station_profile(profile, command="cantus bench station --profile p.md")
    assert "**10.00 CPU s per minute of station audio**" in text  # 20 CPU s, 2 minutes
    assert "| render | 10.0 | 5.000 | 50.0 % |" in text
    assert "20.0× below" in text  # the floor
    assert "broker 10.0 %" in text and "11 % in all" in text
    assert "| render | 300 | 310 |" in text
