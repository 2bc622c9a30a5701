"""Where in its last bar a phrase of the corpus arrives at its cadence, per meter: the beat
a composed phrase's cadence tone is asked to sound on (``SamplingParams.cadence_beat``).

Measured on the training split's tunes: phrases of four bars, counted from the first full bar
(after a pickup, which 80 % of the tunes have), so the phrase-end bars are the 4th, 8th, 12th
and 16th full bars. In each, the cadence arrives where its longest note that starts on a beat
starts (the earliest of equals). Real phrases mostly arrive on the downbeat in 3/4 and 4/4
and often hold there while the last beat leads into the next phrase ([half, quarter] in 3/4,
[half, rest, quarter] in 4/4); in 2/4, 6/8 and 2/2 a good share arrives on the second beat
after a bar of motion (jigs: three eighths, then the cadence tone and an upbeat). A grammar
that always put the cadence on the bar's last beat but one gave every phrase the same ending
rhythm, and the realness classifier read the pieces by their note lengths (issue #14).

``CADENCE_BEATS`` holds the shares; ``python -m cantus.melody.phrase_endings`` measures them
again from the corpus cache and prints the table to paste.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from cantus.music.notes import Bar, Melody, Meter

PHRASE_BARS = 4
"""Bars per phrase in the measurement (the form plans' phrases are 4 bars, 8 in long ones)."""

CADENCE_BEATS: dict[tuple[int, int], tuple[float, ...]] = {
    (2, 2): (0.69, 0.31),
    (2, 4): (0.803, 0.197),
    (3, 2): (0.941, 0.051, 0.008),
    (3, 4): (0.879, 0.1, 0.021),
    (3, 8): (0.926, 0.047, 0.028),
    (4, 4): (0.791, 0.05, 0.151, 0.008),
    (6, 4): (0.849, 0.033, 0.008, 0.106, 0.004),
    (6, 8): (0.618, 0.382),
    (9, 8): (0.432, 0.205, 0.363),
}
"""Share of the corpus's phrase-end bars whose cadence arrives on each beat (0: the downbeat),
by meter (numerator, denominator); measured on the training split (module docstring). A
meter not listed keeps the grammar's default (the last beat but one)."""


def cadence_beat_of(bar: Bar, meter: Meter) -> int | None:
    """The beat (0: the downbeat) on which ``bar``'s longest note that starts on a beat
    starts, the earliest of equals; None for a bar without such a note."""
    beat = meter.beat_ticks
    on_beat = [note for note in bar.notes if note.onset % beat == 0]
    if not on_beat:
        return None
    longest = max(note.duration for note in on_beat)
    return min(note.onset for note in on_beat if note.duration == longest) // beat


def phrase_end_bars(melody: Melody, phrase_bars: int = PHRASE_BARS) -> list[Bar]:
    """The bars that end the melody's phrases of ``phrase_bars`` full bars (after a pickup,
    a first bar whose first note starts after the downbeat)."""
    bars = melody.bars
    pickup = bool(bars) and bool(bars[0].notes) and bars[0].notes[0].onset > 0
    first_full = 1 if pickup else 0
    return [bars[i] for i in range(first_full + phrase_bars - 1, len(bars), phrase_bars)]


def measure_cadence_beats(
    melodies: Iterable[Melody], minimum: int = 30
) -> dict[tuple[int, int], tuple[float, ...]]:
    """``CADENCE_BEATS`` measured on ``melodies``: per meter with at least ``minimum``
    phrase-end bars, the share arriving on each beat (rounded to 3 places)."""
    counts: dict[tuple[int, int], Counter[int]] = {}
    for melody in melodies:
        meter = melody.meter
        beats = meter.bar_ticks // meter.beat_ticks
        for bar in phrase_end_bars(melody):
            beat = cadence_beat_of(bar, meter)
            if beat is not None and beats >= 2:
                counts.setdefault((meter.numerator, meter.denominator), Counter())[beat] += 1
    table: dict[tuple[int, int], tuple[float, ...]] = {}
    for key, counter in sorted(counts.items()):
        total = sum(counter.values())
        if total >= minimum:
            beats = max(counter) + 1
            table[key] = tuple(round(counter[b] / total, 3) for b in range(beats))
    return table


def draw_cadence_beat(meter: Meter, rng: random.Random) -> int:
    """A cadence beat for a phrase in ``meter``, drawn from ``CADENCE_BEATS``; -1 (the
    grammar's default) for a meter the corpus has too few phrases of."""
    shares = CADENCE_BEATS.get((meter.numerator, meter.denominator))
    if shares is None:
        return -1
    return rng.choices(range(len(shares)), weights=shares)[0]


def main() -> None:
    """Measure ``CADENCE_BEATS`` on the training split of the corpus cache and print it."""
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    table = measure_cadence_beats(tune.melody for tune in split.train)
    print("CADENCE_BEATS = {")
    for key, shares in table.items():
        print(f"    {key}: {shares},")
    print("}")


if __name__ == "__main__":
    main()
