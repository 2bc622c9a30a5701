"""A piece's self-similarity picture (``selfsim.png``, stored beside ``pianoroll.png``).

The melody's bar-by-bar self-similarity matrix (``cantus.eval.structure.
self_similarity_matrix``: the Jaccard index of two bars' (onset, pitch) sets under their best
transposition, so a sequence a step higher counts as a repeat) drawn as an image, bars on both
axes from the bottom left. A piece with a form plan gets its section boundaries as lines and
its section labels along the top, so a repeated A shows as a bright diagonal between two A
blocks. The title gives the share of bars that repeat or vary an earlier one
(``cantus.eval.structure.repetition``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no window (services have no display); before pyplot

import matplotlib.pyplot as plt

from cantus.eval.structure import repetition, self_similarity_matrix
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key, Melody

SELFSIM_FILE = "selfsim.png"
"""Stored name of the picture."""


def selfsim_png(
    bars: Sequence[Bar],
    *,
    key: Key,
    plan: FormPlan | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> bytes:
    """PNG of the bar self-similarity of the melody ``bars`` (in ``key``), with the
    sections of ``plan`` (None: none) marked."""
    melody = Melody(key, 120.0, tuple(bars))
    similarity = self_similarity_matrix(melody)
    returning = repetition(melody, similarity).returning
    n = len(similarity)
    size = min(12.0, max(4.5, 0.12 * n + 3.0))
    figure, axes = plt.subplots(figsize=(size + 0.9, size), dpi=dpi)
    image = axes.imshow(
        similarity,
        origin="lower",
        cmap="magma",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=(0, n, 0, n),
    )
    step = 1 if n <= 16 else 4 if n <= 64 else 8
    ticks = list(range(0, n, step))
    axes.set_xticks([t + 0.5 for t in ticks], [str(t + 1) for t in ticks], fontsize=7)
    axes.set_yticks([t + 0.5 for t in ticks], [str(t + 1) for t in ticks], fontsize=7)
    axes.set_xlabel("bar")
    axes.set_ylabel("bar")
    if plan is not None and plan.total_bars == n:
        for section in plan.sections[1:]:
            axes.axvline(section.first_bar, color="white", linewidth=0.8, alpha=0.8)
            axes.axhline(section.first_bar, color="white", linewidth=0.8, alpha=0.8)
        top = axes.secondary_xaxis("top")
        top.set_xticks(
            [s.first_bar + s.bars / 2 for s in plan.sections],
            [s.label for s in plan.sections],
            fontsize=8,
        )
        top.tick_params(length=0)
    summary = f"bar self-similarity; {returning:.0%} of bars repeat or vary an earlier bar"
    axes.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="similarity")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
