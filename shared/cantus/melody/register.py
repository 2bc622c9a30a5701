"""Where a contrasting section sits: the register of a B strain against its tune's opening.

Real tunes climb in their second strain. Over the corpus's training tunes of 16 bars or more,
the first phrase of the second strain (bars 9-12 after any pickup bar) sits on average 1.6
semitones above the first strain (bars 1-8) in mean pitch, and two tunes in five lift it by
more than two semitones (Dublin Lasses, O'Neill 699: an octave). Left to itself the model
prompted with the first strain stays in its band or dips before the return: the B of a
16-bar AABA sat level with its A (+0.04 semitones; 32 % of pieces more than a semitone
lower, against the held-out tunes' 15 %), and chosen near the aim below it sits +0.84 above
(20 % lower; session 24, 240 pieces, ``docs/results/form_register.md``).

So a contrasting section (``contrasting_sections``: a new section after the theme's first
strain, not an intro or outro) gets a register aim: a lift drawn from the corpus's own
distribution (``CONTRAST_LIFT_QUANTILES``, drawn per section so that a piece's B is sometimes
level or lower, as a tune's is), added to the mean pitch of the theme's bars so far. Of a phrase's
candidates that keep the key and are like a tune, the choosers keep those nearest the aim
(``nearest_register``). Nothing bends a pitch: which phrase is kept changes, not what the
model decodes. ``python -m cantus.melody.register`` measures the quantiles again.

Chosen among three or four candidates, the B reached half the corpus's lift (+0.74 semitones
against +1.71, 480 pieces, session 26): the candidates the model decodes after an A seldom
climb a fifth, whatever the draw. So a contrasting section's phrases are also decoded inside
a window of pitches around the aim (``register_pitch_range``, ``SamplingParams.pitch_range``),
wide enough for a tune's own range within a phrase: the model still chooses every note, and
nothing is moved, but it cannot wander back into the A's low notes or far above the aim.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Iterable, Sequence

from cantus.melody.sampling import DEFAULT_PITCH_RANGE
from cantus.music.form import STRAIN_BARS, FormPlan
from cantus.music.notes import Bar, Melody
from cantus.music.pickup import pickup_bars

CONTRAST_PHRASE_BARS = 4
"""Bars of the second strain's first phrase, whose lift is measured."""

CONTRAST_LIFT_QUANTILES: tuple[float, ...] = (
    -10.1, -3.36, -2.33, -1.58, -1.03, -0.57, -0.12, 0.23, 0.59, 0.98, 1.36,
    1.76, 2.18, 2.65, 3.08, 3.68, 4.27, 4.99, 5.93, 7.21, 13.31,
)  # fmt: skip
"""Semitones: the 0th, 5th, …, 100th percentiles of the mean pitch of the second strain's
first phrase less the first strain's, over the training split's tunes of 16 bars or more
(``python -m cantus.melody.register``, session 24: 4,078 tunes)."""

REGISTER_TOLERANCE = 1.0
"""Semitones. A phrase leading into a return is still chosen for how well it leads there
(``infill.best_of_candidates``), among the candidates whose distance from the register aim
is within this of the nearest's: the aim narrows the choice without overruling the join."""

REGISTER_WINDOW = (5, 9)
"""Semitones below and above a contrasting phrase's register aim (rounded) that its pitches
keep to (``register_pitch_range``): fifteen semitones, room for a phrase's own range and every
cadence tone. Measured on 240 pieces (session 26, ``docs/results/form_register.md``): the
B's lift +0.74 -> +1.62 semitones (the corpus's +1.71; 41 % of Bs more than 2 over their A,
as in the corpus), the classifier and the key heard as without it; 5 below and 7 above gave
+1.45, 7 and 7 +1.03."""


def mean_pitch(bars: Iterable[Bar]) -> float | None:
    """The mean MIDI pitch of the bars' notes (unweighted), None without notes."""
    pitches = [note.pitch for bar in bars for note in bar.notes]
    return statistics.fmean(pitches) if pitches else None


