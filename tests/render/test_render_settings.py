"""Render settings and the piece store they choose."""

import pytest
from pydantic import ValidationError

from cantus.settings import Settings
from cantus.storage import LocalPieceStore, S3PieceStore, media_type, piece_store


def test_defaults_are_local_and_complete(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.loudness_preset == "streaming"
    assert settings.audio_formats == ["wav", "flac", "mp3", "opus"]
    assert settings.humanise and settings.segment_audio and settings.leadsheet
    store = piece_store(settings)
    assert isinstance(store, LocalPieceStore) and store.root == tmp_path


def test_an_s3_bucket_selects_the_s3_store():
    settings = Settings(
        s3_bucket="pieces-bucket",
        s3_prefix="cantus/pieces",
        s3_endpoint="http://127.0.0.1:9000",
        s3_region="us-east-1",
    )
    store = piece_store(settings)
    assert isinstance(store, S3PieceStore)
    assert store.bucket == "pieces-bucket" and store.prefix == "cantus/pieces"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9000"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CANTUS_LOUDNESS_PRESET", "broadcast")
    monkeypatch.setenv("CANTUS_AUDIO_FORMATS", '["ogg", "wav", "ogg"]')
    monkeypatch.setenv("CANTUS_HUMANISE", "false")
    settings = Settings()
    assert settings.loudness_preset == "broadcast"
    assert settings.audio_formats == ["ogg", "wav"]
    assert not settings.humanise


@pytest.mark.parametrize(
    ("field", "value"), [("loudness_preset", "loud"), ("audio_formats", ["wav", "aiff"])]
)
def test_bad_values_are_refused_naming_them(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("piece.flac", "audio/flac"),
        ("piece.mp3", "audio/mpeg"),
        ("piece.opus", "audio/ogg; codecs=opus"),
        ("piece.ogg", "audio/ogg"),
        ("piece.musicxml", "application/vnd.recordare.musicxml+xml"),
        ("pianoroll.png", "image/png"),
    ],
)
def test_media_types_of_every_stored_file(name, expected):
    assert media_type(name) == expected
