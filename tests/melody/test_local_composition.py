"""A form round trip with the shipped checkpoint, in process: a plan in, a piece out that
follows it (a quality gate of ``make test``: the served decoding settings, the real model)."""

from __future__ import annotations

import asyncio

import pytest
import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.composition import FormComposer, collect
from cantus.melody.controls import Controls
from cantus.melody.decoding import HALF_CADENCE_STEPS
from cantus.melody.engine import DecodeEngine
from cantus.melody.local_composition import default_sampling, engine_phrase_decoder
from cantus.music.form import Cadence, Treatment, plan_form, plan_pattern
from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Energy, Style
from cantus.settings import load_settings


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    return load_melody_checkpoint(load_settings().melody_checkpoint)


@pytest.mark.parametrize(
    ("form", "key", "meter"),
    [
        ("AABA", Key(7, Mode.MAJOR), "6/8"),
        ("verse-chorus", Key(2, Mode.MINOR), "4/4"),
        ("A A= B B~", Key(9, Mode.MINOR), "3/4"),  # a phrase pattern drawn from the corpus's
    ],
)
def test_a_composed_piece_follows_its_plan(shipped, form: str, key: Key, meter: str) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = shipped
    if " " in form:
        plan = plan_pattern(form, key=key, energy=Energy.MID)
    else:
        plan = plan_form(form, bars=32, key=key, energy=Energy.MID)
    controls = Controls(key, Meter.parse(meter), 110.0, Style.FOLK, Energy.MID)

    async def compose():  # type: ignore[no-untyped-def]
        with DecodeEngine(model, tokenizer, max_batch=4) as engine:
            decode = engine_phrase_decoder(engine, tokenizer, controls.meter, default_sampling())
            return await collect(composer, [], decode)

    composer = FormComposer(plan, controls, seed=11)
    bars = asyncio.run(compose())
    assert len(bars) == plan.total_bars
    assert all(sum(n.duration for n in b.notes) <= b.meter.bar_ticks for b in bars)
    for section in plan.sections:
        last_bar = bars[section.end_bar - 1]
        assert last_bar.notes, f"section {section.label} ends on an empty bar"
        if section.cadence is Cadence.HALF:  # the dominant chord; in minor also v's third
            steps = HALF_CADENCE_STEPS + ((10,) if section.key.mode is Mode.MINOR else ())
        elif section.end_bar == plan.total_bars:  # the piece closes on the tonic itself
            steps = (0,)
        else:  # a section inside it on the tonic or its third
            steps = (0, 3) if section.key.mode is Mode.MINOR else (0, 4)
        # the cadence tone sounds through the cadence beat the composer drew for the phrase
        # (the rest of the bar is free where the tune goes on: a breath, an upbeat)
        beat = last_bar.meter.beat_ticks
        drawn = composer.cadence_beat(section.end_bar - 1)
        assert drawn >= 0, "the corpus has this meter's phrase endings"
        start = min(drawn, last_bar.meter.bar_ticks // beat - 1) * beat
        sounding = [n for n in last_bar.notes if n.onset < start + beat and n.end > start]
        assert sounding, f"section {section.label}: nothing sounds on its cadence beat"
        # the first of them is the cadence tone; an upbeat into the next phrase may follow it
        # within a cadence on the last beat (a jig's quarter and eighth)
        for note in sounding[:1]:
            step = (note.pitch - section.key.tonic) % 12
            assert step in steps, f"section {section.label} does not cadence on {steps}"
        if section.treatment is Treatment.REPEAT:
            source = plan.sections[section.source]  # type: ignore[index]
            assert (
                bars[section.first_bar : section.end_bar] == bars[source.first_bar : source.end_bar]
            )
    last = bars[-1].notes[-1]
    assert last.pitch % 12 == key.tonic
