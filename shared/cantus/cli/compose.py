"""``cantus compose``: the client side of a Compose call — stream the piece's events with a
progress bar, then fetch the finished files and write them under ``DIR/<piece_id>/``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cantus.security import channel_credentials
from cantus.settings import Settings, load_settings
from cantus.storage import check_piece_id
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ComposeFailed(RuntimeError):
    """The server rejected the request or the piece failed; the message is the server's."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ComposedPiece:
    piece_id: str
    folder: Path
    events: list[api.PieceEvent] = field(default_factory=list)


def open_channel(address: str, settings: Settings | None = None) -> grpc.Channel:
    """A channel to the gateway: plaintext, or TLS (with a bearer token) when the client
    settings ``gateway_client_ca`` / ``gateway_client_token`` say so (a secured cluster)."""
    settings = settings or load_settings()
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if settings.gateway_client_ca is None and settings.gateway_client_token is None:
        return grpc.insecure_channel(address, options=options)
    ca = settings.gateway_client_ca.read_bytes() if settings.gateway_client_ca else None
    token = settings.gateway_client_token
    credentials = channel_credentials(ca, token.get_secret_value() if token else None)
    return grpc.secure_channel(address, credentials, options=options)


def stream_piece(
    channel: grpc.Channel, request: api.ComposeRequest, timeout_s: float | None = None
) -> Iterator[api.PieceEvent]:
    """Every event of the piece as it arrives; raises ``ComposeFailed`` with the server's
    message on an invalid request or a failed piece."""
    stub = api_grpc.ComposerStub(channel)
    try:
        for event in stub.Compose(request, timeout=timeout_s):
            if event.WhichOneof("event") == "failed":
                failed = event.failed
                raise ComposeFailed(f"{failed.service} failed the piece: {failed.reason}")
            yield event
    except grpc.RpcError as error:
        raise ComposeFailed(error.details() or str(error), error.code()) from None


def fetch_piece(channel: grpc.Channel, piece_id: str, out_dir: Path) -> Path:
    """Write every file of a finished piece to ``out_dir/<piece_id>/``."""
    stub = api_grpc.ComposerStub(channel)
    try:
        piece = stub.GetPiece(api.GetPieceRequest(piece_id=piece_id), timeout=60)
    except grpc.RpcError as error:
        raise ComposeFailed(error.details() or str(error), error.code()) from None
    folder = out_dir / check_piece_id(piece.piece_id)
    folder.mkdir(parents=True, exist_ok=True)
    for file in piece.files:
        # Names come from the server; keep only the base name as a guard.
        (folder / Path(file.name).name).write_bytes(file.content)
    return folder


def compose(
    address: str,
    request: api.ComposeRequest,
    out_dir: Path,
    *,
    on_event: Callable[[api.PieceEvent], None] = lambda e: None,
    timeout_s: float | None = None,
) -> ComposedPiece:
    """Compose one piece end to end and store its files; returns where they are."""
    with open_channel(address) as channel:
        events = []
        piece_id = ""
        for event in stream_piece(channel, request, timeout_s):
            events.append(event)
            if event.WhichOneof("event") == "requested":
                piece_id = event.requested.meta.piece_id
            on_event(event)
        if not events or events[-1].WhichOneof("event") != "completed":
            raise ComposeFailed(f"the stream of piece {piece_id or '?'} ended before completion")
        folder = fetch_piece(channel, piece_id, out_dir)
    return ComposedPiece(piece_id=piece_id, folder=folder, events=events)
