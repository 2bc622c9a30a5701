"""The harmony training data: melodies with a chord on every beat, from the music21 corpus.

Sources (inside the installed music21 wheel, nothing is downloaded):

* ``chorales``: the Bach chorales with four voices (Soprano, Alto, Tenor, Bass). The melody
  is the soprano (``score_to_melody``); the chord of a beat is read from the four voices
  sounding at its onset (music21 parses the score and names the key; the vertical slice
  is read by ``identify_chord``); the four voice pitches are kept too, so Bach's own
  voice leading can be measured. Style ``chorale``.
* ``abc``: the few ABC tunes of the corpus with chord symbols (Nottingham, Ryan's,
  O'Neill's): the chord of a beat is the last symbol at or before it. Style ``folk`` /
  ``celtic``.

Each tune gets an energy level from its note density (tertiles over the whole set), and a
split by the hash of its melody (the same chorale tune harmonised twice stays in one
split). ``load_or_build_dataset`` caches everything as gzip JSON under ``.cantus/harmony``.
Rejected scores are counted by reason.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from cantus.harmony.features import beat_spans
from cantus.harmony.vocabulary import identify_chord
from cantus.music.chords import ChordSymbol
from cantus.music.music21_io import (
    ScoreConversionError,
    abc_header_fields,
    abc_key_names_mode,
    measure_starts,
    music21_key_to_key,
    parse_abc_tune,
    score_to_melody,
)
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Meter, Mode, MusicError, Note
from cantus.music.styles import Energy, Style

CACHE_FORMAT_VERSION = 1
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
TEST_FRACTION, VALID_FRACTION = 0.12, 0.06
_ABC_CHORD_FILES = (
    ("nottingham-dataset", Style.FOLK),
    ("ryansMammoth", Style.CELTIC),
    ("oneills1850", Style.CELTIC),
)


@dataclass(frozen=True)
class HarmonizedTune:
    """A melody with its chords. ``chords[b][k]`` is the chord symbol (text, as
    ``ChordSymbol`` prints it) on beat ``k`` of bar ``b`` or None where no chord could be
    read; ``voices[b][k]`` the (bass, tenor, alto, soprano) MIDI pitches at the beat's
    onset, or None (always None for ABC tunes)."""

    tune_id: str
    source: str
    style: Style
    energy: Energy
    key: Key
    tempo_bpm: float
    bars: tuple[Bar, ...]
    chords: tuple[tuple[str | None, ...], ...]
    voices: tuple[tuple[tuple[int, ...] | None, ...], ...]
    split: str

    @property
    def meter(self) -> Meter:
        return self.bars[0].meter

    def chord_symbols(self) -> list[list[ChordSymbol | None]]:
        return [[ChordSymbol.parse(c) if c else None for c in bar] for bar in self.chords]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.tune_id,
            "source": self.source,
            "style": self.style.value,
            "energy": self.energy.value,
            "key": [self.key.tonic, self.key.mode.value],
            "tempo": self.tempo_bpm,
            "meter": str(self.meter),
            "bars": [[[n.onset, n.pitch, n.duration] for n in bar.notes] for bar in self.bars],
            "chords": [list(bar) for bar in self.chords],
            "voices": [[list(v) if v else None for v in bar] for bar in self.voices],
            "split": self.split,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HarmonizedTune:
        meter = Meter.parse(data["meter"])
        return cls(
            tune_id=data["id"],
            source=data["source"],
            style=Style(data["style"]),
            energy=Energy(data["energy"]),
            key=Key(data["key"][0], Mode(data["key"][1])),
            tempo_bpm=data["tempo"],
            bars=tuple(Bar(meter, tuple(Note(*n) for n in bar)) for bar in data["bars"]),
            chords=tuple(tuple(bar) for bar in data["chords"]),
            voices=tuple(tuple(tuple(v) if v else None for v in bar) for bar in data["voices"]),
            split=data["split"],
        )


def _split_of(bars: tuple[Bar, ...]) -> str:
    melody = ",".join(f"{n.onset}:{n.pitch}:{n.duration}" for bar in bars for n in bar.notes)
    bucket = int(hashlib.sha1(melody.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < TEST_FRACTION:
        return "test"
    if bucket < TEST_FRACTION + VALID_FRACTION:
        return "valid"
    return "train"


def _ticks(quarter_length: Any) -> int:
    return int(Fraction(quarter_length).limit_denominator(10_000) * TICKS_PER_QUARTER)


def _timed_elements(part: Any, starts: list[Fraction]) -> list[tuple[int, int, Any]]:
    """(onset, end, element) in ticks on the melody's bar grid for each note/chord/symbol
    of ``part``, measure by measure."""
    from music21 import stream as m21_stream

    measures = list(part.getElementsByClass(m21_stream.Measure))
    timed = []
    for start, measure in zip(starts, measures, strict=False):
        for element in measure.flatten().notesAndRests:
            onset = int(start) + _ticks(element.offset)
            timed.append((onset, onset + _ticks(element.duration.quarterLength), element))
    return timed


def _voice_parts(score: Any) -> list[Any] | None:
    from music21 import stream as m21_stream

    found: dict[str, Any] = {}
    for part in score.getElementsByClass(m21_stream.Part):
        name = f"{part.partName or ''} {part.id}".lower()
        for voice in VOICE_NAMES:
            if voice in name and voice not in found:
                found[voice] = part
                break
    if len(found) != 4:
        return None
    return [found[voice] for voice in VOICE_NAMES]


def chorale_to_tune(path: str) -> HarmonizedTune:
    """One Bach chorale as a ``HarmonizedTune``; ``ScoreConversionError`` when it lacks
    four named voices or its melody cannot be read."""
    from music21 import corpus
    from music21 import stream as m21_stream

    try:
        score = corpus.parse(path)
    except Exception as error:  # music21 raises many unrelated types on bad input
        raise ScoreConversionError("parse_error", f"music21 cannot parse {path}") from error
    parts = _voice_parts(score)
    if parts is None:
        raise ScoreConversionError("no_four_voices", "no Soprano, Alto, Tenor and Bass parts")
    satb = m21_stream.Score(parts)
    melody = score_to_melody(satb, default_tempo_bpm=80.0)
    meter = melody.meter
    key = music21_key_to_key(satb.analyze("key"))
    lengths = [
        Fraction(m.duration.quarterLength).limit_denominator(10_000) * TICKS_PER_QUARTER
        for m in parts[0].getElementsByClass(m21_stream.Measure)
    ]
    starts = measure_starts(lengths, meter.bar_ticks)
    voices = [
        [(on, end, el) for on, end, el in _timed_elements(part, starts) if el.isNote]
        for part in parts
    ]
    chords: list[tuple[str | None, ...]] = []
    pitches_per_beat: list[tuple[tuple[int, ...] | None, ...]] = []
    for index in range(len(melody.bars)):
        bar_chords, bar_pitches = [], []
        for beat_start, _ in beat_spans(meter):
            tick = index * meter.bar_ticks + beat_start
            sounding = []
            for voice in voices:
                pitch = next((el.pitch.midi for on, end, el in voice if on <= tick < end), None)
                sounding.append(pitch)
            heard = [p for p in sounding if p is not None]
            weights = Counter(p % 12 for p in heard)
            chord = identify_chord(weights, min(heard) % 12 if heard else None)
            bar_chords.append(str(chord) if chord else None)
            satb_pitches = tuple(reversed(sounding))  # bass, tenor, alto, soprano
            bar_pitches.append(satb_pitches if None not in sounding else None)
        chords.append(tuple(bar_chords))
        pitches_per_beat.append(tuple(bar_pitches))
    return HarmonizedTune(
        tune_id=f"chorales/{Path(path).stem}",
        source="chorales",
        style=Style.CHORALE,
        energy=Energy.MID,  # set from the density tertiles once every tune is read
        key=key,
        tempo_bpm=melody.tempo_bpm,
        bars=melody.bars,
        chords=tuple(chords),
        voices=tuple(pitches_per_beat),
        split=_split_of(melody.bars),
    )


def _abc_chord(element: Any) -> ChordSymbol | None:
    try:
        return ChordSymbol.parse(element.figure)
    except (MusicError, AttributeError):
        pitch_classes = Counter(p.pitchClass for p in getattr(element, "pitches", ()))
        root = element.root().pitchClass if getattr(element, "pitches", ()) else None
        return identify_chord(pitch_classes, root)


def abc_tune_to_tune(tune_text: str, tune_id: str, style: Style) -> HarmonizedTune:
    """One chord-annotated ABC tune: the chord of a beat is the last chord symbol at or
    before it. ``ScoreConversionError`` when it has fewer than four chord symbols."""
    from music21 import harmony
    from music21 import stream as m21_stream

    score = parse_abc_tune(tune_text)
    fields = abc_header_fields(tune_text)
    melody = score_to_melody(
        score, default_tempo_bpm=110.0, mode_is_explicit=abc_key_names_mode(fields.get("K", ""))
    )
    meter = melody.meter
    part = score.parts[0] if score.parts else score
    lengths = [
        Fraction(m.duration.quarterLength).limit_denominator(10_000) * TICKS_PER_QUARTER
        for m in part.getElementsByClass(m21_stream.Measure)
    ]
    starts = measure_starts(lengths, meter.bar_ticks)
    symbols: list[tuple[int, ChordSymbol]] = []
    for start, measure in zip(starts, part.getElementsByClass(m21_stream.Measure), strict=False):
        for element in measure.flatten().getElementsByClass(harmony.ChordSymbol):
            chord = _abc_chord(element)
            if chord is not None:
                symbols.append((int(start) + _ticks(element.offset), chord))
    if len(symbols) < 4:
        raise ScoreConversionError("no_chords", "fewer than four chord symbols")
    symbols.sort(key=lambda item: item[0])
    chords = []
    for index in range(len(melody.bars)):
        bar_chords = []
        for beat_start, _ in beat_spans(meter):
            tick = index * meter.bar_ticks + beat_start
            current = [chord for onset, chord in symbols if onset <= tick]
            bar_chords.append(str(current[-1]) if current else None)
        chords.append(tuple(bar_chords))
    return HarmonizedTune(
        tune_id=tune_id,
        source="abc",
        style=style,
        energy=Energy.MID,
        key=melody.key,
        tempo_bpm=melody.tempo_bpm,
        bars=melody.bars,
        chords=tuple(chords),
        voices=tuple(tuple(None for _ in bar) for bar in chords),
        split=_split_of(melody.bars),
    )


def _abc_tunes_with_chords() -> list[tuple[str, str, Style]]:
    from music21 import corpus

    root = Path(corpus.__file__).parent
    found = []
    for folder, style in _ABC_CHORD_FILES:
        for path in sorted((root / folder).glob("*.abc")):
            text = path.read_text(errors="ignore")
            for number, tune in enumerate(re.split(r"\n(?=X:)", text)):
                body = "\n".join(
                    line for line in tune.splitlines() if not re.match(r"^[A-Za-z]:", line)
                )
                if len(re.findall(r'"[A-G][^"]{0,6}"', body)) >= 6:
                    found.append((tune, f"{folder}/{path.stem}/{number}", style))
    return found


def _with_energy(tunes: list[HarmonizedTune]) -> list[HarmonizedTune]:
    """Energy from note density (notes per beat): tertiles over all tunes."""
    from dataclasses import replace

    def density(tune: HarmonizedTune) -> float:
        beats = len(tune.bars) * len(beat_spans(tune.meter))
        return sum(len(bar.notes) for bar in tune.bars) / max(beats, 1)

    ordered = sorted(density(t) for t in tunes)
    low, high = ordered[len(ordered) // 3], ordered[2 * len(ordered) // 3]
    return [
        replace(
            t,
            energy=Energy.LOW
            if density(t) < low
            else Energy.HIGH
            if density(t) >= high
            else Energy.MID,
        )
        for t in tunes
    ]


def build_dataset(*, limit: int | None = None) -> tuple[list[HarmonizedTune], Counter[str]]:
    """Read every source; returns the tunes and the count of rejected scores by reason.
    ``limit`` caps the number of chorales (for quick tests)."""
    from music21 import corpus

    rejected: Counter[str] = Counter()
    tunes = []
    paths = [str(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml"))]
    for path in sorted(paths)[:limit]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                tunes.append(chorale_to_tune(path))
            except ScoreConversionError as error:
                rejected[error.reason] += 1
    for tune_text, tune_id, style in _abc_tunes_with_chords() if limit is None else []:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                tunes.append(abc_tune_to_tune(tune_text, tune_id, style))
            except (ScoreConversionError, MusicError) as error:
                rejected[getattr(error, "reason", "abc_error")] += 1
    return _with_energy(tunes), rejected


def load_or_build_dataset(cache_dir: Path, *, rebuild: bool = False) -> list[HarmonizedTune]:
    """The dataset from ``cache_dir/harmony_dataset.json.gz``, building it on first use."""
    path = Path(cache_dir) / "harmony_dataset.json.gz"
    if path.exists() and not rebuild:
        data = json.loads(gzip.decompress(path.read_bytes()))
        if data.get("version") == CACHE_FORMAT_VERSION:
            return [HarmonizedTune.from_json(t) for t in data["tunes"]]
    started = time.monotonic()
    tunes, rejected = build_dataset()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CACHE_FORMAT_VERSION,
        "rejected": dict(rejected),
        "seconds": round(time.monotonic() - started, 1),
        "tunes": [t.to_json() for t in tunes],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(gzip.compress(json.dumps(payload).encode()))
    temporary.replace(path)
    return tunes


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".cantus/harmony"))
    arguments = parser.parse_args()
    built = load_or_build_dataset(arguments.cache_dir, rebuild=True)
    print(Counter((t.source, t.split) for t in built))
