"""Which errors mean "the model server is not reachable" (wait for it, #22) and which are
failures (counted tries, then the dead-letter topic): by gRPC status code, through the chain
of errors a client wraps them in."""

from __future__ import annotations

import grpc
from tritonclient.utils import InferenceServerException

from cantus.harmony.client import HarmonyModelError
from cantus.streaming.service import upstream_unavailable


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
