"""Triton Python-backend model ``melody_score``: a thin shell around
``cantus.melody.suffix_scoring``. Every request gets one response: its log-probabilities,
or an error naming the bad input."""

import os
import sys

# The backend stub embeds the system Python and ignores PYTHONPATH: `cantus up` passes the
# project's import path (package, virtual env) in CANTUS_PYTHONPATH instead.
for _path in reversed(os.environ.get("CANTUS_PYTHONPATH", "").split(os.pathsep)):
    if _path and _path not in sys.path:
        sys.path.insert(0, _path)

import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.melody.suffix_scoring import (  # noqa: E402
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    MelodyScoreServing,
    ScoreInputError,
)
from cantus.model_config import model_setup  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        try:
            setup = model_setup(
                args, EXPECTED_INPUTS, EXPECTED_OUTPUTS, decoupled=False, batched=False
            )
        except ValueError as error:
            raise pb_utils.TritonModelException(f"melody_score config: {error}") from None
        try:
            self.serving = MelodyScoreServing.load(
                setup.checkpoint("checkpoint", "CANTUS_MELODY_CHECKPOINT", "melody_lm.pt"),
                device=setup.device,
                torch_threads=setup.int_parameter("torch_threads", 1),
            )
        except (OSError, ValueError) as error:
            raise pb_utils.TritonModelException(f"melody_score checkpoint: {error}") from None
        pb_utils.Logger.log_info(f"melody_score: {self.serving.model_version} on {setup.device}")

    def execute(self, requests):
        responses = []
        for request in requests:
            inputs = {
                name: tensor.as_numpy()
                for name in EXPECTED_INPUTS
                if (tensor := pb_utils.get_input_tensor_by_name(request, name)) is not None
            }
            try:
                outputs = self.serving.handle(inputs)
            except ScoreInputError as error:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error))))
            else:
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor(k, v) for k, v in outputs.items()]
                    )
                )
        return responses
