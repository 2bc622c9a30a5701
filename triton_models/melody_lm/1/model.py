"""Triton Python-backend model ``melody_lm``: a thin shell around ``cantus.melody.engine``.

Decoupled: ``execute`` only admits requests into the decode engine and returns; the
engine's thread batches every active request into one forward step and each sampled token
goes back on that request's response sender. The last response carries ``FINISHED`` and
the ``TRITONSERVER_RESPONSE_COMPLETE_FINAL`` flag, also for cancelled requests.
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

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.melody.serving import (  # noqa: E402
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    MelodyServing,
    RequestInputError,
)
from cantus.model_config import check_model_config  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        try:
            check_model_config(config, EXPECTED_INPUTS, EXPECTED_OUTPUTS)
        except ValueError as error:
            raise pb_utils.TritonModelException(f"melody_lm config: {error}") from None
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("melody_lm must be decoupled")
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        checkpoint = parameters.get("checkpoint") or os.environ.get("CANTUS_MELODY_CHECKPOINT")
        if not checkpoint:
            checkpoint = str(
                Path(__import__("cantus").__file__).parent / "checkpoints" / "melody_lm.pt"
            )
        device = "cuda" if args.get("model_instance_kind") == "GPU" else "cpu"
        if device == "cuda":
            device = f"cuda:{args['model_instance_device_id']}"
        self.serving = MelodyServing.load(
            Path(checkpoint),
            max_batch=int(parameters.get("max_batch", "32")),
            torch_threads=int(
                os.environ.get("CANTUS_MELODY_TORCH_THREADS")
                or parameters.get("torch_threads", "2")
            ),
            device=device,
            kv_cache_dtype=parameters.get("kv_cache_dtype", "bfloat16"),
            bfloat16_from_batch=int(parameters.get("bfloat16_from_batch", "0")),
        )
        pb_utils.Logger.log_info(
            f"melody_lm: {self.serving.model_version} on {device}, "
            f"max batch {self.serving.max_batch}"
        )

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            inputs = {
                name: tensor.as_numpy()
                for name in EXPECTED_INPUTS
                if (tensor := pb_utils.get_input_tensor_by_name(request, name)) is not None
            }
            try:
                self.serving.submit(
                    inputs,
                    on_tokens=lambda tokens, finished, sender=sender: _send(
                        sender, tokens, finished
                    ),
                    on_error=lambda message, sender=sender: _send_error(sender, message),
                    is_cancelled=sender.is_cancelled,
                )
            except RequestInputError as error:
                _send_error(sender, str(error))
        return None

    def finalize(self):
        self.serving.close()


def _send(sender, tokens, finished):
    # Raising here ends this request in the engine (the client went away); others go on.
    # Runs on MelodyServing's delivery thread, not the decode engine's.
    response = pb_utils.InferenceResponse(
        output_tensors=[
            pb_utils.Tensor("TOKENS", np.asarray(tokens, dtype=np.int32)),
            pb_utils.Tensor("FINISHED", np.asarray([finished], dtype=np.bool_)),
        ]
    )
    flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if finished else 0
    sender.send(response, flags=flags)


def _send_error(sender, message):
    sender.send(
        pb_utils.InferenceResponse(error=pb_utils.TritonError(message)),
        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
    )
