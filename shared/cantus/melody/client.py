"""Client of the ``melody_lm`` Triton model: one gRPC stream per request, tokens as they come.

Triton serves decoupled models only over gRPC ``ModelStreamInfer``. The model marks its
last response with ``FINISHED``; closing the stream early (a cancelled task, a killed
process) cancels the request in Triton, which frees its decoding slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput

from cantus.melody.sampling import DEFAULT_SAMPLING, WIRE_TENSORS, SamplingParams
from cantus.triton_client import TritonModelClient, input_tensor


class MelodyLMError(RuntimeError):
    """Triton refused or failed a melody request; the message is Triton's."""


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
        sampling: SamplingParams = DEFAULT_SAMPLING,
        request_id: str = "",
    ) -> AsyncIterator[int]:
        """Yield each sampled token id; ends after the model's final response."""
        inputs = [
            input_tensor("PROMPT", list(prompt), "INT32", np.int32),
            input_tensor("N_BARS", [n_bars], "INT32", np.int32),
            input_tensor("SEED", [seed % (2**63)], "INT64", np.int64),
            *sampling_tensors(sampling),
        ]
        outputs = [InferRequestedOutput("TOKENS"), InferRequestedOutput("FINISHED")]
        finished = asyncio.Event()

        async def requests():
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


_NUMPY_TYPES = {"FP32": np.float32, "INT32": np.int32, "BOOL": np.bool_}


def sampling_tensors(sampling: SamplingParams) -> list[InferInput]:
    """The request's ``SamplingParams`` as Triton input tensors (``WIRE_TENSORS``); an empty
    list field (no cadence) is left out, which the model reads as its default."""
    tensors = []
    for field_name, tensor in WIRE_TENSORS.items():
        value = getattr(sampling, field_name)
        values = list(value) if tensor.is_list else [value]
        if values:
            tensors.append(
                input_tensor(tensor.name, values, tensor.datatype, _NUMPY_TYPES[tensor.datatype])
            )
    return tensors
