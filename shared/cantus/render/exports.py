"""Encoding mastered audio into the files a user downloads.

``export_audio(audio, sample_rate, fmt)`` turns float ``[samples, channels]`` audio
(full scale = 1.0) into the bytes of one file. Every format is written by libsndfile
through the ``soundfile`` wheel, which bundles libsndfile 1.2 with its FLAC, Ogg
Vorbis, Opus and MPEG (LAME) encoders, so no system codec is needed:

========  ===========================  ======================================================
fmt       file                         notes
========  ===========================  ======================================================
wav       WAV, 16-bit PCM              TPDF-dithered to 16 bits
wav24     WAV, 24-bit PCM
flac      FLAC, 16-bit                 lossless; TPDF-dithered to 16 bits
flac24    FLAC, 24-bit                 lossless
ogg       Ogg Vorbis                   VBR, about 128 kbit/s for music
opus      Ogg Opus                     resampled to 48 kHz (Opus's rate); about 120 kbit/s
mp3       MPEG-1 Layer III             VBR, about 170 kbit/s for music
========  ===========================  ======================================================

Where ``ffmpeg`` is installed (``make setup``, the render image), Opus and MP3 go through
its libopus and libmp3lame instead, with the settings libsndfile uses (Opus at libopus's
automatic bit rate, MP3 at LAME VBR quality 2.5): the same codec and the same rate, for a
third of the CPU time of the encoders in the ``soundfile`` wheel (docs/results/
render_profile.md). Either way the same audio always encodes to the same bytes.
``audio_export_files`` encodes the formats side by side, each in its own thread (libsndfile
and ffmpeg run outside the GIL).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from cantus.render.subprocesses import run_program

OPUS_SAMPLE_RATE = 48000
"""Opus encodes at 8, 12, 16, 24 or 48 kHz only; we always use 48 kHz."""


def at_opus_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Float32 ``[samples, channels]`` audio at ``OPUS_SAMPLE_RATE`` (48 kHz; FluidSynth
    renders at 44.1), resampled by libsoxr at its high quality: in the station bench's
    profile scipy's ``resample_poly`` cost 0.19 CPU s per station-minute (segments and
    piece.opus), and soxr takes about half the time with an error of -149 dB on a 1 kHz
    tone against -64 dB (docs/results/station_capacity.md, session 18)."""
    data = np.asarray(audio, np.float32)
    if sample_rate == OPUS_SAMPLE_RATE or not len(data):
        return data
    import soxr  # here: the gateway names exports without resampling anything

    return np.asarray(soxr.resample(data, sample_rate, OPUS_SAMPLE_RATE, quality="HQ"), np.float32)


@dataclass(frozen=True)
class ExportFormat:
    """One downloadable format: libsndfile container and subtype, file suffix, media type,
    and libsndfile's compression level (0 = best quality/largest .. 1; None = default)."""

    container: str
    subtype: str
    suffix: str
    media_type: str
    compression_level: float | None = None
    dither_bits: int | None = None
    ffmpeg_codec: tuple[str, ...] = ()
    """ffmpeg output options that encode this format as libsndfile would; empty: libsndfile
    only."""


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "wav": ExportFormat("WAV", "PCM_16", ".wav", "audio/wav", dither_bits=16),
    "wav24": ExportFormat("WAV", "PCM_24", ".wav", "audio/wav"),
    "flac": ExportFormat("FLAC", "PCM_16", ".flac", "audio/flac", dither_bits=16),
    "flac24": ExportFormat("FLAC", "PCM_24", ".flac", "audio/flac"),
    "ogg": ExportFormat("OGG", "VORBIS", ".ogg", "audio/ogg"),
    "opus": ExportFormat(
        "OGG",
        "OPUS",
        ".opus",
        "audio/ogg; codecs=opus",
        # libsndfile leaves libopus at OPUS_AUTO: 60 * 48000 / 960 + 48000 * 2 channels.
        ffmpeg_codec=("-c:a", "libopus", "-b:a", "99000", "-f", "ogg"),
    ),
    "mp3": ExportFormat(
        "MP3",
        "MPEG_LAYER_III",
        ".mp3",
        "audio/mpeg",
        compression_level=0.25,
        # libsndfile sets LAME's VBR quality to 10 x the compression level.
        ffmpeg_codec=("-c:a", "libmp3lame", "-q:a", "2.5", "-f", "mp3"),
    ),
}
"""Every export by name (see the module docstring)."""


