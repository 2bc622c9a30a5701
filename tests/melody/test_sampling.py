"""One SamplingParams end to end: its checks name the field, and it crosses the wire to the
served model unchanged (client tensors -> the serving parser)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cantus.melody.client import sampling_tensors
from cantus.melody.composition import PhraseRequest
from cantus.melody.controls import Controls
from cantus.melody.sampling import (
    MAX_GUIDANCE,
    MAX_TONAL_EMPHASIS,
    WIRE_TENSORS,
    SamplingError,
    SamplingParams,
    served_sampling,
)
from cantus.melody.serving import EXPECTED_INPUTS, RequestInputError, parse_sampling
from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Energy, Style
from cantus.settings import Settings

_NUMPY = {"FP32": np.float32, "INT32": np.int32, "BOOL": np.bool_}


def _as_arrays(sampling: SamplingParams) -> dict[str, np.ndarray]:
    """The tensors the client sends, as the served model receives them."""
    return {
        tensor.name(): np.frombuffer(tensor._get_content(), dtype=_NUMPY[tensor.datatype()])
        for tensor in sampling_tensors(sampling)
    }


wire_values = st.builds(
    SamplingParams,
    temperature=st.floats(0.0, 5.0, width=32),
    top_k=st.integers(0, 200),
    top_p=st.floats(0.0, 1.0, width=32, exclude_min=True),
    key_constraint=st.booleans(),
    end_on_tonic=st.booleans(),
    tonal_emphasis=st.floats(0.0, MAX_TONAL_EMPHASIS, width=32),
    cadence_steps=st.lists(st.integers(0, 11), max_size=4).map(tuple),
    guidance=st.floats(1.0, MAX_GUIDANCE, width=32),
    first_onset=st.integers(-1, 47),
    pitch_range=st.tuples(st.integers(0, 60), st.integers(60, 127)),
)


@given(wire_values)
def test_sampling_crosses_the_wire_unchanged(sampling: SamplingParams) -> None:
    assert parse_sampling(_as_arrays(sampling)) == sampling


def test_every_wire_field_is_an_input_of_the_served_model() -> None:
    assert {t.name for t in WIRE_TENSORS.values()} <= set(EXPECTED_INPUTS)
    not_on_the_wire = {f.name for f in dataclasses.fields(SamplingParams)} - set(WIRE_TENSORS)
    assert not_on_the_wire == {"max_notes_per_bar"}


def test_tensors_left_out_take_the_defaults() -> None:
    assert parse_sampling({}) == SamplingParams()
    assert SamplingParams().top_p == 1.0  # one default, wherever a request starts


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"tonal_emphasis": MAX_TONAL_EMPHASIS + 1}, "tonal_emphasis"),
        ({"cadence_steps": (7, 12)}, "cadence_steps"),
        ({"guidance": 0.5}, "guidance"),
        ({"first_onset": -2}, "first_onset"),
        ({"first_onset": 48}, "first_onset"),
        ({"pitch_range": (80, 60)}, "pitch_range"),
        ({"pitch_range": (60, 70, 80)}, "pitch_range"),
        ({"max_notes_per_bar": 0}, "max_notes_per_bar"),
    ],
)
def test_a_bad_setting_is_named(settings: dict, field: str) -> None:
    with pytest.raises(SamplingError) as caught:
        SamplingParams(**settings)
    assert caught.value.field == field and str(caught.value).startswith(field)


def test_the_served_model_names_the_tensor() -> None:
    with pytest.raises(RequestInputError, match=r"input GUIDANCE 0\.5 is outside"):
        parse_sampling({"GUIDANCE": np.array([0.5], np.float32)})
    with pytest.raises(RequestInputError, match=r"input PITCH_RANGE \[60\] is not \[low, high\]"):
        parse_sampling({"PITCH_RANGE": np.array([60], np.int32)})


def test_the_service_asks_its_settings_sampling_and_the_phrase_cadence() -> None:
    settings = Settings.model_construct()
    phrase = PhraseRequest(
        first_bar=0,
        n_bars=4,
        controls=Controls(Key(0, Mode.MAJOR), Meter(4, 4), 100.0, Style.FOLK, Energy.MID),
        context=(),
        cadence_steps=(7, 2, 11),
        seed=1,
        first_onset=0,
    )
    sampling = phrase.sampling(served_sampling(settings))
    assert sampling.cadence_steps == (7, 2, 11)
    assert sampling.first_onset == 0
    # no scale mask: it removed every chromatic note (#14)
    assert sampling.top_p == settings.melody_top_p == 1.0
    assert sampling.key_constraint is settings.melody_key_constraint is False
    assert sampling.guidance == settings.melody_guidance
    assert sampling.tonal_emphasis == settings.melody_tonal_emphasis
