"""What the soak bench reads per component and how it calls memory flat (#22)."""

from __future__ import annotations

import os
import subprocess
import sys

from cantus.bench.soak import (
    Sample,
    SoakReport,
    format_report,
    group_pids,
    is_flat,
    open_fds,
    rss_mib,
    sample_stack,
)


def test_a_process_group_is_read_whole():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        assert group_pids(child.pid) == [child.pid]
        sample = sample_stack({"sleeper": child.pid}, started=0.0)
        assert sample.rss_mib["sleeper"] > 1.0
        assert sample.fds["sleeper"] >= 3  # stdin, stdout, stderr
    finally:
        child.kill()
        child.wait()
    assert rss_mib(child.pid) == 0.0 and open_fds(child.pid) == 0  # gone: nothing, no error
    assert os.getpid() not in group_pids(child.pid)


def test_growth_after_start_up_is_flat_a_steady_leak_is_not():
    start_up = [100.0, 300.0] + [400.0] * 14
    assert is_flat(start_up)
    leak = [400.0 + 20.0 * i for i in range(16)]
    assert not is_flat(leak)
    assert is_flat([50.0 + i for i in range(16)])  # under 16 MiB in all
    assert not is_flat([1.0, 1.0])  # too few samples to say


def test_the_report_names_each_component():
    report = SoakReport(stations=8, minutes=10, bars=8, buffer=2, sustained=8, pieces=40)
    report.samples = [
        Sample(10.0 * i, {"broker": 100.0 + i, "render": 500.0}, {"broker": 30, "render": 40 + i})
        for i in range(12)
    ]
    report.load = [3.0, 5.0]
    text = format_report(report, command="cantus bench soak --minutes 10")
    assert "| broker | 100 | 111 | 111 | 103 / 106 / 109 | yes | 30 / 30 / 30 |" in text
    assert "| render | 500 | 500 | 500 | 500 / 500 / 500 | yes | 40 / 51 / 51 |" in text
    assert "sampled every 10 s" in text and "Stations sustained: 8 of 8" in text


def test_the_report_traces_the_broker_to_its_topics():
    from cantus.bench.broker_usage import TopicUsage

    report = SoakReport(stations=1, minutes=1, bars=8, buffer=2, pieces=4)
    report.samples = [Sample(0.0, {"broker": 10.0}, {"broker": 3})]
    report.load = [1.0]
    report.topics = [
        TopicUsage("cantus.station.segment", 30, 3 * 2**20),
        TopicUsage("cantus.melody.bar", 32, 2**20),
        TopicUsage("cantus.station.command", 0, 0),  # nothing kept: left out
    ]
    text = format_report(report, command="cantus bench soak")
    assert "| cantus.station.segment | 30 | 3.00 | 75.0 % | 768.0 |" in text
    assert "| cantus.melody.bar | 32 | 1.00 | 25.0 % | 256.0 |" in text
    assert "station.command" not in text and "| all | 62 | 4.00 | 100 % | 1024.0 |" in text
