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

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from cantus.melody.serving import (  # noqa: E402
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    MelodyServing,
    RequestInputError,
)
from cantus.model_config import model_setup  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        try:
            setup = model_setup(args, EXPECTED_INPUTS, EXPECTED_OUTPUTS, decoupled=True)
        except ValueError as error:
            raise pb_utils.TritonModelException(f"melody_lm config: {error}") from None
        self.serving = MelodyServing.load(
            setup.checkpoint("checkpoint", "CANTUS_MELODY_CHECKPOINT", "melody_lm.pt"),
            max_batch=setup.int_parameter("max_batch", 32),
            torch_threads=setup.int_parameter(
                "torch_threads", 2, env="CANTUS_MELODY_TORCH_THREADS"
            ),
            device=setup.device,
            kv_cache_dtype=setup.parameter("kv_cache_dtype", "bfloat16"),
            bfloat16_from_batch=setup.int_parameter("bfloat16_from_batch", 0),
        )
        pb_utils.Logger.log_info(
            f"melody_lm: {self.serving.model_version} on {setup.device}, "
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
