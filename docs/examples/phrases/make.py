"""The phrase examples of docs/examples/README.md: two 16-bar AABA melodies composed in
process with the service's sampling, their piano rolls, and every bar printed as
(onset, pitch, length) in sixteenths. Run: .venv/bin/python docs/examples/phrases/make.py"""

from pathlib import Path
import torch
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces
from cantus.music.notes import Key, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render.pianoroll import pianoroll_png
from cantus.settings import CHECKPOINTS
torch.set_num_threads(1)
model, tok, _ = load_melody_checkpoint(CHECKPOINTS / "melody_lm.pt")
jobs = [(Controls(Key(2, Mode.MINOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID), 41),
        (Controls(Key(7, Mode.MAJOR), Meter(6, 8), 110.0, Style.CELTIC, Energy.MID), 40)]
names = ["aaba_d_minor_4-4", "aaba_g_major_6-8"]
for (controls, seed), name, melody in zip(jobs, names, compose_pieces(model, tok, jobs, n_bars=16, form="AABA")):
    track = Track("melody", 73, 0, melody.notes_absolute())
    title = f"{controls.key.name}, {controls.meter}, seed {seed}: AABA, 16 bars"
    Path(f"docs/examples/phrases/{name}_pianoroll.png").write_bytes(pianoroll_png([track], meter=controls.meter, title=title))
    for i, bar in enumerate(melody.bars):
        print(name, i + 1, [(n.onset // 120, n.pitch, n.duration // 120) for n in bar.notes])
