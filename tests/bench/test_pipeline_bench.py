"""Stage latencies are read off the events' own timestamps."""

from cantus.bench.pipeline import PipelineReport, format_report, stage_latencies
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

MS = 1_000_000


def meta(index: int, produced_ms: int, received_ms: int = 0) -> pb.EventMeta:
    return pb.EventMeta(
        piece_id="p",
        index=index,
        schema_version=1,
        produced_at_unix_ns=produced_ms * MS,
        received_at_unix_ns=received_ms * MS,
    )


def test_stage_latencies_from_timestamps():
    events = [
        api.PieceEvent(requested=pb.ComposeRequested(meta=meta(0, 1000))),
        api.PieceEvent(melody_bar=pb.MelodyBar(meta=meta(0, 1100, 1001))),
        api.PieceEvent(harmony_bar=pb.HarmonyBar(meta=meta(0, 1110, 1105))),
        api.PieceEvent(lyric_line=pb.LyricLine(meta=meta(0, 1104, 1102), first_bar=0, bar_count=1)),
        api.PieceEvent(melody_bar=pb.MelodyBar(meta=meta(1, 1150, 1001))),
        api.PieceEvent(harmony_bar=pb.HarmonyBar(meta=meta(1, 1170, 1160))),
        api.PieceEvent(lyric_line=pb.LyricLine(meta=meta(1, 1155, 1152), first_bar=1, bar_count=1)),
        api.PieceEvent(
            render_segment=pb.RenderSegment(meta=meta(0, 1180, 1175), first_bar=0, bar_count=2)
        ),
        api.PieceEvent(completed=pb.PieceCompleted(meta=meta(2, 1200, 1175))),
    ]
    stages = stage_latencies(events)
    assert stages["time to first bar"] == [100.0]
    assert stages["melody, per bar"] == [100.0, 50.0]
    assert stages["harmony, after melody bar"] == [10.0, 20.0]
    assert stages["harmony, processing"] == [5.0, 10.0]
    assert stages["render segment, after last input"] == [10.0]
    assert stages["end to end"] == [200.0]
    report = PipelineReport(pieces=1, concurrency=1, bars=2, wall_seconds=1.0, stages_ms=stages)
    text = format_report(report, command="cantus bench pipeline")
    assert "| time to first bar | 1 | 100.0 | 100.0 |" in text
