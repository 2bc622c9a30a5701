"""Audio exports decode back to the audio that went in; the S3 store keeps them."""

import io

import numpy as np
import pytest
import soundfile

from cantus.render.exports import (
    EXPORT_FORMATS,
    OPUS_SAMPLE_RATE,
    ExportError,
    audio_export_files,
    export_audio,
    export_file_name,
)

SR = 44100


@pytest.fixture(scope="module")
def music():
    """Two seconds of a stereo chord with a decay: tonal, like the pieces."""
    t = np.arange(2 * SR) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    envelope = np.exp(-1.5 * t)
    left, right = chord * envelope * 0.8, np.roll(chord, 50) * envelope * 0.6
    return np.stack([left, right], axis=1).astype(np.float32)


def decode(data):
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio, rate


MAGIC = {
    "wav": b"RIFF",
    "wav24": b"RIFF",
    "flac": b"fLaC",
    "flac24": b"fLaC",
    "ogg": b"OggS",
    "opus": b"OggS",
}


@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_every_format_decodes_to_the_same_music(music, fmt):
    data = export_audio(music, SR, fmt)
    if fmt in MAGIC:
        assert data.startswith(MAGIC[fmt])
    audio, rate = decode(data)
    assert audio.shape[1] == 2
    expected_rate = OPUS_SAMPLE_RATE if fmt == "opus" else SR
    assert rate == expected_rate
    if fmt in ("wav", "flac"):  # 16-bit with ±1 LSB dither
        assert len(audio) == len(music)
        assert np.abs(audio - music).max() <= 3 / 32768
    elif fmt in ("wav24", "flac24"):
        assert np.abs(audio - music).max() <= 2 / 2**23
    else:  # lossy: encoder delay and padding; compare loudness and spectrum peak
        assert abs(len(audio) / rate - len(music) / SR) < 0.1
        rms_in = np.sqrt(np.mean(music**2))
        rms_out = np.sqrt(np.mean(audio**2))
        assert rms_out == pytest.approx(rms_in, rel=0.1)
        spectrum = np.abs(np.fft.rfft(audio[:, 0]))
        peak_hz = np.argmax(spectrum) * rate / len(audio)
        assert min(abs(peak_hz - f) for f in (220.0, 277.18, 329.63)) < 3.0


def test_mp3_is_an_mpeg_stream(music):
    data = export_audio(music, SR, "mp3")
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    assert "opus" in EXPORT_FORMATS["opus"].media_type
    assert len(data) < len(export_audio(music, SR, "wav")) / 4


def test_16_bit_exports_are_reproducible(music):
    assert export_audio(music, SR, "wav") == export_audio(music, SR, "wav")


def test_bad_requests_are_refused(music):
    with pytest.raises(ExportError, match="unknown export format"):
        export_audio(music, SR, "aiff")
    with pytest.raises(ExportError, match="samples, channels"):
        export_audio(np.zeros((0, 2), np.float32), SR, "wav")


def test_file_names():
    assert export_file_name("mp3") == "piece.mp3"
    assert export_file_name("flac24") == "piece_24bit.flac"


# --- the S3-compatible piece store (exports land there) ----------------------------------

PIECE = "0123456789abcdef0123456789abcdef"


def test_s3_store_writes_and_reads_a_piece(fake_s3):
    from cantus.storage import S3PieceStore, StorageError

    store = S3PieceStore("cantus", prefix="pieces")
    assert store.write(PIECE, "piece.mp3", b"ID3") == f"s3://cantus/pieces/{PIECE}/piece.mp3"
    with pytest.raises(StorageError, match="not finished"):
        store.read_all(PIECE)
    store.write(PIECE, "piece.json", b"{}")
    store.write(PIECE, "piece.json", b"{ }")  # rewriting is fine
    assert store.read_all(PIECE) == {"piece.json": b"{ }", "piece.mp3": b"ID3"}
    head = fake_s3.head_object(Bucket="cantus", Key=f"pieces/{PIECE}/piece.json")
    assert head["ContentType"] == "application/json"
    with pytest.raises(StorageError, match="piece_id"):
        store.write("../" + PIECE, "piece.json", b"")
    with pytest.raises(StorageError, match="not allowed"):
        store.write(PIECE, "../piece.json", b"")


def test_a_piece_gets_every_default_export(music):
    files = audio_export_files(music, SR)
    assert sorted(files) == ["piece.flac", "piece.mp3", "piece.opus", "piece.wav"]


def test_a_piece_over_a_minute_exports_as_ogg_without_killing_the_process():
    """libvorbis sized a stack buffer by all the audio written in one call: a 60 s piece
    exported as ogg crashed the process (SIGSEGV; libsndfile #1095). Run in a child, so a
    crash fails this test instead of the test run."""
    import subprocess
    import sys

    script = (
        "import numpy as np, soundfile, io\n"
        "from cantus.render.exports import export_audio\n"
        "rng = np.random.default_rng(0)\n"
        "audio = (rng.standard_normal((44100 * 75, 2)) * 0.1).astype(np.float32)\n"
        "encoded = export_audio(audio, 44100, 'ogg')\n"
        "decoded, rate = soundfile.read(io.BytesIO(encoded))\n"
        "print(len(decoded), rate)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(44100 * 75), "44100"]
