"""Constrained sampling: the grammar's limits hold and sampling is deterministic per seed."""

from __future__ import annotations

import pytest
import torch

from cantus.melody.controls import Controls
from cantus.melody.decoding import (
    HALF_CADENCE_STEPS,
    TONAL_EMPHASIS_WEIGHTS,
    MelodyGrammar,
    UniformDraws,
    sample_token,
    sample_tokens,
)
from cantus.melody.phrase_endings import HOLD_BEAT, HOLD_LONG, HOLD_PART, HOLD_SHORT
from cantus.melody.sampling import SamplingError, SamplingParams
from cantus.melody.tokenizer import FIM_MIDDLE, FIM_SUFFIX, GRID_TICKS, MelodyTokenizer
from cantus.music.notes import Bar, Key, Meter, Mode, MusicError, Note
from cantus.music.styles import Energy, Style

torch.set_num_threads(1)
TOKENIZER = MelodyTokenizer()
VOCAB = TOKENIZER.vocab


C_MAJOR, COMMON_TIME = Key(0), Meter(4, 4)


def _prefix(key: Key = C_MAJOR, meter: Meter = COMMON_TIME) -> list[int]:
    return TOKENIZER.controls_prefix(Controls(key, meter, 100.0, Style.FOLK, Energy.MID))


def _random_walk(grammar: MelodyGrammar, seed: int) -> list[int]:
    """Sample uniformly among allowed tokens until the grammar is done."""
    generator = UniformDraws(seed)
    tokens = []
    while not grammar.done:
        token = sample_token(
            torch.zeros(len(VOCAB)), grammar.allowed_mask(), SamplingParams(), generator
        )
        grammar.advance(token)
        tokens.append(token)
    return tokens


@pytest.mark.parametrize("seed", range(5))
def test_generated_bars_respect_range_key_count_and_density(seed: int) -> None:
    key = Key(9, Mode.MINOR)  # A minor: F# and G# (raised 6th, 7th) are allowed too
    prompt = _prefix(key, Meter(6, 8))
    grammar = MelodyGrammar(
        VOCAB,
        n_bars=6,
        sampling=SamplingParams(pitch_range=(55, 79), key_constraint=True, max_notes_per_bar=5),
    )
    grammar.feed_prompt(prompt)
    tokens = prompt + _random_walk(grammar, seed)
    _, melody = TOKENIZER.decode(tokens)
    assert tokens[-1] == VOCAB.eos and len(melody.bars) == 6
    allowed_classes = {9, 11, 0, 2, 4, 5, 7, 6, 8}
    for bar in melody.bars:
        assert bar.meter == Meter(6, 8) and len(bar.notes) <= 5
        for note in bar.notes:
            assert 55 <= note.pitch <= 79 and note.pitch % 12 in allowed_classes


def test_generation_after_given_bars_starts_a_new_bar() -> None:
    given = Bar(Meter(4, 4), (Note(0, 60, 240),))  # the given bar is not full: still final
    prompt = _prefix() + TOKENIZER.bar_to_tokens(given)
    grammar = MelodyGrammar(VOCAB, n_bars=2)
    grammar.feed_prompt(prompt)
    assert grammar.allowed_ids() == [VOCAB.bar]
    tokens = prompt + _random_walk(grammar, 0)
    _, melody = TOKENIZER.decode(tokens)
    assert melody.bars[0] == given and len(melody.bars) == 3


def test_the_context_limit_is_never_exceeded() -> None:
    prompt = _prefix()
    grammar = MelodyGrammar(VOCAB, n_bars=8, max_len=40)
    grammar.feed_prompt(prompt)
    tokens = prompt + _random_walk(grammar, 3)
    assert len(tokens) <= 40 and tokens[-1] == VOCAB.eos
    assert len(TOKENIZER.decode(tokens)[1].bars) == 8
    with pytest.raises(MusicError, match="no room"):
        MelodyGrammar(VOCAB, n_bars=40, max_len=40).feed_prompt(prompt)


