"""Station configuration: YAML in, every bad field named."""

import re

import pytest

from cantus.stations.config import (
    StationConfigError,
    check_station_name,
    parse_station_config,
    station_config_to_yaml,
)


def test_defaults_and_round_trip():
    config = parse_station_config("styles: {folk: 2, celtic: 1}\ntempo_bpm: [80, 100]\n")
    assert config.styles == {"folk": 2, "celtic": 1}
    assert config.tempo_bpm == (80, 100)
    assert parse_station_config(station_config_to_yaml(config)) == config


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("styles: {jazz: 1}", "styles"),
        ("palettes: {kazoo: 1}", "palettes"),
        ("palettes: {piano: 0}", "palettes"),
        ("forms: {sonata: 1}", "forms"),
        ("forms: {AABA: -1}", "forms"),
        ("bars: 4\nforms: {verse-chorus: 1}", "forms"),
        ("tempo_bpm: [120, 80]", "tempo_bpm"),
        ("tempo_bpm: [20, 80]", "tempo_bpm"),
        ("energy: [0.5, 1.5]", "energy"),
        ("keys: [H]", "keys"),
        ("modes: [dorian]", "modes"),
        ("meters: [11/8]", "meters"),
        ("loudness_preset: loud", "loudness_preset"),
        ("buffer_pieces: 0", "buffer_pieces"),
        ("outputs: [score]", "outputs"),
        ("colour: red", "colour"),
        ("- a list", "config_yaml"),
        ("styles: {folk: [", "config_yaml"),
    ],
)
def test_bad_fields_are_named(text, field):
    with pytest.raises(StationConfigError) as caught:
        parse_station_config(text)
    assert caught.value.field == field


def test_lyrics_need_a_theme():
    with pytest.raises(StationConfigError, match="lyrics_theme"):
        parse_station_config("lyrics: true")
    assert parse_station_config("lyrics: true\nlyrics_theme: the sea").lyrics


@pytest.mark.parametrize("name", ["", "Upper", "a b", "x" * 41, "-lead"])
def test_bad_station_names(name):
    with pytest.raises(StationConfigError, match="name"):
        check_station_name(name)


# --- hostile configs (#22, cantus bench chaos --scenario hostile) ------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("styles: {folk: .nan}\n", "styles"),  # NaN is not > 0, nor <= 0: it was taken
        ("styles: {folk: .inf}\n", "styles"),
        ("styles: {folk: 1}\n# " + "x" * 100_000 + "\n", "config_yaml"),  # was taken
        ("styles: " + "[" * 5000 + "]" * 5000 + "\n", "config_yaml"),  # RecursionError
    ],
)
def test_hostile_configs_are_refused_naming_the_field(text, field):
    from cantus.stations.config import StationConfigError, parse_station_config

    with pytest.raises(StationConfigError) as refused:
        parse_station_config(text)
    assert refused.value.field == field


def test_a_session_yaml_nested_too_deeply_is_refused_naming_it():
    from cantus.stations.plans import PlanError
    from cantus.stations.sessions import session_config

    with pytest.raises(PlanError, match=r"^session_yaml: "):
        session_config("", "a: " + "[" * 5000 + "]" * 5000 + "\n")


def test_lyrics_take_a_language_a_register_and_several_themes():
    config = parse_station_config(
        "lyrics: true\nlyrics_themes: [河上的月光, a road home]\nlyrics_language: zh\n"
        "lyrics_register: ci"
    )
    assert config.themes() == ["河上的月光", "a road home"]
    assert (config.lyrics_language, config.lyrics_register) == ("zh", "ci")


@pytest.mark.parametrize(
    "text, field",
    [
        ("lyrics: true\nlyrics_theme: the sea\nlyrics_language: fr", "lyrics_language"),
        ("lyrics: true\nlyrics_theme: the sea\nlyrics_register: qu", "lyrics_register"),
        ("lyrics: true\nlyrics_theme: 河上的月光", "lyrics_theme"),  # Han for English lyrics
        ("lyrics: true\nlyrics_themes: [the sea, ' ']", "lyrics_themes[1]"),
        ("lyrics: true\nlyrics_themes: []", "lyrics_theme"),
        ("lyrics: true\nlyrics_themes: [the sea, " + "x" * 600 + "]", "lyrics_themes[1]"),
    ],
)
def test_bad_lyrics_settings_are_refused_naming_the_field(text, field):
    with pytest.raises(StationConfigError, match=rf"^{re.escape(field)}: "):
        parse_station_config(text)
