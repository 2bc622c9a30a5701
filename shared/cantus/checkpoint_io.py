"""Model checkpoints on disk, one way for every model (melody, its LSTM baseline, harmony,
lyrics).

* ``save_checkpoint`` writes one ``torch.save`` file atomically (a temporary file, then a
  rename), so a reader never sees half a checkpoint and a crash mid-write leaves the old one;
* ``load_checkpoint`` reads it back (tensors only: ``weights_only``) and refuses a file of
  another format, naming both;
* ``checkpoint_version`` names the weights that made an event: ``<name>@<the first
  ``VERSION_DIGITS`` hex digits of the file's SHA-256>``. It reads bytes only, so services
  name their model without importing torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

VERSION_DIGITS = 12


def cpu_state_dict(module: torch.nn.Module, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """The module's weights as plain CPU tensors (cloned: a state_dict shares storage with
    tied weights), optionally cast to ``dtype`` to keep a committed file small."""
    return {
        name: (t.detach().cpu().clone() if dtype is None else t.detach().cpu().to(dtype))
        for name, t in module.state_dict().items()
    }


def save_checkpoint(path: Path, checkpoint_format: str, state: dict[str, Any]) -> None:
    """Write ``state`` tagged with ``checkpoint_format`` to ``path`` atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": checkpoint_format, **state}, temporary)
    temporary.replace(path)


def load_checkpoint(path: Path, checkpoint_format: str) -> dict[str, Any]:
    """The saved state (on the CPU); ``ValueError`` if the file holds another format."""
    import torch

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    found = state.get("format") if isinstance(state, dict) else None
    if found != checkpoint_format:
        raise ValueError(f"{path} is not a {checkpoint_format} checkpoint (format {found!r})")
    return state


def checkpoint_version(path: Path, name: str | None = None) -> str:
    """``<name>@<hex digest prefix>`` (``name`` defaults to the file's stem)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:VERSION_DIGITS]
    return f"{name or path.stem}@{digest}"