def test_a_fill_in_the_middle_prompt_generates_the_gap() -> None:
    before = Bar(COMMON_TIME, (Note(0, 60, 960), Note(960, 62, 960)))
    after = Bar(COMMON_TIME, (Note(0, 67, 1920),))
    controls = Controls(C_MAJOR, COMMON_TIME, 100.0, Style.FOLK, Energy.MID)
    prompt = TOKENIZER.infill_prompt(controls, [before], [after])
    grammar = MelodyGrammar(VOCAB, n_bars=2, sampling=SamplingParams(end_on_tonic=True))
    grammar.feed_prompt(prompt)
    assert grammar.allowed_ids() == [VOCAB.bar]
    generated = _random_walk(grammar, 1)
    markers = {VOCAB.id(FIM_SUFFIX), VOCAB.id(FIM_MIDDLE)}
    assert not markers & set(generated) and generated[-1] == VOCAB.eos
    gap = TOKENIZER.decode(_prefix() + generated)[1]
    assert len(gap.bars) == 2 and gap.bars[-1].notes[-1].pitch % 12 == 0


@pytest.mark.parametrize(("meter", "first_onset"), [(Meter(4, 4), 0), (Meter(6, 8), 10)])
@pytest.mark.parametrize("seed", range(4))
def test_the_first_bar_opens_where_the_plan_says(meter: Meter, first_onset: int, seed: int) -> None:
    prompt = _prefix(meter=meter)
    sampling = SamplingParams(first_onset=first_onset, cadence_steps=(0,))
    grammar = MelodyGrammar(VOCAB, n_bars=3, sampling=sampling)
    grammar.feed_prompt(prompt)
    _, melody = TOKENIZER.decode(prompt + _random_walk(grammar, seed))
    first = melody.bars[0].notes[0]
    assert first.onset == first_onset * 120  # a downbeat, or the pickup asked for
    assert len(melody.bars) == 3  # later bars are the model's: only the opening is set


def test_an_opening_beyond_the_bar_is_refused() -> None:
    grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=SamplingParams(first_onset=12))
    with pytest.raises(MusicError, match="first_onset 12 lies beyond the bar"):
        grammar.feed_prompt(_prefix(meter=Meter(3, 4)))


@pytest.mark.parametrize(
    "prompt",
    [
        [],
        _prefix()[:5],
        [*_prefix(), VOCAB.bar, VOCAB.pos(0)],
        [*_prefix(), VOCAB.eos],
        [VOCAB.bar, *_prefix()],
        [*_prefix(), VOCAB.id(FIM_SUFFIX), VOCAB.bar],  # a suffix without FIM_MID
        [*_prefix(), VOCAB.id(FIM_MIDDLE)],  # FIM_MID before FIM_SUF
        [*_prefix(), VOCAB.bar, VOCAB.id(FIM_SUFFIX)],  # bars before the suffix
        [*_prefix(), VOCAB.id(FIM_SUFFIX), VOCAB.id(FIM_SUFFIX)],
    ],
)
def test_malformed_prompts_are_rejected(prompt: list[int]) -> None:
    with pytest.raises(MusicError):
        MelodyGrammar(VOCAB, n_bars=1).feed_prompt(prompt)


