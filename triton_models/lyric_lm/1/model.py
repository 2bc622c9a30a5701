"""Triton Python-backend model ``lyric_lm``: a thin shell around ``cantus.lyrics.serving``.

Decoupled: every request gets exactly one response (its scores, or an error naming the bad
input) with the ``TRITONSERVER_RESPONSE_COMPLETE_FINAL`` flag.
"""

import os
import sys

# The backend stub embeds the system Python and ignores PYTHONPATH: `cantus up` passes the
# project's import path (package, virtual env) in CANTUS_PYTHONPATH instead.
for _path in reversed(os.environ.get("CANTUS_PYTHONPATH", "").split(os.pathsep)):
    if _path and _path not in sys.path:
        sys.path.insert(0, _path)

import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.lyrics.serving import (  # noqa: E402
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    LyricServing,
    ScoringInputError,
)
from cantus.model_config import model_setup  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        try:
            setup = model_setup(args, EXPECTED_INPUTS, EXPECTED_OUTPUTS, decoupled=True)
        except ValueError as error:
            raise pb_utils.TritonModelException(f"lyric_lm config: {error}") from None
        try:
            self.serving = LyricServing.load(
                setup.checkpoint("checkpoint_dir", "CANTUS_LYRIC_CHECKPOINT_DIR", ""),
                device=setup.device,
                torch_threads=setup.int_parameter("torch_threads", 1),
                causal_lm_dir=setup.parameter("causal_lm_dir", "") or None,
            )
        except (OSError, ValueError) as error:
            raise pb_utils.TritonModelException(f"lyric_lm checkpoints: {error}") from None
        pb_utils.Logger.log_info(f"lyric_lm: {self.serving.versions} on {setup.device}")

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            inputs = {
                name: tensor.as_numpy()
                for name in EXPECTED_INPUTS
                if (tensor := pb_utils.get_input_tensor_by_name(request, name)) is not None
            }
            try:
                outputs = self.serving.handle(inputs)
            except ScoringInputError as error:
                response = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
            else:
                response = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(k, v) for k, v in outputs.items()]
                )
            sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
