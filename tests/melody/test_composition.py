"""The form-following composer: which bars are decoded, copied or varied, with what prompt."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator

import pytest

from cantus.melody.composition import (
    ECHO_SHARES,
    KEPT_CADENCE_SHARE,
    LONGER_VARIED_TAIL_SHARE,
    PARALLEL_OPENING_SHARES,
    VARIED_BAR_SHARE,
    FormComposer,
    PhraseRequest,
    _dotted,
    _merge,
    _neighbour,
    _passing_tone,
    _split,
    bar_motion,
    collect,
    ornament,
    return_to_opening,
)
from cantus.melody.controls import Controls
from cantus.melody.decoding import AUTHENTIC_CADENCE_STEPS, HALF_CADENCE_STEPS
from cantus.melody.openings import PICKUP_ONSETS
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import FIM_MIDDLE, MelodyTokenizer, Vocabulary
from cantus.music.form import Cadence, Treatment, plan_form, plan_pattern, with_pickup
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style

METER = Meter(4, 4)
C_MAJOR = Key(0, Mode.MAJOR)
CONTROLS = Controls(C_MAJOR, METER, 100.0, Style.FOLK, Energy.MID)


class FakeModel:
    """Decodes bar i of a request as four quarter notes that depend on the seed and index;
    records every request."""

    def __init__(self) -> None:
        self.requests: list[PhraseRequest] = []

    async def decode(self, request: PhraseRequest) -> AsyncIterator[Bar]:
        self.requests.append(request)
        for i in range(request.n_bars):
            rng = random.Random(request.seed * 100 + i)
            pitches = [rng.choice([60, 62, 64, 65, 67, 69, 71]) for _ in range(4)]
            yield Bar(METER, tuple(Note(q * 480, p, 480, 90) for q, p in enumerate(pitches)))


def _compose(plan, bars=None, model=None, seed=7):  # type: ignore[no-untyped-def]
    model = model or FakeModel()
    composer = FormComposer(plan, CONTROLS, seed=seed, echoes=False)
    return asyncio.run(collect(composer, list(bars or []), model.decode)), model


def test_aaba_decodes_new_sections_by_phrase_and_reuses_returns() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    bars, model = _compose(plan)
    assert len(bars) == 16
    decoded = [(r.first_bar, r.n_bars) for r in model.requests]
    # A: 0-3; A' copies 4-6 (ornamented) and decodes its cadence bar 7; B: 8-11; A'': 12-14
    # copied, 15 decoded
    assert decoded == [(0, 4), (7, 1), (8, 4), (15, 1)]
    b_request = model.requests[2]
    assert b_request.controls.key == C_MAJOR  # a four-bar B stays home
    assert b_request.controls.energy == Energy.HIGH
    assert model.requests[0].cadence_steps == HALF_CADENCE_STEPS  # A ends on a half cadence
    assert model.requests[-1].cadence_steps == AUTHENTIC_CADENCE_STEPS
    for copy, source in ((4, 0), (5, 1), (12, 0), (13, 1)):
        # an ornament keeps the bar's onset span and first pitch
        assert bars[copy].notes[0].pitch == bars[source].notes[0].pitch
        assert sum(n.duration for n in bars[copy].notes) == METER.bar_ticks


def test_a_varied_phrase_goes_its_own_way_from_its_third_bar_as_often_as_the_corpus() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    varied = plan.sections[1]  # A': bars 4-7
    tails = [
        varied.end_bar - FormComposer(plan, CONTROLS, seed=seed).varied_from(varied)
        for seed in range(600)
    ]
    assert set(tails) == {1, 2}
    assert tails.count(2) / len(tails) == pytest.approx(LONGER_VARIED_TAIL_SHARE, abs=0.05)
    # a function of the seed and the section: a resumed piece varies the same bars
    again = FormComposer(plan, CONTROLS, seed=5)
    assert again.varied_from(varied) == FormComposer(plan, CONTROLS, seed=5).varied_from(varied)
    # a long section decodes its last two bars anew, whatever the seed
    long_plan = plan_form("AABA", bars=32, key=C_MAJOR, energy=Energy.MID)
    long_varied = long_plan.sections[1]
    assert {
        long_varied.end_bar - FormComposer(long_plan, CONTROLS, seed=s).varied_from(long_varied)
        for s in range(50)
    } == {2}
    _, model = _compose(plan)  # seed 7: the requests decode what is not copied
    starts = {r.first_bar for r in model.requests}
    assert FormComposer(plan, CONTROLS, seed=7, echoes=False).varied_from(varied) in starts


def test_the_piece_opens_on_the_downbeat_and_its_later_phrases_as_the_model_likes() -> None:
    # the plan's phrases end on bars 4, 8, ...: a pickup bar would put the model's a bar later
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    _, model = _compose(plan)
    assert [r.first_onset for r in model.requests] == [0, -1, -1, -1]
    assert [r.phrase_continues for r in model.requests] == [True, True, True, False]
    given = [Bar(METER, (Note(1440, 67, 480),))]  # a given pickup is the user's: kept
    _, model = _compose(plan, bars=given)
    assert all(r.first_onset == -1 for r in model.requests)


def test_a_pickup_bar_is_decoded_with_the_phrase_it_leads_into() -> None:
    plan = with_pickup(plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID))
    bars, model = _compose(plan)
    assert len(bars) == 17
    # pickup + A: 0-4 in one request, its first note after the downbeat where the corpus's
    # 4/4 pickups start; A' copies 5-7 and decodes its cadence bar 8 unless it keeps A's;
    # B: 9-12; A'': 16 likewise
    composer = FormComposer(plan, CONTROLS, seed=7, echoes=False)
    kept = [composer.keeps_cadence(plan.sections[i], bars) for i in (2, 4)]
    expected = [(0, 5), *[(8, 1)][: not kept[0]], (9, 4), *[(16, 1)][: not kept[1]]]
    assert [(r.first_bar, r.n_bars) for r in model.requests] == expected
    opening = model.requests[0]
    assert opening.first_onset in PICKUP_ONSETS[(4, 4)]
    assert opening.cadence_steps == HALF_CADENCE_STEPS  # A's phrase ends on bar 4
    for copy, source in ((5, 1), (6, 2), (13, 1)):  # returns copy A's bars, not the pickup
        assert bars[copy].notes[0].pitch == bars[source].notes[0].pitch
    # later prompts open with the pickup and the theme's four bars
    assert model.requests[2].context[:5] == tuple(bars[:5])
    # the onset is the seed's: the same piece every time
    assert _compose(plan)[1].requests[0].first_onset == opening.first_onset


def test_a_phrase_leading_into_a_return_reads_the_returns_first_bars() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    model = FakeModel()
    composer = FormComposer(plan, CONTROLS, seed=7, look_ahead=True, echoes=False)
    bars = asyncio.run(collect(composer, [], model.decode))
    by_first_bar = {r.first_bar: r for r in model.requests}
    # B (8-11) leads into A'' whose bars 12-13 copy bars 0-1 (unornamented, the opening
    # as written): the B phrase is decoded knowing them
    assert by_first_bar[8].after == (bars[0], bars[1])
    # A (0-3) leads into A' (copies of bars not yet composed when A is decoded): nothing
    assert by_first_bar[0].after == ()
    # A' and A'' decode their cadence bar: A' leads into B (new), A'' ends the piece
    assert by_first_bar[7].after == () and by_first_bar[15].after == ()
    tokenizer = MelodyTokenizer()
    request = by_first_bar[8]
    prompt = request.prompt(tokenizer)
    assert prompt == tokenizer.infill_prompt(request.controls, request.context, request.after)
    assert tokenizer.vocab.id(FIM_MIDDLE) in prompt
    older = MelodyTokenizer(Vocabulary(tokenizer.vocab.tokens[:-2]))  # no FIM markers
    assert request.prompt(older) == older.prompt(request.controls, request.context)
    blind = FakeModel()  # the default, settings.melody_fill_in_middle: left to right
    assert (
        asyncio.run(collect(FormComposer(plan, CONTROLS, seed=7, echoes=False), [], blind.decode))
        == bars
    )
    assert all(r.after == () for r in blind.requests)


MOVING = Bar(METER, tuple(Note(q * 480, p, 480, 90) for q, p in enumerate((60, 62, 64, 65))))
ONE_PITCH = Bar(METER, (Note(0, 67, 960, 90), Note(960, 67, 960, 90)))
REST = Bar(METER, ())


def test_a_new_phrase_echoes_its_first_bar_in_its_third_as_often_as_the_corpus() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    new_phrases = [0, 8]  # A and B; A', A'' vary
    most = max(ECHO_SHARES.values())

    def echoes(seed: int, first: int, bars: list[Bar]) -> bool:
        composer = FormComposer(plan, CONTROLS, seed=seed)
        return composer.echo_source(plan.section_at(first + 2), first + 2, bars) == first

    may = [(s, f) for s in range(800) for f in new_phrases if echoes(s, f, [])]
    assert 0.6 * most < len(may) / (800 * len(new_phrases)) < 1.4 * most
    # a bar that moves over three pitches is echoed at that share, one of one pitch never
    assert all(echoes(s, f, [MOVING] * (f + 1)) for s, f in may)
    assert not any(echoes(s, f, [ONE_PITCH] * (f + 1)) for s, f in may)
    assert not any(echoes(s, f, [REST] * (f + 1)) for s, f in may)  # a bar of rest: none
    for seed, first in may:
        model = FakeModel()
        bars = asyncio.run(collect(FormComposer(plan, CONTROLS, seed=seed), [], model.decode))
        if bar_motion(bars[first]) == 3:
            break
    assert bars[first + 2] == bars[first]  # note for note
    by_first_bar = {r.first_bar: r for r in model.requests}
    opening, closing = by_first_bar[first], by_first_bar[first + 3]
    assert (opening.n_bars, closing.n_bars) == (2, 1)
    assert opening.cadence_steps == () and opening.phrase_continues and opening.upbeat == -1
    assert closing.cadence_steps  # the phrase still ends in its cadence
    assert bars[first + 2] in closing.context  # and is prompted with the echo
    # a restart from the phrase's second bar on composes the same bars
    for done in range(first + 1, first + 4):
        again = FormComposer(plan, CONTROLS, seed=seed)
        resumed = asyncio.run(collect(again, list(bars[:done]), FakeModel().decode))
        assert resumed[first + 2] == resumed[first]
        if done >= first + 2:
            assert resumed == bars
    never = FormComposer(plan, CONTROLS, seed=seed, echoes=False)
    assert never.echo_source(plan.section_at(first + 2), first + 2, bars) is None


def test_an_answering_phrase_opens_with_the_first_bar_of_the_phrase_before() -> None:
    plan = plan_pattern("A B C D", key=C_MAJOR, energy=Energy.MID)

    def answers(seed: int, first: int, bar: Bar) -> bool:
        composer = FormComposer(plan, CONTROLS, seed=seed)
        return composer.opening_source(plan.section_at(first), first, [bar] * first) == first - 4

    drawn = {first: [s for s in range(800) if answers(s, first, MOVING)] for first in (0, 4, 8, 12)}
    assert drawn[0] == [] and drawn[8] == []  # the first phrase, and C opening a strain
    most = PARALLEL_OPENING_SHARES[3]
    for first in (4, 12):  # B answers A, D answers C
        assert 0.6 * most < len(drawn[first]) / 800 < 1.4 * most
        assert not any(answers(s, first, ONE_PITCH) for s in drawn[first])
        assert not any(answers(s, first, REST) for s in drawn[first])
    for seed in drawn[4]:
        model = FakeModel()
        bars = asyncio.run(collect(FormComposer(plan, CONTROLS, seed=seed), [], model.decode))
        if bar_motion(bars[0]) == 3:
            break
    assert bars[4] == bars[0]
    assert 4 not in {r.first_bar for r in model.requests}  # B's request starts on its bar 2
    assert bars[4] in next(r for r in model.requests if r.first_bar == 5).context
    never = FormComposer(plan, CONTROLS, seed=seed, echoes=False)
    assert never.opening_source(plan.section_at(4), 4, bars) is None


def test_a_phrase_leading_into_a_return_is_chosen_by_how_it_leads_into_it() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    model = FakeModel()
    asked: list[tuple[PhraseRequest, tuple[Bar, ...]]] = []
    key_areas: list[int] = []

    async def choose(request: PhraseRequest, right, key_area) -> list[Bar]:  # type: ignore[no-untyped-def]
        asked.append((request, tuple(right)))
        key_areas.append(len(key_area))
        # a candidate the plain decoder would not give: every note on the return's first
        first = right[0].notes[0].pitch
        return [Bar(METER, (Note(0, first, METER.bar_ticks, 90),))] * request.n_bars

    composer = FormComposer(plan, CONTROLS, seed=7, choose=choose, echoes=False)
    bars = asyncio.run(collect(composer, [], model.decode))
    # only B (8-11) leads into a return whose bars are known (A'' copies bars 0-1)
    assert [(r.first_bar, r.n_bars) for r, _ in asked] == [(8, 4)]
    assert asked[0][1] == (bars[0], bars[1])
    assert key_areas == [8]  # heard after the two A's, in the home key as B is
    assert all(bar.notes == (Note(0, bars[0].notes[0].pitch, 1920, 90),) for bar in bars[8:12])
    # every other phrase is decoded as before, bar by bar
    assert [(r.first_bar, r.n_bars) for r in model.requests] == [(0, 4), (7, 1), (15, 1)]
    plain = asyncio.run(
        collect(FormComposer(plan, CONTROLS, seed=7, echoes=False), [], FakeModel().decode)
    )
    assert bars[:8] == plain[:8] and len(bars) == 16


def test_an_upbeat_into_bars_decided_once_its_phrase_is_is_drawn_again() -> None:
    """``lead_in``: the first A's upbeat into the second A (its own first bars, known once
    it is decoded) and B's into the last A are drawn knowing those bars; the bar is
    yielded as drawn."""
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    asked: list[tuple[int, int, tuple[Bar, ...]]] = []

    async def lead_in(request: PhraseRequest, phrase, after) -> list[Bar]:  # type: ignore[no-untyped-def]
        asked.append((request.first_bar, len(phrase), tuple(after)))
        last = phrase[-1]
        upbeat = dataclasses.replace(last.notes[-1], pitch=59)
        return [*phrase[:-1], Bar(last.meter, (*last.notes[:-1], upbeat))]

    composer = FormComposer(plan, CONTROLS, seed=7, echoes=False, lead_in=lead_in)
    streamed: list[tuple[int, Bar]] = []

    async def run() -> list[Bar]:
        bars: list[Bar] = []
        async for index, bar in composer.compose(bars, FakeModel().decode):
            streamed.append((index, bar))
        return bars

    bars = asyncio.run(run())
    assert [(first, n) for first, n, _ in asked] == [(0, 4), (8, 4)]  # A' (7) leads into B
    assert all(after == (bars[0], bars[1]) for *_, after in asked)
    plain = asyncio.run(
        collect(FormComposer(plan, CONTROLS, seed=7, echoes=False), [], FakeModel().decode)
    )
    for index in range(16):
        if index in (3, 11):
            assert bars[index].notes[-1].pitch == 59
            assert bars[index].notes[:-1] == plain[index].notes[:-1]
        else:
            assert bars[index] == plain[index]
    assert streamed == list(enumerate(bars))


def test_a_repeated_section_is_copied_note_for_note() -> None:
    plan = plan_form("ABAC", bars=16, key=C_MAJOR, energy=Energy.MID)
    assert plan.sections[2].treatment is Treatment.REPEAT
    bars, model = _compose(plan)
    assert bars[8:12] == bars[0:4]
    assert all(not 8 <= r.first_bar < 12 for r in model.requests)


def test_prompts_hold_the_theme_the_source_and_the_recent_bars() -> None:
    plan = plan_form("AABA", bars=32, key=C_MAJOR, energy=Energy.MID)
    for seed in range(7, 20):  # a piece whose A'' decodes its closing bars (most do)
        bars, model = _compose(plan, seed=seed)
        last = model.requests[-1]  # A'' closing bars, from bar 30
        if last.first_bar == 30:
            break
    assert last.first_bar == 30
    # the theme, A's own ending with two bars before it, then the bars before 30
    expected = [bars[i] for i in [0, 1, 2, 3, 4, 5, 6, 7, 26, 27, 28, 29]]
    assert list(last.context) == expected
    assert all(len(r.context) <= 12 for r in model.requests)


def test_a_resumed_piece_is_the_same_at_phrase_starts_and_repeatable_anywhere() -> None:
    plan = plan_form("verse-chorus", bars=40, key=C_MAJOR, energy=Energy.LOW)
    whole, model = _compose(plan)
    for request in model.requests:  # resuming where a phrase starts: the same piece
        assert _compose(plan, bars=whole[: request.first_bar])[0] == whole
    for cut in (1, 5, 13, 22, 39):  # anywhere: the same continuation each time
        resumed, _ = _compose(plan, bars=whole[:cut])
        assert resumed[:cut] == whole[:cut] and len(resumed) == 40
        assert _compose(plan, bars=whole[:cut])[0] == resumed


def test_a_model_that_stops_early_is_an_error() -> None:
    plan = plan_form("through", bars=8, key=C_MAJOR, energy=Energy.MID)

    async def short(request: PhraseRequest) -> AsyncIterator[Bar]:
        yield Bar(METER, (Note(0, 60, METER.bar_ticks, 90),))

    with pytest.raises(RuntimeError, match="stopped after 1 of 4 bars"):
        asyncio.run(collect(FormComposer(plan, CONTROLS, 1), [], short))


C_SCALE = {0, 2, 4, 5, 7, 9, 11}


def test_a_passing_tone_fills_a_third() -> None:
    bar = [Note(0, 60, 960, 90), Note(960, 64, 960, 90)]
    filled = [Note(0, 60, 480, 90), Note(480, 62, 480, 90), Note(960, 64, 960, 90)]
    assert _passing_tone(bar, C_SCALE) == filled


def test_a_dotted_rhythm_on_two_equal_quarters() -> None:
    bar = [Note(0, 60, 480, 90), Note(480, 62, 480, 90), Note(960, 64, 960, 90)]
    assert _dotted(bar) == [Note(0, 60, 720, 90), Note(720, 62, 240, 90), Note(960, 64, 960, 90)]


def test_a_neighbour_moves_a_note_by_a_scale_step_and_keeps_the_line_by_steps() -> None:
    bar = [Note(0, 60, 480, 90), Note(480, 62, 480, 90), Note(960, 64, 960, 90)]
    seen = {tuple(_neighbour(bar, C_SCALE, random.Random(seed)) or ()) for seed in range(40)}
    # 62 may not move onto 60 or 64 (a repeated note); 64 moves to 65 (62 -> 65: a third)
    assert seen == {(bar[0], bar[1], Note(960, 65, 960, 90))}


def test_a_long_note_splits_towards_the_next_and_a_repeated_note_is_held() -> None:
    bar = [Note(0, 60, 480, 90), Note(480, 64, 960, 90), Note(1440, 60, 480, 90)]
    assert _split(bar, C_SCALE) == [
        Note(0, 60, 480, 90),
        Note(480, 64, 480, 90),
        Note(960, 62, 480, 90),
        Note(1440, 60, 480, 90),
    ]
    repeated = [Note(0, 60, 480, 90), Note(480, 62, 480, 90), Note(960, 62, 960, 90)]
    assert _merge(repeated) == [Note(0, 60, 480, 90), Note(480, 62, 1440, 90)]


def test_ornaments_change_a_share_of_bars_and_keep_their_first_note_and_span() -> None:
    rng = random.Random(5)
    changed = 0
    trials = 2000
    for seed in range(trials):
        onsets = sorted(rng.sample(range(240, 1920, 240), 4))
        starts = [0, *onsets]
        pitches = [60 + rng.choice((0, 2, 4, 5, 7, 9)) for _ in starts]
        notes = tuple(
            Note(start, pitch, end - start, 90)
            for start, end, pitch in zip(starts, [*onsets, 1920], pitches, strict=True)
        )
        bar = Bar(METER, notes)
        varied = ornament(bar, C_MAJOR, random.Random(seed))
        changed += varied != bar
        assert varied.notes[0].onset == 0 and varied.notes[0].pitch == notes[0].pitch
        assert varied.notes[-1].onset + varied.notes[-1].duration == 1920
        assert all(n.duration >= min(240, *(m.duration for m in notes)) for n in varied.notes)
        assert all(n.pitch % 12 in C_SCALE for n in varied.notes)
    assert 0.6 * VARIED_BAR_SHARE < changed / trials < VARIED_BAR_SHARE + 0.03


def test_ornaments_never_split_eighths_into_sixteenths() -> None:
    # a third filled or a dotted pair made of eighths would be sixteenths, rare in the corpus
    eighths = Bar(METER, (Note(0, 60, 240, 90), Note(240, 64, 240, 90), Note(480, 62, 1440, 90)))
    for seed in range(40):
        assert min(n.duration for n in ornament(eighths, C_MAJOR, random.Random(seed)).notes) >= 240


def test_a_return_in_another_key_area_is_its_source_transposed_there() -> None:
    import dataclasses

    from cantus.music.form import FormPlan, KeyArea

    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    # A' moved to the dominant: its copied bars are A's a fifth up (G: +7 -> -5 nearest)
    sections = list(plan.sections)
    sections[1] = dataclasses.replace(
        sections[1], key=C_MAJOR.transpose(7), key_area=KeyArea.DOMINANT
    )
    bars, _ = _compose(FormPlan(plan.name, tuple(sections), C_MAJOR))
    for copy, source in ((4, 0), (5, 1)):
        assert bars[copy].notes[0].pitch == bars[source].notes[0].pitch - 5


def test_the_last_phrase_ends_on_its_cadence_note_held_to_the_bar_line() -> None:
    from cantus.melody.composition import hold_last_note

    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)

    async def short_endings(request: PhraseRequest) -> AsyncIterator[Bar]:
        for _ in range(request.n_bars):
            yield Bar(METER, (Note(0, 67, 480, 90), Note(480, 60, 480, 90)))

    bars = asyncio.run(collect(FormComposer(plan, CONTROLS, 3), [], short_endings))
    assert bars[15].notes[-1].duration == METER.bar_ticks - 480
    # a phrase the tune goes on after breathes as the model wrote it (the grammar holds
    # its cadence tone through the beat before the last)
    for end in (0, 3, 7, 11):
        assert bars[end].notes[-1].duration == 480
    breath = Bar(METER, (Note(0, 67, 1440, 90),))  # a beat's rest at the end stays
    assert hold_last_note(breath) == breath
    empty = Bar(METER, ())
    assert hold_last_note(empty) == empty


def test_returns_of_a_pickup_opening_hold_the_cadence_note_then_play_the_upbeat() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)

    async def pickup_first(request: PhraseRequest) -> AsyncIterator[Bar]:
        for i in range(request.n_bars):
            if request.first_bar == 0 and i == 0:
                yield Bar(METER, (Note(1440, 67, 480, 90),))  # the corpus's pickup bar
            else:
                yield Bar(METER, (Note(0, 60, 960, 90), Note(960, 62, 960, 90)))

    bars = asyncio.run(collect(FormComposer(plan, CONTROLS, 3), [], pickup_first))
    assert bars[0].notes == (Note(1440, 67, 480, 90),)  # the opening keeps its pickup
    # the previous phrase's last note (62) sounds on through the rest, then the upbeat (which
    # a varied return may move by a step)
    for bar in (bars[4], bars[12]):
        held, upbeat = bar.notes
        assert held == Note(0, 62, 1440, 90)
        assert (upbeat.onset, upbeat.duration) == (1440, 480) and abs(upbeat.pitch - 67) <= 2
    assert return_to_opening(bars[0], None).notes == (Note(0, 67, 1920, 90),)


def test_phrases_the_tune_goes_on_after_lead_on_with_upbeats_as_the_corpus_does() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    asked: list[PhraseRequest] = []
    for seed in range(60):
        model = FakeModel()
        asyncio.run(collect(FormComposer(plan, CONTROLS, seed=seed), [], model.decode))
        asked += model.requests
        for request in model.requests:  # the piece's end (decoded, or a kept cadence)
            if request.first_bar + request.n_bars == plan.total_bars:
                assert request.phrase_continues is False
                assert request.upbeat == -1  # the piece's end holds its last tone
    continuing = [r for r in asked if r.phrase_continues and r.cadence_steps]  # phrase ends
    assert {r.upbeat for r in continuing} == {0, 1}
    share = sum(r.upbeat for r in continuing) / len(continuing)
    assert 0.7 < share < 1.0  # 4/4: 96 % after a downbeat cadence, 54 % after one on beat 3
    assert all(r.sampling(SamplingParams()).upbeat == r.upbeat for r in asked)


def test_cadences_close_on_their_chords_tones_and_the_piece_on_its_tonic() -> None:
    from cantus.melody.composition import cadence_steps
    from cantus.music.notes import Mode

    assert cadence_steps(Cadence.AUTHENTIC, Mode.MAJOR, last=True) == (0,)
    assert cadence_steps(Cadence.AUTHENTIC, Mode.MINOR, last=True) == (0,)
    assert sorted(cadence_steps(Cadence.AUTHENTIC, Mode.MAJOR, last=False)) == [0, 4]
    assert sorted(cadence_steps(Cadence.AUTHENTIC, Mode.MINOR, last=False)) == [0, 3]
    assert sorted(cadence_steps(Cadence.HALF, Mode.MAJOR, last=False)) == [2, 7, 11]
    assert sorted(cadence_steps(Cadence.HALF, Mode.MINOR, last=False)) == [2, 7, 10, 11]
    # the AABA's A' closes its first half on the tonic or its third, the A'' the piece on
    # the tonic
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    _, model = _compose(plan)
    assert [(r.first_bar, sorted(r.cadence_steps)) for r in model.requests] == [
        (0, [2, 7, 11]),
        (7, [0, 4]),
        (8, [2, 7, 11]),
        (15, [0]),
    ]


class OneBarModel(FakeModel):
    """Decodes every bar of every request as ``bar``."""

    def __init__(self, bar: Bar) -> None:
        super().__init__()
        self.bar = bar

    async def decode(self, request: PhraseRequest) -> AsyncIterator[Bar]:
        self.requests.append(request)
        for _ in range(request.n_bars):
            yield self.bar


def closing_model(closing: int, before: int = 64) -> OneBarModel:
    """Every bar a dotted half note ``closing`` on the downbeat (the cadence tone of a phrase
    end, where 4/4 phrases mostly close), then a quarter note ``before`` (the upbeat into the
    next bar)."""
    return OneBarModel(Bar(METER, (Note(0, closing, 1440, 90), Note(1440, before, 480, 90))))


def test_a_return_keeps_its_source_s_cadence_bar_as_often_as_the_corpus_s_do() -> None:
    """A' and A'' of AABA close on the tonic (authentic); their source A closes on C too
    here, so about half of the returns that change only their cadence bar keep the
    source's, closing tone and all, and decode nothing (the corpus: 38 % of varied
    returns keep something of it)."""
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    kept = changed_alone = 0
    for seed in range(200):
        model = closing_model(60)
        composer = FormComposer(plan, CONTROLS, seed=seed)
        bars = asyncio.run(collect(composer, [], model.decode))
        for section in (plan.sections[1], plan.sections[3]):
            cadence = section.end_bar - 1
            if composer.varied_from(section) < cadence:
                assert not composer.keeps_cadence(section, bars)
                continue
            changed_alone += 1
            decoded = any(r.first_bar <= cadence < r.first_bar + r.n_bars for r in model.requests)
            assert decoded is not composer.keeps_cadence(section, bars)
            if not decoded:
                kept += 1
                assert bars[cadence].notes[0] == Note(0, 60, 1440, 90)
                if cadence == 15:  # the piece's end: no upbeat
                    assert [n.pitch for n in bars[cadence].notes] == [60]
    # the cadence must sound through the beat drawn for it: the downbeat in most 4/4 phrases
    assert kept / changed_alone == pytest.approx(KEPT_CADENCE_SHARE * 0.9, abs=0.1)


def test_a_kept_cadence_bar_closes_on_the_return_s_own_cadence_tone() -> None:
    """A source that closes on D (a half cadence's tone) after E: a return that keeps its
    cadence bar closes it on its own cadence's root, as a second ending does (A' and the
    piece's end on C, not E, which would lean to another key in minor); one whose closing
    tone would be more than a third from the note before (after a high C) decodes its
    cadence bar instead."""
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    kept = 0
    for seed in range(60):
        model = closing_model(62)
        composer = FormComposer(plan, CONTROLS, seed=seed)
        bars = asyncio.run(collect(composer, [], model.decode))
        for section in (plan.sections[1], plan.sections[3]):
            if composer.keeps_cadence(section, bars):
                kept += 1
                cadence = bars[section.end_bar - 1]
                assert cadence.notes[0].pitch == 60  # the tonic, the authentic cadence's root
        high = closing_model(62, before=72)
        composer = FormComposer(plan, CONTROLS, seed=seed)
        bars = asyncio.run(collect(composer, [], high.decode))
        assert not any(composer.keeps_cadence(s, bars) for s in plan.sections)
        assert any(r.first_bar <= 15 < r.first_bar + r.n_bars for r in high.requests)
    assert kept > 10


STEPS = Bar(METER, (Note(0, 60, 960, 90), Note(960, 62, 480, 90), Note(1440, 64, 480, 90)))
"""A half note C on the downbeat, then D and E in quarter notes."""


def test_a_return_that_keeps_its_cadence_still_varies() -> None:
    """A varied return that keeps its source's cadence bar, its other bars copied without an
    ornament, changes a note of the cadence bar before its closing tone: it is never its
    source note for note."""
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    kept = 0
    for seed in range(80):
        composer = FormComposer(plan, CONTROLS, seed=seed, echoes=False)
        bars = asyncio.run(collect(composer, [], OneBarModel(STEPS).decode))
        for section in (plan.sections[1], plan.sections[3]):
            if composer.keeps_cadence(section, bars):
                kept += 1
                own = bars[section.first_bar : section.end_bar]
                assert own != bars[0 : section.bars]
                assert own[-1].notes[0] == Note(0, 60, 960, 90) or section.end_bar == 16
    assert kept > 10


RUNNING = Bar(
    METER, tuple(Note(i * 240, p, 240, 90) for i, p in enumerate((60, 62, 64, 62, 60, 62, 64, 65)))
)
"""Eight running eighths from C, a reel's bar that runs on through its cadence: no note
sounds through a whole beat."""


def test_a_return_keeps_a_cadence_bar_that_runs_on() -> None:
    """A source cadence bar of running eighths (a shorter cadence tone on its beat,
    ``cadence_hold``) can be kept too: its tone is the eighth on the beat drawn for the
    return's cadence, and the bar keeps its running rhythm."""
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    kept = 0
    for seed in range(60):
        composer = FormComposer(plan, CONTROLS, seed=seed, echoes=False)
        bars = asyncio.run(collect(composer, [], OneBarModel(RUNNING).decode))
        for section in (plan.sections[1], plan.sections[3]):
            cadence = section.end_bar - 1
            if composer.keeps_cadence(section, bars) and cadence < plan.total_bars - 1:
                kept += 1
                assert [n.duration for n in bars[cadence].notes] == [240] * 8
    assert kept > 5
