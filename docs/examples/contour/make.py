"""The contour examples of docs/examples/README.md: the same four pieces composed in process
with the service's sampling (form ``auto``, 16 bars) by the melody checkpoint shipped before
the contour embedding (taken from git) and by the current one; their piano rolls side by
side, and each piece's share of steps and of direction changes.
Run: .venv/bin/python docs/examples/contour/make.py"""

import subprocess
import tempfile
from pathlib import Path

import torch

from cantus.eval.melody_features import melody_features
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces
from cantus.music.notes import Key, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render.pianoroll import pianoroll_png
from cantus.settings import CHECKPOINTS, REPO_ROOT

BEFORE = "880e9d9"
"""The last commit with the checkpoint trained without a contour."""
OUT = Path(__file__).parent
EXAMPLES = {
    "d_minor_4-4": (Controls(Key(2, Mode.MINOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID), 41),
    "g_major_6-8": (Controls(Key(7), Meter(6, 8), 110.0, Style.CELTIC, Energy.MID), 40),
    "a_major_3-4": (Controls(Key(9), Meter(3, 4), 96.0, Style.FOLK, Energy.LOW), 7),
    "e_minor_2-4": (Controls(Key(4, Mode.MINOR), Meter(2, 4), 120.0, Style.FOLK, Energy.HIGH), 3),
}

torch.set_num_threads(1)
with tempfile.TemporaryDirectory() as scratch:
    before = Path(scratch) / "melody_lm.pt"
    before.write_bytes(
        subprocess.run(
            ["git", "show", f"{BEFORE}:shared/cantus/checkpoints/melody_lm.pt"],
            cwd=REPO_ROOT, capture_output=True, check=True,
        ).stdout
    )  # fmt: skip
    for label, checkpoint in (("before", before), ("contour", CHECKPOINTS / "melody_lm.pt")):
        model, tokenizer, _ = load_melody_checkpoint(checkpoint)
        melodies = compose_pieces(model, tokenizer, list(EXAMPLES.values()), n_bars=16)
        for (name, (controls, seed)), melody in zip(EXAMPLES.items(), melodies, strict=True):
            assert melody is not None, name
            features = melody_features(melody)
            title = (
                f"{label}: {controls.key.name}, {controls.meter}, seed {seed}; steps "
                f"{features.stepwise_rate:.0%}, direction changes "
                f"{features.direction_change_rate:.0%}"
            )
            track = Track("melody", 73, 0, melody.notes_absolute())
            picture = pianoroll_png([track], meter=controls.meter, title=title)
            (OUT / f"{name}_{label}_pianoroll.png").write_bytes(picture)
            print(title)
