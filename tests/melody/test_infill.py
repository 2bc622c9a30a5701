"""Infilling a gap: which requests are made, and the bars after the gap in the closing one's
prompt only when fill-in-the-middle is on."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from cantus.melody.composition import PhraseRequest
from cantus.melody.controls import Controls
from cantus.melody.infill import Infiller, phrase_chooser
from cantus.melody.lead_in import lead_in_drawer
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import plan_form
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style

METER = Meter(4, 4)
C_MAJOR = Key(0, Mode.MAJOR)
CONTROLS = Controls(C_MAJOR, METER, 100.0, Style.FOLK, Energy.MID)


def _bar(pitch: int) -> Bar:
    return Bar(METER, tuple(Note(q * 480, pitch + q, 480, 90) for q in range(4)))


class RecordingDecoder:
    def __init__(self) -> None:
        self.requests: list[PhraseRequest] = []

    async def decode(self, request: PhraseRequest) -> AsyncIterator[Bar]:
        self.requests.append(request)
        rng = random.Random(request.seed)
        for _ in range(request.n_bars):
            yield _bar(rng.choice([60, 62, 64, 65, 67]))


@pytest.mark.parametrize("fill_in_middle", [False, True])
def test_the_closing_phrase_reads_the_bars_after_the_gap_only_with_fim(
    fill_in_middle: bool,
) -> None:
    plan = plan_form("through", bars=16, key=C_MAJOR, energy=Energy.MID)
    bars = [_bar(48 + i) for i in range(16)]
    infiller = Infiller(
        plan, CONTROLS, 3, MelodyTokenizer(), candidates=1, fill_in_middle=fill_in_middle
    )
    decoder = RecordingDecoder()

    async def run() -> list[int]:
        return [index async for index, _ in infiller.fill(bars, 5, 9, decoder.decode, None)]

    assert asyncio.run(run()) == [5, 6, 7, 8, 9]
    assert bars[10:] == [_bar(48 + i) for i in range(10, 16)]  # the bars after are kept
    closing = decoder.requests[-1]
    assert closing.first_bar + closing.n_bars - 1 == 9
    expected_after = (bars[10], bars[11]) if fill_in_middle else ()
    assert closing.after == expected_after
    assert all(r.after == () for r in decoder.requests[:-1])


def test_the_phrase_chooser_keeps_the_candidate_the_right_side_likes_best() -> None:
    decoder = RecordingDecoder()
    request = PhraseRequest(
        first_bar=4, n_bars=2, controls=CONTROLS, context=(_bar(60),), cadence_steps=(), seed=9
    )
    right = [_bar(72)]
    seen: list[list[int]] = []

    async def score(sequences, starts) -> list[float]:  # type: ignore[no-untyped-def]
        seen.extend(list(s[:start]) for s, start in zip(sequences, starts, strict=True))
        return [0.0, -1.0, 5.0, -2.0][: len(sequences)]  # the third candidate

    choose = phrase_chooser(decoder.decode, score, MelodyTokenizer(), 4)
    chosen = asyncio.run(choose(request, right, ()))
    assert len(decoder.requests) == 4 and len({r.seed for r in decoder.requests}) == 4

    async def again(r: PhraseRequest) -> list[Bar]:
        return [bar async for bar in RecordingDecoder().decode(r)]

    assert chosen == asyncio.run(again(decoder.requests[2]))
    assert chosen != asyncio.run(again(decoder.requests[0]))
    assert len(chosen) == 2 and len(seen) == 4


@pytest.mark.parametrize(
    ("contrast", "window"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_a_regenerated_b_keeps_to_its_register_as_the_service_asks(
    contrast: bool, window: bool
) -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    bars = [_bar(60 + i % 5) for i in range(16)]
    infiller = Infiller(
        plan,
        CONTROLS,
        3,
        MelodyTokenizer(),
        candidates=1,
        register_contrast=contrast,
        register_window=window,
    )
    decoder = RecordingDecoder()

    async def run() -> list[int]:
        return [index async for index, _ in infiller.fill(bars, 8, 11, decoder.decode, None)]

    assert asyncio.run(run()) == [8, 9, 10, 11]
    request = decoder.requests[0]
    assert (request.register_aim is not None) is contrast
    assert (request.pitch_range is not None) is (contrast and window)


def test_a_chosen_phrase_that_goes_on_draws_its_upbeat_before_the_known_bars() -> None:
    decoder = RecordingDecoder()
    request = PhraseRequest(
        first_bar=4,
        n_bars=2,
        controls=CONTROLS,
        context=(_bar(60),),
        cadence_steps=(),
        seed=9,
        phrase_continues=True,
    )
    pitch0 = MelodyTokenizer().vocab.pitch(36)

    async def score(sequences, starts) -> list[float]:  # type: ignore[no-untyped-def]
        if len(sequences) == 3:  # the candidates: the second
            return [0.0, 5.0, -1.0]
        # the upbeat's pitches: the one nearest middle C, by far
        return [
            -20.0 * abs(s[i] - pitch0 + 36 - 60) for s, i in zip(sequences, starts, strict=True)
        ]

    tokenizer = MelodyTokenizer()
    choose = phrase_chooser(
        decoder.decode, score, tokenizer, 3, lead_in=lead_in_drawer(score, tokenizer)
    )
    chosen = asyncio.run(choose(request, [_bar(72)], ()))
    without = phrase_chooser(RecordingDecoder().decode, score, tokenizer, 3)
    assert asyncio.run(without(request, [_bar(72)], ())) != chosen  # no lead-in unless asked

    async def again(r: PhraseRequest) -> list[Bar]:
        return [bar async for bar in RecordingDecoder().decode(r)]

    decoded = asyncio.run(again(decoder.requests[1]))
    assert chosen[0] == decoded[0] and chosen[-1].notes[:-1] == decoded[-1].notes[:-1]
    assert chosen[-1].notes[-1].pitch == max(60, decoded[-1].notes[-1].pitch - 7)
