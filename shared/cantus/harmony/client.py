"""Client of the ``harmony`` Triton model: one window in, the bar's beat chords out.

Plain (non-decoupled) gRPC inference; Triton's dynamic batcher puts the requests of
concurrent pieces into one forward pass. Imports no torch.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from cantus.harmony.context import Window


class HarmonyModelError(RuntimeError):
    """Triton refused, failed or timed out a harmony request; the message says why."""


def _tensor(name: str, array: np.ndarray, dtype: str) -> InferInput:
    tensor = InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return tensor


class HarmonyClient:
    """``beats = await HarmonyClient(address).harmonize(window)``"""

    def __init__(self, address: str, model_name: str = "harmony", timeout_s: float = 10.0) -> None:
        self.address = address
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._client: triton_aio.InferenceServerClient | None = None

    def _connection(self) -> triton_aio.InferenceServerClient:
        if self._client is None:
            self._client = triton_aio.InferenceServerClient(self.address)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def harmonize(self, window: Window) -> list[tuple[int, int]]:
        """(chord class, inversion) for each beat from ``window.decode_from`` on."""
        inputs = [
            _tensor("FEATURES", window.features[None].astype(np.float32), "FP32"),
            _tensor("PREVIOUS", window.previous[None].astype(np.int32), "INT32"),
            _tensor("HOLD", window.hold[None].astype(np.bool_), "BOOL"),
            _tensor("DECODE_FROM", np.array([[window.decode_from]], dtype=np.int32), "INT32"),
        ]
        outputs = [InferRequestedOutput("CHORDS"), InferRequestedOutput("INVERSIONS")]
        try:
            result = await self._connection().infer(
                self.model_name, inputs, outputs=outputs, client_timeout=self.timeout_s
            )
        except InferenceServerException as error:
            raise HarmonyModelError(f"{self.model_name}: {error}") from None
        chords = result.as_numpy("CHORDS")[0, window.decode_from :]
        inversions = result.as_numpy("INVERSIONS")[0, window.decode_from :]
        return [(int(c), int(i)) for c, i in zip(chords, inversions, strict=True)]
