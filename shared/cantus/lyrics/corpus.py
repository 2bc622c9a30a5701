"""Lyric training text from Debian packages: English verse from ``fortunes``
(``songs-poems``, ``love``, ``literature``), classical Chinese poems from ``fortunes-zh``
(``tang300``: 300 Tang poems, ``song100``: 100 Song ci). Installed by ``make setup``.

A document is one fortune (a poem or song), its lines normalised for the lyric model:
English lower-cased words (``WORD_PATTERN``), Mandarin the Chinese characters of each
clause (a clause ends at ，。？！；：、). Attribution lines, titles and ANSI colour codes are
dropped; so is a line with a blocked word (``blocklist``).
"""

from __future__ import annotations

import re
from collections import Counter
from enum import Enum
from pathlib import Path

from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.english import WORD_PATTERN
from cantus.lyrics.mandarin import is_hanzi

FORTUNES_DIR = Path("/usr/share/games/fortunes")
SOURCES = {"en": ("songs-poems", "love", "literature"), "zh": ("tang300", "song100")}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ZH_CLAUSE_END = re.compile(r"[，。？！；：、,.?!;:「」『』“”（）()\s]+")


class DroppedLine(str, Enum):
    """Why a source line did not become a training line."""

    ATTRIBUTION = "attribution"
    TITLE = "title"
    BLOCKED = "blocked"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"


class CorpusMissing(RuntimeError):
    """A fortunes file is not installed (``make setup`` installs the Debian packages)."""


def read_fortunes(name: str, directory: Path = FORTUNES_DIR) -> list[str]:
    """The fortunes of file ``name``, each as its raw text."""
    path = directory / name
    if not path.exists():
        raise CorpusMissing(f"{path} is missing: install Debian fortunes and fortunes-zh")
    text = _ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
    return [chunk.strip("\n") for chunk in re.split(r"^%$", text, flags=re.M) if chunk.strip()]


def english_lines(fortune: str, dropped: Counter) -> list[str]:
    lines = []
    for raw in fortune.splitlines():
        if raw.strip().startswith("--"):
            dropped[DroppedLine.ATTRIBUTION] += 1
            continue
        words = WORD_PATTERN.findall(raw.lower().replace("’", "'"))
        if len(words) < 2:
            dropped[DroppedLine.TOO_SHORT] += 1
        elif len(words) > 16:
            dropped[DroppedLine.TOO_LONG] += 1
        elif any(is_blocked(word, "en") for word in words):
            dropped[DroppedLine.BLOCKED] += 1
        else:
            lines.append(" ".join(words))
    return lines


def mandarin_lines(fortune: str, dropped: Counter) -> list[str]:
    lines = []
    for raw in fortune.splitlines():
        if "《" in raw or "作者" in raw or "题目" in raw:
            dropped[DroppedLine.TITLE] += 1
            continue
        for clause in _ZH_CLAUSE_END.split(raw):
            characters = "".join(c for c in clause if is_hanzi(c))
            if len(characters) < 2:
                dropped[DroppedLine.TOO_SHORT] += 1 if clause else 0
            elif len(characters) > 12:
                dropped[DroppedLine.TOO_LONG] += 1
            elif is_blocked(characters, "zh"):
                dropped[DroppedLine.BLOCKED] += 1
            else:
                lines.append(characters)
    return lines


def load_documents(
    language: str, directory: Path = FORTUNES_DIR
) -> tuple[list[list[str]], Counter]:
    """Documents (lists of lines) of ``language`` and the count of dropped lines by reason."""
    dropped: Counter = Counter()
    split = english_lines if language == "en" else mandarin_lines
    documents = []
    for name in SOURCES[language]:
        for fortune in read_fortunes(name, directory):
            lines = split(fortune, dropped)
            if lines:
                documents.append(lines)
    return documents, dropped
