"""Compose requests with lyrics: theme, language, rhyme scheme and register are checked at
the edge."""

import pytest

from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api


def validate(**fields):
    return validate_compose_request(api.ComposeRequest(**fields), max_bars=64).spec


def test_a_theme_is_accepted_with_language_and_default_scheme():
    spec = validate(lyrics_theme="  the sea at night ", lyrics_language="zh")
    assert (spec.lyrics_theme, spec.lyrics_language, spec.lyrics_rhyme_scheme) == (
        "the sea at night",
        "zh",
        "AABB",
    )
    assert validate(lyrics_theme="rain", lyrics_rhyme_scheme="abcb").lyrics_rhyme_scheme == "ABCB"


def test_a_register_of_the_language_is_taken():
    assert (
        validate(lyrics_theme="rain", lyrics_register=" Scripture").lyrics_register == "scripture"
    )
    zh = validate(lyrics_theme="明月", lyrics_language="zh", lyrics_register="qu")
    assert zh.lyrics_register == "qu"
    assert validate(lyrics_theme="rain").lyrics_register == ""


def test_no_theme_means_no_lyrics():
    spec = validate()
    assert spec.lyrics_theme == "" and spec.lyrics_rhyme_scheme == ""


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lyrics_theme": "   "}, "lyrics_theme"),
        ({"lyrics_theme": "?!…"}, "lyrics_theme"),
        ({"lyrics_theme": "x" * 501}, "lyrics_theme"),
        ({"lyrics_theme": "damn the sea"}, "lyrics_theme"),
        ({"lyrics_theme": "the Sea, and HELL"}, "lyrics_theme"),
        ({"lyrics_theme": "明月思乡"}, "lyrics_theme"),
        ({"lyrics_theme": "明月思乡", "lyrics_language": "en"}, "lyrics_theme"),
        ({"lyrics_theme": "杀敌", "lyrics_language": "zh"}, "lyrics_theme"),
        ({"lyrics_theme": "море ночью", "lyrics_language": "zh"}, "lyrics_theme"),
        ({"lyrics_theme": "sea", "lyrics_language": "fr"}, "lyrics_language"),
        ({"lyrics_theme": "sea", "lyrics_rhyme_scheme": "A"}, "lyrics_rhyme_scheme"),
        ({"lyrics_theme": "sea", "lyrics_rhyme_scheme": "AZ"}, "lyrics_rhyme_scheme"),
        ({"lyrics_theme": "sea", "lyrics_register": "ci"}, "lyrics_register"),
        (
            {"lyrics_theme": "明月", "lyrics_language": "zh", "lyrics_register": "song"},
            "lyrics_register",
        ),
        ({"lyrics_theme": "sea", "lyrics_register": "x" * 10_000}, "lyrics_register"),
        ({"lyrics_register": "modern"}, "lyrics_register"),
    ],
)
def test_bad_lyrics_fields_are_named(fields, field):
    with pytest.raises(RequestError) as raised:
        validate(**fields)
    assert raised.value.field == field


def test_a_theme_in_the_languages_script_is_taken_and_others_are_named():
    assert validate(lyrics_theme="明月思乡", lyrics_language="zh").lyrics_theme == "明月思乡"
    assert validate(lyrics_theme="Café at 3 am, hello!").lyrics_theme == "Café at 3 am, hello!"
    with pytest.raises(RequestError) as caught:
        validate(lyrics_theme="明月 and the sea")
    assert "Chinese (Han)" in str(caught.value) and "'zh'" in str(caught.value)
    with pytest.raises(RequestError) as caught:
        validate(lyrics_theme="damn the sea")
    assert "'damn'" in str(caught.value)
