"""The segment stores: segments written and read back by name, owners and names checked (a
record's URI is never a path), old segments pruned, on disk and on S3."""

from __future__ import annotations

import os
import time

import pytest

from cantus.segment_store import (
    SegmentNotFound,
    file_name_of,
    render_segment_store,
    station_segment_store,
)
from cantus.settings import Settings

PIECE = "0123456789abcdef0123456789abcdef"


def test_a_segment_is_written_and_read_back_by_its_name(tmp_path):
    store = station_segment_store(Settings(data_dir=tmp_path))
    uri = store.write("radio", 12, b"ts-bytes")
    assert uri.startswith("file://") and "/stations/radio/seg12-" in uri and uri.endswith(".ts")
    assert store.read_uri("radio", uri) == b"ts-bytes"
    again = store.write("radio", 12, b"other")  # a restarted station's sequence 12
    assert again != uri and store.read_uri("radio", uri) == b"ts-bytes"
    assert not list((tmp_path / "stations" / "radio").glob(".*partial"))

    audio = render_segment_store(Settings(data_dir=tmp_path))
    uri = audio.write(PIECE, 0, b"OggS")
    assert f"/segments/{PIECE}/seg0-" in uri and uri.endswith(".opus")
    assert audio.read(PIECE, file_name_of(uri)) == b"OggS"
    lossless = audio.write(PIECE, 1, b"fLaC", extension="flac")  # a station's piece
    assert lossless.endswith(".flac") and audio.read_uri(PIECE, lossless) == b"fLaC"
    with pytest.raises(SegmentNotFound, match="extension"):
        audio.write(PIECE, 2, b"x", extension="sh")


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file:///data/stations/radio/../../../etc/seg1-00000000.ts/..",
        "s3://bucket/pieces/stations/radio/seg1.ts",
        "seg1-0000000g.ts",
        "seg1-00000000.mp3",
    ],
)
def test_a_uri_that_names_no_segment_is_refused(uri):
    with pytest.raises(SegmentNotFound, match="uri"):
        file_name_of(uri)


def test_owners_and_names_are_checked(tmp_path):
    stations = station_segment_store(Settings(data_dir=tmp_path))
    with pytest.raises(SegmentNotFound, match="station"):
        stations.write("../etc", 1, b"x")
    with pytest.raises(SegmentNotFound, match="station"):
        stations.read("..", "seg1-00000000.ts")
    with pytest.raises(SegmentNotFound, match="file"):
        stations.read("radio", "../seg1-00000000.ts")
    with pytest.raises(SegmentNotFound, match="no segment"):
        stations.read("radio", "seg1-00000000.ts")
    with pytest.raises(SegmentNotFound, match="piece id"):
        render_segment_store(Settings(data_dir=tmp_path)).write("../../etc", 0, b"x")


def test_segments_past_the_retention_are_pruned(tmp_path):
    store = station_segment_store(Settings(data_dir=tmp_path))
    assert store.delete_older_than(60) == 0  # nothing written yet: nothing to do
    old = file_name_of(store.write("radio", 1, b"old"))
    kept = file_name_of(store.write("jazz", 2, b"new"))
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "stations" / "radio" / old, (an_hour_ago, an_hour_ago))
    assert store.delete_older_than(600) == 1
    with pytest.raises(SegmentNotFound):
        store.read("radio", old)
    assert store.read("jazz", kept) == b"new"
    assert not (tmp_path / "stations" / "radio").exists()  # left empty: removed

    audio = render_segment_store(Settings(data_dir=tmp_path))
    names = [file_name_of(audio.write(PIECE, i, b"x", extension=ext)) for i, ext in
             enumerate(("opus", "flac"))]  # fmt: skip
    for name in names:
        os.utime(tmp_path / "segments" / PIECE / name, (an_hour_ago, an_hour_ago))
    assert audio.delete_older_than(600, extension="flac") == 1  # only the lossless one
    assert audio.read(PIECE, names[0]) == b"x"
    with pytest.raises(SegmentNotFound):
        audio.read(PIECE, names[1])


def test_on_s3_segments_sit_beside_the_pieces_and_are_pruned(fake_s3):
    settings = Settings(s3_bucket="cantus", s3_prefix="pieces")
    store = station_segment_store(settings)
    uri = store.write("radio", 3, b"ts")
    assert uri.startswith("s3://cantus/pieces/stations/radio/seg3-")
    assert store.read_uri("radio", uri) == b"ts"
    with pytest.raises(SegmentNotFound, match="no segment"):
        store.read("radio", "seg4-00000000.ts")
    audio = render_segment_store(settings)
    audio_uri = audio.write(PIECE, 1, b"OggS")
    assert audio_uri.startswith(f"s3://cantus/pieces/segments/{PIECE}/seg1-")
    assert store.delete_older_than(600) == 0
    assert store.delete_older_than(-60) == 1  # a minute ahead, everything is older
    with pytest.raises(SegmentNotFound):
        store.read_uri("radio", uri)
    assert audio.read_uri(PIECE, audio_uri) == b"OggS"  # the other kind is untouched
    lossless = audio.write(PIECE, 2, b"fLaC", extension="flac")
    assert audio.delete_older_than(-60, extension="flac") == 1
    assert audio.read_uri(PIECE, audio_uri) == b"OggS"  # the Opus segment is not lossless
    with pytest.raises(SegmentNotFound):
        audio.read_uri(PIECE, lossless)
