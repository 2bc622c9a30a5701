"""Checkpoints on disk, one way for every model: atomic writes, a refused wrong format,
versions of one length, and every committed checkpoint in the format its loader reads."""

from __future__ import annotations

import re

import pytest
import torch

from cantus.checkpoint_io import (
    VERSION_DIGITS,
    checkpoint_version,
    cpu_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from cantus.harmony.model import load_harmony_checkpoint
from cantus.lyrics.model import load_lyric_checkpoint
from cantus.lyrics.serving import load_lyric_scorer
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.settings import CHECKPOINTS


def test_a_checkpoint_round_trips_and_leaves_no_temporary(tmp_path) -> None:
    module = torch.nn.Linear(3, 2)
    path = tmp_path / "deep" / "model.pt"  # missing folders are made
    save_checkpoint(path, "test/1", {"state_dict": cpu_state_dict(module), "steps": 4})
    state = load_checkpoint(path, "test/1")
    assert state["steps"] == 4 and state["format"] == "test/1"
    assert torch.equal(state["state_dict"]["weight"], module.weight.detach())
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, "test/1", {"steps": 1})
    with pytest.raises(Exception):  # noqa: B017 - torch refuses to pickle a lambda
        save_checkpoint(path, "test/1", {"steps": lambda: 2})
    assert load_checkpoint(path, "test/1")["steps"] == 1


def test_another_format_is_refused_naming_both(tmp_path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, "test/1", {})
    with pytest.raises(ValueError, match=r"not a test/2 checkpoint \(format 'test/1'\)"):
        load_checkpoint(path, "test/2")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="format None"):
        load_checkpoint(tmp_path / "list.pt", "test/1")


def test_half_precision_weights_stay_small() -> None:
    state = cpu_state_dict(torch.nn.Linear(3, 2), torch.float16)
    assert {t.dtype for t in state.values()} == {torch.float16}


def test_every_committed_checkpoint_loads_and_has_a_version_of_one_length() -> None:
    _, _, metadata = load_melody_checkpoint(CHECKPOINTS / "melody_lm.pt")
    assert metadata["config"]
    load_harmony_checkpoint(CHECKPOINTS / "harmony_gru.pt")
    versions = [checkpoint_version(CHECKPOINTS / "melody_lm.pt")]
    versions.append(checkpoint_version(CHECKPOINTS / "harmony_gru.pt", "harmony"))
    for language in ("en", "zh"):
        versions.append(load_lyric_scorer(CHECKPOINTS / f"lyric_{language}.pt").version)
        versions.append(load_lyric_checkpoint(CHECKPOINTS / f"lyric_lstm_{language}.pt").version)
    for version in versions:
        assert re.fullmatch(rf"[a-z_]+@[0-9a-f]{{{VERSION_DIGITS}}}", version), version
