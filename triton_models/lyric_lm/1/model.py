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

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.lyrics.serving import (  # noqa: E402
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    LyricServing,
    ScoringInputError,
)
from cantus.model_config import check_model_config  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        try:
            check_model_config(config, EXPECTED_INPUTS, EXPECTED_OUTPUTS)
        except ValueError as error:
            raise pb_utils.TritonModelException(f"lyric_lm config: {error}") from None
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("lyric_lm must be decoupled")
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        directory = parameters.get("checkpoint_dir") or os.environ.get(
            "CANTUS_LYRIC_CHECKPOINT_DIR"
        )
        if not directory:
            directory = str(Path(__import__("cantus").__file__).parent / "checkpoints")
        device = "cuda" if args.get("model_instance_kind") == "GPU" else "cpu"
        if device == "cuda":
            device = f"cuda:{args['model_instance_device_id']}"
        try:
            self.serving = LyricServing.load(
                Path(directory),
                device=device,
                torch_threads=int(parameters.get("torch_threads", "1")),
                causal_lm_dir=parameters.get("causal_lm_dir") or None,
            )
        except (OSError, ValueError) as error:
            raise pb_utils.TritonModelException(f"lyric_lm checkpoints: {error}") from None
        pb_utils.Logger.log_info(f"lyric_lm: {self.serving.versions} on {device}")

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
