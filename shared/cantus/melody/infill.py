"""Infilling: bars ``first`` .. ``last`` of a melody decoded anew, fitting both sides.

The left side is the prompt: each request is built as
the form composer builds it (``FormComposer.phrase_request``: the section's key area and
energy as controls, the piece's theme, the source section's bars and the bars just before
as context, the phrase's cadence where the gap reaches a phrase end). The right side is
used twice over: the gap's closing phrase (at most a phrase of ``PHRASE_BARS``) is decoded
fill-in-the-middle, with the following ``RIGHT_BARS`` bars in its prompt (with
``fill_in_middle``, a checkpoint trained with the FIM markers: ``PhraseRequest.after``;
off by default, see ``settings.melody_fill_in_middle``), as several candidates at once (they
share melody_lm's batch), and the one after which the model, reading left to right, finds
those bars likeliest is kept — the last note that leads into the bar after, in the model's
own judgement. Earlier phrases of a long gap are far from the right side and stream as soon
as they are decoded, left to right, so an 8-bar regeneration shows its first bar as fast as
a new piece does.

A gap that ends on a phrase end keeps the plan's cadence there: the grammar holds the
cadence tone, and the note is held to the bar line as in a composed phrase.

``fill`` takes the decoder and the scorer as functions (melody_lm and melody_score on
Triton in the gateway; the model in process for ``cantus eval infill``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from cantus.melody.composition import (
    CandidatesInKey,
    ChoosePhrase,
    DecodePhrase,
    FormComposer,
    LeadIn,
    PhraseRequest,
    hold_last_note,
)
from cantus.melody.controls import Controls
from cantus.melody.lead_in import ScoreSuffix
from cantus.melody.register import REGISTER_TOLERANCE, nearest_register
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import FormPlan
from cantus.music.notes import Bar

RIGHT_BARS = 2
"""Bars after the gap whose likelihood chooses among the closing candidates."""
CANDIDATE_SEED_STRIDE = 1_000_003
"""Seeds of a phrase's candidates: its seed plus multiples of this (distinct streams)."""


@dataclass(frozen=True)
class GapPhrase:
    """One request of a gap: ``request`` (bars, controls, context, cadence), and whether it
    closes the gap (then chosen among candidates by the right side)."""

    request: PhraseRequest
    closes_gap: bool
    cadence: bool


@dataclass
class FillReport:
    """What ``fill`` chose: the closing phrase's candidates' suffix log-probabilities
    (nats; empty where nothing follows the gap) and the index of the one kept."""

    suffix_logprobs: list[float] = field(default_factory=list)
    chosen: int = 0
    candidates: list[list[Bar]] = field(default_factory=list)


