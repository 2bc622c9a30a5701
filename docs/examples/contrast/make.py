"""The register-contrast example of docs/examples/README.md: six 16-bar pieces (form ``auto``:
AABA, the B in bars 9-12) composed in process with the service's sampling three times: with
the candidates of the B kept without regard to register (as before session 24), chosen near
a register drawn from the corpus's second strains (``cantus.melody.register``, sessions
24-25), and decoded inside a window of pitches around it as well (served since session 26);
their piano rolls side by side, the B shaded, each title with how far the B's mean pitch lies
above its A's. Run: .venv/bin/python docs/examples/contrast/make.py"""

from pathlib import Path

import matplotlib
import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.local_composition import compose_pieces, default_sampling
from cantus.melody.register import strain_lift
from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Energy, Style
from cantus.settings import CHECKPOINTS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT = Path(__file__).parent / "b_register_pianoroll.png"
PIECES = [
    (Controls(Key(0), Meter(4, 4), 100.0, Style.FOLK, Energy.MID), 11),
    (Controls(Key(7), Meter(6, 8), 110.0, Style.CELTIC, Energy.MID), 12),
    (Controls(Key(2, Mode.MINOR), Meter(3, 4), 96.0, Style.FOLK, Energy.LOW), 13),
    (Controls(Key(9, Mode.MINOR), Meter(4, 4), 120.0, Style.CELTIC, Energy.HIGH), 14),
    (Controls(Key(5), Meter(2, 4), 104.0, Style.FOLK, Energy.MID), 15),
    (Controls(Key(4, Mode.MINOR), Meter(6, 8), 100.0, Style.FOLK, Energy.MID), 16),
]
NAMES = "C C# D Eb E F F# G Ab A Bb B".split()


def main() -> None:
    torch.set_num_threads(1)
    model, tokenizer, _ = load_melody_checkpoint(CHECKPOINTS / "melody_lm.pt")
    ways = {
        "B as it came": {"register_contrast": False},
        "B chosen near a drawn register": {"register_window": False},
        "B decoded around it": {},
    }
    runs = {
        way: compose_pieces(
            model, tokenizer, PIECES, n_bars=16, sampling=default_sampling(), **options
        )
        for way, options in ways.items()
    }
    colours = dict(zip(ways, ("C0", "C2", "C3"), strict=True))
    figure, axes = plt.subplots(len(PIECES), len(ways), figsize=(24, 2.4 * len(PIECES)))
    for row, (controls, seed) in enumerate(PIECES):
        for column, way in enumerate(ways):
            melody = runs[way][row]
            axis = axes[row][column]
            if melody is None:
                axis.set_title("failed")
                continue
            bar_ticks = melody.bars[0].meter.bar_ticks
            axis.axvspan(8 * bar_ticks, 12 * bar_ticks, color="#fde8c8")
            for number, bar in enumerate(melody.bars):
                start = number * bar_ticks
                for note in bar.notes:
                    axis.broken_barh(
                        [(start + note.onset, note.duration)],
                        (note.pitch - 0.4, 0.8),
                        color=colours[way],
                    )
                axis.axvline(start, color="#ddd", lw=0.5)
            key = f"{NAMES[controls.key.tonic]} {controls.key.mode.value}"
            lift = strain_lift(melody)
            axis.set_title(
                f"{key}, {controls.meter}, {controls.style.value}, seed {seed}; "
                f"{way}: B {lift:+.1f} semitones over A",
                fontsize=9,
            )
            axis.set_xticks([])
    figure.tight_layout()
    figure.savefig(OUT, dpi=60)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
