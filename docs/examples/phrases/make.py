"""The phrase examples of docs/examples/README.md: two 16-bar AABA melodies composed in
process with the service's sampling, and one 20-bar jig composed twice, its phrase ends
leading on as the corpus's do and as the model likes (``FormComposer.lead_on``); their
piano rolls, and every bar printed as (onset, pitch, length) in sixteenths.
Run: .venv/bin/python docs/examples/phrases/make.py"""

from pathlib import Path

import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces
from cantus.music.notes import Key, Melody, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render.pianoroll import pianoroll_png
from cantus.settings import CHECKPOINTS

OUT = Path(__file__).parent
EXAMPLES = {
    "aaba_d_minor_4-4": (
        Controls(Key(2, Mode.MINOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID),
        41,
    ),
    "aaba_g_major_6-8": (Controls(Key(7), Meter(6, 8), 110.0, Style.CELTIC, Energy.MID), 40),
}


def draw(name: str, melody: Melody | None, meter: Meter, title: str) -> None:
    """Write the melody's piano roll as ``{name}_pianoroll.png`` and print its bars."""
    assert melody is not None, name
    track = Track("melody", 73, 0, melody.notes_absolute())
    picture = pianoroll_png([track], meter=meter, title=title)
    (OUT / f"{name}_pianoroll.png").write_bytes(picture)
    for i, bar in enumerate(melody.bars):
        print(name, i + 1, [(n.onset // 120, n.pitch, n.duration // 120) for n in bar.notes])


torch.set_num_threads(1)
model, tokenizer, _ = load_melody_checkpoint(CHECKPOINTS / "melody_lm.pt")
jobs = list(EXAMPLES.values())
melodies = compose_pieces(model, tokenizer, jobs, n_bars=16, form="AABA")
for (name, (controls, seed)), melody in zip(EXAMPLES.items(), melodies, strict=True):
    title = f"{controls.key.name}, {controls.meter}, seed {seed}: AABA, 16 bars"
    draw(name, melody, controls.meter, title)

# The jig: the first piece of `cantus eval realness` (C major, 6/8, celtic, high energy).
JIG = Controls(Key(0), Meter(6, 8), 110.0, Style.CELTIC, Energy.HIGH)
for lead_on, name in ((True, "jig_c_major_6-8_upbeats"), (False, "jig_c_major_6-8_model_s15")):
    (melody,) = compose_pieces(model, tokenizer, [(JIG, 0)], n_bars=20, lead_on=lead_on)
    how = "upbeats drawn from the corpus" if lead_on else "upbeats left to the model"
    draw(name, melody, JIG.meter, f"C major, 6/8, seed 0: 20 bars, {how}")