class Infiller:
    """``async for index, bar in Infiller(plan, controls, seed, tokenizer).fill(...)``;
    ``register_contrast`` and ``register_window``: as ``FormComposer``'s, so that a bar
    composed anew in a contrasting section keeps to its register as the service's do."""

    def __init__(
        self,
        plan: FormPlan,
        controls: Controls,
        seed: int,
        tokenizer: MelodyTokenizer,
        *,
        candidates: int = 4,
        fill_in_middle: bool = False,
        register_contrast: bool = True,
        register_window: bool = True,
    ) -> None:
        self.plan = plan
        self.composer = FormComposer(
            plan,
            controls,
            seed,
            register_contrast=register_contrast,
            register_window=register_window,
            echoes=False,  # a gap is decoded whole, each phrase up to its cadence
        )
        self.tokenizer = tokenizer
        self.candidates = max(1, candidates)
        self.fill_in_middle = fill_in_middle
        self.report = FillReport()

    def phrases(self, bars: Sequence[Bar], first: int, last: int) -> list[GapPhrase]:
        """The gap's requests in order: each up to its phrase's end or the gap's end. The
        contexts are built from ``bars`` as they stand (only bars before each request's
        first bar are read, so a later request sees the earlier requests' bars once
        ``bars`` holds them: call again after each)."""
        phrases = []
        index = first
        while index <= last:
            section = self.plan.section_at(index)
            request = self.composer.phrase_request(section, index, bars)
            phrase_end = request.first_bar + request.n_bars - 1
            end = min(phrase_end, last)
            cadence = end == phrase_end
            phrases.append(
                GapPhrase(
                    dataclasses.replace(
                        request,
                        n_bars=end - index + 1,
                        cadence_steps=request.cadence_steps if cadence else (),
                        phrase_continues=end < self.plan.total_bars - 1,
                        after=(),  # ``fill`` gives the closing phrase the bars after the gap
                    ),
                    closes_gap=end == last,
                    cadence=cadence,
                )
            )
            index = end + 1
        return phrases

    async def fill(
        self,
        bars: list[Bar],
        first: int,
        last: int,
        decode: DecodePhrase,
        score: ScoreSuffix | None,
    ) -> AsyncIterator[tuple[int, Bar]]:
        """Replace ``bars[first .. last]`` (0-based, inclusive) in place, yielding each new
        bar with its index as soon as it is final: a bar of a phrase that does not close the
        gap the moment the model closes it, the closing phrase once its candidates are
        decoded and scored. ``score`` None, or nothing after the gap: the first candidate
        is kept (left context only)."""
        if not 0 <= first <= last < len(bars):
            raise ValueError(f"bars {first}..{last} are not within the piece's {len(bars)}")
        right = list(bars[last + 1 : last + 1 + RIGHT_BARS])
        self.report = FillReport()
        index = first
        while index <= last:
            phrase = self.phrases(bars, index, last)[0]
            request = phrase.request
            if phrase.closes_gap and right and self.fill_in_middle:
                # a model trained to fill in the middle reads the bars after the gap too
                request = dataclasses.replace(request, after=tuple(right))
            if phrase.closes_gap and right and score is not None and self.candidates > 1:
                chosen = await self._best_candidate(request, right, decode, score)
            else:
                chosen = []
                async for bar in decode(request):
                    chosen.append(bar)
                    if len(chosen) == request.n_bars:
                        break
                    bars[index + len(chosen) - 1] = bar
                    yield index + len(chosen) - 1, bar
                chosen = chosen[len(chosen) - 1 :] if len(chosen) == request.n_bars else []
                if not chosen:
                    raise RuntimeError(
                        f"the model stopped before the end of the phrase at bar "
                        f"{request.first_bar} ({request.n_bars} bars)"
                    )
                start = index + request.n_bars - 1
                last_bar = hold_last_note(chosen[0]) if phrase.cadence else chosen[0]
                bars[start] = last_bar
                yield start, last_bar
                index += request.n_bars
                continue
            if len(chosen) < request.n_bars:
                raise RuntimeError(
                    f"the model stopped after {len(chosen)} of {request.n_bars} bars "
                    f"of the phrase at bar {request.first_bar}"
                )
            if phrase.cadence:
                chosen[-1] = hold_last_note(chosen[-1])
            for offset, bar in enumerate(chosen):
                bars[index + offset] = bar
                yield index + offset, bar
            index += request.n_bars

    async def _best_candidate(
        self,
        request: PhraseRequest,
        right: list[Bar],
        decode: DecodePhrase,
        score: ScoreSuffix,
    ) -> list[Bar]:
        chosen, self.report = await best_of_candidates(
            request, right, decode, score, self.tokenizer, self.candidates
        )
        return chosen


def phrase_chooser(
    decode: DecodePhrase,
    score: ScoreSuffix,
    tokenizer: MelodyTokenizer,
    candidates: int,
    in_key: CandidatesInKey | None = None,
    lead_in: LeadIn | None = None,
) -> ChoosePhrase:
    """What ``FormComposer(choose=...)`` asks for: ``candidates`` decodings of a phrase and
    the one after which the bars it leads into are likeliest (``best_of_candidates``); with
    ``in_key`` (``key_choice.candidates_in_key``, where the key is held by choosing), the
    likeliest of those that keep the phrase's key area in its key. Left out of the key
    choice, the bridge of an AABA wandered off the key in most of the pieces heard in
    another key (session 21). With ``lead_in`` (``lead_in.lead_in_drawer``), the chosen
    phrase's upbeat into the bars after it is drawn again knowing them."""

    async def choose(
        request: PhraseRequest, right: Sequence[Bar], key_area: Sequence[Bar]
    ) -> list[Bar]:
        chosen, _ = await best_of_candidates(
            request, right, decode, score, tokenizer, candidates, in_key, key_area, lead_in
        )
        return chosen

    return choose