def test_sampling_is_deterministic_per_seed_and_respects_the_mask() -> None:
    logits = torch.randn(len(VOCAB), generator=torch.Generator().manual_seed(0))
    allowed = torch.zeros(len(VOCAB), dtype=torch.bool)
    allowed[10:40] = True
    params = SamplingParams(temperature=1.5, top_k=20, top_p=0.9)

    def draws(seed: int) -> list[int]:
        generator = UniformDraws(seed)
        return [sample_token(logits, allowed, params, generator) for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert all(10 <= t < 40 for t in draws(7))
    best = int(torch.argmax(logits.masked_fill(~allowed, float("-inf"))))
    for greedy in (
        SamplingParams(temperature=0),
        SamplingParams(top_k=1),
        SamplingParams(top_p=1e-6),
    ):
        assert sample_token(logits, allowed, greedy, UniformDraws(1)) == best
    assert sample_token(logits, allowed, params, UniformDraws(-5)) >= 10  # any int seeds


def test_sampling_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError):
        SamplingParams(temperature=-1)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("key", "meter", "max_notes"),
    [(Key(9, Mode.MINOR), Meter(3, 4), 16), (Key(2), Meter(6, 8), 3), (Key(7), Meter(2, 4), 1)],
)
def test_end_on_tonic_closes_the_last_bar_on_the_tonic(
    seed: int, key: Key, meter: Meter, max_notes: int
) -> None:
    prompt = _prefix(key, meter)
    grammar = MelodyGrammar(
        VOCAB,
        n_bars=3,
        sampling=SamplingParams(
            key_constraint=True, end_on_tonic=True, max_notes_per_bar=max_notes
        ),
    )
    grammar.feed_prompt(prompt)
    _, melody = TOKENIZER.decode(prompt + _random_walk(grammar, seed))
    assert len(melody.bars) == 3 and all(bar.meter == meter for bar in melody.bars)
    last_bar = melody.bars[-1]
    assert last_bar.notes and last_bar.notes[-1].pitch % 12 == key.tonic


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(6, 8), Meter(3, 4), Meter(2, 4)])
def test_a_cadence_tone_holds_the_last_beat_alone(seed: int, meter: Meter) -> None:
    # no other note sounds in the cadence bar's last beat, and a cadence tone that reaches
    # into it sounds through at least half of it: no sixteenth snatched before the bar line
    from cantus.melody.decoding import HALF_CADENCE_STEPS

    key = Key(7)
    prompt = _prefix(key, meter)
    grammar = MelodyGrammar(
        VOCAB, n_bars=2, sampling=SamplingParams(cadence_steps=HALF_CADENCE_STEPS)
    )
    grammar.feed_prompt(prompt)
    _, melody = TOKENIZER.decode(prompt + _random_walk(grammar, seed))
    last_beat = meter.bar_ticks - meter.beat_ticks
    notes = melody.bars[-1].notes
    assert notes and (notes[-1].pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
    for note in notes:
        if note.end > last_beat:
            assert (note.pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
            assert note.end >= last_beat + meter.beat_ticks // 2
    assert all(note.end <= last_beat for note in notes[:-1])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("meter", "cadence_beat"),
    [(Meter(3, 4), 0), (Meter(4, 4), 0), (Meter(4, 4), 3), (Meter(6, 8), 1), (Meter(2, 4), 7)],
)
@pytest.mark.parametrize("continues", [True, False])
def test_the_cadence_arrives_on_the_beat_asked(
    seed: int, meter: Meter, cadence_beat: int, continues: bool
) -> None:
    # the cadence tone sounds on the asked beat (the last, for a beat past the bar), every
    # note before it ends by then, and a closing cadence holds to the bar line
    from cantus.melody.decoding import HALF_CADENCE_STEPS

    key = Key(7)
    prompt = _prefix(key, meter)
    sampling = SamplingParams(
        cadence_steps=HALF_CADENCE_STEPS, cadence_beat=cadence_beat, phrase_continues=continues
    )
    grammar = MelodyGrammar(VOCAB, n_bars=2, sampling=sampling)
    grammar.feed_prompt(prompt)
    _, melody = TOKENIZER.decode(prompt + _random_walk(grammar, seed))
    beat = meter.beat_ticks
    start = min(cadence_beat, meter.bar_ticks // beat - 1) * beat
    notes = melody.bars[-1].notes
    sounding = [n for n in notes if n.onset < start + beat and n.end > start]
    assert sounding, "the cadence beat is silent"
    # the first tone of the cadence beat is the cadence tone; it may stop half-way through
    # the beat where it began before it, and then the bar is free where the tune goes on
    assert (sounding[0].pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
    assert all(n.end <= start for n in notes if n.onset < start and n is not sounding[0])
    if not continues:
        assert all((n.pitch - key.tonic) % 12 in HALF_CADENCE_STEPS for n in sounding)


def test_a_cadence_beat_outside_the_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="cadence_beat"):
        SamplingParams(cadence_beat=-2)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(6, 8), Meter(3, 4), Meter(2, 4)])
