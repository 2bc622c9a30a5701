"""What the lyric service needs per language, loaded once: the lexicon, a scorer (the
``lyric_lm`` Triton model, or an in-process LM in tests), the theme embedder; and
``write_piece_line``, which writes one line of a piece from the state the service keeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cantus.lyrics.decoding import DecodedLine, LyricWriter, word_pairs
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.scoring import LyricScorer
from cantus.lyrics.slots import LineSlots
from cantus.lyrics.theme import ThemeEmbedder, theme_text
from cantus.lyrics.training import CHECKPOINT_DIR, lexicon_path


@dataclass
class LyricResources:
    scorer_for: Callable[[str], LyricScorer]
    checkpoint_dir: Path = CHECKPOINT_DIR
    models: Mapping[str, str] | None = None
    """The lyric LM per language whose lexicon is used (default: the ``lyric_models``
    setting); the scorer must be that LM."""
    embedder: ThemeEmbedder = field(default_factory=ThemeEmbedder)
    _lexicons: dict[str, Lexicon] = field(default_factory=dict)
    _scorers: dict[str, LyricScorer] = field(default_factory=dict)
    _themes: dict[str, np.ndarray] = field(default_factory=dict)

    def lexicon(self, language: str) -> Lexicon:
        if language not in self._lexicons:
            model = (self.models or {}).get(language)
            self._lexicons[language] = Lexicon.load(
                lexicon_path(language, self.checkpoint_dir, model)
            )
        return self._lexicons[language]

    def scorer(self, language: str) -> LyricScorer:
        if language not in self._scorers:
            self._scorers[language] = self.scorer_for(language)
        return self._scorers[language]

    def theme_vector(self, text: str) -> np.ndarray:
        if text not in self._themes:
            if len(self._themes) > 256:
                self._themes.clear()
            self._themes[text] = self.embedder.embed([text])[0]
        return self._themes[text]


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
) -> DecodedLine:
    """Line ``line`` of a piece whose earlier lines are ``written`` (line index → line)."""
    text = theme_text(theme, mood)
    writer = LyricWriter(
        resources.scorer(language),
        resources.lexicon(language),
        theme_vector=resources.theme_vector(text),
        theme_text=theme,
        embed=resources.embedder.embed,
        seed=seed,
    )
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
