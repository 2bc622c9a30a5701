"""How the corpus's tunes open: on the downbeat, or with a pickup (an anacrusis) and how long.

Measured on the training split: 71 % of the tunes open with a pickup bar (a first bar whose
first note starts after the downbeat; the corpus pads it with a rest to a full bar), and how
often depends on the style and the meter: a celtic reel in 2/4 or 4/4 opens with one
in 84-86 % of tunes, a folk song in 2/4 in 45 %, a chorale in 3/4 in 32 %. The pickup is
mostly one beat or less: a quarter in 4/4 and 3/4, an eighth in 6/8.

Composed pieces opened on the downbeat every time (session 26: 0 of 480 against 72 % of the
held-out tunes); a listener hears that before any note's pitch. A piece now opens with a
pickup as often as the corpus's tunes of its style and meter do (``draw_pickup``), the
plan taking a one-bar pickup section (``cantus.music.form.with_pickup``), and its first
note where the corpus's pickups start (``draw_pickup_onset``).

``PICKUP_SHARES`` and ``PICKUP_ONSETS`` hold the measurements; ``python -m
cantus.melody.openings`` measures them again from the corpus cache and prints the tables to
paste.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from cantus.music.form import FormPlan, with_pickup
from cantus.music.notes import Meter
from cantus.music.pickup import pickup_bars
from cantus.music.transcription import GRID_TICKS

MINIMUM_TUNES = 20
"""Tunes of a style and meter (or of a meter, for the onsets) the tables need to hold a
share; fewer and the next coarser table answers."""

PICKUP_SHARES: dict[tuple[str, int, int], float] = {
    ("celtic", 2, 2): 0.651,
    ("celtic", 2, 4): 0.836,
    ("celtic", 3, 4): 0.914,
    ("celtic", 4, 4): 0.86,
    ("celtic", 6, 8): 0.785,
    ("celtic", 9, 8): 0.298,
    ("chorale", 3, 4): 0.316,
    ("chorale", 4, 4): 0.741,
    ("folk", 2, 2): 0.837,
    ("folk", 2, 4): 0.448,
    ("folk", 3, 2): 0.794,
    ("folk", 3, 4): 0.812,
    ("folk", 3, 8): 0.588,
    ("folk", 4, 4): 0.803,
    ("folk", 6, 4): 0.916,
    ("folk", 6, 8): 0.878,
}
"""Share of the training split's tunes of a style and meter (numerator, denominator) that
open with a pickup bar."""

OVERALL_PICKUP_SHARE = 0.71
"""Share of all the training split's tunes that open with a pickup bar: a style and meter
``PICKUP_SHARES`` has too few tunes of open with a pickup this often."""

PICKUP_ONSETS: dict[tuple[int, int], dict[int, float]] = {
    (2, 2): {12: 0.782, 14: 0.201, 4: 0.007, 8: 0.007, 15: 0.004},
    (2, 4): {6: 0.887, 4: 0.075, 2: 0.019, 7: 0.011, 5: 0.007, 3: 0.001},
    (3, 2): {16: 0.716, 12: 0.16, 20: 0.099, 8: 0.012, 18: 0.012},
    (3, 4): {8: 0.714, 6: 0.141, 10: 0.141, 4: 0.004, 1: 0.001},
    (3, 8): {4: 0.983, 5: 0.011, 2: 0.006},
    (4, 4): {
        12: 0.804,
        14: 0.082,
        10: 0.053,
        8: 0.036,
        4: 0.019,
        2: 0.003,
        11: 0.001,
        6: 0.001,
        15: 0.001,
    },
    (6, 4): {20: 0.796, 8: 0.082, 12: 0.082, 16: 0.02, 10: 0.01, 18: 0.01},
    (6, 8): {10: 0.96, 4: 0.016, 6: 0.014, 8: 0.008, 9: 0.002},
    (9, 8): {16: 0.938, 10: 0.031, 2: 0.031},
}
"""Where the first note of a pickup bar starts, in grid steps (sixteenths) from its bar line,
per meter: the share of the training split's pickup bars at each onset."""


