"""The upbeat into a known bar, drawn again from the model's posterior given both sides."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from cantus.melody.controls import Controls
from cantus.melody.lead_in import LEAD_IN_SPAN, draw_lead_in, upbeat_index
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style

METER = Meter(3, 4)
Q = 480
CONTROLS = Controls(Key(7, Mode.MAJOR), METER, 100.0, Style.FOLK, Energy.MID)
TOKENIZER = MelodyTokenizer()
MOVING = Bar(METER, (Note(0, 67, Q), Note(Q, 71, Q), Note(2 * Q, 74, Q)))
CADENCE = Bar(METER, (Note(0, 69, 2 * Q), Note(2 * Q, 66, Q)))  # A held, an upbeat on F#
RETURN = Bar(METER, (Note(0, 67, Q), Note(Q, 71, Q), Note(2 * Q, 74, Q)))


def _pitch_of(token: int) -> int:
    return token - TOKENIZER.vocab.pitch(36) + 36


class PreferringScorer:
    """Scores each sequence by how near its first scored token's pitch is to ``target``,
    and keeps what it was asked."""

    def __init__(self, target: int, sharpness: float = 20.0) -> None:
        self.target, self.sharpness = target, sharpness
        self.calls: list[tuple[list[list[int]], list[int]]] = []

    async def __call__(
        self, sequences: Sequence[Sequence[int]], starts: Sequence[int]
    ) -> list[float]:
        self.calls.append(([list(s) for s in sequences], list(starts)))
        return [
            -self.sharpness * abs(_pitch_of(s[start]) - self.target)
            for s, start in zip(sequences, starts, strict=True)
        ]


def _draw(phrase: list[Bar], scorer: PreferringScorer, seed: int = 0, span=(48, 88)) -> list[Bar]:  # type: ignore[no-untyped-def]
    return asyncio.run(
        draw_lead_in(
            CONTROLS, [MOVING], phrase, [RETURN], span, scorer, TOKENIZER, random.Random(seed)
        )
    )


def test_the_upbeat_is_the_last_note_after_the_cadence_tone() -> None:
    assert upbeat_index(CADENCE) == 1
    assert upbeat_index(Bar(METER, (Note(0, 67, 3 * Q),))) is None  # held to the bar line
    assert upbeat_index(Bar(METER, ())) is None


def test_the_upbeat_takes_the_pitch_the_model_finds_likeliest_before_the_known_bar() -> None:
    scorer = PreferringScorer(target=62)  # D below the G that follows
    phrase = _draw([MOVING, CADENCE], scorer)
    assert phrase[0] == MOVING
    (cadence, upbeat) = phrase[-1].notes
    assert cadence == CADENCE.notes[0]  # the cadence tone and the rhythm stay
    assert (upbeat.onset, upbeat.duration, upbeat.pitch) == (2 * Q, Q, 62)
    ((sequences, starts),) = scorer.calls
    # every pitch within a fifth of the decoded one, each scored from its own PITCH token on
    assert sorted(_pitch_of(s[i]) for s, i in zip(sequences, starts, strict=True)) == list(
        range(66 - LEAD_IN_SPAN, 66 + LEAD_IN_SPAN + 1)
    )
    right = TOKENIZER.bar_to_tokens(RETURN)
    assert all(s[-len(right) :] == right for s in sequences)


def test_the_upbeat_keeps_to_the_phrase_pitch_range() -> None:
    phrase = _draw([MOVING, CADENCE], PreferringScorer(target=62), span=(70, 80))
    assert phrase[-1].notes[-1].pitch == 70


def test_the_draw_is_a_sample_of_the_posterior_not_its_mode() -> None:
    flat = PreferringScorer(target=66, sharpness=0.0)
    drawn = {_draw([CADENCE], flat, seed).__getitem__(-1).notes[-1].pitch for seed in range(40)}
    assert len(drawn) >= 8
    same = [_draw([CADENCE], PreferringScorer(66, 0.5), seed=5) for _ in range(2)]
    assert same[0] == same[1]  # seeded


def test_a_phrase_without_an_upbeat_or_without_a_known_bar_after_is_kept() -> None:
    held = Bar(METER, (Note(0, 67, 3 * Q),))
    scorer = PreferringScorer(target=62)
    assert _draw([MOVING, held], scorer) == [MOVING, held]
    none_after = asyncio.run(
        draw_lead_in(CONTROLS, [], [CADENCE], [], (48, 88), scorer, TOKENIZER, random.Random(0))
    )
    assert none_after == [CADENCE] and not scorer.calls