class ExportError(ValueError):
    """An unknown format, or audio that cannot be encoded; the message says which."""


def tpdf_dither(audio: np.ndarray, bits: int, *, seed: int = 0) -> np.ndarray:
    """``audio`` plus triangular (TPDF) noise of ±1 LSB at ``bits`` bits, so quantisation
    error becomes a steady noise floor instead of distortion on quiet passages. Seeded:
    the same audio always encodes to the same file."""
    lsb = 1.0 / (2 ** (bits - 1))
    rng = np.random.default_rng(seed)
    noise = (rng.random(audio.shape) - rng.random(audio.shape)) * lsb
    return (audio + noise).astype(np.float32)


def export_audio(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode float ``[samples, channels]`` audio at ``sample_rate`` (Hz) as ``fmt`` (a key
    of ``EXPORT_FORMATS``); the file's bytes. Samples beyond ±1.0 are clipped."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(
            f"unknown export format {fmt!r}: expected one of {sorted(EXPORT_FORMATS)}"
        )
    spec = EXPORT_FORMATS[fmt]
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise ExportError(f"audio must be [samples, channels] with samples > 0, got {audio.shape}")
    data = np.asarray(audio, dtype=np.float32)
    rate = sample_rate
    if spec.subtype == "OPUS" and sample_rate != OPUS_SAMPLE_RATE:
        data = at_opus_rate(data, sample_rate)
        rate = OPUS_SAMPLE_RATE
    if spec.dither_bits:
        data = tpdf_dither(data, spec.dither_bits)
    data = np.clip(data, -1.0, 1.0)
    ffmpeg = shutil.which("ffmpeg") if spec.ffmpeg_codec else None
    if ffmpeg:
        return ffmpeg_encode(ffmpeg, data, rate, spec.ffmpeg_codec, label=f"ffmpeg {fmt}")
    try:
        return _libsndfile_encode(data, rate, spec.container, spec.subtype, spec.compression_level)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        raise ExportError(f"could not encode {fmt}: {error}") from None


LIBSNDFILE_BLOCK_FRAMES = 65536
"""Frames handed to libsndfile per write. libvorbis's encoder allocates its analysis
buffer on the stack from all the audio written in one call: a piece of about a minute or
more at 44.1 kHz, written whole, overflowed it and killed the process (libsndfile issue
#1095; a 60 s piano piece exported as ogg did). In blocks it never grows past one block."""


def _libsndfile_encode(
    data: np.ndarray, rate: int, container: str, subtype: str, level: float | None
) -> bytes:
    buffer = io.BytesIO()
    with soundfile.SoundFile(
        buffer,
        "w",
        rate,
        data.shape[1],
        subtype,
        format=container,
        compression_level=level,
    ) as out:
        for start in range(0, len(data), LIBSNDFILE_BLOCK_FRAMES):
            out.write(data[start : start + LIBSNDFILE_BLOCK_FRAMES])
    return buffer.getvalue()


