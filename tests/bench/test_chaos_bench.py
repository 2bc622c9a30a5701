"""The chaos bench's output checks (cantus.bench.chaos) on small pieces written here with mido:
a bar twice or a bar missing, on the client's stream, in piece.json's event log or in
piece.mid's melody, is counted and named; a whole piece counts nothing."""

from __future__ import annotations

import json
from pathlib import Path

import mido

from cantus.bench.chaos import (
    ChaosReport,
    Exactness,
    Trial,
    check_piece_files,
    format_report,
    piece_stages,
)

TPQ = 480
BAR = 4 * TPQ
# four bars of 4/4: (onset in the bar, pitch, duration), ticks
BARS = [
    [[0, 60, 960], [960, 62, 960]],
    [[0, 64, 1920]],
    [[0, 65, 480], [480, 67, 480], [960, 69, 960]],
    [[0, 72, 1920]],
]


def write_piece(folder: Path, midi_bars: list[int], log_bars: list[int] | None = None) -> Path:
    """piece.json for BARS, and a piece.mid whose melody plays the bars ``midi_bars`` in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    log_bars = list(range(len(BARS))) if log_bars is None else log_bars
    log = [
        {"kind": kind, "index": i, "producer": "x", "produced_at_unix_ns": n}
        for n, i in enumerate(log_bars)
        for kind in ("melody_bar", "harmony_bar", "lyric_line")
    ]
    summary = {
        "meter": "4/4",
        "ticks_per_quarter": TPQ,
        "melody_per_bar": BARS,
        "event_log": log,
    }
    (folder / "piece.json").write_text(json.dumps(summary))
    notes = []
    for position, bar in enumerate(midi_bars):
        for onset, pitch, duration in BARS[bar]:
            start = position * BAR + onset
            notes += [(start, 1, pitch), (start + duration, 0, pitch)]
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="melody", time=0)])
    now = 0
    for tick, on, pitch in sorted(notes, key=lambda n: (n[0], n[1])):
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=80, time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=TPQ)
    midi.tracks.append(track)
    midi.save(folder / "piece.mid")
    return folder


def test_a_whole_piece_counts_no_duplicate_and_no_gap(tmp_path):
    exact = Exactness()
    check_piece_files(write_piece(tmp_path, [0, 1, 2, 3]), 4, exact)
    assert (exact.duplicate_count, exact.gap_count) == (0, 0)


def test_a_bar_twice_in_piece_mid_is_named(tmp_path):
    exact = Exactness()
    check_piece_files(write_piece(tmp_path, [0, 1, 1, 3]), 4, exact)
    # bar 2 holds bar 1's note (one note where three belong): short; bar 1 is whole
    assert exact.gaps == {"piece.mid melody": [2]}


def test_a_bar_missing_from_piece_mid_is_named(tmp_path):
    exact = Exactness()
    check_piece_files(write_piece(tmp_path, [0, 1, 2]), 4, exact)
    assert exact.gaps == {"piece.mid melody": [3]}


def test_a_bar_twice_in_the_event_log_is_counted(tmp_path):
    exact = Exactness()
    check_piece_files(write_piece(tmp_path, [0, 1, 2, 3], log_bars=[0, 1, 1, 2, 3]), 4, exact)
    assert exact.duplicates == {
        "piece.json melody_bar": [1],
        "piece.json harmony_bar": [1],
        "piece.json lyric_line": [1],
    }


def test_the_client_stream_is_checked_index_by_index():
    exact = Exactness()
    exact.check("client melody_bar", [0, 1, 1, 3], range(4))
    assert exact.duplicates == {"client melody_bar": [1]}
    assert exact.gaps == {"client melody_bar": [2]}


def test_the_report_says_what_was_counted():
    report = ChaosReport(bars=8, seed=0, planned=40, wall_s=600, load=[3.0, 5.0], cpus=2)
    report.trials = [
        Trial(0, "melody", "piece", completed=True, restart_to_healthy_s=4.0, victim_back_s=5.0),
        Trial(1, "station", "station", completed=True, restart_to_healthy_s=6.0),
    ]
    text = format_report(report, command="cantus bench chaos --trials 2")
    assert "`cantus bench chaos --trials 2`" in text
    assert "| completed | 2 of 2 (100 %) |" in text
    assert "median 4.0" in text


def test_a_piece_that_never_answers_is_counted_silent_not_failed():
    report = ChaosReport(bars=8, seed=0, planned=3, wall_s=600)
    report.trials = [
        Trial(0, "broker", "piece", completed=True, topics_recreated=[]),
        Trial(1, "broker", "piece", error="stream: melody failed: broker gone (INTERNAL)"),
        Trial(
            2, "broker", "piece", error="stream: Deadline Exceeded (StatusCode.DEADLINE_EXCEEDED)"
        ),
        Trial(3, "broker", "piece", completed=True, topics_recreated=["cantus.melody.bar"]),
    ]
    assert [t.outcome for t in report.trials] == [
        "completed",
        "failed with an event",
        "silent",
        "completed",
    ]
    text = format_report(report, command="cantus bench chaos --victims broker")
    assert "| not completed: failed with a clear event / silent (client deadline) | 1 / 1 |" in text
    assert "| topics lost by a broker restart | 1 |" in text
    assert "| broker | 4 | 2 |" in text


def test_a_broker_campaign_runs_on_persistent_storage(tmp_path):
    from cantus.bench.chaos import campaign_environment

    assert campaign_environment(tmp_path)["CANTUS_BROKER_STORAGE"] == "memory"
    persistent = campaign_environment(tmp_path, broker_storage="local-s3")
    assert persistent["CANTUS_BROKER_STORAGE"] == "local-s3"


def test_lyric_lines_of_a_piece_with_lyrics_are_its_lines_not_its_bars(tmp_path):
    """With lyrics a line spans bars: 2 lines of 2 bars are whole for 4 bars, and a line
    missing or sent twice is named (the bench counted lines 2 and 3 missing before)."""
    folder = write_piece(tmp_path, [0, 1, 2, 3])
    summary = json.loads((folder / "piece.json").read_text())
    summary["event_log"] = [e for e in summary["event_log"] if e["kind"] != "lyric_line"]
    summary["lyrics"] = [
        {"line": 0, "first_bar": 0, "bar_count": 2},
        {"line": 1, "first_bar": 2, "bar_count": 2},
    ]
    lines = [{"kind": "lyric_line", "index": i, "producer": "lyric"} for i in (0, 1)]
    for log, gaps, duplicates in (
        (lines, {}, {}),
        (lines[:1], {"piece.json lyric_line": [1]}, {}),
        ([*lines, lines[1]], {}, {"piece.json lyric_line": [1]}),
    ):
        (folder / "piece.json").write_text(
            json.dumps({**summary, "event_log": summary["event_log"] + log})
        )
        exact = Exactness()
        check_piece_files(folder, 4, exact)
        assert (exact.gaps, exact.duplicates) == (gaps, duplicates)


def test_the_stages_of_a_piece_are_timed_from_its_request():
    def entry(kind: str, index: int, seconds: float) -> dict:
        return {"kind": kind, "index": index, "produced_at_unix_ns": int((100 + seconds) * 1e9)}

    summary = {
        "event_log": [
            entry("compose_requested", 0, 0.0),
            entry("melody_bar", 0, 2.0),
            entry("melody_bar", 1, 3.5),
            entry("render_segment", 0, 20.0),
            entry("piece_completed", 2, 21.0),  # made before the final render
        ]
    }
    assert piece_stages(summary) == {
        "last melody bar": 3.5,
        "last segment": 20.0,
        "final render started": 21.0,
    }
    assert piece_stages({"event_log": [entry("melody_bar", 0, 1.0)]}) == {}


def test_a_late_piece_is_told_from_a_lost_one():
    deadline = "stream: Deadline Exceeded (StatusCode.DEADLINE_EXCEEDED)"
    report = ChaosReport(bars=8, seed=0, planned=3, wall_s=600)
    report.trials = [
        Trial(0, "render", "piece", error=deadline, stored_late_s=316.0),
        Trial(1, "melody", "piece", error=deadline),
        Trial(
            2,
            "harmony",
            "piece",
            completed=True,
            stages={"last segment": 50.0, "final render started": 51.0},
        ),
    ]
    text = format_report(report, command="cantus bench chaos")
    assert (
        "| of those silent: stored late / not stored within the gateway's timeout | 1 / 1 |" in text
    )
    assert "| request → final render started, s (median / p95 / max) | 51.0 / 51.0 / 51.0 |" in text
    assert "stored late, 316 s after the request" in text
    assert "not stored within the gateway's compose timeout" in text


def test_a_station_trial_says_how_far_ahead_the_stream_was_at_the_kill():
    trial = Trial(
        0,
        "station",
        "station",
        completed=True,
        station_pieces_after=2,
        station_underruns=1,
        station_ahead_at_kill_s=7.5,
        restart_to_healthy_s=31.0,
    )
    report = ChaosReport(bars=8, seed=0, planned=1, wall_s=60, trials=[trial])
    assert "1 underruns (the stream was 7.5 s ahead at the kill)" in format_report(
        report, command="cantus bench chaos"
    )
