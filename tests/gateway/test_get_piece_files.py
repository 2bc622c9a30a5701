"""A piece larger than one gRPC message: GetPieceFiles streams its files in chunks and the CLI
joins them; GetPiece refuses it with an error that names GetPieceFiles (#22).

The gateway's Composer runs on a real gRPC server on loopback over a local piece store. The
message cap is gRPC's default 4 MiB on the client's channel (the CLI's is 256 MiB; the case is
the same, smaller), and the gateway's one-message limit is set below the piece's size.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import grpc
import pytest

from cantus.cli.compose import ComposeFailed, _join_chunks, download_piece
from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from services.gateway.server import PIECE_CHUNK_BYTES, Composer

PIECE_ID = "cd" * 16


@pytest.fixture
def gateway(tmp_path) -> Iterator[tuple[str, Composer]]:
    """The address of a gRPC server running the gateway's Composer, and the Composer."""
    settings = Settings(data_dir=tmp_path)
    composer = Composer(settings, producer=None, router=None)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    ready: Future[int] = Future()
    stop = asyncio.Event()

    async def serve() -> None:
        server = grpc.aio.server(
            options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
        )
        api_grpc.add_ComposerServicer_to_server(composer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.set_result(port)
        await stop.wait()
        await server.stop(0)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    port = ready.result(timeout=30)
    try:
        yield f"127.0.0.1:{port}", composer
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def _store_piece(composer: Composer) -> dict[str, bytes]:
    files = {
        "piece.wav": os.urandom(9 * 1024 * 1024 + 17),  # over the 4 MiB default cap
        "piece.json": b'{"bars": 4}',
        "empty.txt": b"",
    }
    for name, content in files.items():
        composer.store.write(PIECE_ID, name, content)
    return files


def test_get_piece_files_streams_a_piece_over_the_message_cap_in_chunks(gateway) -> None:
    address, composer = gateway
    files = _store_piece(composer)
    with grpc.insecure_channel(address) as channel:  # gRPC's default 4 MiB receive cap
        fetched = download_piece(channel, PIECE_ID)
        chunks = list(
            api_grpc.ComposerStub(channel).GetPieceFiles(
                api.GetPieceRequest(piece_id=PIECE_ID), timeout=60
            )
        )
    assert fetched.files == files
    assert (fetched.piece_id, fetched.version, fetched.latest_version) == (PIECE_ID, 1, 1)
    assert max(len(chunk.data) for chunk in chunks) == PIECE_CHUNK_BYTES
    assert len([c for c in chunks if c.name == "piece.wav"]) == 10  # 9 MiB + 17 bytes
    assert [c.name for c in chunks].count("empty.txt") == 1  # an empty file still arrives


def test_get_piece_refuses_a_piece_over_its_limit_naming_get_piece_files(gateway) -> None:
    address, composer = gateway
    _store_piece(composer)
    composer.piece_message_limit = 8 * 1024 * 1024
    with grpc.insecure_channel(
        address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            api_grpc.ComposerStub(channel).GetPiece(
                api.GetPieceRequest(piece_id=PIECE_ID), timeout=60
            )
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "GetPieceFiles" in (refused.value.details() or "")
        assert (refused.value.details() or "").startswith("piece_id: ")
        # under the limit it is one message, as before
        composer.piece_message_limit = 16 * 1024 * 1024
        piece = api_grpc.ComposerStub(channel).GetPiece(
            api.GetPieceRequest(piece_id=PIECE_ID), timeout=60
        )
        assert len(piece.files) == 3


def test_get_piece_files_names_the_field_of_an_unknown_or_invalid_piece(gateway) -> None:
    address, _ = gateway
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(ComposeFailed) as unknown:
            download_piece(channel, "ef" * 16)
        assert unknown.value.code is grpc.StatusCode.NOT_FOUND
        assert "piece_id" in str(unknown.value)
        with pytest.raises(ComposeFailed) as invalid:
            download_piece(channel, "../../etc/passwd")
        assert invalid.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "piece_id" in str(invalid.value)


def test_chunks_with_a_gap_or_a_short_file_are_refused() -> None:
    def chunk(offset: int, data: bytes, size: int = 8) -> api.PieceChunk:
        return api.PieceChunk(piece_id=PIECE_ID, name="a.bin", size=size, offset=offset, data=data)

    assert _join_chunks([chunk(0, b"abcd"), chunk(4, b"efgh")]).files == {"a.bin": b"abcdefgh"}
    with pytest.raises(ComposeFailed, match="offset 5 after 4"):
        _join_chunks([chunk(0, b"abcd"), chunk(5, b"fgh")])
    with pytest.raises(ComposeFailed, match="4 of 8 bytes"):
        _join_chunks([chunk(0, b"abcd")])


def test_get_piece_files_reads_the_store_a_chunk_at_a_time(gateway) -> None:
    """A 48 MiB file is streamed with about a chunk in the gateway's memory, not the file
    (Python's allocations traced across the server's and the reading client's threads; the
    client drops each chunk as it comes)."""
    import tracemalloc

    address, composer = gateway
    size = 48 * 1024 * 1024
    composer.store.write(PIECE_ID, "piece.wav", os.urandom(size))
    composer.store.write(PIECE_ID, "piece.json", b"{}")
    received = 0
    tracemalloc.start()
    try:
        with grpc.insecure_channel(address) as channel:
            for chunk in api_grpc.ComposerStub(channel).GetPieceFiles(
                api.GetPieceRequest(piece_id=PIECE_ID), timeout=120
            ):
                received += len(chunk.data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size + 2
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 48 MiB file"


def test_get_piece_refuses_before_reading_the_files(gateway) -> None:
    """The size comes from the store's listing: a piece over the limit is never read."""
    import tracemalloc

    address, composer = gateway
    composer.store.write(PIECE_ID, "piece.wav", os.urandom(32 * 1024 * 1024))
    composer.store.write(PIECE_ID, "piece.json", b"{}")
    composer.piece_message_limit = 8 * 1024 * 1024
    tracemalloc.start()
    try:
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
            api_grpc.ComposerStub(channel).GetPiece(
                api.GetPieceRequest(piece_id=PIECE_ID), timeout=60
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert peak < 8 * 1024 * 1024
