"""Compose request validation of the form and the length: ``form`` names, ``duration_seconds``
to bars, bars and duration exclusive, and a plan in every spec that covers its bars."""

import pytest

from cantus.events.conversions import spec_form
from cantus.music.form import FORMS, Treatment, form_names
from cantus.music.midi_io import melody_to_midi_bytes
from cantus.music.notes import Bar, Key, Melody, Meter, Note
from cantus.requests import (
    DURATION_RANGE_S,
    GIVEN_SECTION_LABEL,
    RequestError,
    validate_compose_request,
)
from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb


def validate(max_bars: int = 256, corpus_forms: bool = False, **fields):
    # the form's own plan: pieces opening with a pickup bar are tests/test_requests_pickup.py's
    return validate_compose_request(
        api.ComposeRequest(**fields), max_bars=max_bars, pickups=False, corpus_forms=corpus_forms
    )


def rejected(max_bars: int = 256, **fields) -> RequestError:
    with pytest.raises(RequestError) as raised:
        validate(max_bars=max_bars, **fields)
    assert str(raised.value).startswith(f"{raised.value.field}: ")
    return raised.value


def midi_of(bar_count: int) -> bytes:
    meter = Meter(4, 4)
    bar = Bar(meter, (Note(0, 60, 960), Note(960, 64, 960)))
    return melody_to_midi_bytes(Melody(Key(0), 100.0, (bar,) * bar_count))


def assert_covers(spec: pb.PieceSpec) -> None:
    plan = spec_form(spec)
    assert plan is not None
    assert plan.total_bars == spec.bars
    assert sum(s.bar_count for s in spec.form.sections) == spec.bars


def test_auto_without_corpus_forms_is_a_whole_short_piece_in_aaba():
    spec = validate().spec
    assert spec.bars == 16 and spec.form.name == "AABA"
    assert [(s.label, s.first_bar, s.bar_count) for s in spec.form.sections] == [
        ("A", 0, 4),
        ("A'", 4, 4),
        ("B", 8, 4),
        ("A''", 12, 4),
    ]
    assert [s.treatment for s in spec.form.sections] == ["new", "vary", "new", "vary"]
    assert spec.form.sections[1].source_section == 0
    # a four-bar B stays in the home key (form.MIN_KEY_AREA_BARS)
    assert spec.form.sections[2].key_area == "home" and spec.form.sections[2].key_tonic == 0
    assert spec.form.sections[-1].cadence == "authentic"
    assert_covers(spec)


def test_the_default_form_is_drawn_per_seed_from_the_corpus_phrase_patterns():
    specs = [
        validate(corpus_forms=True, seed=seed, style="celtic", meter="6/8").spec
        for seed in range(40)
    ]
    assert all(spec.bars == 16 for spec in specs)
    for spec in specs:
        assert_covers(spec)
        assert all(s.bar_count == 4 for s in spec.form.sections)  # one section per phrase
        assert spec.form.sections[-1].cadence == "authentic"
    names = {spec.form.name for spec in specs}
    assert len(names) >= 4 and "AA'BB'" in names
    again = [
        validate(corpus_forms=True, seed=seed, style="celtic", meter="6/8").spec
        for seed in range(40)
    ]
    assert [s.form for s in again] == [s.form for s in specs]
    # a form asked for, a length the corpus's patterns do not cover, or a continued melody
    assert validate(corpus_forms=True, form="AABA", seed=1).spec.form.name == "AABA"
    assert validate(corpus_forms=True, bars=32, seed=1).spec.form.name == "AABA"
    continued = validate(corpus_forms=True, continue_midi=midi_of(4), bars=16, seed=1).spec
    assert continued.form == validate(continue_midi=midi_of(4), bars=16, seed=1).spec.form


@pytest.mark.parametrize("name", [n for n in form_names()])
def test_every_named_form_is_accepted_and_covers_the_bars(name):
    spec = validate(form=name, bars=32).spec
    assert spec.form.name == (name if name != "auto" else "AABA")
    assert_covers(spec)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("aaba", "AABA"), ("verse_chorus", "verse-chorus"), ("Rondo", "rondo"), (" ABA ", "ABA")],
)
def test_form_names_are_normalised(given, canonical):
    assert validate(form=given, bars=32).spec.form.name == canonical


def test_an_unknown_form_names_the_field_and_the_accepted_forms():
    error = rejected(form="sonata")
    assert error.field == "form"
    assert "sonata" in str(error)
    for name in FORMS:
        assert name in str(error)


def test_a_form_too_long_for_the_bars_names_the_form_and_its_shortest_length():
    error = rejected(form="verse-chorus", bars=4)
    assert error.field == "form"
    assert "at least 6 bars" in str(error) and "bars" in str(error)


