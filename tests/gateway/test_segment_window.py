"""The gateway keeps a station's segments for as long as the segment topic retains them:
one setting, ``station_segment_retention_s``, for both."""

from pathlib import Path

import yaml

from cantus.settings import REPO_ROOT, Settings
from cantus.stations.records import encode_station_record
from cantus.v1 import station_pb2 as st
from services.gateway.stations import StationDirectory

TOPICS_YAML = REPO_ROOT / "deploy" / "k8s" / "base" / "topics.yaml"


def publish(
    directory: StationDirectory,
    sequence: int,
    published_ms: int,
    seconds=4.0,
    discontinuity=False,
) -> None:
    segment = st.StationSegment(
        station="radio",
        sequence=sequence,
        duration_seconds=seconds,
        data=b"ts",
        discontinuity=discontinuity,
    )
    _, value, headers = encode_station_record("station_segment", segment, "radio", source="t")
    directory.on_record(directory.settings.topics.station_segment, value, headers, published_ms)


def kept(directory: StationDirectory) -> list[int]:
    return [entry.sequence for entry in directory.stream("radio").entries()]


def test_the_gateway_keeps_the_retention_window_of_audio():
    directory = StationDirectory(Settings(station_segment_retention_s=60))
    for sequence in range(40):  # 160 s of 4-second segments, published in real time
        publish(directory, sequence, published_ms=sequence * 4000)
    assert kept(directory) == list(range(25, 40))  # the last 60 s
    assert directory.stream("radio").seconds == 60.0


def test_segments_older_than_the_retention_go_even_after_a_pause():
    directory = StationDirectory(Settings(station_segment_retention_s=60))
    for sequence in range(5):
        publish(directory, sequence, published_ms=sequence * 4000)
    # the station stopped for ten minutes: the topic has deleted what came before
    publish(directory, 5, published_ms=16000 + 600_000)
    assert kept(directory) == [5]


def test_the_segment_topic_retains_what_the_gateway_keeps():
    docs = list(yaml.safe_load_all(Path(TOPICS_YAML).read_text()))
    settings = Settings()
    (topic,) = [
        doc
        for doc in docs
        if doc and doc["spec"].get("topicName") == settings.topics.station_segment
    ]
    assert topic["spec"]["config"]["retention.ms"] == settings.station_segment_retention_s * 1000


def test_a_discontinuity_leaving_the_playlist_head_is_counted():
    directory = StationDirectory(Settings(station_segment_retention_s=60))
    restarts = {0, 5, 20}  # the stream's start and two station-service restarts
    for sequence in range(30):
        publish(directory, sequence, sequence * 4000, discontinuity=sequence in restarts)
    stream = directory.stream("radio")
    # the window starts at segment 15: the tags before 5 (counted when 5 was first) are gone,
    # the stream's own start never had one, and 20's is still in the playlist
    assert kept(directory)[0] == 15
    assert stream.discontinuity_sequence == 1