def pickup_share(style: str, meter: Meter) -> float:
    """How often a tune of ``style`` in ``meter`` opens with a pickup (``PICKUP_SHARES``); a
    meter or style the corpus has too few tunes of: the corpus's share over all of them."""
    return PICKUP_SHARES.get((style, meter.numerator, meter.denominator), OVERALL_PICKUP_SHARE)


def draw_pickup(style: str, meter: Meter, rng: random.Random) -> bool:
    """Whether a piece of ``style`` in ``meter`` opens with a pickup, as often as the corpus's
    tunes of that style and meter do (``pickup_share``)."""
    return rng.random() < pickup_share(style, meter)


def draw_opening(plan: FormPlan, style: str, meter: Meter, seed: int) -> FormPlan:
    """``plan`` with a pickup bar before it (``with_pickup``) as often as the corpus's tunes of
    ``style`` and ``meter`` open with one, else as it is; a function of the seed alone."""
    if draw_pickup(style, meter, random.Random(seed * 1_000_003 + 11)):
        return with_pickup(plan)
    return plan


def draw_pickup_onset(meter: Meter, rng: random.Random) -> int:
    """Where a pickup bar's first note starts, in grid steps from its bar line (after the
    downbeat, inside the bar), drawn from ``PICKUP_ONSETS``; a meter without a table: its
    last beat."""
    bar_steps = meter.bar_ticks // GRID_TICKS
    onsets = {
        step: share
        for step, share in PICKUP_ONSETS.get((meter.numerator, meter.denominator), {}).items()
        if 0 < step < bar_steps
    }
    if not onsets:
        return max(1, (meter.bar_ticks - meter.beat_ticks) // GRID_TICKS)
    steps = sorted(onsets)
    return rng.choices(steps, weights=[onsets[s] for s in steps])[0]


def measure_openings(
    tunes: Iterable[tuple[str, Meter, int]], minimum: int = MINIMUM_TUNES
) -> tuple[dict[tuple[str, int, int], float], dict[tuple[int, int], dict[int, float]], float]:
    """``PICKUP_SHARES``, ``PICKUP_ONSETS`` and ``OVERALL_PICKUP_SHARE`` from (style, meter,
    first-note onset in grid steps, 0 for a tune without a pickup) of each tune; a style and
    meter (a meter, for onsets) with fewer than ``minimum`` tunes is left out."""
    opens: dict[tuple[str, int, int], Counter[bool]] = {}
    onsets: dict[tuple[int, int], Counter[int]] = {}
    every: Counter[bool] = Counter()
    for style, meter, onset in tunes:
        opens.setdefault((style, meter.numerator, meter.denominator), Counter())[onset > 0] += 1
        every[onset > 0] += 1
        if onset > 0:
            onsets.setdefault((meter.numerator, meter.denominator), Counter())[onset] += 1
    shares = {
        key: round(counter[True] / counter.total(), 3)
        for key, counter in sorted(opens.items())
        if counter.total() >= minimum
    }
    onset_shares = {
        key: {step: round(count / counter.total(), 3) for step, count in counter.most_common()}
        for key, counter in sorted(onsets.items())
        if counter.total() >= minimum
    }
    overall = round(every[True] / every.total(), 3) if every.total() else 0.0
    return shares, onset_shares, overall


def main() -> None:
    """Measure the tables on the training split of the corpus cache and print them."""
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    tunes = []
    for tune in split.train:
        bars = tune.melody.bars
        onset = bars[0].notes[0].onset // GRID_TICKS if pickup_bars(bars) else 0
        tunes.append((tune.style, tune.melody.meter, onset))
    shares, onsets, overall = measure_openings(tunes)
    print("PICKUP_SHARES = {")
    for (style, numerator, denominator), share in shares.items():
        print(f"    ({style!r}, {numerator}, {denominator}): {share},")
    print("}\nPICKUP_ONSETS = {")
    for key, table in onsets.items():
        print(f"    {key}: {table},")
    print(f"}}\nOVERALL_PICKUP_SHARE = {overall}")


if __name__ == "__main__":
    main()
