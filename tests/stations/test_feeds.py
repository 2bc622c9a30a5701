"""HLS media playlist and playlist feeds."""

import json

from cantus.stations.feeds import (
    SegmentEntry,
    json_feed,
    m3u_feed,
    media_playlist,
    now_playing,
    playback_seconds,
)
from cantus.v1 import station_pb2 as st


def test_media_playlist_is_valid_hls():
    segments = [
        SegmentEntry(5, 4.01, True),
        SegmentEntry(6, 3.99, False),
        SegmentEntry(7, 4.5, True),
    ]
    text = media_playlist(segments, ended=False)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-TARGETDURATION:5" in lines and "#EXT-X-MEDIA-SEQUENCE:5" in lines
    assert lines.count("#EXT-X-DISCONTINUITY") == 1  # before seg7, not before the first
    assert lines.index("#EXT-X-DISCONTINUITY") == lines.index("seg7.ts") - 2
    assert "#EXT-X-ENDLIST" not in text
    assert media_playlist(segments, ended=True).rstrip().endswith("#EXT-X-ENDLIST")


def status():
    start = 1_000_000_000_000
    return st.StationStatus(
        name="s",
        running=True,
        stream_started_unix_ns=start,
        stream_seconds=30,
        program=[
            st.ProgramEntry(
                piece_id="a",
                title="A",
                key="C",
                mode="major",
                tempo_bpm=100,
                status="streamed",
                stream_start_seconds=0,
                duration_seconds=10,
            ),
            st.ProgramEntry(
                piece_id="b",
                title="B",
                key="D",
                mode="minor",
                tempo_bpm=90,
                status="streamed",
                stream_start_seconds=9,
                duration_seconds=12,
            ),
            st.ProgramEntry(piece_id="c", title="C", status="composing", stream_start_seconds=-1),
        ],
    ), start


def test_now_playing_follows_the_clock():
    s, start = status()
    assert playback_seconds(s, start + 5 * 10**9) == 5
    assert now_playing(s, start + 5 * 10**9).piece_id == "a"
    assert now_playing(s, start + 12 * 10**9).piece_id == "b"
    feed = json.loads(json_feed(s, start + 12 * 10**9))
    assert feed["now_playing"]["key"] == "D minor"
    assert {p["piece_id"] for p in feed["pieces"]} == {"a", "b", "c"}


def test_m3u_lists_delivered_pieces_with_metadata():
    s, _ = status()
    text = m3u_feed(s, "http://h/pieces/{piece_id}/piece.mp3")
    assert text.startswith("#EXTM3U")
    assert "http://h/pieces/a/piece.mp3" in text and "/c/" not in text
    assert "#EXTINF:10,A (C major, 100 BPM" in text


def test_a_sliding_playlist_is_live_and_counts_the_discontinuities_it_dropped():
    segments = [SegmentEntry(40, 4.0, True), SegmentEntry(41, 4.0, False)]
    text = media_playlist(segments, ended=False, discontinuity_sequence=2)
    assert "#EXT-X-PLAYLIST-TYPE" not in text  # an EVENT playlist may never drop a segment
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2" in text.splitlines()
