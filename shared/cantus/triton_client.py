"""What every asyncio client of a Cantus Triton model shares: one lazily opened gRPC
connection per client object, input tensors from arrays, and readiness."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput
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


class TritonModelClient:
    """A client of one Triton model at ``address``; the connection opens on first use and
    ``close`` releases it (a later call opens a new one)."""

    def __init__(self, address: str, model_name: str) -> None:
        self.address = address
        self.model_name = model_name
        self._client: triton_aio.InferenceServerClient | None = None

    def _connection(self) -> triton_aio.InferenceServerClient:
        if self._client is None:
            self._client = triton_aio.InferenceServerClient(self.address)
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