def test_a_phrase_the_tune_goes_on_after_may_breathe_after_its_cadence(
    seed: int, meter: Meter
) -> None:
    # the cadence tone sounds through the beat before the last; after it the last beat is
    # free: a rest, or an upbeat of any pitch into the next phrase
    from cantus.melody.decoding import HALF_CADENCE_STEPS

    key = Key(7)
    prompt = _prefix(key, meter)
    sampling = SamplingParams(cadence_steps=HALF_CADENCE_STEPS, phrase_continues=True)
    grammar = MelodyGrammar(VOCAB, n_bars=2, sampling=sampling)
    grammar.feed_prompt(prompt)
    tokens = _random_walk(grammar, seed)
    assert tokens[-1] == VOCAB.eos
    _, melody = TOKENIZER.decode(prompt + tokens)
    beat = meter.beat_ticks
    cadence_beat = meter.bar_ticks - 2 * beat
    notes = melody.bars[-1].notes
    sounding = [n for n in notes if n.onset < cadence_beat + beat and n.end > cadence_beat]
    assert sounding
    for note in sounding:
        assert (note.pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
    held = [n for n in sounding if n.onset <= cadence_beat]
    for note in held:  # one that reaches the cadence beat holds through half of it
        assert note.end >= cadence_beat + beat // 2


def test_upbeats_after_the_cadence_occur_and_the_end_is_scored_as_a_bar_line() -> None:
    from cantus.melody.decoding import HALF_CADENCE_STEPS, score_phrase_ends

    sampling = SamplingParams(cadence_steps=HALF_CADENCE_STEPS, phrase_continues=True)
    free = 0
    for seed in range(40):
        grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=sampling)
        grammar.feed_prompt(_prefix(Key(7)))
        _, melody = TOKENIZER.decode(_prefix(Key(7)) + _random_walk(grammar, seed))
        last = melody.bars[-1].notes[-1]
        free += (last.pitch - 7) % 12 not in HALF_CADENCE_STEPS or last.end < 1920
    assert free >= 5  # the last beat breathes or leads on in some draws, not never
    grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=sampling)
    grammar.feed_prompt(_prefix())
    logits = torch.arange(len(VOCAB), dtype=torch.float32)[None]
    assert torch.equal(score_phrase_ends(logits, [grammar]), logits)  # not at the end yet
    for token in (VOCAB.bar, VOCAB.pos(0), VOCAB.pitch(67)):
        grammar.advance(token)
    # the cadence tone sounds through three beats at most: the last is left to a breath or
    # an upbeat into the next phrase
    allowed = [t for start, stop in grammar.allowed_ranges() for t in range(start, stop)]
    assert VOCAB.dur(12) in allowed and VOCAB.dur(16) not in allowed
    grammar.advance(VOCAB.dur(12))
    assert grammar.ends_as_bar
    scored = score_phrase_ends(logits, [grammar])
    assert scored[0, VOCAB.eos] == logits[0, VOCAB.bar] and logits[0, VOCAB.eos] == VOCAB.eos
    # after a fill-in-the-middle prompt EOS ends the gap, as the model learned it
    before, after = (Bar(COMMON_TIME, (Note(0, 60, 1920),)),) * 2
    controls = Controls(C_MAJOR, COMMON_TIME, 100.0, Style.FOLK, Energy.MID)
    gap = MelodyGrammar(VOCAB, n_bars=1, sampling=SamplingParams(phrase_continues=True))
    gap.feed_prompt(TOKENIZER.infill_prompt(controls, [before], [after]))
    for token in (VOCAB.bar, VOCAB.pos(0), VOCAB.pitch(67), VOCAB.dur(16)):
        gap.advance(token)
    assert not gap.ends_as_bar


