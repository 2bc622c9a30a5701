"""What the melody service needs of the model without loading it: the prompt for a piece
(control tokens, then the bars already there) and a streaming decoder of the answer.

The vocabulary is read from the JSON file saved beside the checkpoint, so the service
tokenizes exactly as the served model was trained, without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cantus.checkpoint_io import checkpoint_version
from cantus.events.conversions import spec_energy, spec_key, spec_meter, spec_style
from cantus.melody.controls import Controls
from cantus.melody.tokenizer import BarAssembler, MelodyTokenizer, Vocabulary, vocabulary_path
from cantus.music.notes import Bar
from cantus.v1 import events_pb2 as pb


@dataclass(frozen=True)
class MelodyPrompter:
    tokenizer: MelodyTokenizer
    model_version: str

    @classmethod
    def from_checkpoint(cls, checkpoint: Path) -> MelodyPrompter:
        vocab_file = vocabulary_path(checkpoint)
        if not vocab_file.exists():
            raise FileNotFoundError(f"no vocabulary beside the melody checkpoint: {vocab_file}")
        vocab = Vocabulary.from_json(vocab_file.read_text())
        return cls(MelodyTokenizer(vocab), checkpoint_version(checkpoint))

    def controls(self, spec: pb.PieceSpec) -> Controls:
        return Controls(
            key=spec_key(spec),
            meter=spec_meter(spec),
            tempo_bpm=spec.tempo_bpm,
            style=spec_style(spec),
            energy=spec_energy(spec),
        )

    def prompt(self, spec: pb.PieceSpec, bars: Sequence[Bar]) -> list[int]:
        """Control tokens then every bar so far; the model continues with the next ``BAR``."""
        return self.prompt_for(self.controls(spec), bars)

    def prompt_for(self, controls: Controls, bars: Sequence[Bar]) -> list[int]:
        """Control tokens of ``controls`` (a section's key area and energy, say), then
        ``bars``; the model continues with the next ``BAR``."""
        return self.tokenizer.prompt(controls, bars)

    def bar_assembler(self, spec: pb.PieceSpec) -> BarAssembler:
        return self.tokenizer.bar_assembler(spec_meter(spec))
