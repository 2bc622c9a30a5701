"""What every asyncio client of a Cantus Triton model shares: one lazily opened gRPC
connection per client object, input tensors from arrays, and readiness; and
``upstream_unavailable``, which tells a model server that is not reachable (a restart: wait
for it) from one that answered with an error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, InferInput, KeepAliveOptions
from tritonclient.utils import InferenceServerException


def input_tensor(
    name: str, values: Sequence | np.ndarray, dtype: str, np_dtype: type | None = None
) -> InferInput:
    """An ``InferInput`` named ``name`` of Triton type ``dtype`` holding ``values``
    (converted to ``np_dtype`` when given)."""
    array = np.asarray(values, dtype=np_dtype)
    tensor = InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return tensor


RECONNECT_BACKOFF_MS = (500, 2000)
"""First and largest wait (ms) of a channel reconnecting to a Triton that refused it. gRPC's
own default grows to 120 s, so a channel that met a restarting Triton a few times kept failing
calls at once ("Connection refused") for a minute or more after Triton listened again, and
spent a service's whole ``unavailable_wait_s`` (#22, found by ``cantus bench chaos --victims
triton``)."""


def channel_args() -> list[tuple[str, int]]:
    """tritonclient's default channel options, with ``RECONNECT_BACKOFF_MS``."""
    keepalive = KeepAliveOptions()
    first, largest = RECONNECT_BACKOFF_MS
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", first),
        ("grpc.min_reconnect_backoff_ms", first),
        ("grpc.max_reconnect_backoff_ms", largest),
    ]


class TritonModelClient:
    """A client of one Triton model at ``address``; the connection opens on first use and
    ``close`` releases it (a later call opens a new one)."""

    def __init__(self, address: str, model_name: str) -> None:
        self.address = address
        self.model_name = model_name
        self._client: triton_aio.InferenceServerClient | None = None

    def _connection(self) -> triton_aio.InferenceServerClient:
        if self._client is None:
            self._client = triton_aio.InferenceServerClient(
                self.address, channel_args=channel_args()
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ready(self) -> bool:
        try:
            return await self._connection().is_model_ready(self.model_name)
        except InferenceServerException:
            return False


class ModelServerUnavailable(RuntimeError):
    """The model server could not be reached (gRPC ``UNAVAILABLE``: refused, reset, not yet
    listening). Raised by clients asked to tell it apart from a model's own failure, so a stream
    service waits for Triton with back-off (``unavailable_wait_s``) instead of a fallback."""


def upstream_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says a server it called is not
    reachable: gRPC ``UNAVAILABLE`` from Triton's client, by status code, not by text."""
    import grpc

    seen: BaseException | None = error
    for _ in range(8):  # the chain of causes, not forever
        if seen is None:
            return False
        if isinstance(seen, ModelServerUnavailable):
            return True
        code = getattr(seen, "code", None) if isinstance(seen, grpc.RpcError) else None
        if callable(code) and code() == grpc.StatusCode.UNAVAILABLE:
            return True
        status = getattr(seen, "status", None)
        if callable(status) and status() in ("StatusCode.UNAVAILABLE", "UNAVAILABLE"):
            return True  # tritonclient's InferenceServerException
        seen = seen.__cause__ or seen.__context__
    return False