def test_end_on_tonic_is_dropped_when_the_range_holds_no_tonic() -> None:
    grammar = MelodyGrammar(
        VOCAB, n_bars=1, sampling=SamplingParams(pitch_range=(62, 70), end_on_tonic=True)
    )
    grammar.feed_prompt(_prefix())  # C major: no C between D4 and Bb4
    _, melody = TOKENIZER.decode(_prefix() + _random_walk(grammar, 0))
    assert len(melody.bars) == 1


def test_batched_sampling_gives_each_row_what_it_would_get_alone() -> None:
    logits = torch.randn(5, len(VOCAB), generator=torch.Generator().manual_seed(3))
    allowed = torch.rand(5, len(VOCAB), generator=torch.Generator().manual_seed(4)) > 0.5
    params = [
        SamplingParams(),
        SamplingParams(temperature=0.0),
        SamplingParams(top_k=3),
        SamplingParams(top_p=0.3),
        SamplingParams(temperature=1.7, top_k=20, top_p=0.9),
    ]
    alone = [
        [sample_token(logits[i], allowed[i], params[i], UniformDraws(i)) for _ in range(1)]
        for i in range(5)
    ]
    together = sample_tokens(logits, allowed, params, [UniformDraws(i) for i in range(5)])
    assert together == [row[0] for row in alone]
    assert all(bool(allowed[i, token]) for i, token in enumerate(together))
    assert together[1] == int(logits[1].masked_fill(~allowed[1], float("-inf")).argmax())


def test_top_k_one_always_picks_the_best_allowed_token() -> None:
    logits = torch.randn(len(VOCAB), generator=torch.Generator().manual_seed(5))
    allowed = torch.zeros(len(VOCAB), dtype=torch.bool)
    allowed[10:40] = True
    best = int(logits.masked_fill(~allowed, float("-inf")).argmax())
    generator = UniformDraws(9)
    picks = {sample_token(logits, allowed, SamplingParams(top_k=1), generator) for _ in range(20)}
    assert picks == {best}


def _bias_by_step(key: Key, meter: Meter, emphasis: float) -> dict[int, float]:
    """The grammar's bias for the first note of a bar, per scale step above the tonic."""
    grammar = MelodyGrammar(
        VOCAB, n_bars=1, sampling=SamplingParams(key_constraint=True, tonal_emphasis=emphasis)
    )
    grammar.feed_prompt(_prefix(key, meter))
    grammar.advance(VOCAB.bar)
    grammar.advance(VOCAB.pos(0))
    bias = grammar.logit_bias()
    assert bias is not None
    by_step: dict[int, set[float]] = {}
    for pitch in range(36, 97):
        by_step.setdefault((pitch - key.tonic) % 12, set()).add(float(bias[VOCAB.pitch(pitch)]))
    assert all(len(values) == 1 for values in by_step.values())  # every octave alike
    return {step: values.pop() for step, values in by_step.items()}


def test_tonal_emphasis_favours_the_tonic_triad_in_major() -> None:
    bias = _bias_by_step(Key(7), Meter(6, 8), 1.5)
    assert {step for step, value in bias.items() if value} == {0, 4, 7}
    assert bias[0] == bias[4] == bias[7] == pytest.approx(1.5)


