"""A station's stream as HLS media segments: one long-lived ``ffmpeg`` per station encodes
the mixed audio to AAC and cuts it into MPEG-TS segments of about ``segment_seconds``.

One encoder for the whole stream (rather than one per segment) keeps the timestamps
continuous and avoids the AAC priming silence at every segment start. ffmpeg's segment
muxer appends a line to a CSV list as each segment is closed; ``HlsSegmenter.segments``
yields those segments (file bytes and duration) in order.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MEDIA_TYPE = "video/mp2t"
AAC_KBPS = 128


class EncoderError(RuntimeError):
    """ffmpeg is missing or failed."""


@dataclass(frozen=True)
class EncodedSegment:
    sequence: int
    duration_seconds: float
    data: bytes


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise EncoderError("ffmpeg is not installed (Debian package ffmpeg; `make setup`)")
    return path


class HlsSegmenter:
    """Feeds float32 stereo frames to ffmpeg; yields closed MPEG-TS segments."""

    def __init__(
        self, workdir: Path, *, sample_rate: int, segment_seconds: float, first_sequence: int
    ) -> None:
        self.workdir = workdir
        self.sample_rate = sample_rate
        self.segment_seconds = segment_seconds
        self.first_sequence = first_sequence
        self._process: asyncio.subprocess.Process | None = None
        self._list = workdir / "segments.csv"
        self._log: BinaryIO | None = None

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for stale in self.workdir.iterdir():
            stale.unlink()
        self._log = open(self.workdir / "ffmpeg.log", "ab")  # noqa: SIM115 - ffmpeg keeps it
        self._process = await asyncio.create_subprocess_exec(
            ffmpeg_binary(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "f32le",
            "-ar",
            str(self.sample_rate),
            "-ac",
            "2",
            "-i",
            "pipe:0",
            "-c:a",
            "aac",
            "-b:a",
            f"{AAC_KBPS}k",
            "-f",
            "segment",
            "-segment_time",
            f"{self.segment_seconds:g}",
            "-segment_format",
            "mpegts",
            "-segment_list",
            str(self._list),
            "-segment_list_type",
            "csv",
            "-segment_start_number",
            str(self.first_sequence),
            str(self.workdir / "seg%09d.ts"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
        )

    async def write(self, frames: np.ndarray) -> None:
        if self._process is None or self._process.stdin is None:
            raise EncoderError("the encoder is not running")
        if not len(frames):
            return
        if self._process.returncode is not None:
            raise EncoderError(f"ffmpeg exited with code {self._process.returncode}")
        self._process.stdin.write(np.ascontiguousarray(frames, dtype="<f4").tobytes())
        await self._process.stdin.drain()

    async def close(self) -> None:
        """End the stream: ffmpeg closes its last segment and exits."""
        if self._process is None:
            return
        if self._process.stdin is not None and not self._process.stdin.is_closing():
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout=10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._log is not None:
            self._log.close()

    async def segments(self, poll_seconds: float = 0.2) -> AsyncIterator[EncodedSegment]:
        """Each segment as ffmpeg closes it, until ffmpeg exits; files are removed once read."""
        read = 0
        while True:
            finished = self._process is not None and self._process.returncode is not None
            text = self._list.read_text() if self._list.exists() else ""
            lines = text.split("\n")[:-1]  # only whole lines: ffmpeg may be mid-write
            for line in lines[read:]:
                name, start, end = line.rsplit(",", 2)
                path = self.workdir / name
                sequence = int(Path(name).stem.removeprefix("seg"))
                yield EncodedSegment(sequence, float(end) - float(start), path.read_bytes())
                path.unlink(missing_ok=True)
            read = len(lines)
            if finished:
                return
            await asyncio.sleep(poll_seconds)
