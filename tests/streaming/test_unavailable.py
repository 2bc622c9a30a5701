"""Which errors mean "the model server is not reachable" (wait for it, #22) and which are
failures (counted tries, then the dead-letter topic): by gRPC status code, through the chain
of errors a client wraps them in."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from tritonclient.utils import InferenceServerException

from cantus.harmony.bar_harmony import HarmonyContext, harmonize_piece_bar
from cantus.harmony.client import HarmonyClient, HarmonyModelError
from cantus.lyrics.client import LyricLMError, TritonLyricScorer
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy, Style
from cantus.streaming.service import upstream_unavailable
from cantus.triton_client import ModelServerUnavailable, TritonModelClient

C_MAJOR, FOUR = Key(0), Meter(4, 4)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def wrapped(inner: BaseException) -> HarmonyModelError:
    try:
        raise HarmonyModelError("harmony: wrapped") from inner
    except HarmonyModelError as error:
        return error


def test_a_refused_connection_is_unavailable():
    assert upstream_unavailable(FakeRpcError(grpc.StatusCode.UNAVAILABLE))
    assert upstream_unavailable(
        InferenceServerException("refused", status="StatusCode.UNAVAILABLE")
    )


def test_through_the_error_a_client_wraps_it_in():
    assert upstream_unavailable(wrapped(FakeRpcError(grpc.StatusCode.UNAVAILABLE)))


def test_other_errors_are_failures():
    assert not upstream_unavailable(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT))
    assert not upstream_unavailable(
        InferenceServerException("bad input", status="StatusCode.INVALID_ARGUMENT")
    )
    assert not upstream_unavailable(wrapped(ValueError("unavailable")))  # not by its text
    assert not upstream_unavailable(RuntimeError("model server unavailable"))


# --- the harmony and lyric clients against a model server that is not there (#22) ---------------


def closed_port() -> str:
    """A loopback address nothing listens on: what a Triton being restarted looks like."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def a_window():
    from cantus.harmony.cadence import bar_harmony_plan
    from cantus.harmony.context import planned_window

    bar = Bar(FOUR, tuple(Note(i * 480, p, 480) for i, p in enumerate((60, 64, 67, 72))))
    plan = bar_harmony_plan(None, 0, bar, home_key=C_MAJOR, energy=Energy.MID, next_bar=None)
    window = planned_window(
        [],
        bar,
        next_bar=None,
        plan=plan,
        home_key=C_MAJOR,
        style=Style.FOLK,
        is_final=False,
        history_is_complete=True,
    )
    return bar, window


def harmonize_once(client: HarmonyClient, window) -> None:
    async def run() -> None:
        try:
            await client.harmonize(window)
        finally:
            await client.close()

    asyncio.run(run())


def test_the_harmony_service_client_says_triton_is_unavailable():
    _, window = a_window()
    client = HarmonyClient(closed_port(), timeout_s=5.0, wait_when_unavailable=True)
    with pytest.raises(ModelServerUnavailable) as raised:
        harmonize_once(client, window)
    assert upstream_unavailable(raised.value)
    assert not isinstance(raised.value, HarmonyModelError)  # the rules do not catch it


def test_the_editors_harmony_client_keeps_it_a_model_error():
    _, window = a_window()
    client = HarmonyClient(closed_port(), timeout_s=5.0)
    with pytest.raises(HarmonyModelError) as raised:
        harmonize_once(client, window)
    assert upstream_unavailable(raised.value)  # still found by its status code


def test_an_unavailable_triton_is_not_harmonised_by_the_rules():
    """The harmony service's bar waits (the error reaches the stream service's retries),
    while a model that answers wrongly still gets the rules' chords."""
    bar, _ = a_window()
    client = HarmonyClient(closed_port(), timeout_s=5.0, wait_when_unavailable=True)
    kwargs = dict(
        bars=4, key=C_MAJOR, style=Style.FOLK, energy=Energy.MID, plan=None, model_version="m"
    )

    async def harmonized(ask):
        try:
            return await harmonize_piece_bar(0, bar, None, HarmonyContext(), ask, **kwargs)
        finally:
            await client.close()

    with pytest.raises(ModelServerUnavailable):
        asyncio.run(harmonized(client.harmonize))

    async def wrong(window):
        raise HarmonyModelError("harmony: bad answer")

    made = asyncio.run(harmonized(wrong))
    assert made.model_error == "harmony: bad answer" and "rules" in made.harmonizer


def test_the_lyric_scorer_says_triton_is_unavailable():
    scorer = TritonLyricScorer(closed_port(), "en", timeout_s=20.0)
    with pytest.raises(LyricLMError) as raised:
        scorer.score(["the"], ["sea"])
    scorer.close()
    assert upstream_unavailable(raised.value)


def test_a_client_reaches_a_model_server_soon_after_it_listens_again():
    """After failing against a closed port for 15 s, a call made 3 s after a server listens
    there reaches it (gRPC's default reconnect back-off would still refuse it at once)."""
    import time

    from grpc_health.v1 import health, health_pb2_grpc

    address = closed_port()
    client = TritonModelClient(address, "harmony")

    async def run() -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert not await client.ready()
            await asyncio.sleep(0.2)
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        server.add_insecure_port(address)
        await server.start()
        try:
            await asyncio.sleep(3)
            try:
                await client._connection().is_model_ready("harmony")
            except InferenceServerException as error:
                return not upstream_unavailable(error)  # answered: UNIMPLEMENTED
            return True
        finally:
            await client.close()
            await server.stop(0)

    assert asyncio.run(run())
