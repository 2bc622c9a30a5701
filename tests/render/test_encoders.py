"""The encoders behind the audio files: ffmpeg's libopus and libmp3lame at libsndfile's
settings (same codec, about the same rate, the same bytes for the same audio), the exports
in their fixed order, and Ogg checksums computed by zlib as the bitwise definition does."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
import soundfile

from cantus.render import exports
from cantus.render.exports import audio_export_files, export_audio, ogg_crc, set_ogg_serial

SR = 44100
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def music():
    """Three seconds of a decaying stereo chord over a little noise."""
    t = np.arange(3 * SR) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (196.0, 246.94, 293.66)) / 3
    noise = np.random.default_rng(1).standard_normal((len(t), 2)) * 0.01
    stereo = np.stack([chord, np.roll(chord, 30)], axis=1) * np.exp(-t)[:, None] * 0.7
    return (stereo + noise).astype(np.float32)


def _bitwise_ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


@pytest.mark.parametrize("size", [0, 1, 27, 255, 4096])
def test_ogg_crc_is_the_ogg_checksum(size):
    data = os.urandom(size)
    assert ogg_crc(data) == _bitwise_ogg_crc(data)


def test_a_reserialled_libsndfile_stream_still_decodes(music):
    buffer = io.BytesIO()
    soundfile.write(buffer, music, SR, format="OGG", subtype="VORBIS")
    decoded, _ = soundfile.read(io.BytesIO(set_ogg_serial(buffer.getvalue(), 7)))
    assert len(decoded) == len(music)


@needs_ffmpeg
@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_ffmpeg_encodes_as_libsndfile_would(music, monkeypatch, fmt):
    by_ffmpeg = export_audio(music, SR, fmt)
    assert export_audio(music, SR, fmt) == by_ffmpeg  # the same audio, the same bytes
    monkeypatch.setattr(exports.shutil, "which", lambda name: None)
    by_libsndfile = export_audio(music, SR, fmt)
    # MP3: the same LAME VBR quality. Opus: libopus's automatic rate where libsndfile's
    # libopus (another version, constrained VBR) lands near 120 kbit/s on anything; within
    # 6 % on the stored pieces, less on this short decaying chord.
    assert len(by_ffmpeg) == pytest.approx(len(by_libsndfile), rel=0.1 if fmt == "mp3" else 0.35)
    ours, rate = soundfile.read(io.BytesIO(by_ffmpeg), dtype="float32")
    theirs, rate_theirs = soundfile.read(io.BytesIO(by_libsndfile), dtype="float32")
    assert rate == rate_theirs
    assert abs(len(ours) - len(theirs)) / rate < 0.05
    rms = [float(np.sqrt(np.mean(audio**2))) for audio in (ours, theirs)]
    assert rms[0] == pytest.approx(rms[1], rel=0.05)


def test_exports_come_back_in_the_order_asked(music):
    files = audio_export_files(music, SR, ("opus", "wav", "mp3", "flac"))
    assert list(files) == ["piece.opus", "piece.wav", "piece.mp3", "piece.flac"]
    assert files["piece.wav"] == export_audio(music, SR, "wav")
