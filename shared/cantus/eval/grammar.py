"""An independent grammaticality check of English lyric lines: Link Grammar (Debian
``link-grammar``, installed by ``make lyric-data``; CMU's English dictionary), run as its
``link-parser`` command over all the lines at once.

A line *parses* when Link Grammar finds a complete linkage (every word linked, null count 0)
without post-processing violations, within ``TIMEOUT_SECONDS``. Lines are written as a
singer would print them: ``i`` as ``I`` and a capital first letter.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence

TIMEOUT_SECONDS = 3
_I = re.compile(r"\bi(?=\b|')")


class ParserMissing(RuntimeError):
    """``link-parser`` is not installed (``make lyric-data`` installs it)."""


def parser_available() -> bool:
    return shutil.which("link-parser") is not None


def printed(line: str) -> str:
    text = _I.sub("I", line.strip())
    return text[:1].upper() + text[1:]


def parses(lines: Sequence[str]) -> list[bool]:
    """For each line, whether Link Grammar parses it completely."""
    if not parser_available():
        raise ParserMissing("link-parser is missing: run make lyric-data")
    texts = [printed(line) for line in lines]
    commands = ["!graphics=0", "!echo=1", f"!timeout={TIMEOUT_SECONDS}", "!limit=20"]
    # a line that begins with "!" would be read as a command
    stdin = "\n".join([*commands, *(t.lstrip("!") or "x" for t in texts)]) + "\n"
    result = subprocess.run(
        ["link-parser", "en"], input=stdin, capture_output=True, text=True, check=False
    )
    verdicts: list[bool] = []
    current: bool | None = None
    expected = iter(t.lstrip("!") or "x" for t in texts)
    waiting = next(expected, None)
    for row in result.stdout.splitlines():
        if waiting is not None and row.strip() == waiting.strip():
            if current is not None:
                verdicts.append(current)
            current = False
            waiting = next(expected, None)
        elif current is not None and row.startswith("Found ") and "null count" not in row:
            current = not row.startswith("Found 0 ") and "(0 had no P.P." not in row
    if current is not None:
        verdicts.append(current)
    if len(verdicts) != len(texts):
        raise RuntimeError(f"link-parser answered {len(verdicts)} of {len(texts)} lines")
    return verdicts


# --- Mandarin: parts of speech ---------------------------------------------------------------


def mandarin_tags(lines: Sequence[str]) -> list[list[str]]:
    """Each line's parts of speech as jieba tags it (``jieba.posseg``, its dictionary only,
    no HMM for unknown words, so a run of characters it does not know is not joined into an
    invented name): the tokens of ``cantus.eval.lyrics``'s Mandarin plausibility check. A
    line that is a sequence of words in an order Chinese uses gets the tag sequences of
    real verse; characters thrown together get tags in orders verse seldom has."""
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return [[pair.flag for pair in jieba.posseg.lcut(line.strip(), HMM=False)] for line in lines]
