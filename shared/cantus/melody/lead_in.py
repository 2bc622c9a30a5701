"""The upbeat into bars that are already decided, drawn from the model's own posterior.

A phrase that leads into a return is decoded before the model can read what it leads into:
the return copies bars composed earlier, and the first A of an AABA does not even exist when
its own upbeat into the second A is decoded. The phrase chooser picks among a few candidates
by how likely the model finds the return after each (``infill.best_of_candidates``); the
others were decoded blind. Counted on the first 16 bars of 480 composed pieces (session 33),
the last note before a phrase that opens with a repeated bar led into it by a step or less
in 40 % of the joins and fell a fourth or a fifth in 16 %; the held-out tunes' joins into a
repeated bar: 56 % and 4 % (their upbeat mostly sits below the downbeat it leads to).

So the phrase's last note, where it is an upbeat after the cadence tone (``upbeat_index``),
gets its pitch again once the bars after it are decided: each pitch ``u`` within
``LEAD_IN_SPAN`` of the decoded one (in the phrase's pitch range) is weighed by what the
model gives the continuation from it, ``log P(u, its duration, the decided bars | all
before)``, and one is drawn from those weights: a sample of the model's posterior for that
note given both sides, not a rule about which interval leads where. The rhythm, the cadence
tone and every earlier note stay. ``FormComposer`` asks for it through ``lead_in_drawer``
after a phrase whose next bars are a return or an echo (``FormComposer.led_in``), and the
phrase chooser after its choice. Measured (480 pieces, same jobs): joins into a repeated bar
by a step or less 40 → 56 %, by a falling fourth or fifth 16 → 8 %.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Awaitable, Callable, Sequence

from cantus.melody.composition import LeadIn, PhraseRequest
from cantus.melody.controls import Controls
from cantus.melody.phrase_endings import cadence_note_of
from cantus.melody.sampling import DEFAULT_PITCH_RANGE
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar

ScoreSuffix = Callable[[Sequence[Sequence[int]], Sequence[int]], Awaitable[list[float]]]
"""Sum of log P(token | tokens before) over ``sequence[score_from:]`` per sequence
(``MelodyScoreClient.score``, or ``suffix_logprobs`` on a model in process)."""

LEAD_IN_SPAN = 7
"""Semitones either side of the decoded upbeat that its pitch is drawn among: a fifth, the
widest join the corpus makes often (a wider one is under 3 % of its joins into a repeat)."""


def upbeat_index(bar: Bar) -> int | None:
    """Index in ``bar.notes`` of its last note where that note comes after the bar's cadence
    tone (``phrase_endings.cadence_note_of``): an upbeat into the next bar; None otherwise."""
    cadence = cadence_note_of(bar, bar.meter)
    if cadence is None or not bar.notes:
        return None
    last = max(range(len(bar.notes)), key=lambda i: bar.notes[i].onset)
    return last if bar.notes[last].onset > cadence.onset else None


def with_pitch(bar: Bar, index: int, pitch: int) -> Bar:
    """``bar`` with note ``index`` at ``pitch``."""
    notes = list(bar.notes)
    notes[index] = dataclasses.replace(notes[index], pitch=pitch)
    return Bar(bar.meter, tuple(notes))


async def draw_lead_in(
    controls: Controls,
    before: Sequence[Bar],
    phrase: Sequence[Bar],
    after: Sequence[Bar],
    pitch_range: tuple[int, int],
    score: ScoreSuffix,
    tokenizer: MelodyTokenizer,
    rng: random.Random,
) -> list[Bar]:
    """``phrase`` (which follows ``before`` and leads into ``after``) with its upbeat's pitch
    drawn from the model's posterior given both sides (module docstring); ``phrase`` as it
    is where its last bar has no upbeat or nothing follows it."""
    if not phrase or not after:
        return list(phrase)
    last = phrase[-1]
    index = upbeat_index(last)
    if index is None:
        return list(phrase)
    decoded = last.notes[index].pitch
    low, high = pitch_range
    pitches = [
        p for p in range(decoded - LEAD_IN_SPAN, decoded + LEAD_IN_SPAN + 1) if low <= p <= high
    ]
    if len(pitches) < 2:
        return list(phrase)
    left = tokenizer.prompt(controls, [*before, *phrase])
    right = [t for bar in after for t in tokenizer.bar_to_tokens(bar)]
    # the upbeat's PITCH token: its note's POS PITCH DUR close the phrase's tokens, before
    # those of any note sorted after it
    start = len(left) - 3 * (len(last.notes) - index) + 1
    sequences = []
    for pitch in pitches:
        sequence = left + right
        sequence[start] = tokenizer.vocab.pitch(pitch)
        sequences.append(sequence)
    scores = await score(sequences, [start] * len(sequences))
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    pitch = rng.choices(pitches, weights=weights)[0]
    return [*phrase[:-1], with_pitch(last, index, pitch)]


def lead_in_drawer(score: ScoreSuffix, tokenizer: MelodyTokenizer) -> LeadIn:
    """What ``FormComposer(lead_in=...)`` asks for: ``draw_lead_in`` after the request's
    context, in its pitch range, seeded by its seed."""

    async def lead_in(
        request: PhraseRequest, phrase: Sequence[Bar], after: Sequence[Bar]
    ) -> list[Bar]:
        return await draw_lead_in(
            request.controls,
            request.context,
            phrase,
            after,
            request.pitch_range or DEFAULT_PITCH_RANGE,
            score,
            tokenizer,
            random.Random(request.seed),
        )

    return lead_in
