"""Client of the ``melody_lm`` Triton model: one gRPC stream per request, tokens as they come.

Triton serves decoupled models only over gRPC ``ModelStreamInfer``. The model marks its
last response with ``FINISHED``; closing the stream early (a cancelled task, a killed
process) cancels the request in Triton, which frees its decoding slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import InferRequestedOutput

from cantus.triton_client import TritonModelClient, input_tensor


class MelodyLMError(RuntimeError):
    """Triton refused or failed a melody request; the message is Triton's."""


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling settings sent with every request."""

    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 0.95
    key_constraint: bool = False
    end_on_tonic: bool = False  # a cadence: set on the request that ends a piece
    tonal_emphasis: float = 0.0  # nats on the beats for key-defining pitches (0..4)
    cadence_steps: tuple[int, ...] = ()  # the last note's scale steps (a phrase's cadence)
    guidance: float = 1.0  # classifier-free guidance on the key (1: none)


class MelodyLMClient(TritonModelClient):
    """``async for token in client.stream_tokens(prompt, n_bars=16, seed=7): …``"""

    def __init__(self, address: str, model_name: str = "melody_lm") -> None:
        super().__init__(address, model_name)

    async def stream_tokens(
        self,
        prompt: Sequence[int],
        *,
        n_bars: int,
        seed: int,
        options: SamplingOptions = SamplingOptions(),
        request_id: str = "",
    ) -> AsyncIterator[int]:
        """Yield each sampled token id; ends after the model's final response."""
        inputs = [
            input_tensor("PROMPT", list(prompt), "INT32", np.int32),
            input_tensor("N_BARS", [n_bars], "INT32", np.int32),
            input_tensor("SEED", [seed % (2**63)], "INT64", np.int64),
            input_tensor("TEMPERATURE", [options.temperature], "FP32", np.float32),
            input_tensor("TOP_K", [options.top_k], "INT32", np.int32),
            input_tensor("TOP_P", [options.top_p], "FP32", np.float32),
            input_tensor("KEY_CONSTRAINT", [options.key_constraint], "BOOL", np.bool_),
            input_tensor("END_ON_TONIC", [options.end_on_tonic], "BOOL", np.bool_),
            input_tensor("TONAL_EMPHASIS", [options.tonal_emphasis], "FP32", np.float32),
            input_tensor("GUIDANCE", [options.guidance], "FP32", np.float32),
        ]
        if options.cadence_steps:
            inputs.append(
                input_tensor("CADENCE_STEPS", list(options.cadence_steps), "INT32", np.int32)
            )
        outputs = [InferRequestedOutput("TOKENS"), InferRequestedOutput("FINISHED")]
        finished = asyncio.Event()

        async def requests():  # type: ignore[no-untyped-def]
            yield {
                "model_name": self.model_name,
                "inputs": inputs,
                "outputs": outputs,
                "request_id": request_id,
            }
            await finished.wait()  # keep the stream open until the final response

        responses = self._connection().stream_infer(requests())
        try:
            async for result, error in responses:
                if error is not None:
                    raise MelodyLMError(str(error))
                for token in result.as_numpy("TOKENS").tolist():
                    yield int(token)
                if bool(result.as_numpy("FINISHED")[0]):
                    return
            raise MelodyLMError("the melody_lm stream ended before its final response")
        finally:
            finished.set()
            responses.cancel()
