"""The piece store: safe names, atomic writes."""

import pytest

from cantus.storage import InvalidPieceId, LocalPieceStore, PieceNotFound, StorageError

PIECE = "0123456789abcdef0123456789abcdef"


def test_write_then_read_all(tmp_path):
    store = LocalPieceStore(tmp_path)
    store.write(PIECE, "piece.mid", b"MThd")
    store.write(PIECE, "piece.json", b"{}")
    assert store.read_all(PIECE) == {"piece.json": b"{}", "piece.mid": b"MThd"}
    assert not [p for p in (tmp_path / PIECE).iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("piece_id", ["../x", "", "ABC", PIECE + "0", "0" * 31 + "/"])
def test_piece_ids_that_are_not_ours_are_refused(tmp_path, piece_id):
    with pytest.raises(InvalidPieceId, match="piece_id"):
        LocalPieceStore(tmp_path).write(piece_id, "piece.mid", b"")


@pytest.mark.parametrize("name", ["../piece.mid", "a/b.mid", ".hidden", "piece"])
def test_file_names_are_checked(tmp_path, name):
    with pytest.raises(StorageError, match="not allowed"):
        LocalPieceStore(tmp_path).write(PIECE, name, b"")


def test_unfinished_piece_is_not_found(tmp_path):
    store = LocalPieceStore(tmp_path)
    store.write(PIECE, "piece.mid", b"")
    with pytest.raises(PieceNotFound, match="not finished"):
        store.read_all(PIECE)


def test_versions_are_kept_apart_and_read_by_number(tmp_path):
    """Version 1 is the piece folder, an edit's version N its v<N>/ (issue #18): reading
    one never sees another's files, a version exists once its piece.json does, and
    read_files reads only the names asked for."""
    from cantus.storage import VersionNotFound

    store = LocalPieceStore(tmp_path)
    store.write(PIECE, "piece.mid", b"MThd")
    store.write(PIECE, "piece.json", b"{}")
    assert store.versions(PIECE) == [1]
    store.write(PIECE, "piece.mid", b"MThd2", version=2)
    assert store.versions(PIECE) == [1]  # no piece.json yet: no version 2
    with pytest.raises(VersionNotFound):
        store.read_all(PIECE, 2)
    store.write(PIECE, "piece.json", b'{"version": 2}', version=2)
    assert store.versions(PIECE) == [1, 2]
    assert store.read_all(PIECE) == {"piece.json": b"{}", "piece.mid": b"MThd"}
    assert store.read_all(PIECE, 2) == {"piece.json": b'{"version": 2}', "piece.mid": b"MThd2"}
    assert store.read_files(PIECE, ["piece.mid", "piece.wav"], 2) == {"piece.mid": b"MThd2"}
    with pytest.raises(PieceNotFound):
        store.read_files("f" * 32, ["piece.mid"])
    assert store.versions("f" * 32) == []


def test_s3_versions_are_kept_apart(monkeypatch):
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed: S3 storage is optional")
    moto = pytest.importorskip("moto", reason="moto not installed: no fake S3 to test against")
    from cantus.storage import S3PieceStore, VersionNotFound

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="cantus")
        store = S3PieceStore("cantus", prefix="pieces")
        store.write(PIECE, "piece.json", b"{}")
        store.write(PIECE, "piece.mp3", b"ID3")
        uri = store.write(PIECE, "piece.json", b"[2]", version=2)
        assert uri == f"s3://cantus/pieces/{PIECE}/v2/piece.json"
        assert store.versions(PIECE) == [1, 2]
        assert store.read_all(PIECE) == {"piece.json": b"{}", "piece.mp3": b"ID3"}
        assert store.read_all(PIECE, 2) == {"piece.json": b"[2]"}
        assert store.read_files(PIECE, ["piece.mp3", "piece.wav"]) == {"piece.mp3": b"ID3"}
        with pytest.raises(VersionNotFound):
            store.read_all(PIECE, 3)