def strain_lift(melody: Melody) -> float | None:
    """The corpus statistic: mean pitch of the second strain's first phrase less the first
    strain's, counted from the first full bar (a pickup bar, padded with a rest before its
    first note, is left out); None for a tune too short or without notes there."""
    bars = list(melody.bars[pickup_bars(melody.bars) :])
    if len(bars) < 2 * STRAIN_BARS:
        return None
    first = mean_pitch(bars[:STRAIN_BARS])
    second = mean_pitch(bars[STRAIN_BARS : STRAIN_BARS + CONTRAST_PHRASE_BARS])
    if first is None or second is None:
        return None
    return second - first


def lift_quantiles(lifts: Sequence[float], steps: int = 20) -> tuple[float, ...]:
    """The 0th, 100/steps-th, …, 100th percentiles of ``lifts`` (linear interpolation)."""
    if not lifts:
        raise ValueError("no lifts to take quantiles of")
    ordered = sorted(lifts)
    last = len(ordered) - 1
    result = []
    for k in range(steps + 1):
        position = last * k / steps
        low = int(position)
        high = min(low + 1, last)
        result.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return tuple(round(value, 2) for value in result)


def draw_lift(rng: random.Random, quantiles: Sequence[float] = CONTRAST_LIFT_QUANTILES) -> float:
    """A lift drawn from the distribution the quantiles describe (inverse transform,
    linear between quantiles)."""
    position = rng.random() * (len(quantiles) - 1)
    low = int(position)
    high = min(low + 1, len(quantiles) - 1)
    return quantiles[low] + (quantiles[high] - quantiles[low]) * (position - low)


def contrasting_sections(plan: FormPlan) -> set[int]:
    """Indices of the plan's sections that contrast with its theme: new sections (not an intro
    or an outro) after the theme's first strain (``FormPlan.opening_strain``), where the
    corpus's lifts are measured. A new phrase inside the first strain (the B of a
    through-composed ``A B C D``) answers the theme rather than leaving it."""
    return set(plan.stated_sections()) - plan.opening_strain()


def theme_sections(plan: FormPlan) -> set[int]:
    """Indices of the theme's first strain (``FormPlan.opening_strain``) and of their returns:
    what a contrasting section's register is measured against."""
    opening = plan.opening_strain()
    return opening | {i for i, s in enumerate(plan.sections) if s.source in opening}


def register_pitch_range(
    aim: float,
    bounds: tuple[int, int] = DEFAULT_PITCH_RANGE,
    window: tuple[int, int] = REGISTER_WINDOW,
) -> tuple[int, int]:
    """The pitches (MIDI, inclusive) a contrasting phrase with register ``aim`` is decoded in:
    ``window`` semitones below and above the rounded aim, moved whole inside ``bounds`` (the
    served pitch range) so that it keeps its width and every cadence tone."""
    below, above = window
    low, high = round(aim) - below, round(aim) + above
    shift = max(0, bounds[0] - low) - max(0, high - bounds[1])
    return max(bounds[0], low + shift), min(bounds[1], high + shift)


def nearest_register(
    candidates: Sequence[Sequence[Bar]], order: Sequence[int], target: float, tolerance: float
) -> list[int]:
    """Of the candidate indices ``order``, those whose mean pitch is within ``tolerance``
    semitones as near ``target`` as the nearest one's, nearest first (ties keep ``order``);
    a candidate without notes ranks last."""

    def distance(index: int) -> float:
        pitch = mean_pitch(candidates[index])
        return float("inf") if pitch is None else abs(pitch - target)

    ranked = sorted(order, key=distance)
    if not ranked:
        return []
    nearest = distance(ranked[0])
    return [index for index in ranked if distance(index) <= nearest + tolerance]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure ``CONTRAST_LIFT_QUANTILES`` on the training split and print them."""
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    lifts = [lift for tune in split.train if (lift := strain_lift(tune.melody)) is not None]
    quantiles = lift_quantiles(lifts, args.steps)
    print(f"{len(lifts)} tunes; mean lift {statistics.fmean(lifts):+.2f} semitones")
    print(
        f"share above +2: {sum(x > 2 for x in lifts) / len(lifts):.2f}, "
        f"below -1: {sum(x < -1 for x in lifts) / len(lifts):.2f}"
    )
    print("CONTRAST_LIFT_QUANTILES =", quantiles)


if __name__ == "__main__":
    main()