def test_tonal_emphasis_in_minor_weighs_the_fifth_over_the_third() -> None:
    # A minor: A and C alone also spell F major (its 3rd and 5th); E and B tell them apart
    bias = _bias_by_step(Key(9, Mode.MINOR), Meter(3, 4), 2.0)
    assert bias[7] > bias[0] > bias[3] > bias[2] > 0  # E > A > C > B
    assert bias[8] < 0  # F, the tonic of F major, is held back on the beats
    assert bias[11] == bias[9] == 0  # the raised 7th and 6th get nothing
    assert bias == pytest.approx(
        {step: 2.0 * TONAL_EMPHASIS_WEIGHTS[Mode.MINOR].get(step, 0.0) for step in range(12)}
    )


def test_tonal_emphasis_applies_only_to_notes_on_a_beat() -> None:
    grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=SamplingParams(tonal_emphasis=1.5))
    grammar.feed_prompt(_prefix(Key(9, Mode.MINOR), Meter(3, 4)))
    grammar.advance(VOCAB.bar)
    assert grammar.logit_bias() is None  # a position comes next, not a pitch
    grammar.advance(VOCAB.pos(2))  # an eighth note after the downbeat
    assert grammar.logit_bias() is None
    assert MelodyGrammar(VOCAB, n_bars=1).logit_bias() is None


@pytest.mark.parametrize("mode", list(Mode))
def test_tonal_emphasis_only_touches_steps_of_the_key_constrained_scale(mode: Mode) -> None:
    scale = {Mode.MAJOR: {0, 2, 4, 5, 7, 9, 11}, Mode.MINOR: {0, 2, 3, 5, 7, 8, 10, 9, 11}}
    assert set(TONAL_EMPHASIS_WEIGHTS[mode]) <= scale[mode]
    assert all(-1.0 <= w <= 1.5 for w in TONAL_EMPHASIS_WEIGHTS[mode].values())


def _phrase_end_bar(key: Key, meter: Meter, seed: int, **sampling: int) -> Bar:
    """The last bar of a random walk through two bars that end a phrase the tune goes on
    after, on a half cadence, under ``sampling`` (cadence beat, upbeat, hold)."""
    params = SamplingParams(cadence_steps=HALF_CADENCE_STEPS, phrase_continues=True, **sampling)
    grammar = MelodyGrammar(VOCAB, n_bars=2, sampling=params)
    grammar.feed_prompt(_prefix(key, meter))
    _, melody = TOKENIZER.decode(_prefix(key, meter) + _random_walk(grammar, seed))
    return melody.bars[-1]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("meter", "cadence_beat"),
    [(Meter(4, 4), 0), (Meter(3, 4), 0), (Meter(6, 8), 1), (Meter(2, 4), 1), (Meter(4, 4), 3)],
)
def test_a_phrase_leads_on_after_its_held_cadence_tone_as_asked(
    seed: int, meter: Meter, cadence_beat: int
) -> None:
    """``upbeat=1``: a note follows the cadence tone in its bar, also after a cadence on the
    last beat (an eighth is left for it); ``upbeat=0``: none does (the tone holds or the bar
    rests)."""
    key = Key(7)
    start = cadence_beat * meter.beat_ticks
    for upbeat in (1, 0):
        bar = _phrase_end_bar(key, meter, seed, cadence_beat=cadence_beat, upbeat=upbeat)
        cadence = [n for n in bar.notes if n.onset <= start < n.end] or [
            n for n in bar.notes if start <= n.onset < start + meter.beat_ticks
        ]
        assert cadence and (cadence[0].pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
        after = [n for n in bar.notes if n.onset > cadence[0].onset]
        assert bool(after) == bool(upbeat), f"upbeat={upbeat}: {bar.notes}"


def test_upbeat_is_checked_and_asked_only_where_the_tune_goes_on() -> None:
    grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=SamplingParams(upbeat=1))
    assert grammar.upbeat == -1
    with pytest.raises(SamplingError):
        SamplingParams(upbeat=2)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("meter", "cadence_beat", "hold", "shortest", "longest"),
    [
        (Meter(2, 2), 0, HOLD_SHORT, 1, 3),  # a reel's running eighth (or a sixteenth)
        (Meter(2, 2), 0, HOLD_PART, 4, 7),
        (Meter(6, 8), 0, HOLD_SHORT, 1, 2),
        (Meter(6, 8), 1, HOLD_PART, 3, 5),
        (Meter(2, 4), 0, HOLD_PART, 2, 3),
        (Meter(3, 4), 0, HOLD_BEAT, 4, 7),
        (Meter(3, 4), 0, HOLD_LONG, 8, 10),  # a half note, then an eighth's upbeat at least
        (Meter(4, 4), 1, HOLD_LONG, 8, 10),
    ],
)
def test_a_shorter_cadence_tone_starts_on_its_beat_and_lasts_as_asked(
    seed: int, meter: Meter, cadence_beat: int, hold: int, shortest: int, longest: int
) -> None:
    """``cadence_hold``: the note on the cadence beat is a cadence tone that starts on it and
    lasts ``shortest``..``longest`` grid steps (under half the beat, half of it or more, the
    beat or more, two beats or more, leaving room for the upbeat); the bar leads on after it,
    no note on a later beat longer than it."""
    key = Key(2)
    bar = _phrase_end_bar(key, meter, seed, cadence_beat=cadence_beat, upbeat=1, cadence_hold=hold)
    start = cadence_beat * meter.beat_ticks
    (cadence,) = [n for n in bar.notes if n.onset <= start < n.end]
    assert cadence.onset == start, bar.notes
    assert (cadence.pitch - key.tonic) % 12 in HALF_CADENCE_STEPS
    assert shortest * GRID_TICKS <= cadence.duration <= longest * GRID_TICKS, bar.notes
    after = [n for n in bar.notes if n.onset > cadence.onset]
    assert after, bar.notes
    on_beats = [n for n in after if n.onset % meter.beat_ticks == 0]
    assert all(n.duration <= cadence.duration for n in on_beats), bar.notes


