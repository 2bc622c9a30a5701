"""Compose requests that open with a pickup bar: asked for, refused, or drawn as the corpus's
tunes open."""

from __future__ import annotations

import pytest

from cantus.events.conversions import spec_form
from cantus.melody.openings import pickup_share
from cantus.music.form import Treatment
from cantus.music.midi_io import melody_to_midi_bytes
from cantus.music.notes import Bar, Key, Melody, Meter, Note
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api


def midi_of(bar_count: int) -> bytes:
    bar = Bar(Meter(4, 4), (Note(0, 60, 960), Note(960, 64, 960)))
    return melody_to_midi_bytes(Melody(Key(0), 100.0, (bar,) * bar_count))


def validate(pickups: bool = True, **fields):
    return validate_compose_request(api.ComposeRequest(**fields), max_bars=64, pickups=pickups)


def test_a_pickup_asked_for_is_a_bar_before_the_plan():
    spec = validate(bars=16, form="AABA", pickup=True).spec
    plan = spec_form(spec)
    assert spec.bars == plan.total_bars == 17
    assert plan.sections[0].treatment is Treatment.PICKUP
    assert [s.label for s in plan.sections] == ["pickup", "A", "A'", "B", "A''"]
    assert validate(bars=16, pickup=False).spec.bars == 16


def test_an_unset_pickup_is_drawn_per_seed_as_the_corpus_opens():
    drawn = [validate(seed=seed, style="folk", meter="2/4").spec for seed in range(300)]
    share = sum(spec.bars == 17 for spec in drawn) / len(drawn)
    assert share == pytest.approx(pickup_share("folk", Meter(2, 4)), abs=0.08)
    again = [validate(seed=seed, style="folk", meter="2/4").spec.bars for seed in range(300)]
    assert again == [spec.bars for spec in drawn]
    # the server's melody_pickups off: every piece on the downbeat unless asked
    assert {validate(False, seed=seed).spec.bars for seed in range(30)} == {16}
    assert validate(False, pickup=True).spec.bars == 17


@pytest.mark.parametrize("field", ["continue_midi", "harmonize_midi"])
def test_a_given_melody_keeps_its_own_opening(field):
    with pytest.raises(RequestError) as raised:
        validate(**{field: midi_of(4)}, bars=8, pickup=True)
    assert raised.value.field == "pickup"
    spec = validate(**{field: midi_of(4)}, **({"bars": 8} if field == "continue_midi" else {}))
    assert all(s.treatment is not Treatment.PICKUP for s in spec_form(spec.spec).sections)
