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


def piece_events() -> list[api.PieceEvent]:
    """A two-bar piece's events, each stage's timestamps known."""
    return [
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


def test_stage_latencies_from_timestamps():
    stages = stage_latencies(piece_events())
    assert stages["time to first bar"] == [100.0]
    assert stages["melody, per bar"] == [100.0, 50.0]
    assert stages["harmony, after melody bar"] == [10.0, 20.0]
    assert stages["harmony, processing"] == [5.0, 10.0]
    assert stages["render segment, after last input"] == [10.0]
    assert stages["end to end"] == [200.0]
    report = PipelineReport(pieces=1, concurrency=1, bars=2, wall_seconds=1.0, stages_ms=stages)
    text = format_report(report, command="cantus bench pipeline")
    assert "| time to first bar | 1 | 100.0 | 100.0 |" in text


def test_pieces_ask_for_lyrics_where_the_bench_is_given_a_theme(monkeypatch):
    from types import SimpleNamespace

    import cantus.bench.pipeline as pipeline

    asked: list[api.ComposeRequest] = []

    def compose(address, request, folder):
        asked.append(request)
        return SimpleNamespace(events=piece_events())

    monkeypatch.setattr(pipeline, "compose", compose)
    monkeypatch.setattr(pipeline, "_running_stack", lambda: None)
    report = pipeline.run_pipeline_bench(
        "gateway:1", pieces=3, concurrency=1, bars=4, lyrics_theme="明月", lyrics_language="zh"
    )
    assert [(r.lyrics_theme, r.lyrics_language) for r in asked] == [("明月", "zh")] * 3
    assert "with lyrics on “明月 (zh)”" in format_report(report, command="bench")
    asked.clear()
    plain = pipeline.run_pipeline_bench("gateway:1", pieces=1, concurrency=1, bars=4)
    assert asked[0].lyrics_theme == "" and "lyrics" not in format_report(plain, command="bench")
