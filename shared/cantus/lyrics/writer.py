"""What the lyric service needs per language, loaded once: the lexicon, a scorer (the
``lyric_lm`` Triton model, or an in-process LM in tests), the theme embedder; and
``write_piece_line``, which writes one line of a piece from the state the service keeps."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cantus.lyrics.decoding import (
    REGISTER_DECODING,
    DecodedLine,
    DecodeOptions,
    LyricWriter,
    served_decoding,
    word_pairs,
)
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.scoring import LyricScorer
from cantus.lyrics.slots import LineSlots
from cantus.lyrics.theme import ThemeEmbedder, theme_text
from cantus.lyrics.training import CHECKPOINT_DIR, lexicon_path

WRITERS_KEPT = 64
"""Pieces whose ``LyricWriter`` ``LyricResources`` keeps (a station writes a piece at a time,
the service a few at once)."""


@dataclass
class LyricResources:
    """``scorer_for(language, register)``: the LM's scores for lyrics of ``language``, in
    ``register`` ("": the served LM's own; else the lyric transformer in that register)."""

    scorer_for: Callable[[str, str], LyricScorer]
    checkpoint_dir: Path = CHECKPOINT_DIR
    models: Mapping[str, str] | None = None
    """The lyric LM per language whose lexicon is used (default: the ``lyric_models``
    setting); the scorer must be that LM."""
    embedder: ThemeEmbedder = field(default_factory=ThemeEmbedder)
    _lexicons: dict[str, Lexicon] = field(default_factory=dict)
    _scorers: dict[tuple[str, str], LyricScorer] = field(default_factory=dict)
    _writers: OrderedDict[tuple[str, str, str, str, int], LyricWriter] = field(
        default_factory=OrderedDict
    )
    _writers_lock: threading.Lock = field(default_factory=threading.Lock)

    def model(self, language: str, register: str = "") -> str | None:
        """The lyric LM that writes ``language`` in ``register`` (None: the setting's)."""
        return "transformer" if register else (self.models or {}).get(language)

    def lexicon(self, language: str, register: str = "") -> Lexicon:
        path = lexicon_path(language, self.checkpoint_dir, self.model(language, register))
        if str(path) not in self._lexicons:
            self._lexicons[str(path)] = Lexicon.load(path)
        return self._lexicons[str(path)]

    def rhyme_of(self, language: str, register: str, word: str) -> str:
        """The rhyme key of ``word`` in the lexicon of ``language`` and ``register`` ("":
        a word it does not hold)."""
        lexicon = self.lexicon(language, register)
        index = lexicon.index.get(word)
        return lexicon.rhymes[index] if index is not None else ""

    def scorer(self, language: str, register: str = "") -> LyricScorer:
        if (language, register) not in self._scorers:
            self._scorers[language, register] = self.scorer_for(language, register)
        return self._scorers[language, register]

    def writer(self, language: str, register: str, theme: str, mood: str, seed: int) -> LyricWriter:
        """The ``LyricWriter`` of a piece (``themed_writer``), built once and kept for its next
        lines (the ``WRITERS_KEPT`` most recently used): a writer does not change as it writes,
        and building one for every line (its lexicon-wide arrays, its word and pair dropout)
        was 7 % of the lyric service's CPU (py-spy, session 25)."""
        key = (language, register, theme, mood, seed)
        with self._writers_lock:  # lines are written in worker threads
            writer = self._writers.get(key)
            if writer is None:
                writer = themed_writer(
                    self.scorer(language, register),
                    self.lexicon(language, register),
                    self.embedder,
                    theme,
                    mood,
                    seed=seed,
                    options=REGISTER_DECODING if register else None,
                )
                self._writers[key] = writer
                while len(self._writers) > WRITERS_KEPT:
                    self._writers.popitem(last=False)
            self._writers.move_to_end(key)
            return writer


def themed_writer(
    scorer: LyricScorer,
    lexicon: Lexicon,
    embedder: ThemeEmbedder,
    theme: str,
    mood: str,
    *,
    seed: int,
    options: DecodeOptions | None = None,
) -> LyricWriter:
    """A ``LyricWriter`` for a piece on ``theme`` in ``mood`` (the theme's sentence embedding
    steers the words, the theme is the LM's title line), as the evaluations write pieces."""
    return LyricWriter(
        scorer,
        lexicon,
        theme_vector=embedder.embed([theme_text(theme, mood)])[0],
        theme_text=theme,
        embed=embedder.embed,
        options=options or served_decoding(lexicon.language),
        seed=seed,
    )


def write_piece_line(
    resources: LyricResources,
    line: LineSlots,
    *,
    language: str,
    theme: str,
    mood: str,
    seed: int,
    written: dict[int, DecodedLine],
    is_anchor: bool,
    register: str = "",
) -> DecodedLine:
    """Line ``line`` of a piece whose earlier lines are ``written`` (line index → line),
    in ``register`` ("": the served LM's own)."""
    writer = resources.writer(language, register, theme, mood, seed)
    used: Counter = Counter()
    pairs: set[tuple[str, str]] = set()
    for earlier in written.values():
        used.update(earlier.words)
        pairs |= word_pairs(earlier.words)
    anchor = written.get(line.rhymes_with) if line.rhymes_with is not None else None
    return writer.write_line(
        line,
        context=LyricWriter.context(written),
        anchor=anchor,
        used=used,
        is_anchor=is_anchor,
        pairs=pairs,
    )
