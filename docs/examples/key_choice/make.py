"""The key-choice examples of docs/examples/README.md: the same four pieces composed in process
with the service's sampling (form ``auto``, 16 bars), as served before session 21 (the
contour checkpoint, classifier-free guidance 2 on the key, taken from git) and as served now
(the scale-degree checkpoint, no guidance, each phrase chosen in key among 3 candidates:
``cantus.melody.key_choice``); their piano rolls side by side, the key music21 hears in
each, and the shares of notes on the degrees that guidance bent (tonic, dominant, 6th, 7th).
Run: .venv/bin/python docs/examples/key_choice/make.py"""

import dataclasses
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces, default_sampling
from cantus.music.key_analysis import heard_key
from cantus.music.notes import Key, Melody, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render.pianoroll import pianoroll_png
from cantus.settings import CHECKPOINTS, REPO_ROOT

BEFORE = "b4efd1f"
"""The last commit that served the contour checkpoint with guidance 2."""
OUT = Path(__file__).parent
EXAMPLES = {
    "d_minor_4-4": (Controls(Key(2, Mode.MINOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID), 41),
    "g_major_6-8": (Controls(Key(7), Meter(6, 8), 110.0, Style.CELTIC, Energy.MID), 40),
    "a_major_3-4": (Controls(Key(9), Meter(3, 4), 96.0, Style.FOLK, Energy.LOW), 7),
    "b_minor_2-4": (Controls(Key(11, Mode.MINOR), Meter(2, 4), 120.0, Style.FOLK, Energy.HIGH), 3),
}
DEGREES = {Mode.MAJOR: (0, 7, 9, 11), Mode.MINOR: (0, 7, 8, 10)}
"""Semitones above the tonic of the tonic, dominant, 6th and 7th."""


def degree_shares(melody: Melody) -> str:
    """Shares of sounding time on the tonic, the dominant, the 6th and the 7th."""
    time = Counter[int]()
    for note in melody.notes_absolute():
        time[(note.pitch - melody.key.tonic) % 12] += note.duration
    total = sum(time.values())
    shares = [time[step] / total for step in DEGREES[melody.key.mode]]
    return "tonic {:.0%}, dominant {:.0%}, 6th {:.0%}, 7th {:.0%}".format(*shares)


torch.set_num_threads(2)
with tempfile.TemporaryDirectory() as scratch:
    before = Path(scratch) / "melody_lm.pt"
    for suffix in ("pt", "vocab.json"):
        (Path(scratch) / f"melody_lm.{suffix}").write_bytes(
            subprocess.run(
                ["git", "show", f"{BEFORE}:shared/cantus/checkpoints/melody_lm.{suffix}"],
                cwd=REPO_ROOT, capture_output=True, check=True,
            ).stdout
        )  # fmt: skip
    served = default_sampling()
    ways = (
        ("guided", before, dataclasses.replace(served, guidance=2.0), 1),
        ("chosen", CHECKPOINTS / "melody_lm.pt", served, None),
    )
    for label, checkpoint, sampling, key_candidates in ways:
        model, tokenizer, _ = load_melody_checkpoint(checkpoint)
        melodies = compose_pieces(
            model,
            tokenizer,
            list(EXAMPLES.values()),
            n_bars=16,
            sampling=sampling,
            key_candidates=key_candidates,
        )
        for (name, (controls, seed)), melody in zip(EXAMPLES.items(), melodies, strict=True):
            assert melody is not None, name
            heard = heard_key(melody)
            title = (
                f"{label}: {controls.key.name}, {controls.meter}, seed {seed}; heard in "
                f"{heard.name if heard else '-'}; {degree_shares(melody)}"
            )
            track = Track("melody", 73, 0, melody.notes_absolute())
            picture = pianoroll_png([track], meter=controls.meter, title=title)
            (OUT / f"{name}_{label}_pianoroll.png").write_bytes(picture)
            print(title)
