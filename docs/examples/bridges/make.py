"""The bridge example of docs/examples/README.md: one 16-bar AABA melody composed in process
twice, its B decoded blind (one candidate) and chosen among four by how it leads into the
return (``settings.melody_return_candidates``), with both piano rolls and the interval into
bar 13 printed. Bars 1-8 are the same in both: candidate 0 is the blind decoding.
Run: .venv/bin/python docs/examples/bridges/make.py"""

from pathlib import Path

import torch

from cantus.eval.infill import join_interval
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces
from cantus.music.notes import Key, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render.pianoroll import pianoroll_png
from cantus.settings import CHECKPOINTS

OUT = Path(__file__).parent
CONTROLS = Controls(Key(2, Mode.MINOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID)
SEED = 52  # one of 16 seeds tried (40-55) whose blind B leaps into the return

torch.set_num_threads(1)
model, tokenizer, _ = load_melody_checkpoint(CHECKPOINTS / "melody_lm.pt")
for name, candidates in (("blind", 1), ("chosen", 4)):
    [melody] = compose_pieces(
        model, tokenizer, [(CONTROLS, SEED)], n_bars=16, form="AABA", return_candidates=candidates
    )
    assert melody is not None, name
    into = join_interval(melody.bars[:12], melody.bars[12:13])
    title = f"D minor, 4/4, seed {SEED}: B {name} ({candidates}), into the return {into:+d}"
    track = Track("melody", 73, 0, melody.notes_absolute())
    picture = pianoroll_png([track], meter=CONTROLS.meter, title=title)
    (OUT / f"aaba_d_minor_bridge_{name}_pianoroll.png").write_bytes(picture)
    print(name, "interval into bar 13:", into)
    for i in range(8, 13):
        bar = melody.bars[i]
        print(" ", i + 1, [(n.onset // 120, n.pitch, n.duration // 120) for n in bar.notes])
