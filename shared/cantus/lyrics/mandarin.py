"""Mandarin prosody of one character: tone, final, rhyme class, and whether a tone step
agrees with the melody's direction.

Readings come from pypinyin (the most frequent reading of a character out of context).
Rhyme classes follow the spirit of the thirteen rhyme groups (十三辙): the final without its
medial (i, u, ü), with -in/-en/-un, -ing/-eng/-ong and i/ü merged.
"""

from __future__ import annotations

import functools

from pypinyin import Style, pinyin

TONE_LEVEL = {1: 5.0, 2: 3.5, 3: 1.5, 4: 3.0, 5: 3.0}
"""Relative pitch height of each tone (Chao tone letters: 55, 35, 214 sung low, 51 from
high to low averaged, neutral mid), used to compare a tone step with a melodic step."""

_MEDIAL_MERGE = {
    "iang": "ang",
    "uang": "ang",
    "ian": "an",
    "uan": "an",
    "van": "an",
    "üan": "an",
    "ia": "a",
    "ua": "a",
    "ie": "e",
    "ve": "e",
    "üe": "e",
    "uo": "o",
    "o": "o",
    "iao": "ao",
    "iu": "ou",
    "iou": "ou",
    "ui": "ei",
    "uei": "ei",
    "uai": "ai",
    "un": "en",
    "uen": "en",
    "vn": "en",
    "ün": "en",
    "in": "en",
    "ing": "eng",
    "ong": "eng",
    "iong": "eng",
    "v": "i",
    "ü": "i",
    "er": "e",
}


def is_hanzi(character: str) -> bool:
    return len(character) == 1 and "\u4e00" <= character <= "\u9fff"


@functools.lru_cache(maxsize=65536)
def reading(character: str) -> tuple[int, str] | None:
    """``(tone 1..5, final)`` of a Chinese character (5 = neutral), None for anything else."""
    if not is_hanzi(character):
        return None
    syllable = pinyin(character, style=Style.FINALS_TONE3, strict=True, errors="ignore")
    text = syllable[0][0] if syllable and syllable[0] else ""
    if not text:
        return None
    tone = int(text[-1]) if text[-1].isdigit() else 5
    final = text.rstrip("012345") or "i"  # zhi, chi, shi, ri, zi, ci, si: the apical vowel
    return tone, final


def rhyme_class(final: str) -> str:
    return _MEDIAL_MERGE.get(final, final)


def contour_agrees(
    tone_before: int, tone_after: int, pitch_before: int, pitch_after: int
) -> bool | None:
    """Whether stepping from one sung character to the next moves the tone's pitch the way
    the melody moves: None when the melody repeats its pitch (nothing to agree with)."""
    if pitch_after == pitch_before:
        return None
    step = TONE_LEVEL[tone_after] - TONE_LEVEL[tone_before]
    return (step > 0) == (pitch_after > pitch_before) and step != 0
