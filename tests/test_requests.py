"""Compose request validation: defaults, and an error naming the field for each bad value."""

import pytest

from cantus.events.conversions import spec_form
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb


def validate(**fields):
    return validate_compose_request(api.ComposeRequest(**fields), max_bars=64)


def test_empty_request_gets_sensible_defaults():
    spec = validate().spec
    assert (spec.key_tonic, spec.mode, spec.tempo_bpm) == (0, pb.MODE_MAJOR, 100.0)
    # 16 bars, and a pickup bar before them as often as folk tunes in 4/4 open with one
    assert (spec.meter_numerator, spec.meter_denominator) == (4, 4)
    assert spec.bars == 16 + spec_form(spec).pickup_bars
    assert (spec.style, spec.mood, spec.energy) == ("folk", "calm", "low")
    assert spec.melody_source == pb.MELODY_SOURCE_COMPOSE


@pytest.mark.parametrize(("name", "tonic"), [("C", 0), ("F#", 6), ("Bb", 10), ("eb", 3)])
def test_key_spellings(name, tonic):
    assert validate(key=name).spec.key_tonic == tonic


def test_seed_is_kept_and_mood_sets_energy():
    spec = validate(seed=7, mood="energetic").spec
    assert spec.seed == 7
    assert spec.energy == "high"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"key": "H"}, "key"),
        ({"key": "C##"}, "key"),
        ({"mode": "lydian"}, "mode"),
        ({"tempo_bpm": 10}, "tempo_bpm"),
        ({"tempo_bpm": 500}, "tempo_bpm"),
        ({"bars": 0}, "bars"),
        ({"bars": 65}, "bars"),
        ({"meter": "4-4"}, "meter"),
        ({"meter": "11/8"}, "meter"),
        ({"style": "polka"}, "style"),
        ({"mood": "furious"}, "mood"),
        ({"lyrics_language": "fr"}, "lyrics_language"),
        ({"lyrics_theme": "x" * 600}, "lyrics_theme"),
        ({"continue_midi": b"not a midi file"}, "continue_midi"),
        ({"continue_midi": b"x", "harmonize_midi": b"y"}, "harmonize_midi"),
    ],
)
def test_invalid_fields_are_named(fields, field):
    with pytest.raises(RequestError) as raised:
        validate(**fields)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_loudness_preset_is_checked_and_carried_into_the_spec():
    assert validate().spec.loudness_preset == ""  # the render service's default
    assert validate(loudness_preset="broadcast").spec.loudness_preset == "broadcast"
    with pytest.raises(RequestError) as error:
        validate(loudness_preset="loud")
    assert error.value.field == "loudness_preset" and "streaming" in str(error.value)


def test_an_unknown_palette_is_rejected_naming_the_field():
    with pytest.raises(RequestError) as raised:
        validate_compose_request(api.ComposeRequest(palette="kazoo"), max_bars=64)
    assert raised.value.field == "palette"
    assert "kazoo" in raised.value.problem and "piano-strings" in raised.value.problem


def test_the_palette_defaults_from_style_and_mood_and_can_be_chosen():
    calm = validate_compose_request(api.ComposeRequest(mood="calm"), max_bars=64).spec
    happy = validate_compose_request(api.ComposeRequest(mood="happy"), max_bars=64).spec
    chosen = validate_compose_request(
        api.ComposeRequest(style="celtic", mood="energetic", palette="lullaby"), max_bars=64
    ).spec
    assert (calm.palette, happy.palette, chosen.palette) == ("piano-strings", "folk", "lullaby")


def test_a_rejection_of_a_huge_value_stays_small_enough_for_a_grpc_status():
    """A 1 MB palette was echoed whole: the status did not fit gRPC's 16 KiB of metadata and
    the client got a bare RESOURCE_EXHAUSTED instead of the field (#22, hostile input)."""
    from cantus.requests import MAX_PROBLEM_CHARS, RequestError, validate_compose_request
    from cantus.v1 import composer_pb2 as api

    with pytest.raises(RequestError) as refused:
        validate_compose_request(api.ComposeRequest(palette="x" * 1_000_000), max_bars=64)
    assert str(refused.value).startswith("palette: ")
    assert len(refused.value.problem) <= MAX_PROBLEM_CHARS + 40


def test_outputs_are_checked_and_carried_into_the_spec():
    assert list(validate().spec.outputs) == []  # every file
    asked = validate(outputs=["opus", "leadsheet", "opus"]).spec
    assert list(asked.outputs) == ["opus", "leadsheet"]
    with pytest.raises(RequestError) as raised:
        validate(outputs=["opus", "score.pdf"])
    assert raised.value.field == "outputs" and "score.pdf" in raised.value.problem
    assert "pictures" in raised.value.problem  # the known outputs are listed
    with pytest.raises(RequestError, match="at most"):
        validate(outputs=["opus"] * 100)


def test_segment_audio_is_opus_unless_flac_is_asked():
    assert validate().spec.segment_audio == "opus"
    assert validate(segment_audio="flac").spec.segment_audio == "flac"
    with pytest.raises(RequestError) as raised:
        validate(segment_audio="wav")
    assert raised.value.field == "segment_audio" and "flac" in raised.value.problem


def test_priority_is_checked_and_urgent_is_kept_for_stations():
    assert validate().spec.priority == pb.PRIORITY_NORMAL
    assert validate(priority=pb.PRIORITY_BACKGROUND).spec.priority == pb.PRIORITY_BACKGROUND
    with pytest.raises(RequestError) as raised:
        validate(priority=pb.PRIORITY_URGENT)
    assert raised.value.field == "priority" and "stations" in raised.value.problem
    with pytest.raises(RequestError) as raised:
        validate(priority=7)
    assert raised.value.field == "priority" and "background" in raised.value.problem
    urgent = api.ComposeRequest(priority=pb.PRIORITY_URGENT, seed=1)
    spec = validate_compose_request(urgent, max_bars=64, urgent_allowed=True).spec
    assert spec.priority == pb.PRIORITY_URGENT
