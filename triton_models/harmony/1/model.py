"""Triton Python-backend model ``harmony``: a thin shell around ``cantus.harmony.serving``.

Triton's dynamic batcher hands ``execute`` the requests of several pieces at once; they
are stacked into one batch, decoded in one pass and split back, one response per request.
A malformed request gets an error response naming the input; the others are answered.
"""

import os
import sys

# The backend stub embeds the system Python and ignores PYTHONPATH: `cantus up` passes the
# project's import path (package, virtual env) in CANTUS_PYTHONPATH instead.
for _path in reversed(os.environ.get("CANTUS_PYTHONPATH", "").split(os.pathsep)):
    if _path and _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.harmony.serving import (  # noqa: E402
    INPUTS,
    OUTPUTS,
    HarmonyServing,
    RequestInputError,
    check_inputs,
    complete_inputs,
)
from cantus.model_config import model_setup  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        try:
            setup = model_setup(args, INPUTS, OUTPUTS, decoupled=False, batched=True)
        except ValueError as error:
            raise pb_utils.TritonModelException(f"harmony config: {error}") from None
        self.serving = HarmonyServing.load(
            setup.checkpoint("checkpoint", "CANTUS_HARMONY_CHECKPOINT", "harmony_gru.pt"),
            device=setup.device,
            torch_threads=setup.int_parameter("torch_threads", 1),
        )
        pb_utils.Logger.log_info(f"harmony: {self.serving.model_version} on {setup.device}")

    def execute(self, requests):
        responses = [None] * len(requests)
        good, arrays = [], []
        for index, request in enumerate(requests):
            inputs = {}
            for name in INPUTS:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is not None:
                    inputs[name] = tensor.as_numpy()
            try:
                check_inputs(inputs)
            except RequestInputError as error:
                responses[index] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(error))
                )
                continue
            good.append((index, len(inputs["FEATURES"])))
            arrays.append(complete_inputs(inputs))
        if arrays:
            batch = {name: np.concatenate([a[name] for a in arrays]) for name in INPUTS}
            outputs = self.serving.decode(batch)
            start = 0
            for index, rows in good:
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor(name, outputs[name][start : start + rows])
                        for name in OUTPUTS
                    ]
                )
                start += rows
        return responses

    def finalize(self):
        self.serving = None
