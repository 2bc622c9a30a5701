"""The harmony model: a GRU over beats that picks each beat's chord from the melody and
the chords before it.

Input at beat t: the beat's melody features (``cantus.harmony.features``: the beat, its
bar and at most one bar of lookahead, style, energy, mode) and the chord class of beat
t-1 (``START`` before the first chord, ``PAD`` on left padding). Outputs: logits over the
``CHORD_CLASSES`` key-relative chord classes and over the ``INVERSIONS``.

Decoding (``decode``) is greedy and batched: the known history is read in one pass, then
the beats to harmonise are decoded one step at a time for every sequence of the batch
together; a ``hold`` beat repeats the chord before it (the chord rhythm of folk and
celtic accompaniment); an ``allowed`` mask limits a beat to some chord classes (a form
plan's cadences, ``cantus.harmony.cadence``), the model choosing among them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cantus.checkpoint_io import cpu_state_dict, load_checkpoint, save_checkpoint
from cantus.harmony.context import PAD, START, UNKNOWN, checkpoint_version
from cantus.harmony.features import FEATURES
from cantus.harmony.vocabulary import CHORD_CLASSES, INVERSIONS

__all__ = [
    "PAD",
    "START",
    "UNKNOWN",
    "HarmonyNet",
    "HarmonyNetConfig",
    "checkpoint_version",
    "decode",
]


@dataclass(frozen=True)
class HarmonyNetConfig:
    features: int = FEATURES
    chord_embedding: int = 32
    hidden: int = 96
    layers: int = 1
    dropout: float = 0.4  # 330 chorales: a bigger or less regularised net overfits in minutes

    def to_dict(self) -> dict:
        return asdict(self)


class HarmonyNet(nn.Module):
    def __init__(self, config: HarmonyNetConfig) -> None:
        super().__init__()
        self.config = config
        self.previous_chord = nn.Embedding(CHORD_CLASSES + 3, config.chord_embedding)
        self.inputs = nn.Sequential(
            nn.Linear(config.features + config.chord_embedding, config.hidden), nn.GELU()
        )
        self.gru = nn.GRU(
            config.hidden,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.chord_head = nn.Linear(config.hidden, CHORD_CLASSES)
        self.inversion_head = nn.Linear(config.hidden + config.chord_embedding, INVERSIONS)

    def step_inputs(self, features: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return self.inputs(torch.cat([features, self.previous_chord(previous)], dim=-1))

    def forward(
        self,
        features: torch.Tensor,
        previous: torch.Tensor,
        chords: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features`` [B, T, FEATURES] float, ``previous`` [B, T] long (chord class of the
        beat before). ``chords`` [B, T] (the beats' own chord classes, teacher forcing for
        the inversion head; None: the argmax). Returns chord logits [B, T, CHORD_CLASSES],
        inversion logits [B, T, INVERSIONS] and the GRU state."""
        hidden, state = self.gru(self.step_inputs(features, previous), state)
        hidden = self.dropout(hidden)
        chord_logits = self.chord_head(hidden)
        if chords is None:
            chords = chord_logits.argmax(-1)
        chord_embedding = self.previous_chord(chords.clamp(0, CHORD_CLASSES - 1))
        inversion_logits = self.inversion_head(torch.cat([hidden, chord_embedding], dim=-1))
        return chord_logits, inversion_logits, state


def consonance_matrix() -> torch.Tensor:
    """[CHORD_CLASSES, 12]: for a key-relative chord class and a key-relative melody pitch
    class, the mean over chord tones of +1 (unison, third, fifth, sixth above the chord
    tone), 0 (fourth) or -1 (second, tritone, seventh): how well the note sits on the
    chord."""
    from cantus.harmony.vocabulary import class_to_chord
    from cantus.music.notes import Key

    matrix = torch.zeros(CHORD_CLASSES, 12)
    for chord_class in range(CHORD_CLASSES):
        tones = class_to_chord(chord_class, Key(0)).tones
        for pitch_class in range(12):
            scores = []
            for tone in tones:
                interval = (pitch_class - tone) % 12
                scores.append(
                    1.0 if interval in (0, 3, 4, 7, 8, 9) else 0.0 if interval == 5 else -1.0
                )
            matrix[chord_class, pitch_class] = sum(scores) / len(scores)
    return matrix


_CONSONANCE: torch.Tensor | None = None


