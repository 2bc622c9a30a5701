"""What the gateway's HTTP side answers to requests aiohttp would refuse or not route itself
(#22): an oversized header is named (431), a path that matches no route names the field it
was read as, and a piece's file is streamed from the store whole. The HTTP side runs as
``GatewayWeb.start`` runs it (its parser limits), on a free loopback port."""

from __future__ import annotations

import asyncio
import http.client

from cantus.settings import Settings
from cantus.stack import free_ports
from cantus.storage import LocalPieceStore
from services.gateway.stations import StationDirectory
from services.gateway.web import HEADER_MAX_BYTES, GatewayWeb

PIECE_ID = "ab" * 16


def answers(tmp_path, requests: list[tuple[str, dict[str, str]]]) -> list[tuple[int, bytes]]:
    """(status, body) for each GET (path, headers), against a started GatewayWeb."""
    port = free_ports(1)[0]
    settings = Settings(data_dir=tmp_path, gateway_http_port=port, host="127.0.0.1")
    store = LocalPieceStore(tmp_path)
    store.write(PIECE_ID, "piece.json", b"{}")
    store.write(PIECE_ID, "piece.wav", bytes(range(256)) * 12_000)  # 3 MiB: several chunks

    def get(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    async def main() -> list[tuple[int, bytes]]:
        web = GatewayWeb(settings, None, None, StationDirectory(settings))  # type: ignore[arg-type]
        await web.start()
        try:
            return [await asyncio.to_thread(get, path, h) for path, h in requests]
        finally:
            await web.stop()

    return asyncio.run(main())


def test_an_oversized_header_is_named(tmp_path) -> None:
    (status, body), (big, huge), (ok, _) = answers(
        tmp_path,
        [
            ("/stations", {"X-Hostile": "x" * 20_000}),
            ("/stations", {"X-Hostile": "x" * 100_000}),
            ("/stations", {"X-Fine": "x" * (HEADER_MAX_BYTES - 20)}),
        ],
    )
    assert status == 431 and body.decode().startswith("header X-Hostile: ")
    assert big == 431 and huge.decode().startswith("header X-Hostile: ")
    assert ok == 200


def test_a_path_no_route_matches_names_its_field(tmp_path) -> None:
    (empty, empty_body), (slash, slash_body), (station, station_body), (other, other_body) = (
        answers(
            tmp_path,
            [
                ("/pieces//piece.json", {}),
                (f"/pieces/{PIECE_ID[:16]}/{PIECE_ID[16:]}/x/piece.json", {}),
                ("/stations/a/b/live.m3u8", {}),
                ("/nowhere", {}),
            ],
        )
    )
    assert (empty, slash, station, other) == (404, 404, 404, 404)
    assert empty_body.decode().startswith("piece_id: ")
    assert slash_body.decode().startswith("piece_id: ")
    assert station_body.decode().startswith("name: ")
    assert other_body.decode().startswith("path: ")


def test_a_long_piece_id_reaches_the_route_and_is_named(tmp_path) -> None:
    ((status, body),) = answers(tmp_path, [(f"/pieces/{'a' * 10_000}/piece.json", {})])
    assert status == 400 and body.decode().startswith("piece_id: ")


def test_a_piece_file_is_streamed_whole(tmp_path) -> None:
    (wav, content), (missing, missing_body) = answers(
        tmp_path, [(f"/pieces/{PIECE_ID}/piece.wav", {}), (f"/pieces/{PIECE_ID}/piece.mid", {})]
    )
    assert wav == 200 and content == bytes(range(256)) * 12_000
    assert missing == 404 and missing_body.decode().startswith("file: ")