def ffmpeg_encode(
    ffmpeg: str, data: np.ndarray, sample_rate: int, codec: tuple[str, ...], *, label: str
) -> bytes:
    """Float ``[samples, channels]`` audio encoded by ``ffmpeg`` with the output options
    ``codec`` (codec, rate, container); bit-exact, so the same audio gives the same bytes."""
    # A file, not a pipe: the MP3 muxer goes back to fill in its Xing header (frame count
    # and seek table), without which decoders stop early.
    with tempfile.TemporaryDirectory(prefix="cantus-encode-") as folder:
        output = Path(folder) / "encoded"
        command = [
            ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-nostdin"),
            *("-f", "f32le", "-ar", str(sample_rate), "-ac", str(data.shape[1]), "-i", "pipe:0"),
            *("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"),
            *codec,
            str(output),
        ]
        done = run_program(command, label=label, stdin=np.ascontiguousarray(data, "<f4").tobytes())
        encoded = output.read_bytes() if output.exists() else b""
    if done.returncode != 0 or not encoded:
        message = done.stderr.decode(errors="replace").strip()[-500:]
        raise ExportError(f"ffmpeg could not encode ({label}): {message}")
    return encoded


def export_file_name(fmt: str, stem: str = "piece") -> str:
    """The stored file name of an export: ``piece.wav``, ``piece.mp3``, … (``wav24`` and
    ``flac24`` get ``piece_24bit.wav``/``.flac`` so they can sit beside the 16-bit ones)."""
    spec = EXPORT_FORMATS[fmt]
    return f"{stem}_24bit{spec.suffix}" if fmt.endswith("24") else f"{stem}{spec.suffix}"


DEFAULT_EXPORTS = ("wav", "flac", "mp3", "opus")
"""The audio files stored with every finished piece."""


def audio_export_files(
    audio: np.ndarray, sample_rate: int, formats: tuple[str, ...] = DEFAULT_EXPORTS
) -> dict[str, bytes]:
    """Every export of one mastered piece by stored file name (``piece.wav``, …), encoded
    side by side."""
    if len(formats) <= 1:
        return {export_file_name(fmt): export_audio(audio, sample_rate, fmt) for fmt in formats}
    with ThreadPoolExecutor(max_workers=len(formats), thread_name_prefix="export") as pool:
        encoded = [pool.submit(export_audio, audio, sample_rate, fmt) for fmt in formats]
        return {
            export_file_name(fmt): done.result() for fmt, done in zip(formats, encoded, strict=True)
        }


SEGMENT_AUDIO_MEDIA_TYPE = "audio/ogg; codecs=opus"
SEGMENT_AUDIO_MAX_BYTES = 512 * 1024
"""Largest Opus segment audio; the bit rate drops for long segments to stay under it (the
gRPC and SSE clients get it inline)."""


@dataclass(frozen=True)
class SegmentCodec:
    """How a render segment's audio is encoded (``PieceSpec.segment_audio``)."""

    name: str
    media_type: str
    extension: str
    """The file name's extension in the segment store (``cantus.segment_store``)."""


SEGMENT_CODECS = {
    "opus": SegmentCodec("opus", SEGMENT_AUDIO_MEDIA_TYPE, "opus"),
    "flac": SegmentCodec("flac", "audio/flac", "flac"),
}
"""Opus (the default) is small, for listeners and players. FLAC is lossless and about 15
times the bytes, for a consumer that decodes the audio and encodes it again: a station's
stream (AAC) then has one lossy generation instead of two, and the render skips the Opus
encode, 20 times the CPU time of FLAC's (docs/results/station_capacity.md)."""


def segment_codec(name: str) -> SegmentCodec:
    """The codec called ``name``; the empty name is Opus, the default."""
    try:
        return SEGMENT_CODECS[name or "opus"]
    except KeyError:
        raise ValueError(
            f"unknown segment audio {name[:40]!r} (known: {', '.join(SEGMENT_CODECS)})"
        ) from None


# --- segment audio: each streamed segment as one small self-contained file -------------


