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
    """Write the checkpoint atomically (temp file then rename) and the vocabulary beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        # clone: a state_dict shares storage with the tied weights; save plain tensors
        "state_dict": {name: t.detach().cpu().clone() for name, t in model.state_dict().items()},
        "vocabulary": tokenizer.vocab.to_json(),
        "energy_thresholds": energy_thresholds.to_dict(),
        "metadata": metadata,
    }
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, temporary)
    temporary.replace(path)
    vocabulary_path(path).write_text(tokenizer.vocab.to_json() + "\n")


def load_melody_checkpoint(
    path: Path, *, device: str | torch.device = "cpu"
) -> tuple[MelodyLM, MelodyTokenizer, dict[str, Any]]:
    """The model (in eval mode, on ``device``), its tokenizer, and metadata: the training
    metadata plus ``energy_thresholds`` (an ``EnergyThresholds``) and ``config``."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a melody checkpoint (format {state.get('format')!r})")
    config = MelodyLMConfig(**state["config"])
    model = MelodyLM(config)
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    tokenizer = MelodyTokenizer(Vocabulary.from_json(state["vocabulary"]))
    metadata = dict(state["metadata"])
    metadata["energy_thresholds"] = EnergyThresholds.from_dict(state["energy_thresholds"])
    metadata["config"] = config
    return model, tokenizer, metadata
