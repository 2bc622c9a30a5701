"""The local stack's environment for Triton: what the model backends read from it."""

from pathlib import Path

from cantus.settings import Settings
from cantus.stack import triton_environment


def test_the_local_stack_runs_the_melody_model_on_one_thread(tmp_path: Path):
    environment = triton_environment(Settings(state_dir=tmp_path))
    assert environment["CANTUS_MELODY_TORCH_THREADS"] == "1"


def test_a_triton_of_its_own_keeps_its_config_thread_count(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CANTUS_MELODY_TORCH_THREADS", raising=False)
    environment = triton_environment(Settings(state_dir=tmp_path, melody_torch_threads=None))
    assert "CANTUS_MELODY_TORCH_THREADS" not in environment
