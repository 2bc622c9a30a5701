"""The key a listener hears in a melody, by music21's key analysis, and the same for a corpus.

``heard_key`` is music21's ``analyze('key')`` (Krumhansl-Schmuckler correlation with
key profiles) over the melody's notes; church modes read as major or minor. It is the
definition of key agreement in ``cantus eval`` and the key label the melody model trains on
(``heard_keys``): a corpus label taken from a key signature disagrees with what is heard in
about one tune in five (a dorian tune written with a major signature, a tune that closes on
its relative minor), and a model trained on such labels learns "KEY_D MODE_minor" as a
blur of D minor, F major and G major tunes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cantus.music.notes import TICKS_PER_QUARTER, Key, Melody, Mode


def _analysed(melody: Melody) -> Any:
    """music21's ``analyze('key')`` of the melody's notes (its best key, with the others as
    ``alternateInterpretations``); None for a melody without notes."""
    from music21 import note, stream

    notes = melody.notes_absolute()
    if not notes:
        return None
    part: stream.Stream[note.Note] = stream.Stream()
    for n in notes:
        part.insert(
            n.onset / TICKS_PER_QUARTER,
            note.Note(n.pitch, quarterLength=n.duration / TICKS_PER_QUARTER),
        )
    return part.analyze("key")


def heard_key(melody: Melody) -> Key | None:
    """music21's ``analyze('key')`` on the melody's notes (church modes read as major or
    minor); None for a melody without notes."""
    from cantus.music.music21_io import music21_key_to_key

    best = _analysed(melody)
    return None if best is None else music21_key_to_key(best)


def heard_key_among(melody: Melody, candidates: Sequence[Key]) -> Key | None:
    """Of ``candidates`` (e.g. the major and relative minor a key signature allows), the
    one music21's key analysis of the melody correlates best with; None without notes."""
    from cantus.music.music21_io import music21_key_to_key

    best = _analysed(melody) if candidates else None
    if best is None:
        return None
    correlation: dict[Key, float] = {}
    for interpretation in [best, *best.alternateInterpretations]:
        key = music21_key_to_key(interpretation)
        correlation.setdefault(key, interpretation.correlationCoefficient)
    return max(candidates, key=lambda key: correlation.get(key, -1.0))


def _label(melody: Melody) -> tuple[int, str] | None:
    key = heard_key(melody)
    return None if key is None else (key.tonic, key.mode.value)


def heard_keys(
    tunes: Sequence[Any], cache_dir: Path | None = None, *, workers: int = 2
) -> dict[str, Key]:
    """``tune_id`` → heard key for corpus ``Tune`` s (tunes without notes are left out).

    Analysing ~9,000 tunes takes a few minutes, so the labels are cached in ``cache_dir``
    under a hash of the tunes' ids and notes."""
    digest = hashlib.sha256()
    for tune in tunes:
        digest.update(tune.tune_id.encode())
        for n in tune.melody.notes_absolute():
            digest.update(f"{n.onset},{n.pitch},{n.duration};".encode())
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"heard-keys-{digest.hexdigest()[:16]}.json.gz"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as stream:
                cached = json.load(stream)
            return {tid: Key(tonic, Mode(mode)) for tid, (tonic, mode) in cached.items()}
    melodies = [tune.melody for tune in tunes]
    if workers > 1 and len(melodies) > 50:
        import music21  # noqa: F401  # imported once here so forked workers inherit it

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            labels = pool.map(_label, melodies, chunksize=64)
    else:
        labels = [_label(m) for m in melodies]
    found = {t.tune_id: label for t, label in zip(tunes, labels, strict=True) if label}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as stream:
            json.dump(found, stream)
    return {tid: Key(tonic, Mode(mode)) for tid, (tonic, mode) in found.items()}
