"""Checks of a Triton model's config.pbtxt made when a Cantus Python-backend model loads:
a config that names other tensors than the model code reads fails at load, naming them."""

from __future__ import annotations

from collections.abc import Mapping


def check_model_config(config: Mapping, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless the Triton config declares exactly these inputs/outputs."""
    declared_inputs = {entry["name"] for entry in config.get("input", [])}
    declared_outputs = {entry["name"] for entry in config.get("output", [])}
    if declared_inputs != set(inputs):
        raise ValueError(f"inputs {sorted(declared_inputs)} != expected {sorted(inputs)}")
    if declared_outputs != set(outputs):
        raise ValueError(f"outputs {sorted(declared_outputs)} != expected {sorted(outputs)}")
