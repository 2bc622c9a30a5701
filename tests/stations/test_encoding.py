"""The station encoder: one ffmpeg turns a stream of frames into ~4 s MPEG-TS/AAC segments."""

import asyncio
import shutil
import subprocess

import numpy as np
import pytest

from cantus.stations.encoding import HlsSegmenter

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian ffmpeg")


def test_segments_cover_the_stream_and_decode(tmp_path):
    rate = 48000
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    second = np.stack([tone, tone], axis=1)

    async def encode():
        segmenter = HlsSegmenter(
            tmp_path / "enc", sample_rate=rate, segment_seconds=4.0, first_sequence=7
        )
        await segmenter.start()
        collected = []

        async def collect():
            async for segment in segmenter.segments(poll_seconds=0.05):
                collected.append(segment)

        task = asyncio.create_task(collect())
        for _ in range(10):  # ten one-second writes, as pieces' segments arrive
            await segmenter.write(second)
        await segmenter.close()
        await task
        return collected

    segments = asyncio.run(encode())
    assert [s.sequence for s in segments] == list(range(7, 7 + len(segments)))
    assert len(segments) == 3
    assert sum(s.duration_seconds for s in segments) == pytest.approx(10.0, abs=0.1)
    assert all(s.duration_seconds == pytest.approx(4.0, abs=0.1) for s in segments[:-1])
    joined = tmp_path / "all.ts"
    joined.write_bytes(b"".join(s.data for s in segments))
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            str(joined),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(probe.stdout.split()) == {"aac"}
