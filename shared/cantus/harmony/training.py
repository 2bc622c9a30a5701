"""Training the harmony model: ``cantus train harmony`` reproduces the committed checkpoint.

Each training example is a window of up to ``CONTEXT_BEATS`` beats of one tune, ending at
a barline, left-padded the way the service pads its requests (``cantus.harmony.context``).
Every beat is a target: its chord class (cross-entropy, beats without a readable chord
ignored) and its inversion. A batch draws its tunes style by style (``STYLE_SHARE``: half
chorales, a quarter each folk and celtic) so the 330 chorales are not drowned by the
derived folk and celtic tunes (``cantus.harmony.dataset``); validation loss is the mean
of the per-style losses. The features are key-relative, so transposing a tune to
another key changes only its register; each window is transposed by a random -6..+5
semitones (key-transposition augmentation of the register feature). Single-threaded, about a
minute; the model with the best validation loss is kept.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cantus.harmony.context import CONTEXT_BEATS, PAD, START, UNKNOWN
from cantus.harmony.dataset import HarmonizedTune, load_or_build_dataset
from cantus.harmony.features import FEATURES, REGISTER_COLUMN, bar_features
from cantus.harmony.model import HarmonyNet, HarmonyNetConfig, save_harmony_checkpoint
from cantus.harmony.vocabulary import NO_CHORD, chord_inversion, chord_to_class
from cantus.music.styles import Style

TRAIN_COMMAND = "cantus train harmony --steps 3600 --seed 0"
"""The command that made the committed checkpoint."""
TRAIN_STEPS = 3600
STYLE_SHARE = {Style.CHORALE: 0.5, Style.FOLK: 0.25, Style.CELTIC: 0.25}
"""Share of each style among the tunes of a training batch."""


@dataclass(frozen=True)
class EncodedTune:
    """A tune as arrays over its beats: features [N, FEATURES], chord class [N] (NO_CHORD
    where unknown), inversion [N], and the beat index where each bar ends (exclusive)."""

    features: np.ndarray
    chords: np.ndarray
    inversions: np.ndarray
    bar_ends: tuple[int, ...]


def encode_tune(tune: HarmonizedTune) -> EncodedTune:
    blocks, chords, inversions, bar_ends = [], [], [], []
    symbols = tune.chord_symbols()
    for index, bar in enumerate(tune.bars):
        following = tune.bars[index + 1] if index + 1 < len(tune.bars) else None
        blocks.append(
            bar_features(
                bar,
                tune.key,
                next_bar=following,
                is_final=following is None,
                style=tune.style,
                energy=tune.energy,
            )
        )
        for chord in symbols[index]:
            if chord is None:
                chords.append(NO_CHORD)
                inversions.append(0)
            else:
                chords.append(chord_to_class(chord, tune.key))
                inversions.append(chord_inversion(chord))
        bar_ends.append(len(chords))
    return EncodedTune(
        np.concatenate(blocks),
        np.asarray(chords, dtype=np.int64),
        np.asarray(inversions, dtype=np.int64),
        tuple(bar_ends),
    )


def window_batch(
    tunes: list[EncodedTune], ends: list[int], shifts: list[int]
) -> tuple[torch.Tensor, ...]:
    """Windows ending at beat ``ends[i]`` of ``tunes[i]``, transposed by ``shifts[i]``
    semitones: features, previous tokens, chord targets, inversion targets ([B, T] each,
    targets -100 where ignored)."""
    batch = len(tunes)
    features = np.zeros((batch, CONTEXT_BEATS, FEATURES), dtype=np.float32)
    previous = np.full((batch, CONTEXT_BEATS), PAD, dtype=np.int64)
    chords = np.full((batch, CONTEXT_BEATS), -100, dtype=np.int64)
    inversions = np.full((batch, CONTEXT_BEATS), -100, dtype=np.int64)
    for row, (tune, end, shift) in enumerate(zip(tunes, ends, shifts, strict=True)):
        start = max(0, end - CONTEXT_BEATS)
        length = end - start
        offset = CONTEXT_BEATS - length
        window = tune.features[start:end].copy()
        sounding = window[:, 12:24].sum(axis=1) > 0
        window[sounding, REGISTER_COLUMN] += shift / 12
        features[row, offset:] = window
        before = [START if start == 0 else tune.chords[start - 1], *tune.chords[start : end - 1]]
        previous[row, offset:] = [UNKNOWN if c == NO_CHORD else c for c in before]
        targets = tune.chords[start:end]
        chords[row, offset:] = np.where(targets == NO_CHORD, -100, targets)
        inversions[row, offset:] = np.where(targets == NO_CHORD, -100, tune.inversions[start:end])
    return (
        torch.from_numpy(features),
        torch.from_numpy(previous),
        torch.from_numpy(chords),
        torch.from_numpy(inversions),
    )


def _loss(net: HarmonyNet, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int, int]:
    features, previous, chords, inversions = batch
    chord_logits, inversion_logits, _ = net(features, previous, chords.clamp(min=0))
    chord_loss = F.cross_entropy(chord_logits.flatten(0, 1), chords.flatten(), ignore_index=-100)
    inversion_loss = F.cross_entropy(
        inversion_logits.flatten(0, 1), inversions.flatten(), ignore_index=-100
    )
    mask = chords >= 0
    correct = int((chord_logits.argmax(-1) == chords)[mask].sum())
    return chord_loss + 0.5 * inversion_loss, correct, int(mask.sum())


def _evaluate(net: HarmonyNet, tunes: list[EncodedTune]) -> tuple[float, float]:
    """Mean loss and chord accuracy over every bar-ending window of ``tunes``."""
    net.eval()
    items = [(t, end) for t in tunes for end in t.bar_ends]
    losses, correct, total = [], 0, 0
    with torch.no_grad():
        for i in range(0, len(items), 64):
            chunk = items[i : i + 64]
            batch = window_batch([t for t, _ in chunk], [e for _, e in chunk], [0] * len(chunk))
            loss, right, count = _loss(net, batch)
            losses.append(loss.item())
            correct += right
            total += count
    net.train()
    return float(np.mean(losses)), correct / max(total, 1)


def dataset_hash(tunes: list[HarmonizedTune]) -> str:
    ids = ",".join(sorted(f"{t.tune_id}:{t.split}" for t in tunes))
    return hashlib.sha1(ids.encode()).hexdigest()[:12]


def _evaluate_by_style(
    net: HarmonyNet, tunes: dict[Style, list[EncodedTune]]
) -> dict[Style, tuple[float, float]]:
    return {style: _evaluate(net, encoded) for style, encoded in tunes.items() if encoded}


def train_harmony(
    *,
    out: Path,
    cache_dir: Path,
    steps: int = TRAIN_STEPS,
    minutes: float = 20.0,
    seed: int = 0,
    config: HarmonyNetConfig | None = None,
    batch_size: int = 32,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``steps`` steps on the train split (``minutes`` is only a safety cap: a run cut
    short by it is not the committed one), validate every 200 steps, keep the best;
    returns the metadata stored in the checkpoint."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tunes = load_or_build_dataset(cache_dir)
    train, valid = (
        {s: [encode_tune(t) for t in tunes if t.split == split and t.style is s] for s in Style}
        for split in ("train", "valid")
    )
    styles = [s for s in STYLE_SHARE if train[s]]
    shares = [STYLE_SHARE[s] for s in styles]
    net = HarmonyNet(config or HarmonyNetConfig())
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    deadline = time.monotonic() + minutes * 60
    best: dict[str, Any] = {"valid_loss": float("inf")}
    started, step = time.monotonic(), 0
    while step < steps and time.monotonic() < deadline:
        chosen = [rng.choice(train[s]) for s in rng.choices(styles, shares, k=batch_size)]
        ends = [rng.choice(t.bar_ends) for t in chosen]
        shifts = [rng.randrange(-6, 6) for _ in chosen]
        loss, _, _ = _loss(net, window_batch(chosen, ends, shifts))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        step += 1
        if step % 200 == 0:
            by_style = _evaluate_by_style(net, valid)
            valid_loss = float(np.mean([loss for loss, _ in by_style.values()]))
            valid_accuracy = by_style[Style.CHORALE][1]
            log(
                f"step {step} train loss {loss.item():.3f} valid loss {valid_loss:.3f} "
                + " ".join(
                    f"{style.value} {loss:.3f}/{accuracy:.3f}"
                    for style, (loss, accuracy) in by_style.items()
                )
                + f" ({time.monotonic() - started:.0f} s)"
            )
            if valid_loss < best["valid_loss"]:
                best = {
                    "valid_loss": valid_loss,
                    "valid_chord_accuracy": valid_accuracy,
                    "valid_chord_accuracy_by_style": {
                        style.value: round(accuracy, 4) for style, (_, accuracy) in by_style.items()
                    },
                    "step": step,
                    "state": {k: v.clone() for k, v in net.state_dict().items()},
                }
    if "state" in best:
        net.load_state_dict(best.pop("state"))
    metadata = {
        "steps": step,
        "best_step": best.get("step"),
        "valid_loss": best.get("valid_loss"),
        "valid_chord_accuracy": best.get("valid_chord_accuracy"),
        "valid_chord_accuracy_by_style": best.get("valid_chord_accuracy_by_style"),
        "train_tunes": {s.value: len(train[s]) for s in Style},
        "valid_tunes": {s.value: len(valid[s]) for s in Style},
        "dataset": dataset_hash(tunes),
        "seed": seed,
        "command": TRAIN_COMMAND,
    }
    net.eval()
    save_harmony_checkpoint(out, net, metadata)
    # No wall time in the checkpoint: the same command writes the same bytes.
    log(f"wrote {out} after {time.monotonic() - started:.0f} s: {metadata}")
    return metadata
