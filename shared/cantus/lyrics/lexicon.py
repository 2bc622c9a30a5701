"""The words (English) or characters (Mandarin) the decoder may choose from, with what
the constraints need of each, as arrays aligned with the word list: syllables, stressed
syllables as a bit mask, content monosyllables, rhyme class and its size, tone, and a
sentence-embedding vector for theme similarity.

A lexicon belongs to the language, not to one LM: any LM behind the scoring interface
scores the same candidates. ``cantus train lyrics`` builds it from the trained LM's
vocabulary and stores it beside the checkpoint (``lyric_lexicon_<language>.npz``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.english import is_content_word, pronounce
from cantus.lyrics.mandarin import reading, rhyme_class

MAX_WORD_SYLLABLES = 6


@dataclass
class Lexicon:
    language: str
    words: list[str]
    syllables: np.ndarray  # int, [K]
    stress_mask: np.ndarray  # int64, [K]: bit i set = syllable i carries primary stress
    content_mono: np.ndarray  # bool, [K]: a stressed content monosyllable
    rhymes: list[str]  # [K] rhyme key (CMUdict rhyming part / merged pinyin final)
    rhyme_ids: np.ndarray  # int, [K]
    rhyme_sizes: np.ndarray  # int, [K]: words sharing the rhyme
    tones: np.ndarray  # int, [K]: Mandarin tone 1..5, 0 for English
    embeddings: np.ndarray | None = None  # float16 [K, D], unit length

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            language=np.array(self.language),
            words=np.array(self.words),
            embeddings=self.embeddings if self.embeddings is not None else np.zeros((0, 0)),
        )

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        data = np.load(path, allow_pickle=False)
        embeddings = data["embeddings"]
        return build_lexicon(
            [str(w) for w in data["words"]],
            str(data["language"]),
            embeddings=embeddings if embeddings.size else None,
        )


def build_lexicon(
    tokens: Sequence[str], language: str, *, embeddings: np.ndarray | None = None
) -> Lexicon:
    """The usable entries of ``tokens`` (a vocabulary, in order): English alphabetic words
    of at most ``MAX_WORD_SYLLABLES`` syllables (single letters only a, i, o), Mandarin
    characters pypinyin can read; never a blocked word. ``embeddings`` aligned with the
    kept entries."""
    words, syllables, masks, mono, rhymes, tones = [], [], [], [], [], []
    for token in tokens:
        if is_blocked(token, language):
            continue
        if language == "zh":
            read = reading(token) if len(token) == 1 else None
            if read is None:
                continue
            words.append(token)
            syllables.append(1)
            masks.append(0)
            mono.append(False)
            rhymes.append(rhyme_class(read[1]))
            tones.append(read[0])
        else:
            if not token.replace("'", "").isalpha() or (len(token) == 1 and token not in "aio"):
                continue
            spoken = pronounce(token)
            if spoken.syllables > MAX_WORD_SYLLABLES:
                continue
            words.append(token)
            syllables.append(spoken.syllables)
            masks.append(sum(1 << i for i in spoken.stressed_offsets))
            mono.append(spoken.syllables == 1 and is_content_word(token))
            rhymes.append(spoken.rhyme)
            tones.append(0)
    names = sorted(set(rhymes))
    rhyme_index = {name: i for i, name in enumerate(names)}
    sizes = Counter(rhymes)
    if embeddings is not None and len(embeddings) != len(words):
        raise ValueError(f"{len(embeddings)} embeddings for {len(words)} lexicon entries")
    return Lexicon(
        language=language,
        words=words,
        syllables=np.array(syllables, dtype=np.int64),
        stress_mask=np.array(masks, dtype=np.int64),
        content_mono=np.array(mono, dtype=bool),
        rhymes=rhymes,
        rhyme_ids=np.array([rhyme_index[r] for r in rhymes], dtype=np.int64),
        rhyme_sizes=np.array([sizes[r] for r in rhymes], dtype=np.int64),
        tones=np.array(tones, dtype=np.int64),
        embeddings=embeddings,
    )
