"""Client of the ``harmony`` Triton model: one window in, the bar's beat chords out.

Plain (non-decoupled) gRPC inference; Triton's dynamic batcher puts the requests of
concurrent pieces into one forward pass. Imports no torch.
"""

from __future__ import annotations

import numpy as np
from tritonclient.grpc import InferRequestedOutput
from tritonclient.utils import InferenceServerException

from cantus.harmony.context import Window
from cantus.triton_client import (
    ModelServerUnavailable,
    TritonModelClient,
    input_tensor,
    upstream_unavailable,
)


class HarmonyModelError(RuntimeError):
    """Triton refused, failed or timed out a harmony request; the message says why."""


class HarmonyClient(TritonModelClient):
    """``beats = await HarmonyClient(address).harmonize(window)``

    ``wait_when_unavailable``: a Triton that cannot be reached raises
    ``ModelServerUnavailable`` (which the rule-based fallback does not catch), so the harmony
    service waits for it with back-off as melody and lyric do (#22); otherwise it is a
    ``HarmonyModelError`` like any other, and the rules stand in (the editor)."""

    def __init__(
        self,
        address: str,
        model_name: str = "harmony",
        timeout_s: float = 10.0,
        *,
        wait_when_unavailable: bool = False,
    ) -> None:
        super().__init__(address, model_name)
        self.timeout_s = timeout_s
        self.wait_when_unavailable = wait_when_unavailable

    async def harmonize(self, window: Window) -> list[tuple[int, int]]:
        """(chord class, inversion) for each beat from ``window.decode_from`` on."""
        inputs = [
            input_tensor("FEATURES", window.features[None].astype(np.float32), "FP32"),
            input_tensor("PREVIOUS", window.previous[None].astype(np.int32), "INT32"),
            input_tensor("HOLD", window.hold[None].astype(np.bool_), "BOOL"),
            input_tensor("DECODE_FROM", np.array([[window.decode_from]], dtype=np.int32), "INT32"),
            # Optional in the model, sent always: requests with one set of inputs batch together.
            input_tensor("ALLOWED", window.allowed_classes()[None].astype(np.bool_), "BOOL"),
        ]
        outputs = [InferRequestedOutput("CHORDS"), InferRequestedOutput("INVERSIONS")]
        try:
            result = await self._connection().infer(
                self.model_name, inputs, outputs=outputs, client_timeout=self.timeout_s
            )
        except InferenceServerException as error:
            if self.wait_when_unavailable and upstream_unavailable(error):
                raise ModelServerUnavailable(f"{self.model_name}: {error}") from error
            raise HarmonyModelError(f"{self.model_name}: {error}") from error
        chords = result.as_numpy("CHORDS")[0, window.decode_from :]
        inversions = result.as_numpy("INVERSIONS")[0, window.decode_from :]
        return [(int(c), int(i)) for c, i in zip(chords, inversions, strict=True)]