def encode_segment_audio(
    audio: np.ndarray,
    sample_rate: int,
    *,
    codec: str = "opus",
    kbps: int = 48,
    max_bytes: int = SEGMENT_AUDIO_MAX_BYTES,
    serial: int = 1,
) -> bytes:
    """Float ``[samples, 2]`` audio as one self-contained file at 48 kHz (Opus's only rate
    here; the stations' rate), ``b""`` for no samples. ``codec`` (``SEGMENT_CODECS``):

    * ``opus``: Ogg Opus at about ``kbps`` kbit/s, lower if that would exceed ``max_bytes``.
      The Ogg stream gets serial number ``serial``, so the same audio always gives the same
      bytes. Encoded by ffmpeg's libopus where ffmpeg is installed, else by libsndfile's.
    * ``flac``: 16-bit FLAC, in process (libsndfile); no byte limit."""
    if audio.ndim != 2 or len(audio) == 0:
        return b""
    chosen = segment_codec(codec)
    seconds = len(audio) / sample_rate
    bits_per_second = min(kbps * 1000.0, 0.9 * max_bytes * 8 / seconds)
    data = np.clip(at_opus_rate(np.asarray(audio, np.float32), sample_rate), -1.0, 1.0)
    if chosen.name == "flac":
        return _libsndfile_encode(data, OPUS_SAMPLE_RATE, "FLAC", "PCM_16", None)
    ffmpeg = shutil.which("ffmpeg")
    encoded = b""
    for lowest in (False, True):
        if ffmpeg:
            rate = OPUS_LOWEST_BITS_PER_SECOND if lowest else bits_per_second
            encoded = _ffmpeg_opus(ffmpeg, data, rate, serial)
        else:  # 1.0: libsndfile's lowest rate
            level = 1.0 if lowest else _opus_level(bits_per_second)
            encoded = set_ogg_serial(_libsndfile_opus(data, level), serial)
        if len(encoded) <= max_bytes:
            break
    return encoded


OPUS_LOWEST_BITS_PER_SECOND = 12000.0
"""The fallback rate of a segment too long for its byte limit: libsndfile's lowest, 6 kbit/s
a channel."""


def _ffmpeg_opus(ffmpeg: str, data: np.ndarray, bits_per_second: float, serial: int) -> bytes:
    codec = (
        *("-c:a", "libopus", "-b:a", str(round(bits_per_second))),
        *("-serial_offset", str(serial), "-f", "ogg"),
    )
    return ffmpeg_encode(ffmpeg, data, OPUS_SAMPLE_RATE, codec, label="ffmpeg segment opus")


def _libsndfile_opus(data: np.ndarray, level: float) -> bytes:
    return _libsndfile_encode(data, OPUS_SAMPLE_RATE, "OGG", "OPUS", level)


_BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(data: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value and
    final XOR 0), computed by zlib's reflected CRC-32 on the bit-reversed bytes."""
    reflected = zlib.crc32(data.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """``data`` (an Ogg file of one logical stream) with every page's stream serial number
    set to ``serial`` and its checksum recomputed. libsndfile picks a random serial, so
    without this the same audio would encode to different bytes each time."""
    out = bytearray(data)
    position = 0
    while position + 27 <= len(out) and out[position : position + 4] == b"OggS":
        segments = out[position + 26]
        body = sum(out[position + 27 : position + 27 + segments])
        end = position + 27 + segments + body
        out[position + 14 : position + 18] = (serial & 0xFFFFFFFF).to_bytes(4, "little")
        out[position + 22 : position + 26] = b"\0\0\0\0"
        crc = ogg_crc(bytes(out[position:end]))
        out[position + 22 : position + 26] = crc.to_bytes(4, "little")
        position = end
    return bytes(out)


def _opus_level(bits_per_second: float) -> float:
    """libsndfile's Opus compression level (0..1) for about ``bits_per_second`` of music:
    it maps the level linearly onto the bit rate, ~500 kbit/s at 0 down to ~6 at 1
    (docs/results/design_measurements.md)."""
    return min(1.0, max(0.0, 1.0 - (bits_per_second - 6000.0) / 510000.0))
