"""Corpus tunes as they are played: repeat signs expanded.

The corpus stores each tune as written, without expanding repeat signs (``|: … :|``), so a
celtic tune played AABB is stored as AB: half its bars, and none of its literal repeats. The
repetition structure measured on stored tunes is therefore lower than what a listener hears.
``expanded_tunes`` re-reads the ABC of corpus tunes that have repeat signs, expands them with
music21 (``Stream.expandRepeats``) and converts them exactly as the corpus build does
otherwise, so the structure band of tunes as played can be shown beside the stored one.

Essen folk songs in the music21 corpus carry no repeat signs, so only O'Neill's and Ryan's
(celtic) tunes change; the chorales are not ABC and are left out.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

from cantus.melody.corpus import Tune, music21_corpus_dir, split_abc_file
from cantus.music.notes import Melody

ABC_FOLDERS = {"essen": "essenFolksong", "oneill": "oneills1850", "ryans": "ryansMammoth"}
"""The music21 corpus folder of each ABC source (as ``cantus.melody.corpus`` reads them)."""
_REPEAT_SIGN = re.compile(r":\||\|:|::")


def abc_texts(sources: Sequence[str] = tuple(ABC_FOLDERS)) -> dict[str, str]:
    """Tune id → ABC text (file header included) of every tune of the ABC ``sources``, with
    the ids the corpus gives them (``oneill/<file>#<X>``, ``-2`` for a repeated X)."""
    texts: dict[str, str] = {}
    for source in sources:
        for path in sorted((music21_corpus_dir() / ABC_FOLDERS[source]).glob("*.abc")):
            seen: dict[str, int] = {}
            data = path.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            for number, tune_text in split_abc_file(text):
                seen[number] = seen.get(number, 0) + 1
                suffix = f"-{seen[number]}" if seen[number] > 1 else ""
                texts[f"{source}/{path.name}#{number}{suffix}"] = tune_text
    return texts


def has_repeat_signs(abc_text: str) -> bool:
    """Does the tune body (after its ``K:`` line) hold a repeat sign?"""
    body = abc_text.split("\nK:", 1)[-1]
    return bool(_REPEAT_SIGN.search(body))


def expand_repeats(abc_text: str, *, default_tempo_bpm: float = 110.0) -> Melody | None:
    """The tune with its repeats written out, converted like a corpus tune; None where
    music21 cannot parse or expand it."""
    from cantus.music import music21_io

    fields = music21_io.abc_header_fields(abc_text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            score = music21_io.parse_abc_tune(abc_text).expandRepeats()
            return music21_io.score_to_melody(
                score,
                default_tempo_bpm=default_tempo_bpm,
                mode_is_explicit=music21_io.abc_key_names_mode(fields.get("K", "")),
            )
        except Exception:  # music21 fails in many ways on odd ABC; such a tune is skipped
            return None


def expanded_tunes(tunes: Sequence[Tune]) -> tuple[list[Tune], list[Melody]]:
    """The ABC tunes among ``tunes`` that have repeat signs (as stored), and their melodies
    with the repeats expanded (``expand_repeats``; tunes that fail to expand are missing)."""
    texts = abc_texts(sorted({t.source for t in tunes if t.source in ABC_FOLDERS}))
    with_signs = [t for t in tunes if has_repeat_signs(texts.get(t.tune_id, ""))]
    expanded = [expand_repeats(texts[t.tune_id]) for t in with_signs]
    return with_signs, [m for m in expanded if m is not None]
