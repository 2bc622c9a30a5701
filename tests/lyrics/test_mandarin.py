"""Mandarin prosody: tones, finals, rhyme classes, tone-contour agreement."""

from hypothesis import given
from hypothesis import strategies as st

from cantus.lyrics.mandarin import contour_agrees, is_hanzi, reading, rhyme_class


def test_readings():
    assert reading("中") == (1, "ong")
    assert reading("人") == (2, "en")
    assert reading("月")[0] == 4
    assert reading("a") is None and reading("，") is None


def test_rhyme_classes_merge_medials():
    assert rhyme_class(reading("光")[1]) == rhyme_class(reading("长")[1]) == "ang"
    assert rhyme_class(reading("天")[1]) == rhyme_class(reading("山")[1]) == "an"
    assert rhyme_class(reading("花")[1]) != rhyme_class(reading("山")[1])


def test_contour_agreement():
    assert contour_agrees(3, 1, 60, 64) is True  # low tone then high tone, melody rises
    assert contour_agrees(1, 3, 60, 64) is False
    assert contour_agrees(1, 3, 64, 60) is True
    assert contour_agrees(1, 1, 60, 64) is False  # level tones on a rising step
    assert contour_agrees(1, 3, 60, 60) is None  # a repeated pitch has no direction


@given(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))
def test_every_cjk_character_reads_or_is_skipped(character):
    assert is_hanzi(character)
    read = reading(character)
    if read is not None:
        tone, final = read
        assert 1 <= tone <= 5 and final