def test_cadence_hold_is_checked_and_asked_only_where_the_tune_goes_on() -> None:
    grammar = MelodyGrammar(VOCAB, n_bars=1, sampling=SamplingParams(cadence_hold=HOLD_SHORT))
    assert grammar.cadence_hold == -1  # the piece's last tone holds to the bar line
    with pytest.raises(SamplingError):
        SamplingParams(cadence_hold=4)


@pytest.mark.parametrize("seed", range(8))
def test_a_cadence_tone_that_does_not_lead_on_holds_as_asked(seed: int) -> None:
    """``cadence_hold`` without an upbeat: a waltz phrase's cadence tone held two beats or
    more, and nothing after it in the bar (the model cut it to a quarter and rested)."""
    meter = Meter(3, 4)
    bar = _phrase_end_bar(C_MAJOR, meter, seed, cadence_beat=0, upbeat=0, cadence_hold=HOLD_LONG)
    (cadence, *after) = bar.notes
    assert cadence.onset == 0 and cadence.duration >= 2 * meter.beat_ticks
    assert not after


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("breath", [1, 0])
def test_a_phrase_breathes_before_its_upbeat_as_asked(seed: int, breath: int) -> None:
    """``breath``: after a drawn cadence hold, a rest before the upbeat (1) or the upbeat at
    once (0)."""
    meter = Meter(4, 4)
    bar = _phrase_end_bar(
        C_MAJOR, meter, seed, cadence_beat=0, upbeat=1, cadence_hold=HOLD_LONG, breath=breath
    )
    cadence, upbeat, *_ = bar.notes
    assert cadence.duration >= 2 * meter.beat_ticks
    assert (upbeat.onset > cadence.end) == bool(breath), bar.notes


def test_breath_is_checked() -> None:
    with pytest.raises(SamplingError):
        SamplingParams(breath=2)