async def best_of_candidates(
    request: PhraseRequest,
    right: Sequence[Bar],
    decode: DecodePhrase,
    score: ScoreSuffix,
    tokenizer: MelodyTokenizer,
    candidates: int,
    in_key: CandidatesInKey | None = None,
    key_area: Sequence[Bar] = (),
    lead_in: LeadIn | None = None,
) -> tuple[list[Bar], FillReport]:
    """``candidates`` decodings of ``request`` (``decode_candidates``), and the one after
    which ``right`` is likeliest; with ``in_key``, of those it keeps after ``key_area``;
    with a register aim (``PhraseRequest.register_aim``), of those nearest it
    (``register.nearest_register``, within ``REGISTER_TOLERANCE``). With ``lead_in``, a
    phrase that goes on into ``right`` has its upbeat drawn again from the model's posterior
    given ``right``."""
    decoded = await decode_candidates(decode, request, candidates)
    complete = [bars for bars in decoded if len(bars) >= request.n_bars]
    if not complete:
        return decoded[0], FillReport()
    if in_key is not None:
        complete = [complete[k] for k in in_key(complete, key_area, request.controls.key)]
    if request.register_aim is not None:
        near = nearest_register(
            complete, range(len(complete)), request.register_aim, REGISTER_TOLERANCE
        )
        complete = [complete[k] for k in sorted(near)]
    sequences, starts = suffix_sequences(tokenizer, request, complete, right)
    scores = await score(sequences, starts)
    best = max(range(len(complete)), key=lambda k: scores[k])
    chosen = complete[best]
    if lead_in is not None and request.phrase_continues:
        chosen = await lead_in(request, chosen, right)
    return chosen, FillReport(list(scores), best, complete)


def suffix_sequences(
    tokenizer: MelodyTokenizer,
    request: PhraseRequest,
    middles: Sequence[Sequence[Bar]],
    right: Sequence[Bar],
) -> tuple[list[list[int]], list[int]]:
    """Per middle: the tokens of controls, context, middle and ``right``, and where the
    right side's tokens start (what ``ScoreSuffix`` scores)."""
    right_tokens = [t for bar in right for t in tokenizer.bar_to_tokens(bar)]
    sequences, starts = [], []
    for middle in middles:
        left = tokenizer.prompt(request.controls, [*request.context, *middle])
        sequences.append(left + right_tokens)
        starts.append(len(left))
    return sequences, starts


async def decode_candidates(
    decode: DecodePhrase, request: PhraseRequest, candidates: int
) -> list[list[Bar]]:
    """``candidates`` decodings of ``request`` at once (seeds ``request.seed + k *
    CANDIDATE_SEED_STRIDE``, so candidate 0 is what one decode without a choice gives), each
    cut to the request's ``n_bars`` (fewer where the model stopped early)."""
    requests = [
        dataclasses.replace(request, seed=request.seed + k * CANDIDATE_SEED_STRIDE)
        for k in range(candidates)
    ]
    return list(await asyncio.gather(*(_decode_all(decode, r) for r in requests)))


async def _decode_all(decode: DecodePhrase, request: PhraseRequest) -> list[Bar]:
    bars = []
    async for bar in decode(request):
        bars.append(bar)
        if len(bars) == request.n_bars:
            break
    return bars


def logmeanexp(values: Sequence[float]) -> float:
    """log(mean(exp(values))), stable (the importance estimate of log P(right | left))."""
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))
