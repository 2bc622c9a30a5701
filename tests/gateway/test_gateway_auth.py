"""The gateway's bearer-token interceptor, in process: which calls pass and how the rest end."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from services.gateway.auth import BearerTokenInterceptor, bearer_token, token_accepted

TOKEN = b"good-token-0123456789"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((("authorization", "Bearer abc"),), b"abc"),
        ((("Authorization", "bearer  abc "),), b"abc"),
        ((("x-other", "1"), ("authorization", b"Bearer abc")), b"abc"),
        ((("authorization", "Basic abc"),), None),
        ((("authorization", "Bearer "),), None),
        ((), None),
        (None, None),
    ],
)
def test_bearer_token_parsing(metadata, expected) -> None:  # type: ignore[no-untyped-def]
    assert bearer_token(metadata) == expected


def test_token_comparison() -> None:
    assert token_accepted(TOKEN, [b"other-token-000000000", TOKEN])
    assert not token_accepted(TOKEN[:-1], [TOKEN])
    assert not token_accepted(b"", [TOKEN])


def test_interceptor_checks() -> None:
    interceptor = BearerTokenInterceptor([TOKEN])
    method = "/cantus.v1.Composer/GetPiece"
    assert "missing" in interceptor.check(method, ())
    assert "invalid" in interceptor.check(method, (("authorization", "Bearer nope"),))
    assert interceptor.check(method, (("authorization", "Bearer " + TOKEN.decode()),)) is None
    assert interceptor.check("/grpc.health.v1.Health/Check", ()) is None
    with pytest.raises(ValueError):
        BearerTokenInterceptor([])


class _NoPieces(api_grpc.ComposerServicer):
    async def GetPiece(self, request, context):  # type: ignore[no-untyped-def]
        await context.abort(grpc.StatusCode.NOT_FOUND, "piece_id: no such piece")

    async def Compose(self, request, context):  # type: ignore[no-untyped-def]
        yield api.PieceEvent()


async def _calls() -> dict[str, grpc.StatusCode]:
    server = grpc.aio.server(interceptors=[BearerTokenInterceptor([TOKEN])])
    api_grpc.add_ComposerServicer_to_server(_NoPieces(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    outcome: dict[str, grpc.StatusCode] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = api_grpc.ComposerStub(channel)
            request = api.GetPieceRequest(piece_id="0" * 32)
            for name, metadata in [
                ("none", ()),
                ("wrong", (("authorization", "Bearer wrong-token-000000"),)),
                ("right", (("authorization", "Bearer " + TOKEN.decode()),)),
            ]:
                try:
                    await stub.GetPiece(request, metadata=metadata, timeout=5)
                    outcome[name] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    outcome[name] = error.code()
            try:  # a server-streaming method refused before its first message
                async for _ in stub.Compose(api.ComposeRequest(), timeout=5):
                    pass
                outcome["stream"] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                outcome["stream"] = error.code()
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            outcome["health"] = (
                grpc.StatusCode.OK
                if reply.status == health_pb2.HealthCheckResponse.SERVING
                else grpc.StatusCode.UNAVAILABLE
            )
    finally:
        await server.stop(None)
    return outcome


def test_interceptor_on_a_real_server() -> None:
    outcome = asyncio.run(_calls())
    assert outcome == {
        "none": grpc.StatusCode.UNAUTHENTICATED,
        "wrong": grpc.StatusCode.UNAUTHENTICATED,
        "right": grpc.StatusCode.NOT_FOUND,  # passed the check, ran the method
        "stream": grpc.StatusCode.UNAUTHENTICATED,
        "health": grpc.StatusCode.OK,
    }
