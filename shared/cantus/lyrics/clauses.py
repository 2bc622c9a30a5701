"""Where a sung line breathes: the clauses its words are written in.

A long phrase of melody is not sung as one run of words. Chinese verse is made of clauses of
three to seven characters: the five and seven of the shi, and the uneven clauses of the ci
(长短句), whose lengths the tune sets. The lyric LMs also learnt their text clause by
clause: Mandarin is cut at ，。？！ and prose at . ; : ? ! (``docs/lyrics_data.md``). A line
of eleven notes decoded as one line asks the LM for something it has never seen, and it
comes out as a list of words.

So a Mandarin line longer than a clause holds is cut into as few clauses as fit, where the melody
breathes: after the syllables held longest (a long note, or a rest after it), with, in
Mandarin, a small preference for the clause lengths that verse uses most. The decoder
writes each clause as a line of its own, so each ends where the LM finds that a clause can
end; the line's rhyme falls on its last clause. The cut depends only on the line's slots,
so a line written again (a restart, a repeated chorus) is cut the same way.

English lines stay whole. Cut the same way (clauses of four to eight syllables), 10 pieces
of ``cantus eval lyrics`` read no better: the Link Grammar parse rate stayed at 59 %,
distinct-2 at 64 %, and lines such as "she will be thrown, i got the truth of stay" came
out. English verse runs its clauses over its lines, and its LM learnt verse line by line.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from cantus.lyrics.slots import Slot
from cantus.music.notes import TICKS_PER_QUARTER

CLAUSE_SYLLABLES = {"zh": (3, 7)}
"""Shortest and longest clause in characters, per language whose lines are cut."""
PREFERRED_LENGTH = {"zh": {5: 0.25, 7: 0.25, 4: 0.15, 6: 0.15}}
"""Bonus per clause of that length, in quarter notes of breath: the shi's five and seven
characters, then the ci's four and six; it only settles cuts between notes held alike."""
SEPARATOR = {"zh": "，", "en": ", "}
"""How a line's clauses are printed (lead sheet, events); the LM reads a newline."""


def clause_lengths(slots: Sequence[Slot], language: str) -> tuple[int, ...]:
    """Syllables per clause of a line with ``slots``: one clause when the line fits in one
    (or ``language`` keeps its lines whole), else the fewest clauses within
    ``CLAUSE_SYLLABLES``, cut after the slots held longest."""
    total = len(slots)
    if language not in CLAUSE_SYLLABLES:
        return (total,) if total else ()
    shortest, longest = CLAUSE_SYLLABLES[language]
    if total <= longest:
        return (total,) if total else ()
    count = -(-total // longest)
    preferred = PREFERRED_LENGTH[language]
    best: tuple[float, tuple[int, ...]] | None = None
    for cuts in itertools.combinations(range(shortest, total - shortest + 1), count - 1):
        bounds = (0, *cuts, total)
        lengths = tuple(b - a for a, b in itertools.pairwise(bounds))
        if not all(shortest <= length <= longest for length in lengths):
            continue
        breath = sum(slots[cut - 1].hold_ticks for cut in cuts) / TICKS_PER_QUARTER
        score = breath + sum(preferred.get(length, 0.0) for length in lengths)
        if best is None or score > best[0]:  # ties: the earliest cut, as the loop is ordered
            best = (score, lengths)
    return best[1] if best is not None else (total,)


def word_groups(words: Sequence[str], clauses: Sequence[int]) -> list[list[str]]:
    """``words`` in clauses of ``clauses`` words each (empty: one clause)."""
    if not clauses:
        return [list(words)] if words else []
    groups, start = [], 0
    for count in clauses:
        groups.append(list(words[start : start + count]))
        start += count
    return groups
