"""The harmony model behind Triton, and the same model harmonising whole melodies offline.

``HarmonyServing`` is what ``triton_models/harmony/1/model.py`` delegates to: it checks a
batch of windows (``cantus.harmony.context.Window`` as arrays, one row per piece; Triton's
dynamic batcher stacks concurrent requests) and decodes them in one batched pass.
``ModelHarmonizer`` harmonises melodies bar by bar exactly as the harmony service does
(one bar of lookahead, the chords so far as history), many pieces per forward pass; the
evaluation and the tests use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cantus.harmony.cadence import bar_harmony_plan, rekey_beats
from cantus.harmony.context import (
    CONTEXT_BEATS,
    PAD,
    HarmonizedBar,
    Window,
    planned_window,
)
from cantus.harmony.features import FEATURES
from cantus.harmony.model import HarmonyNet, checkpoint_version, decode, load_harmony_checkpoint
from cantus.harmony.vocabulary import CHORD_CLASSES
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key
from cantus.music.styles import Energy, Style

INPUTS = {
    "FEATURES": ("TYPE_FP32", [CONTEXT_BEATS, FEATURES]),
    "PREVIOUS": ("TYPE_INT32", [CONTEXT_BEATS]),
    "HOLD": ("TYPE_BOOL", [CONTEXT_BEATS]),
    "DECODE_FROM": ("TYPE_INT32", [1]),
    "ALLOWED": ("TYPE_BOOL", [CONTEXT_BEATS, CHORD_CLASSES]),
}
"""Triton input name → (data type, dims without the batch dimension)."""
OPTIONAL_INPUTS = frozenset({"ALLOWED"})
"""Inputs a request may leave out: ``ALLOWED`` (the chord classes each beat may take, from
a form plan's cadences) defaults to every class."""
OUTPUTS = {
    "CHORDS": ("TYPE_INT32", [CONTEXT_BEATS]),
    "INVERSIONS": ("TYPE_INT32", [CONTEXT_BEATS]),
    "CONFIDENCE": ("TYPE_FP32", [CONTEXT_BEATS]),
}


MELODY_FIT = 1.0
"""Weight of the melody-consonance term in decoding (``cantus.harmony.model.decode``),
chosen on the validation split: the smallest weight whose PCS beats the HMM's
(docs/results/design_measurements.md)."""


class RequestInputError(ValueError):
    """A request's tensors are malformed; the message names the input."""


def complete_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``inputs`` with the optional inputs it leaves out filled in with their defaults
    (``ALLOWED``: every class), for a batch as long as its ``FEATURES``."""
    if "ALLOWED" in inputs or "FEATURES" not in inputs:
        return inputs
    batch = len(inputs["FEATURES"])
    return {**inputs, "ALLOWED": np.ones((batch, CONTEXT_BEATS, CHORD_CLASSES), dtype=bool)}


def check_inputs(inputs: dict[str, np.ndarray]) -> None:
    """Raise ``RequestInputError`` naming the first bad input of a batch of windows
    (optional inputs may be missing)."""
    for name, (_, dims) in INPUTS.items():
        if name not in inputs:
            if name in OPTIONAL_INPUTS:
                continue
            raise RequestInputError(f"input {name} is missing")
        if list(inputs[name].shape[1:]) != dims:
            raise RequestInputError(
                f"input {name} has shape {list(inputs[name].shape)}, expected [batch, {dims}]"
            )
    if not np.isfinite(inputs["FEATURES"]).all():
        raise RequestInputError("input FEATURES holds NaN or infinity")
    previous = inputs["PREVIOUS"]
    if previous.min() < 0 or previous.max() > PAD + 1:
        raise RequestInputError("input PREVIOUS holds a token outside 0..122")
    decode_from = inputs["DECODE_FROM"][:, 0]
    if decode_from.min() < 0 or decode_from.max() >= CONTEXT_BEATS:
        raise RequestInputError(f"input DECODE_FROM must be 0..{CONTEXT_BEATS - 1}")
    if "ALLOWED" in inputs and not inputs["ALLOWED"].any(-1).all():
        raise RequestInputError("input ALLOWED leaves a beat without any chord class")


class HarmonyServing:
    """Decodes batches of windows with one model on one device."""

    def __init__(
        self,
        net: HarmonyNet,
        model_version: str,
        device: str = "cpu",
        melody_fit: float = MELODY_FIT,
    ) -> None:
        self.net = net.to(device).eval()
        self.model_version = model_version
        self.device = device
        self.melody_fit = melody_fit

    @classmethod
    def load(
        cls,
        checkpoint: Path,
        *,
        device: str = "cpu",
        torch_threads: int = 1,
        melody_fit: float = MELODY_FIT,
    ):
        torch.set_num_threads(torch_threads)
        net, _ = load_harmony_checkpoint(checkpoint, device=device)
        return cls(net, checkpoint_version(checkpoint), device, melody_fit)

    def decode(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Chords, inversions and confidence [batch, CONTEXT_BEATS] for a batch of windows
        (arrays as named in ``INPUTS``, batch first)."""
        check_inputs(inputs)
        inputs = complete_inputs(inputs)
        device = self.device
        chords, inversions, confidence = decode(
            self.net,
            torch.from_numpy(np.ascontiguousarray(inputs["FEATURES"], dtype=np.float32)).to(device),
            torch.from_numpy(inputs["PREVIOUS"].astype(np.int64)).to(device),
            torch.from_numpy(inputs["HOLD"].astype(bool)).to(device),
            torch.from_numpy(inputs["DECODE_FROM"][:, 0].astype(np.int64)).to(device),
            melody_fit=self.melody_fit,
            allowed=None
            if inputs["ALLOWED"].all()
            else torch.from_numpy(inputs["ALLOWED"].astype(bool)).to(device),
        )
        return {
            "CHORDS": chords.cpu().numpy().astype(np.int32),
            "INVERSIONS": inversions.cpu().numpy().astype(np.int32),
            "CONFIDENCE": confidence.cpu().numpy().astype(np.float32),
        }


def windows_to_inputs(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """Stack windows into one batch of ``INPUTS`` arrays."""
    return {
        "FEATURES": np.stack([w.features for w in windows]),
        "PREVIOUS": np.stack([w.previous for w in windows]).astype(np.int32),
        "HOLD": np.stack([w.hold for w in windows]),
        "DECODE_FROM": np.array([[w.decode_from] for w in windows], dtype=np.int32),
        "ALLOWED": np.stack([w.allowed_classes() for w in windows]),
    }


def window_beats(window: Window, outputs: dict[str, np.ndarray], row: int) -> list[tuple[int, int]]:
    """The (chord class, inversion) of each decoded beat of ``window`` (row ``row``)."""
    start = window.decode_from
    return list(
        zip(
            (int(c) for c in outputs["CHORDS"][row, start:]),
            (int(i) for i in outputs["INVERSIONS"][row, start:]),
            strict=True,
        )
    )


HISTORY_BARS = 12
"""Bars of history a request carries (the window holds at most ``CONTEXT_BEATS`` beats)."""


@dataclass(frozen=True)
class MelodyToHarmonize:
    bars: Sequence[Bar]
    key: Key
    style: Style
    energy: Energy
    plan: FormPlan | None = None
    """The piece's form plan: key areas, energy and cadences per bar (None: none)."""


class ModelHarmonizer:
    """``ModelHarmonizer(serving).harmonize(pieces)``: per piece, per bar, per beat
    (chord class relative to the piece's key, inversion). Bar i is decoded with bar i+1 as
    lookahead and the chords of the bars before it as history, as the service does
    (with a plan: in its section's key area, energy and cadence,
    ``cantus.harmony.cadence``)."""

    def __init__(self, serving: HarmonyServing, batch_size: int = 64) -> None:
        self.serving = serving
        self.batch_size = batch_size

    def harmonize(self, pieces: Sequence[MelodyToHarmonize]) -> list[list[list[tuple[int, int]]]]:
        done: list[list[HarmonizedBar]] = [[] for _ in pieces]
        longest = max((len(p.bars) for p in pieces), default=0)
        for index in range(longest):
            active = [i for i, p in enumerate(pieces) if index < len(p.bars)]
            for chunk_start in range(0, len(active), self.batch_size):
                chunk = active[chunk_start : chunk_start + self.batch_size]
                windows, plans = [], []
                for i in chunk:
                    piece = pieces[i]
                    history = done[i][-HISTORY_BARS:]
                    next_bar = piece.bars[index + 1] if index + 1 < len(piece.bars) else None
                    bar_plan = bar_harmony_plan(
                        piece.plan,
                        index,
                        piece.bars[index],
                        home_key=piece.key,
                        energy=piece.energy,
                        next_bar=next_bar,
                    )
                    plans.append(bar_plan)
                    windows.append(
                        planned_window(
                            history,
                            piece.bars[index],
                            next_bar=next_bar,
                            plan=bar_plan,
                            home_key=piece.key,
                            style=piece.style,
                            is_final=index == len(piece.bars) - 1,
                            history_is_complete=len(done[i]) <= HISTORY_BARS,
                        )
                    )
                outputs = self.serving.decode(windows_to_inputs(windows))
                for row, (i, window) in enumerate(zip(chunk, windows, strict=True)):
                    bar_plan, bar = plans[row], pieces[i].bars[index]
                    beats = bar_plan.root_position(window_beats(window, outputs, row), bar.meter)
                    beats = list(rekey_beats(beats, bar_plan.key, pieces[i].key))
                    done[i].append(HarmonizedBar(bar, tuple(beats)))
        return [[list(b.beats) for b in piece_bars] for piece_bars in done]
