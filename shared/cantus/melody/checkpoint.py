"""Saving and loading the melody model: one ``torch.save`` file plus its vocabulary as JSON.

The checkpoint holds the model config, the weights, the vocabulary (JSON text), the energy
thresholds the training split defined and the training metadata (steps, losses, corpus
manifest hash). The vocabulary is also written beside it (``melody_lm.vocab.json``) so that
services can tokenize without importing torch (see ``cantus.melody.prompting``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cantus.checkpoint_io import cpu_state_dict, load_checkpoint, save_checkpoint
from cantus.melody.controls import EnergyThresholds
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import MelodyTokenizer, Vocabulary, vocabulary_path

CHECKPOINT_FORMAT = "cantus-melody-lm/1"


def save_melody_checkpoint(
    path: Path,
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    energy_thresholds: EnergyThresholds,
    metadata: dict[str, Any],
) -> None:
    """Write the checkpoint (``cantus.checkpoint_io``) and the vocabulary beside it."""
    path = Path(path)
    state = {
        "config": model.config.to_dict(),
        "state_dict": cpu_state_dict(model),
        "vocabulary": tokenizer.vocab.to_json(),
        "energy_thresholds": energy_thresholds.to_dict(),
        "metadata": metadata,
    }
    save_checkpoint(path, CHECKPOINT_FORMAT, state)
    vocabulary_path(path).write_text(tokenizer.vocab.to_json() + "\n")


def load_melody_checkpoint(
    path: Path, *, device: str | torch.device = "cpu"
) -> tuple[MelodyLM, MelodyTokenizer, dict[str, Any]]:
    """The model (in eval mode, on ``device``), its tokenizer, and metadata: the training
    metadata plus ``energy_thresholds`` (an ``EnergyThresholds``) and ``config``."""
    state = load_checkpoint(path, CHECKPOINT_FORMAT)
    config = MelodyLMConfig(**state["config"])
    model = MelodyLM(config)
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    tokenizer = MelodyTokenizer(Vocabulary.from_json(state["vocabulary"]))
    metadata = dict(state["metadata"])
    metadata["energy_thresholds"] = EnergyThresholds.from_dict(state["energy_thresholds"])
    metadata["config"] = config
    return model, tokenizer, metadata