@torch.no_grad()
def decode(
    net: HarmonyNet,
    features: torch.Tensor,
    previous: torch.Tensor,
    hold: torch.Tensor,
    decode_from: torch.Tensor,
    melody_fit: float = 0.0,
    allowed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy chords for the beats ``decode_from[b]..T-1`` of each window.

    ``features`` [B, T, FEATURES]; ``previous`` [B, T] long, the chord before each beat
    (read for the beats before ``decode_from``, ignored after); ``hold`` [B, T] bool, a
    decoded beat that repeats the chord before it; ``decode_from`` [B] long, 1..T-1
    beats of history, the rest decoded (0 allowed: no history). ``melody_fit`` > 0 adds
    that many times the beat melody's consonance with each chord (``consonance_matrix``
    against the beat's pitch-class durations) to the chord log-probabilities before the
    choice. ``allowed`` [B, T, CHORD_CLASSES] bool (None: every class) restricts each
    decoded beat to its allowed classes; a hold beat whose chord before is not allowed
    there takes the best allowed chord instead. Returns chord classes,
    inversions and the chord probability, each [B, T] (history beats: -1, -1, 0)."""
    global _CONSONANCE
    if _CONSONANCE is None:
        _CONSONANCE = consonance_matrix()
    consonance = _CONSONANCE.to(features.device)
    net.eval()
    batch, length, _ = features.shape
    device = features.device
    chords = torch.full((batch, length), -1, dtype=torch.long, device=device)
    inversions = torch.full((batch, length), -1, dtype=torch.long, device=device)
    confidence = torch.zeros((batch, length), device=device)
    first = int(decode_from.min())
    if first >= length:
        return chords, inversions, confidence
    state = None
    if first > 0:
        _, _, state = net(features[:, :first], previous[:, :first])
    current_previous = previous[:, first].clone()
    rows = torch.arange(batch, device=features.device)
    last_inversion = torch.full((batch,), -1, dtype=torch.long, device=device)
    for t in range(first, length):
        chord_logits, inversion_logits, state_next = net(
            features[:, t : t + 1], current_previous.unsqueeze(1), state=state
        )
        probabilities = chord_logits[:, 0].softmax(-1)
        scores = probabilities.log()
        if melody_fit:
            scores = scores + melody_fit * features[:, t, :12] @ consonance.T
        holding = hold[:, t] & (current_previous < CHORD_CLASSES)
        if allowed is not None:
            beat_allowed = allowed[:, t]
            scores = scores.masked_fill(~beat_allowed, -float("inf"))
            previous_allowed = beat_allowed[rows, current_previous.clamp(0, CHORD_CLASSES - 1)]
            holding = holding & previous_allowed
        choice = scores.argmax(-1)
        choice = torch.where(holding, current_previous, choice)
        active = t >= decode_from
        # A window still reading its history this step takes the given previous chord.
        given_next = previous[:, t + 1] if t + 1 < length else choice
        inversion_logits = net.inversion_head(
            torch.cat([state_next[-1], net.previous_chord(choice)], dim=-1)
        )
        inversion = inversion_logits.argmax(-1)
        # A held chord keeps its bass too (known once this bar has decoded it).
        inversion = torch.where(holding & (last_inversion >= 0), last_inversion, inversion)
        chords[:, t] = torch.where(active, choice, chords[:, t])
        inversions[:, t] = torch.where(active, inversion, inversions[:, t])
        last_inversion = torch.where(active, inversion, last_inversion)
        confidence[:, t] = torch.where(active, probabilities[rows, choice], confidence[:, t])
        current_previous = torch.where(active, choice, given_next)
        state = state_next
    return chords, inversions, confidence


CHECKPOINT_FORMAT = "cantus-harmony/1"


def save_harmony_checkpoint(path: Path, net: HarmonyNet, metadata: dict[str, Any]) -> None:
    """Write the checkpoint (``cantus.checkpoint_io``)."""
    state = {
        "config": net.config.to_dict(),
        "state_dict": cpu_state_dict(net),
        "metadata": metadata,
    }
    save_checkpoint(path, CHECKPOINT_FORMAT, state)


def load_harmony_checkpoint(
    path: Path, *, device: str | torch.device = "cpu"
) -> tuple[HarmonyNet, dict[str, Any]]:
    """The model in eval mode on ``device`` and the training metadata."""
    state = load_checkpoint(path, CHECKPOINT_FORMAT)
    net = HarmonyNet(HarmonyNetConfig(**state["config"]))
    net.load_state_dict(state["state_dict"])
    net.to(device).eval()
    return net, dict(state["metadata"])