def test_the_auto_form_fits_any_length():
    for bars in (1, 2, 3, 7, 8, 12, 17, 65, 97, 160, 256):
        assert_covers(validate(bars=bars).spec)


@pytest.mark.parametrize(
    ("fields", "bars"),
    [
        ({"duration_seconds": 90}, 36),  # 2.4 s a bar at 100 BPM in 4/4: 37.5 -> 9 phrases
        ({"duration_seconds": 300}, 124),
        ({"duration_seconds": 300, "tempo_bpm": 192}, 240),
        ({"duration_seconds": 60, "tempo_bpm": 120, "meter": "6/8"}, 40),  # 1.5 s a bar
        ({"duration_seconds": 1}, 4),  # at least one phrase
    ],
)
def test_duration_sets_the_bars_in_whole_phrases(fields, bars):
    spec = validate(**fields).spec
    assert spec.bars == bars
    assert_covers(spec)


def test_five_minutes_fit_the_default_max_bars():
    # the default, not Settings(): the integration tests set CANTUS_MAX_BARS for their stack
    default_max_bars = Settings.model_fields["max_bars"].default
    assert default_max_bars >= 160
    spec = validate(max_bars=default_max_bars, duration_seconds=300, tempo_bpm=160).spec
    assert spec.bars >= 160
    assert_covers(spec)
    assert len(spec.form.sections) > 4


@pytest.mark.parametrize("seconds", [0, 0.5, 301, 3600, float("nan"), float("inf"), -5])
def test_a_duration_outside_the_range_is_rejected(seconds):
    error = rejected(duration_seconds=seconds)
    assert error.field == "duration_seconds"
    low, high = DURATION_RANGE_S
    assert f"{low:g}..{high:g}" in str(error)


def test_bars_and_duration_are_exclusive_and_the_error_names_both():
    error = rejected(duration_seconds=60, bars=16)
    assert error.field == "duration_seconds"
    assert "bars" in error.problem and "duration_seconds" in error.problem


def test_a_duration_longer_than_max_bars_names_the_duration():
    error = rejected(max_bars=64, duration_seconds=300)
    assert error.field == "duration_seconds"
    assert "124 bars" in str(error) and "64" in str(error)


def test_a_continued_melody_ending_on_a_section_boundary_keeps_the_whole_plan():
    spec = validate(continue_midi=midi_of(4), bars=16).spec
    assert spec.melody_source == pb.MELODY_SOURCE_CONTINUE
    assert [s.label for s in spec.form.sections] == ["A", "A'", "B", "A''"]
    # the returns of A reuse the given bars, which are the whole of section A
    assert spec.form.sections[1].source_section == 0
    assert_covers(spec)


def test_given_bars_ending_inside_a_section_become_a_section_of_their_own():
    spec = validate(continue_midi=midi_of(6), bars=16).spec
    plan = spec_form(spec)
    assert plan is not None
    first = plan.sections[0]
    assert (first.label, first.first_bar, first.bars) == (GIVEN_SECTION_LABEL, 0, 6)
    assert first.treatment is Treatment.NEW
    for index, section in enumerate(plan.sections[1:], start=1):
        # nothing after the given bars repeats or varies them: sources are new sections
        assert section.source is None or 1 <= section.source < index
    assert plan.total_bars == 16


def test_a_continued_melody_with_a_duration():
    spec = validate(continue_midi=midi_of(4), duration_seconds=60).spec
    assert spec.bars == 24
    assert_covers(spec)


def test_too_short_a_continuation_names_the_length_field():
    assert rejected(continue_midi=midi_of(8), bars=8).field == "bars"
    assert rejected(continue_midi=midi_of(8), duration_seconds=10).field == "duration_seconds"


def test_a_harmonised_melody_is_one_section_over_its_bars():
    spec = validate(harmonize_midi=midi_of(12)).spec
    assert spec.bars == 12
    assert [(s.label, s.bar_count, s.treatment) for s in spec.form.sections] == [("A", 12, "new")]
    assert spec.form.sections[0].cadence == "authentic"
    assert_covers(spec)


def test_a_harmonised_melody_takes_no_form_and_no_duration():
    error = rejected(harmonize_midi=midi_of(8), form="AABA")
    assert error.field == "form" and "harmonize_midi" in str(error)
    assert validate(harmonize_midi=midi_of(8), form="auto").spec.bars == 8
    error = rejected(harmonize_midi=midi_of(8), duration_seconds=30)
    assert error.field == "duration_seconds" and "harmonize_midi" in str(error)


def test_section_energy_follows_the_mood():
    spec = validate(mood="energetic").spec  # high
    assert {s.energy for s in spec.form.sections} <= {"mid", "high"}
    spec = validate(mood="calm").spec  # low; B one level up
    assert [s.energy for s in spec.form.sections] == ["low", "low", "mid", "low"]
