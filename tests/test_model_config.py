"""The load-time checks every Triton model shares: each committed config.pbtxt (CPU and
GPU) passes its model's contract, a config that differs is refused naming the difference,
and parameters, device and checkpoint are read the same way for all three models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from cantus.harmony import serving as harmony
from cantus.lyrics import serving as lyrics
from cantus.melody import serving as melody
from cantus.melody import suffix_scoring
from cantus.model_config import check_model_config, model_setup
from cantus.settings import CHECKPOINTS, REPO_ROOT

CONTRACTS = {
    "melody_lm": (melody.EXPECTED_INPUTS, melody.EXPECTED_OUTPUTS, True, False),
    "lyric_lm": (lyrics.EXPECTED_INPUTS, lyrics.EXPECTED_OUTPUTS, True, False),
    "harmony": (harmony.INPUTS, harmony.OUTPUTS, False, True),
    "melody_score": (suffix_scoring.EXPECTED_INPUTS, suffix_scoring.EXPECTED_OUTPUTS, False, False),
}
"""Model → (inputs, outputs, decoupled, batched by Triton)."""


def triton_config(path: Path) -> dict:
    """A config.pbtxt as Triton hands it to ``initialize`` (JSON, proto field names)."""
    message = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _configs() -> list[tuple[str, Path]]:
    return [
        (model, path)
        for model in CONTRACTS
        for path in sorted((REPO_ROOT / "triton_models" / model).glob("**/*.pbtxt"))
    ]


@pytest.mark.parametrize(("model", "path"), _configs(), ids=lambda v: str(v)[-40:])
def test_committed_configs_meet_their_contract(model: str, path: Path) -> None:
    inputs, outputs, decoupled, batched = CONTRACTS[model]
    check_model_config(triton_config(path), inputs, outputs, decoupled=decoupled, batched=batched)


def test_every_model_has_a_cpu_and_a_gpu_config() -> None:
    names = [(model, path.name) for model, path in _configs()]
    assert sorted(names) == sorted((m, n) for m in CONTRACTS for n in ("config.pbtxt", "gpu.pbtxt"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["input"].pop(0), "input PROMPT is missing"),
        (lambda c: c["output"].append({"name": "LOGITS"}), "output LOGITS is not one"),
        (lambda c: c.pop("model_transaction_policy"), "must be decoupled"),
        (lambda c: c.update(max_batch_size=8), "max_batch_size must be 0"),
    ],
)
def test_a_config_that_differs_is_refused_by_name(change, message) -> None:
    config = triton_config(REPO_ROOT / "triton_models/melody_lm/config.pbtxt")
    change(config)
    with pytest.raises(ValueError, match=message):
        check_model_config(
            config, melody.EXPECTED_INPUTS, melody.EXPECTED_OUTPUTS, decoupled=True, batched=False
        )


def test_types_and_shapes_are_checked_where_the_contract_gives_them() -> None:
    config = triton_config(REPO_ROOT / "triton_models/harmony/config.pbtxt")
    config["input"][0]["data_type"] = "TYPE_FP16"
    with pytest.raises(ValueError, match="input FEATURES must be TYPE_FP32"):
        check_model_config(config, harmony.INPUTS, harmony.OUTPUTS)


def test_setup_reads_parameters_device_and_checkpoint(monkeypatch) -> None:
    config = triton_config(REPO_ROOT / "triton_models/melody_lm/configs/gpu.pbtxt")
    config["parameters"] = {"max_batch": {"string_value": "8"}}
    args = {
        "model_config": json.dumps(config),
        "model_instance_kind": "GPU",
        "model_instance_device_id": "1",
    }
    monkeypatch.delenv("CANTUS_MELODY_CHECKPOINT", raising=False)
    monkeypatch.setenv("CANTUS_MELODY_TORCH_THREADS", "3")
    setup = model_setup(args, melody.EXPECTED_INPUTS, melody.EXPECTED_OUTPUTS, decoupled=True)
    assert setup.device == "cuda:1"
    assert setup.int_parameter("max_batch", 32) == 8
    assert setup.int_parameter("torch_threads", 2, env="CANTUS_MELODY_TORCH_THREADS") == 3
    assert setup.int_parameter("bfloat16_from_batch", 0) == 0
    checkpoint = setup.checkpoint("checkpoint", "CANTUS_MELODY_CHECKPOINT", "melody_lm.pt")
    assert checkpoint == CHECKPOINTS / "melody_lm.pt" and checkpoint.is_file()
    monkeypatch.setenv("CANTUS_MELODY_CHECKPOINT", "/elsewhere/m.pt")
    assert setup.checkpoint("checkpoint", "CANTUS_MELODY_CHECKPOINT", "x") == Path(
        "/elsewhere/m.pt"
    )
    assert (
        model_setup({**args, "model_instance_kind": "CPU"}, *CONTRACTS["melody_lm"][:2]).device
        == "cpu"
    )
