"""The gateway takes as many pieces as it is told to stream at once, and refuses the next at
once with RESOURCE_EXHAUSTED and a retry hint, instead of letting every client time out."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from cantus.events.codec import new_meta
from cantus.requests import RETRY_AFTER_METADATA
from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb
from services.gateway.server import Composer


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: tuple = ()

    def set_trailing_metadata(self, metadata) -> None:  # type: ignore[no-untyped-def]
        self.trailing = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


class FakeRouter:
    """Hands each subscriber a queue; the test finishes pieces by putting a completion."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue] = {}

    def subscribe(self, piece_id: str, *, replay: bool = False) -> asyncio.Queue:
        self.queues[piece_id] = asyncio.Queue()
        return self.queues[piece_id]

    def unsubscribe(self, piece_id: str, queue: asyncio.Queue) -> None:
        self.queues.pop(piece_id, None)

    async def for_client(self, message):
        return message


class FakeProducer:
    async def send_and_wait(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        return None


def _composer(tmp_path, limit: int) -> tuple[Composer, FakeRouter]:
    settings = Settings(
        data_dir=tmp_path, gateway_max_pieces_in_flight=limit, gateway_retry_after_s=7.0
    )
    router = FakeRouter()
    return Composer(settings, FakeProducer(), router), router  # type: ignore[arg-type]


async def _first_event(stream) -> api.PieceEvent:  # type: ignore[no-untyped-def]
    return await stream.__anext__()


def test_a_busy_gateway_refuses_at_once_with_a_retry_hint_and_recovers(tmp_path) -> None:
    async def scenario() -> None:
        composer, router = _composer(tmp_path, limit=2)
        streams = [composer.Compose(api.ComposeRequest(bars=4), FakeContext()) for _ in range(2)]
        first = [await _first_event(stream) for stream in streams]  # both taken
        assert composer.pieces_in_flight == 2

        refused = FakeContext()
        with pytest.raises(Aborted):
            await _first_event(composer.Compose(api.ComposeRequest(bars=4), refused))
        assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "gateway_max_pieces_in_flight" in refused.details
        assert refused.trailing == ((RETRY_AFTER_METADATA, "7"),)

        # one piece completes: its stream ends and the gateway takes a new piece
        piece_id = first[0].requested.meta.piece_id
        completed = pb.PieceCompleted(meta=new_meta(piece_id, 4, "render"))
        router.queues[piece_id].put_nowait(completed)
        assert (await _first_event(streams[0])).WhichOneof("event") == "completed"
        with pytest.raises(StopAsyncIteration):
            await _first_event(streams[0])
        assert composer.pieces_in_flight == 1
        again = await _first_event(composer.Compose(api.ComposeRequest(bars=4), FakeContext()))
        assert again.WhichOneof("event") == "requested"
        assert composer.pieces_in_flight == 2

    asyncio.run(scenario())


def test_a_client_that_goes_away_frees_its_place(tmp_path) -> None:
    async def scenario() -> None:
        composer, _ = _composer(tmp_path, limit=1)
        stream = composer.Compose(api.ComposeRequest(bars=4), FakeContext())
        await _first_event(stream)
        assert composer.pieces_in_flight == 1
        await stream.aclose()  # what grpc does when the client cancels
        assert composer.pieces_in_flight == 0

    asyncio.run(scenario())
