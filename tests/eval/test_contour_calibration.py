"""The model's next move against the tunes' (``cantus.eval.contour_calibration``)."""

from __future__ import annotations

import pytest
import torch

from cantus.eval.contour_calibration import contour_calibration, format_calibration
from cantus.melody.controls import Controls
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar, Key, Melody, Meter, Note
from cantus.music.styles import Energy, Style

TOKENIZER = MelodyTokenizer()
CONTROLS = Controls(Key(0), Meter(4, 4), 100.0, Style.FOLK, Energy.MID)


def _tune(pitches: list[int]) -> list[int]:
    """A 4/4 tune of quarter notes."""
    bars = tuple(
        Bar(
            Meter(4, 4),
            tuple(Note(480 * i, pitch, 480) for i, pitch in enumerate(pitches[start : start + 4])),
        )
        for start in range(0, len(pitches), 4)
    )
    return TOKENIZER.encode(Melody(Key(0), 100.0, bars), CONTROLS)


def test_the_tunes_moves_are_counted_after_steps_and_leaps() -> None:
    torch.manual_seed(0)
    model = MelodyLM(MelodyLMConfig.tiny(len(TOKENIZER.vocab)))
    # C D E F: two steps that go on; then a leap up F-C' that turns back to A, which repeats
    tune = _tune([60, 62, 64, 65, 72, 69, 69, 67])
    shares = {share.after: share for share in contour_calibration(model, TOKENIZER, [tune])}
    # after C-D: E (on); D-E: F (on); E-F: C' (on); F-C': A (back); C'-A: A (repeat);
    # A-A: skipped (no direction)
    assert shares["a step"].n == 3 and shares["a step"].real == (0.0, 1.0, 0.0)
    assert shares["a leap"].n == 2 and shares["a leap"].real == (0.5, 0.0, 0.5)
    assert shares["any move"].n == 5
    for share in shares.values():
        assert sum(share.model) == pytest.approx(1.0, abs=1e-5)
    lines = format_calibration(list(shares.values()), 1)
    assert any(line.startswith("| a step | 3 | 0.0 % |") for line in lines)
