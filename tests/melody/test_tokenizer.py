"""The melody tokenizer: exact round trips, the streaming bar assembler, grammar-valid decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.melody.controls import (
    TEMPO_BUCKET_CENTERS_BPM,
    Controls,
    EnergyThresholds,
    bucket_tempo,
    tempo_bucket,
)
from cantus.melody.decoding import MelodyGrammar
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import (
    FIM_MIDDLE,
    FIM_SUFFIX,
    GRID_TICKS,
    PITCH_RANGE,
    MelodyTokenizer,
    Vocabulary,
    snap_to_grid,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, MusicError, Note
from cantus.music.styles import SUPPORTED_METERS, Energy, Style

TOKENIZER = MelodyTokenizer()


@st.composite
def bars_in(draw, meter: Meter) -> Bar:
    steps = meter.bar_ticks // GRID_TICKS
    notes = []
    position = 0
    while position < steps and draw(st.booleans()):
        onset = draw(st.integers(position, steps - 1))
        duration = draw(st.integers(1, steps - onset))
        pitch = draw(st.integers(*PITCH_RANGE))
        notes.append(Note(onset * GRID_TICKS, pitch, duration * GRID_TICKS))
        position = onset + duration
    return Bar(meter, tuple(notes))


@st.composite
def melodies_with_controls(draw) -> tuple[Melody, Controls]:
    meter = draw(st.sampled_from(SUPPORTED_METERS))
    key = Key(draw(st.integers(0, 11)), draw(st.sampled_from(list(Mode))))
    tempo = draw(st.sampled_from(TEMPO_BUCKET_CENTERS_BPM))
    bars = tuple(draw(st.lists(bars_in(meter), max_size=6)))
    controls = Controls(
        key, meter, tempo, draw(st.sampled_from(list(Style))), draw(st.sampled_from(list(Energy)))
    )
    return Melody(key, tempo, bars), controls


@given(melodies_with_controls())
@settings(max_examples=150, deadline=None)
def test_on_grid_melodies_round_trip_exactly(case: tuple[Melody, Controls]) -> None:
    melody, controls = case
    tokens = TOKENIZER.encode(melody, controls)
    assert tokens[-1] == TOKENIZER.vocab.eos
    decoded_controls, decoded = TOKENIZER.decode(tokens)
    assert decoded == melody
    assert decoded_controls == controls
    # a prompt (no EOS) decodes to the same melody
    assert TOKENIZER.decode(TOKENIZER.encode(melody, controls, end=False))[1] == melody


@given(melodies_with_controls())
@settings(max_examples=60, deadline=None)
def test_bar_assembler_returns_each_bar_when_the_next_starts(case) -> None:
    melody, controls = case
    tokens = TOKENIZER.encode(melody, controls)
    assembler = TOKENIZER.bar_assembler()  # learns the meter from the METER token
    bars = []
    for index, token in enumerate(tokens):
        bar = assembler.push(token)
        if bar is not None:
            bars.append(bar)
            assert tokens[index] in (TOKENIZER.vocab.bar, TOKENIZER.vocab.eos)
    assert tuple(bars) == melody.bars
    assert assembler.finished and assembler.finish() == []


def test_finish_returns_the_open_bar_and_drops_a_half_note() -> None:
    v = TOKENIZER.vocab
    assembler = TOKENIZER.bar_assembler(Meter(3, 4))
    for token in (v.bar, v.pos(0), v.pitch(60), v.dur(4), v.pos(4), v.pitch(62)):
        assert assembler.push(token) is None
    (bar,) = assembler.finish()
    assert bar == Bar(Meter(3, 4), (Note(0, 60, 480),))


@st.composite
def grammar_sequences(draw) -> list[int]:
    n_bars = draw(st.integers(0, 5))
    key_constraint = draw(st.booleans())
    max_len = draw(st.sampled_from([40, 80, 1024]))
    grammar = MelodyGrammar(
        TOKENIZER.vocab,
        n_bars=n_bars,
        sampling=SamplingParams(
            key_constraint=key_constraint, max_notes_per_bar=draw(st.integers(1, 16))
        ),
        max_len=max_len,
    )
    tokens: list[int] = []
    while not grammar.done:
        token = draw(st.sampled_from(grammar.allowed_ids()))
        grammar.advance(token)
        tokens.append(token)
        if len(tokens) == 7 and not grammar.generating:
            grammar.feed_prompt([])  # switch to generation after the control prefix
    assert len(tokens) <= max_len
    return tokens


@given(grammar_sequences())
@settings(max_examples=150, deadline=None)
def test_grammar_accepted_sequences_decode_to_valid_melodies(tokens: list[int]) -> None:
    controls, melody = TOKENIZER.decode(tokens)
    assert all(bar.meter == controls.meter for bar in melody.bars)
    for bar in melody.bars:
        assert len(bar.notes) <= 16
        assert all(48 <= note.pitch <= 88 for note in bar.notes)
    # and they encode back to the same tokens
    assert TOKENIZER.encode(melody, controls) == tokens


def test_vocabulary_json_round_trip() -> None:
    vocab = Vocabulary()
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    # ... + NOKEY NOMODE + FIM_SUF FIM_MID
    assert len(vocab) == 4 + 12 + 2 + 12 + 8 + 3 + 3 + 48 + 61 + 48 + 2 + 2


def test_an_infill_prompt_puts_the_bars_after_the_gap_first_and_the_bars_before_it_last() -> None:
    meter = Meter(3, 4)
    controls = Controls(Key(7), meter, 100.0, Style.FOLK, Energy.MID)
    before = [Bar(meter, (Note(0, 67, 1440),))]
    after = [Bar(meter, (Note(0, 71, 480),)), Bar(meter, ())]
    prompt = TOKENIZER.infill_prompt(controls, before, after)
    vocab = TOKENIZER.vocab
    middle = vocab.id(FIM_MIDDLE)
    middle_at = prompt.index(middle)
    assert prompt[:8] == [*TOKENIZER.controls_prefix(controls), vocab.id(FIM_SUFFIX)]
    assert prompt[8:middle_at] == TOKENIZER.prompt(controls, after)[7:]
    assert prompt[middle_at + 1 :] == TOKENIZER.prompt(controls, before)[7:]
    assert TOKENIZER.has_infill
    older = MelodyTokenizer(Vocabulary(vocab.tokens[:-2]))  # a checkpoint before FIM
    assert not older.has_infill
    with pytest.raises(MusicError, match="fill-in-the-middle"):
        older.infill_prompt(controls, before, after)


def test_tempo_buckets_cover_the_request_range() -> None:
    assert tempo_bucket(40) == 0 and tempo_bucket(240) == 7
    for bucket in range(8):
        assert tempo_bucket(bucket_tempo(bucket)) == bucket


@pytest.mark.parametrize(
    "tokens_text",
    [
        "KEY_0",  # no BOS
        "BOS KEY_0 MODE_major METER_4/4 TEMPO_3 STYLE_folk ENERGY_mid POS_0",  # note before BAR
        "BOS KEY_0 MODE_major METER_4/4 TEMPO_3 STYLE_folk ENERGY_mid BAR POS_0 PITCH_60 DUR_17",
        "BOS KEY_0 MODE_major METER_4/4 TEMPO_3 STYLE_folk ENERGY_mid BAR POS_4 PITCH_60 DUR_4 "
        "POS_2 PITCH_60 DUR_1",  # overlap
        "BOS KEY_0 MODE_major METER_4/4 TEMPO_3 STYLE_folk ENERGY_mid BAR POS_0 PITCH_60 EOS",
        "BOS KEY_0 MODE_major METER_4/4 TEMPO_3 STYLE_folk ENERGY_mid EOS BAR",
    ],
)
def test_invalid_sequences_raise_music_error(tokens_text: str) -> None:
    tokens = [TOKENIZER.vocab.id(name) for name in tokens_text.split()]
    with pytest.raises(MusicError):
        TOKENIZER.decode(tokens)


def test_encode_rejects_off_grid_and_snap_fixes_it() -> None:
    meter = Meter(4, 4)
    triplets = Bar(meter, tuple(Note(i * 160, 60 + i, 160) for i in range(3)))
    melody = Melody(Key(0), 100.0, (triplets,))
    controls = Controls(Key(0), meter, 100.0, Style.FOLK, Energy.MID)
    with pytest.raises(MusicError, match="grid"):
        TOKENIZER.encode(melody, controls)
    snapped = snap_to_grid(melody)
    assert TOKENIZER.decode(TOKENIZER.encode(snapped, controls))[1].bars == snapped.bars


def test_energy_thresholds_split_by_density() -> None:
    meter = Meter(4, 4)

    def melody(notes_per_bar: int) -> Melody:
        step = 16 // notes_per_bar
        bar = Bar(
            meter,
            tuple(Note(i * step * GRID_TICKS, 60, step * GRID_TICKS) for i in range(notes_per_bar)),
        )
        return Melody(Key(0), 100.0, (bar,))

    melodies = [melody(n) for n in (1, 2, 4, 8, 16, 16)]
    thresholds = EnergyThresholds.from_melodies(melodies)
    assert thresholds.energy(melody(1)) is Energy.LOW
    assert thresholds.energy(melody(16)) is Energy.HIGH
    assert EnergyThresholds.from_dict(thresholds.to_dict()) == thresholds
