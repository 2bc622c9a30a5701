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


def test_files_are_listed_with_sizes_and_read_in_chunks(tmp_path):
    store = LocalPieceStore(tmp_path)
    content = bytes(range(256)) * 41  # 10 496 bytes
    store.write(PIECE, "piece.wav", content)
    store.write(PIECE, "piece.json", b"{}")
    store.write(PIECE, "piece.json", b"[2]", version=2)
    assert store.file_sizes(PIECE) == {"piece.json": 2, "piece.wav": len(content)}
    assert store.file_sizes(PIECE, 2) == {"piece.json": 3}
    chunks = list(store.read_chunks(PIECE, "piece.wav", chunk_bytes=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 2304] and b"".join(chunks) == content
    assert list(store.read_chunks(PIECE, "piece.json", 2)) == [b"[2]"]
    with pytest.raises(StorageError, match=r"has no piece\.mid"):
        next(store.read_chunks(PIECE, "piece.mid"))
    with pytest.raises(StorageError, match="not allowed"):
        next(store.read_chunks(PIECE, "../piece.wav"))
    with pytest.raises(PieceNotFound):
        store.file_sizes("ab" * 16)


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


def test_s3_versions_are_kept_apart(fake_s3):
    from cantus.storage import S3PieceStore, VersionNotFound

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
    assert store.file_sizes(PIECE) == {"piece.json": 2, "piece.mp3": 3}
    assert store.file_sizes(PIECE, 2) == {"piece.json": 3}
    store.write(PIECE, "piece.wav", b"x" * 10_000)
    chunks = list(store.read_chunks(PIECE, "piece.wav", chunk_bytes=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    with pytest.raises(StorageError, match=r"has no piece\.mid"):
        next(store.read_chunks(PIECE, "piece.mid"))


def test_version_claims_are_exclusive_under_concurrency(tmp_path):
    """Edits of one piece at once (issue #18): each claim creates its v<N>/ exclusively, so
    16 threads claiming together get 16 different numbers, above every stored one; a
    released claim that was never stored is gone, a stored version is never released."""
    from concurrent.futures import ThreadPoolExecutor

    store = LocalPieceStore(tmp_path)
    store.write(PIECE, "piece.json", b"{}")
    store.write(PIECE, "piece.json", b"{}", version=2)
    with ThreadPoolExecutor(16) as pool:
        claimed = list(pool.map(lambda _: store.claim_version(PIECE), range(16)))
    assert sorted(claimed) == list(range(3, 19))
    assert store.versions(PIECE) == [1, 2]  # claimed is not stored
    store.write(PIECE, "piece.wav", b"RIFF", version=5)  # a failed edit's leftovers
    store.release_version(PIECE, 5)
    assert not (tmp_path / PIECE / "v5").exists()
    store.release_version(PIECE, 2)
    assert store.versions(PIECE) == [1, 2]
    assert store.claim_version(PIECE) == 19  # never below a claim still held
    with pytest.raises(PieceNotFound):
        store.claim_version("f" * 32)


def test_s3_version_claims_are_exclusive(fake_s3, monkeypatch):
    from cantus.storage import S3PieceStore

    store = S3PieceStore("cantus", prefix="pieces")
    store.write(PIECE, "piece.json", b"{}")
    assert [store.claim_version(PIECE) for _ in range(3)] == [2, 3, 4]
    # two gateways that listed the same versions race for the same number: the
    # conditional create lets one have it and sends the other to the next
    other = S3PieceStore("cantus", prefix="pieces")
    monkeypatch.setattr(other, "_names", lambda folder: ["piece.json"])
    assert other.claim_version(PIECE) == 5
    store.write(PIECE, "piece.json", b"[3]", version=3)
    assert store.versions(PIECE) == [1, 3]
    assert store.read_all(PIECE, 3) == {"piece.json": b"[3]"}  # the claim is no file
    store.release_version(PIECE, 2)
    store.release_version(PIECE, 3)  # stored: kept
    assert store.versions(PIECE) == [1, 3]
    assert store.claim_version(PIECE) == 6
