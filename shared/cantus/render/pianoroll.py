"""A piano-roll picture of every part of a piece, as PNG bytes (matplotlib, no display).

Pitched parts share one pitch axis (MIDI note numbers, labelled by C octaves), each in
its own colour with note velocity as opacity; drums (channel 9) get a lane of their own
below, one row per drum sound, because their note numbers name sounds, not pitches.
Time runs in bars, with a line at each bar and a heavier one every four.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no window (services have no display); before pyplot

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch

from cantus.music.notes import Meter, Note, Track

DRUM_CHANNEL = 9
PART_COLOURS = {
    "melody": "#d62728",
    "chords": "#1f77b4",
    "bass": "#2ca02c",
    "drums": "#7f7f7f",
}
"""Colour of each known part; others cycle through ``_OTHER_COLOURS``."""
_OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")

DRUM_NAMES = {
    35: "kick",
    36: "kick",
    37: "side stick",
    38: "snare",
    39: "clap",
    40: "snare",
    41: "low tom",
    42: "hi-hat",
    43: "low tom",
    44: "pedal hat",
    45: "mid tom",
    46: "open hat",
    47: "mid tom",
    48: "high tom",
    49: "crash",
    50: "high tom",
    51: "ride",
    52: "china",
    53: "ride bell",
    54: "tambourine",
    55: "splash",
    56: "cowbell",
    57: "crash",
    59: "ride",
}
"""General MIDI percussion key -> the name shown in the drum lane (others: the number)."""


def _colour(name: str, index: int) -> str:
    return PART_COLOURS.get(name, _OTHER_COLOURS[index % len(_OTHER_COLOURS)])


def _opacity(notes: Sequence[Note]) -> np.ndarray:
    """A note's opacity from its velocity: 0.35 (silent) .. 1.0 (127)."""
    return 0.35 + 0.65 * np.array([n.velocity for n in notes], float) / 127


def _with_opacity(colour: str, opacity: np.ndarray) -> np.ndarray:
    """``colour`` once per note, as RGBA with that note's opacity."""
    rgba = np.tile(to_rgba(colour), (len(opacity), 1))
    rgba[:, 3] = opacity
    return rgba


def _boxes(
    spans: Sequence[tuple[int, int]], bottoms: Sequence[float], height: float, bar_ticks: int
) -> np.ndarray:
    """One rectangle per note (onset and length in ticks, bottom edge) in bar units, corners
    in the order ``Axes.broken_barh`` gives them; drawn as one collection per part (one
    artist per note made the picture the slowest file of a piece after the audio)."""
    x0 = np.array([onset for onset, _ in spans], float) / bar_ticks
    x1 = x0 + np.array([length for _, length in spans], float) / bar_ticks
    y0 = np.asarray(bottoms, float)
    y1 = y0 + height
    return np.stack(
        [np.stack(corner, axis=1) for corner in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], axis=1
    )


def pianoroll_png(
    tracks: Sequence[Track],
    *,
    meter: Meter,
    title: str | None = None,
    width_inches: float | None = None,
    dpi: int = 100,
) -> bytes:
    """PNG of all ``tracks`` (onsets in ticks from the piece's start) on a bar grid of
    ``meter``. The width grows with the number of bars unless ``width_inches`` is given."""
    bar_ticks = meter.bar_ticks
    end_tick = max((n.end for t in tracks for n in t.notes), default=bar_ticks)
    bars = max(1, -(-end_tick // bar_ticks))
    pitched = [t for t in tracks if t.channel != DRUM_CHANNEL and t.notes]
    drums = [t for t in tracks if t.channel == DRUM_CHANNEL and t.notes]
    drum_rows = sorted(
        {DRUM_NAMES.get(n.pitch, str(n.pitch)) for t in drums for n in t.notes},
        key=lambda name: min(
            n.pitch for t in drums for n in t.notes if DRUM_NAMES.get(n.pitch, str(n.pitch)) == name
        ),
    )
    width = width_inches or min(40.0, max(8.0, 0.55 * bars + 2.0))
    heights = [4, max(1, len(drum_rows)) * 0.35] if drum_rows else [4]
    figure, axes = plt.subplots(
        len(heights),
        1,
        figsize=(width, sum(heights) + 1.2),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    roll = axes[0][0]
    legend = []
    for index, track in enumerate(tracks):
        colour = _colour(track.name, index)
        legend.append(Patch(color=colour, label=f"{track.name} (program {track.program})"))
        if track.channel == DRUM_CHANNEL:
            continue
        opacity = _opacity(track.notes)
        roll.add_collection(
            PolyCollection(
                _boxes(  # type: ignore[arg-type]  # an (N, 4, 2) array; the stubs want a sequence
                    [(n.onset, n.duration) for n in track.notes],
                    [n.pitch - 0.4 for n in track.notes],
                    0.8,
                    bar_ticks,
                ),
                facecolors=_with_opacity(colour, opacity),
                edgecolors=_with_opacity("black", opacity),
                linewidth=0.3,
            )
        )
    pitches = [n.pitch for t in pitched for n in t.notes] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    roll.set_ylim(low, high)
    octave_cs = [p for p in range(low, high + 1) if p % 12 == 0]
    roll.set_yticks(octave_cs, [f"C{p // 12 - 1}" for p in octave_cs])
    roll.set_ylabel("pitch")
    # beside the roll, not on it: inside, it hid the tune's high notes at the end of the
    # piece (a jig's held last note, under the box)
    roll.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)
    if title:
        roll.set_title(title)
    if drum_rows:
        lane = axes[1][0]
        for index, track in enumerate(tracks):
            if track.channel != DRUM_CHANNEL:
                continue
            colour = _colour(track.name, index)
            lane.add_collection(
                PolyCollection(
                    _boxes(  # type: ignore[arg-type]  # as above
                        [(n.onset, max(n.duration, 60)) for n in track.notes],
                        [
                            drum_rows.index(DRUM_NAMES.get(n.pitch, str(n.pitch))) - 0.35
                            for n in track.notes
                        ],
                        0.7,
                        bar_ticks,
                    ),
                    facecolors=_with_opacity(colour, _opacity(track.notes)),
                )
            )
        lane.set_ylim(-0.6, len(drum_rows) - 0.4)
        lane.set_yticks(range(len(drum_rows)), drum_rows, fontsize=7)
        lane.set_ylabel("drums")
    for row in axes:
        axis = row[0]
        for bar in range(bars + 1):
            axis.axvline(bar, color="black", linewidth=1.0 if bar % 4 == 0 else 0.3, alpha=0.6)
        axis.set_xlim(0, bars)
    bottom = axes[-1][0]
    step = 1 if bars <= 32 else 4
    bottom.set_xticks(
        [b + 0.5 for b in range(0, bars, step)], [str(b + 1) for b in range(0, bars, step)]
    )
    bottom.set_xlabel(f"bar ({meter})")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
