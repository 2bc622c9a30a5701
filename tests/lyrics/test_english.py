"""English prosody: CMUdict look-ups, the fallback estimator, sung syllables."""

from hypothesis import given
from hypothesis import strategies as st

from cantus.lyrics.english import (
    estimate_syllables,
    is_content_word,
    pronounce,
    split_syllables,
    starts_with_vowel_sound,
    sung_syllables,
)

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=14)


def test_cmudict_words_have_syllables_stress_and_rhyme():
    happy = pronounce("happy")
    assert (happy.syllables, happy.stresses, happy.known) == (2, "10", True)
    assert happy.stressed_offsets == (0,)
    assert pronounce("together").stressed_offsets == (1,)
    assert pronounce("sea").rhyme == pronounce("free").rhyme
    assert pronounce("sea").rhyme != pronounce("sun").rhyme
    assert pronounce("sea").stressed_offsets == ()  # a monosyllable's stress is contextual


def test_unknown_words_fall_back_to_the_spelling():
    spoken = pronounce("glimmerwood")
    assert not spoken.known
    assert spoken.syllables == 3 and spoken.stresses == "100"
    assert spoken.rhyme.startswith("~")
    assert estimate_syllables("stone") == 1
    assert estimate_syllables("hopes") == 1
    assert estimate_syllables("lantern") == 2


def test_function_words_are_not_content():
    assert not is_content_word("the") and is_content_word("sea")


def test_sung_syllables_mark_word_continuations():
    assert sung_syllables("happy", 2) == ["hap-", "py"]
    assert sung_syllables("river", 2) == ["ri-", "ver"]
    assert sung_syllables("sea", 1) == ["sea"]


@given(words, st.integers(min_value=1, max_value=6))
def test_split_syllables_rejoins_to_the_word(word, count):
    pieces = split_syllables(word, count)
    assert len(pieces) == (count if count > 1 else 1)
    if len(word) >= count:
        assert "".join(pieces) == word
    assert all(pieces)


@given(words)
def test_estimates_are_positive(word):
    assert estimate_syllables(word) >= 1
    assert pronounce(word).syllables >= 1


def test_vowelless_dictionary_words_still_get_a_syllable():
    # CMUdict spells "sh" as SH alone: found by the property test above on a CI run
    assert pronounce("sh").syllables == 1 and pronounce("sh").stresses == "1"


def test_an_article_goes_by_the_sound_not_the_letter():
    assert starts_with_vowel_sound("hour") and starts_with_vowel_sound("apple")
    assert not starts_with_vowel_sound("one") and not starts_with_vowel_sound("year")
    assert starts_with_vowel_sound("ozzlebark")  # not in CMUdict: its first letter
