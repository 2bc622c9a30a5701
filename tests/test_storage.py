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
