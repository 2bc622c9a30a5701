"""The word pairs the lyric LM reaches for in every piece: the most frequent adjacent pairs of
the text the served LM was trained on (``cantus.lyrics.corpus``: fortunes' songs and poems in
English, its Tang and Song poems in Mandarin, where a pair is two characters).

Pieces are decoded apart, so nothing else keeps two pieces from writing the same stock pairs
("a time to", "i have been", "is not"): within a piece no pair repeats, across pieces the
share of distinct pairs stayed at 0.74x the human lines' in English. ``DecodeOptions.
pair_dropout`` has each piece penalise a seeded share of these pairs, so each piece finds
other ones, as ``word_dropout`` does for words (off by default: it cost the lines' grammar
more than issue #21 allows, see ``DecodeOptions.pair_dropout``).

``python -m cantus.lyrics.stock_pairs`` counts them again from the corpus (``make
lyric-data``'s fortunes) and writes ``shared/cantus/checkpoints/lyric_stock_pairs_<lang>.txt``,
one pair a line, most frequent first.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from cantus.lyrics.english import WORD_PATTERN
from cantus.lyrics.mandarin import is_hanzi
from cantus.settings import CHECKPOINTS

STOCK_PAIRS = 300
"""Pairs kept per language, most frequent first."""


def stock_pairs_path(language: str) -> Path:
    """Where the pairs of ``language`` are kept."""
    return CHECKPOINTS / f"lyric_stock_pairs_{language}.txt"


def count_stock_pairs(
    lines: Iterable[str], language: str, top: int = STOCK_PAIRS
) -> list[tuple[str, str]]:
    """The ``top`` most frequent adjacent pairs of the LM's tokens within the lines (words,
    Mandarin characters, as ``cantus.lyrics.model.tokenize`` splits them; ties: first seen
    first)."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in lines:
        tokens = (
            WORD_PATTERN.findall(line.lower())
            if language == "en"
            else [c for c in line if is_hanzi(c)]
        )
        counts.update(itertools.pairwise(tokens))
    return [pair for pair, _ in counts.most_common(top)]


@functools.cache
def load_stock_pairs(language: str) -> tuple[tuple[str, str], ...]:
    """The committed pairs of ``language``; none where there is no file."""
    path = stock_pairs_path(language)
    if not path.exists():
        return ()
    pairs = (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())
    return tuple((first, second) for first, second in pairs)


def main() -> None:
    """Count the pairs of both languages from the corpus and write the files."""
    from cantus.lyrics.corpus import load_documents

    for language in ("en", "zh"):
        documents, _ = load_documents(language)
        pairs = count_stock_pairs((line for doc in documents for line in doc), language)
        path = stock_pairs_path(language)
        path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
        print(f"{language}: {len(pairs)} pairs from {len(documents)} documents -> {path}")


if __name__ == "__main__":
    main()
