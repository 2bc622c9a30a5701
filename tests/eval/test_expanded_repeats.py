"""Corpus tunes with their repeat signs expanded (``cantus.eval.expanded_repeats``)."""

from __future__ import annotations

from cantus.eval.expanded_repeats import abc_texts, expand_repeats, has_repeat_signs
from cantus.eval.structure import repetition

TUNE = """X:1
T:Test reel
M:4/4
L:1/8
K:G
|:GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA:|
"""


def test_repeat_signs_are_found_in_the_tune_body_only() -> None:
    assert has_repeat_signs(TUNE)
    assert not has_repeat_signs(TUNE.replace("|:", "|").replace(":|", "|"))
    assert not has_repeat_signs("X:1\nT:a title with |: in it\nK:G\nGABc|\n")
    assert not has_repeat_signs("")


def test_an_expanded_tune_plays_its_bars_twice() -> None:
    melody = expand_repeats(TUNE)
    assert melody is not None
    assert len(melody.bars) == 8
    assert [b.notes for b in melody.bars[4:]] == [b.notes for b in melody.bars[:4]]
    assert repetition(melody).exact >= 4 / 7
    assert expand_repeats("X:1\nK:\n") is None


def test_corpus_ids_name_the_abc_tunes() -> None:
    texts = abc_texts(("ryans",))
    some_id, text = next(iter(texts.items()))
    assert some_id.startswith("ryans/") and "#" in some_id
    assert "X:" in text
