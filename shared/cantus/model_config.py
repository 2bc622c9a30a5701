"""What every Cantus Triton Python-backend model does when it loads, without Triton.

``model_setup`` checks the model's config.pbtxt against the tensors the model code reads
(``check_model_config``: a config that names other tensors, types or shapes, or the wrong
transaction policy, fails at load naming what is wrong) and reads its parameters, device
and checkpoint. The three ``triton_models/*/1/model.py`` shells call it and keep only the
conversion between Triton's tensors and the serving classes, plus the import-path prelude
that must run before ``cantus`` can be imported at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cantus.settings import CHECKPOINTS

TensorContract = Collection[str] | Mapping[str, tuple[str, list[int]]]
"""The tensors a model reads or writes: their names, or name → (Triton data type, dims
without the batch dimension) where the types and shapes are checked too."""


def check_model_config(
    config: Mapping[str, Any],
    inputs: TensorContract,
    outputs: TensorContract,
    *,
    decoupled: bool | None = None,
    batched: bool | None = None,
) -> None:
    """Raise ``ValueError`` naming the first difference between a Triton model config and
    the contract: a tensor missing or unexpected, a type or shape (where the contract gives
    them), the transaction policy (``decoupled``) and batching (``batched``: a dynamic
    batcher's ``max_batch_size`` >= 1, or 0), each checked where not None."""
    for section, expected in (("input", inputs), ("output", outputs)):
        found = {entry["name"]: entry for entry in config.get(section, [])}
        for name in expected:
            if name not in found:
                raise ValueError(f"{section} {name} is missing")
        unexpected = sorted(set(found) - set(expected))
        if unexpected:
            raise ValueError(f"{section} {unexpected[0]} is not one the model reads or writes")
        if isinstance(expected, Mapping):
            for name, (data_type, dims) in expected.items():
                entry = found[name]
                if entry["data_type"] != data_type or [int(d) for d in entry["dims"]] != list(dims):
                    raise ValueError(f"{section} {name} must be {data_type} {list(dims)}")
    if decoupled is not None:
        policy = bool(config.get("model_transaction_policy", {}).get("decoupled", False))
        if policy != decoupled:
            raise ValueError("the model must be decoupled" if decoupled else "decoupled is not")
    if batched is not None:
        max_batch_size = int(config.get("max_batch_size", 0))
        if batched and max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1 (requests are batched)")
        if not batched and max_batch_size != 0:
            raise ValueError("max_batch_size must be 0 (the model batches on its own)")


def triton_device(args: Mapping[str, Any]) -> str:
    """The torch device of a model instance: its GPU where Triton placed it there."""
    if args.get("model_instance_kind") == "GPU":
        return f"cuda:{args['model_instance_device_id']}"
    return "cpu"


@dataclass(frozen=True)
class ModelSetup:
    """A loading model's config ``parameters`` (string values) and torch ``device``."""

    parameters: Mapping[str, str]
    device: str

    def parameter(self, name: str, default: str) -> str:
        return self.parameters.get(name) or default

    def int_parameter(self, name: str, default: int, *, env: str | None = None) -> int:
        """An integer parameter; ``env``, where set, overrides the config."""
        value = (os.environ.get(env) if env else None) or self.parameters.get(name)
        return int(value) if value else default

    def checkpoint(self, parameter: str, env: str, default_name: str) -> Path:
        """The checkpoint file or folder: the config's ``parameter``, else the ``env``
        variable, else ``default_name`` among the shipped checkpoints."""
        chosen = self.parameters.get(parameter) or os.environ.get(env)
        return Path(chosen) if chosen else CHECKPOINTS / default_name


def model_setup(
    args: Mapping[str, Any],
    inputs: TensorContract,
    outputs: TensorContract,
    *,
    decoupled: bool | None = None,
    batched: bool | None = None,
) -> ModelSetup:
    """Check the config Triton hands ``initialize`` (``args["model_config"]``, JSON) and
    read its parameters and device; ``ValueError`` naming the problem."""
    config = json.loads(args["model_config"])
    check_model_config(config, inputs, outputs, decoupled=decoupled, batched=batched)
    parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    return ModelSetup(parameters, triton_device(args))
