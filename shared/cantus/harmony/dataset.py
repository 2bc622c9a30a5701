"""The harmony training data: melodies with a chord on every beat, all read offline.

Sources with real chord annotations (``labels == "annotated"``):

* ``chorales``: the Bach chorales with four voices (Soprano, Alto, Tenor, Bass) in the
  music21 wheel's corpus (music21 is BSD-3-Clause; the chorale encodings are public
  domain). The melody is the soprano (``score_to_melody``); the chord of a beat is read
  from the four voices sounding at its onset (music21 parses the score and names the key;
  the vertical slice is read by ``identify_chord``); the four voice pitches are kept too,
  so Bach's own voice leading can be measured. Style ``chorale``. 350-odd tunes.
* ``abc``: ABC tunes with chord symbols (the chord of a beat is the last symbol at or
  before it; at least six symbols): in the music21 corpus, the Nottingham Music Database
  sample (``nottingham-dataset``, public domain / CC0 as music21 ships it; style
  ``folk``) and the few chorded tunes of Ryan's Mammoth Collection and O'Neill's Music of
  Ireland (public domain; ``celtic``); in Debian's ``abcmidi`` package (GPL-2+), the
  example tunes of ``/usr/share/doc/abcmidi/examples`` (``demo.abc`` and
  ``coleraine.abc``: Irish and English dance tunes, ``celtic``; the klezmer tunes
  ``baym_rebin``, ``araber``, ``dergasn``: ``folk``); in Debian's ``abcm2ps`` package
  (GPL-3+), the tunes of ``/usr/share/doc/abcm2ps/examples`` ``accordion.abc`` (Breton
  dances) and ``chinese.abc`` (a Taiwanese popular song), ``folk``. Both Debian packages
  are in the Makefile's ``DEBIAN_PACKAGES``; a missing file is skipped and counted.
* ``leadsheet``: the two lead sheets of the music21 corpus (``leadSheet/*.mxl``: Foster's
  "Jeanie with the Light Brown Hair", Berlin's "Alexander's Ragtime Band", public
  domain), read like the ABC tunes from their chord symbols; ``folk``.

Every real annotated tune that is not a chorale goes to the test split: about twenty
exist, too few to train a style on, so they measure how the model's ``folk`` and
``celtic`` chords compare with real ones.

Derived labels (``labels == "derived"``): the folk and celtic melodies the model trains on
are the melody corpus's tunes (``cantus.melody.corpus``: Essen folk songs as ``folk``,
O'Neill's and Ryan's tunes as ``celtic``, all in the music21 wheel), up to
``DERIVED_TUNES_PER_STYLE`` of each, chosen by a hash of the tune id; their chords are
*not* annotations but the analysis of the tune's own notes in
``cantus.harmony.analysis`` (documented there). A melody equal to an annotated one is
left out.

Each tune gets an energy level from its note density (notes per beat): tertiles within
its style. The split of an annotated chorale or a derived tune is by the hash of its
melody (the same chorale tune harmonised twice stays in one split).
``load_or_build_dataset`` caches everything as gzip JSON under ``.cantus/harmony``.
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
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from cantus.harmony.features import beat_spans
from cantus.harmony.vocabulary import identify_chord
from cantus.music.chords import ChordQuality, ChordSymbol
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

CACHE_FORMAT_VERSION = 2
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
TEST_FRACTION, VALID_FRACTION = 0.12, 0.06
DERIVED_TUNES_PER_STYLE = 1000
"""Corpus melodies per style (folk, celtic) labelled by ``cantus.harmony.analysis``."""
ANNOTATED, DERIVED = "annotated", "derived"
"""Where a tune's chords come from: real chord symbols or voices, or the analysis."""
_MUSIC21_ABC_FOLDERS = (
    ("nottingham-dataset", Style.FOLK),
    ("ryansMammoth", Style.CELTIC),
    ("oneills1850", Style.CELTIC),
)
DEBIAN_ABC_FILES = (
    ("/usr/share/doc/abcmidi/examples/demo.abc", Style.CELTIC),
    ("/usr/share/doc/abcmidi/examples/coleraine.abc", Style.CELTIC),
    ("/usr/share/doc/abcmidi/examples/baym_rebin.abc", Style.FOLK),
    ("/usr/share/doc/abcmidi/examples/araber.abc", Style.FOLK),
    ("/usr/share/doc/abcmidi/examples/dergasn.abc", Style.FOLK),
    ("/usr/share/doc/abcm2ps/examples/accordion.abc", Style.FOLK),
    ("/usr/share/doc/abcm2ps/examples/chinese.abc", Style.FOLK),
)
"""Chord-annotated example tunes of the Debian ``abcmidi`` and ``abcm2ps`` packages (the
packages' other examples are notation demos, not tunes)."""
_MIN_CHORD_SYMBOLS = 6
_DERIVED_SOURCES = {"essen": Style.FOLK, "oneill": Style.CELTIC, "ryans": Style.CELTIC}


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
    labels: str = ANNOTATED

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
            "labels": self.labels,
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
            labels=data.get("labels", ANNOTATED),
        )


def _melody_text(bars: tuple[Bar, ...]) -> str:
    return ",".join(f"{n.onset}:{n.pitch}:{n.duration}" for bar in bars for n in bar.notes)


def _split_of(bars: tuple[Bar, ...]) -> str:
    melody = _melody_text(bars)
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


def music21_figure_to_symbol(figure: str) -> str:
    """A music21 chord-symbol figure in lead-sheet spelling: music21 writes flats as ``-``
    (``B-7``, ``F/E-``), which ``ChordSymbol.parse`` would read as minor."""
    return re.sub(r"(?<=[A-G])-", "b", figure)


def _abc_chord(element: Any) -> ChordSymbol | None:
    try:
        return ChordSymbol.parse(music21_figure_to_symbol(element.figure))
    except (MusicError, AttributeError):
        pitch_classes = Counter(p.pitchClass for p in getattr(element, "pitches", ()))
        root = element.root().pitchClass if getattr(element, "pitches", ()) else None
        return identify_chord(pitch_classes, root)


def _chord_symbol_tune(
    score: Any, melody: Any, tune_id: str, source: str, style: Style
) -> HarmonizedTune:
    """A melody read from ``score`` with the chords of its chord symbols: the chord of a
    beat is the last symbol at or before it. ``ScoreConversionError`` when the score has
    fewer than ``_MIN_CHORD_SYMBOLS`` readable symbols."""
    from music21 import harmony
    from music21 import stream as m21_stream

    meter = melody.meter
    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass(m21_stream.Measure))
    lengths = [
        Fraction(m.duration.quarterLength).limit_denominator(10_000) * TICKS_PER_QUARTER
        for m in measures
    ]
    starts = measure_starts(lengths, meter.bar_ticks)
    symbols: list[tuple[int, ChordSymbol]] = []
    for start, measure in zip(starts, measures, strict=False):
        for element in measure.flatten().getElementsByClass(harmony.ChordSymbol):
            chord = _abc_chord(element)
            if chord is not None:
                symbols.append((int(start) + _ticks(element.offset), chord))
    if len(symbols) < _MIN_CHORD_SYMBOLS:
        raise ScoreConversionError("no_chords", f"fewer than {_MIN_CHORD_SYMBOLS} chord symbols")
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
        source=source,
        style=style,
        energy=Energy.MID,
        key=melody.key,
        tempo_bpm=melody.tempo_bpm,
        bars=melody.bars,
        chords=tuple(chords),
        voices=tuple(tuple(None for _ in bar) for bar in chords),
        split="test",  # too few to train on: they measure the folk and celtic styles
    )


def abc_tune_to_tune(tune_text: str, tune_id: str, style: Style) -> HarmonizedTune:
    """One chord-annotated ABC tune (see ``_chord_symbol_tune``)."""
    score = parse_abc_tune(tune_text)
    fields = abc_header_fields(tune_text)
    melody = score_to_melody(
        score, default_tempo_bpm=110.0, mode_is_explicit=abc_key_names_mode(fields.get("K", ""))
    )
    return _chord_symbol_tune(score, melody, tune_id, "abc", style)


def lead_sheet_to_tune(path: str) -> HarmonizedTune:
    """One MusicXML lead sheet of the music21 corpus (melody and chord symbols)."""
    from music21 import corpus

    try:
        score = corpus.parse(path)
    except Exception as error:  # music21 raises many unrelated types on bad input
        raise ScoreConversionError("parse_error", f"music21 cannot parse {path}") from error
    melody = score_to_melody(score, default_tempo_bpm=100.0)
    tune_id = f"leadSheet/{Path(path).stem}"
    tune = _chord_symbol_tune(score, melody, tune_id, "leadsheet", Style.FOLK)
    return replace(tune, key=key_from_final_chord(tune) or tune.key)


def key_from_final_chord(tune: HarmonizedTune) -> Key | None:
    """The key a lead sheet ends in: the root of its last chord, minor for a minor chord.
    The corpus lead sheets carry no key signature, and their melody alone reads as the
    dominant's key (``score_to_melody``); None when the tune has no chord."""
    last = next((c for bar in reversed(tune.chord_symbols()) for c in reversed(bar) if c), None)
    if last is None:
        return None
    minor = last.quality in (ChordQuality.MINOR, ChordQuality.MINOR_7)
    return Key(last.root, Mode.MINOR if minor else Mode.MAJOR)


def _chorded_abc_tunes(text: str) -> list[tuple[int, str]]:
    """(index, text) of each tune of an ABC file with enough chord symbols in its body."""
    found = []
    for number, tune in enumerate(re.split(r"\n(?=X:)", text)):
        body = "\n".join(line for line in tune.splitlines() if not re.match(r"^[A-Za-z]:", line))
        if len(re.findall(r'"[A-G][^"]{0,6}"', body)) >= _MIN_CHORD_SYMBOLS:
            found.append((number, tune))
    return found


def _abc_tunes_with_chords(rejected: Counter[str]) -> list[tuple[str, str, Style]]:
    """(tune text, tune id, style) of every chord-annotated ABC tune of the sources; a
    missing Debian file is counted in ``rejected``."""
    from music21 import corpus

    root = Path(corpus.__file__).parent
    files = [
        (path, f"{folder}/{path.stem}", style)
        for folder, style in _MUSIC21_ABC_FOLDERS
        for path in sorted((root / folder).glob("*.abc"))
    ]
    for name, style in DEBIAN_ABC_FILES:
        path = Path(name)
        if not path.exists():
            rejected["debian_file_missing"] += 1
            continue
        files.append((path, f"debian/{path.parent.parent.name}/{path.stem}", style))
    found = []
    for path, prefix, style in files:
        for number, tune in _chorded_abc_tunes(path.read_text(errors="ignore")):
            found.append((tune, f"{prefix}/{number}", style))
    return found


def _derived_tunes(corpus_dir: Path, known_melodies: set[str]) -> list[HarmonizedTune]:
    """Up to ``DERIVED_TUNES_PER_STYLE`` melody-corpus tunes per style with chords from
    ``cantus.harmony.analysis``; melodies in ``known_melodies`` are left out."""
    from cantus.harmony.analysis import analyse_chords
    from cantus.melody.corpus import load_or_build_corpus

    corpus = load_or_build_corpus(corpus_dir, progress=False)
    candidates = [
        tune
        for split in corpus.splits().values()
        for tune in split
        if tune.source in _DERIVED_SOURCES
    ]
    candidates.sort(key=lambda t: hashlib.sha1(t.tune_id.encode()).hexdigest())
    taken: Counter[Style] = Counter()
    tunes = []
    for tune in candidates:
        style = _DERIVED_SOURCES[tune.source]
        melody = tune.melody
        if taken[style] >= DERIVED_TUNES_PER_STYLE or _melody_text(melody.bars) in known_melodies:
            continue
        taken[style] += 1
        chords = analyse_chords(melody.bars, melody.key, style)
        tunes.append(
            HarmonizedTune(
                tune_id=f"derived/{tune.tune_id}",
                source=tune.source,
                style=style,
                energy=Energy.MID,
                key=melody.key,
                tempo_bpm=melody.tempo_bpm,
                bars=melody.bars,
                chords=tuple(tuple(str(c) for c in bar) for bar in chords),
                voices=tuple(tuple(None for _ in bar) for bar in chords),
                split=_split_of(melody.bars),
                labels=DERIVED,
            )
        )
    return tunes


def note_density(tune: HarmonizedTune) -> float:
    """Notes per beat."""
    beats = len(tune.bars) * len(beat_spans(tune.meter))
    return sum(len(bar.notes) for bar in tune.bars) / max(beats, 1)


def _with_energy(tunes: list[HarmonizedTune]) -> list[HarmonizedTune]:
    """Energy from note density (notes per beat): tertiles within each style, so every
    style has tunes at every level."""
    thresholds = {}
    for style in {t.style for t in tunes}:
        ordered = sorted(note_density(t) for t in tunes if t.style is style)
        thresholds[style] = (ordered[len(ordered) // 3], ordered[2 * len(ordered) // 3])

    def level(tune: HarmonizedTune) -> Energy:
        low, high = thresholds[tune.style]
        density = note_density(tune)
        return Energy.LOW if density < low else Energy.HIGH if density >= high else Energy.MID

    return [replace(t, energy=level(t)) for t in tunes]


def build_dataset(
    *, limit: int | None = None, corpus_dir: Path | None = None
) -> tuple[list[HarmonizedTune], Counter[str]]:
    """Read every source; returns the tunes and the count of rejected scores by reason.
    ``limit`` caps the number of chorales and skips the other sources (for quick tests);
    ``corpus_dir`` is the melody corpus cache (``cantus.melody.corpus``) the derived
    tunes come from (None: no derived tunes)."""
    from music21 import corpus

    rejected: Counter[str] = Counter()
    tunes = []
    paths = [str(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(paths)[:limit]:
            try:
                tunes.append(chorale_to_tune(path))
            except ScoreConversionError as error:
                rejected[error.reason] += 1
        if limit is not None:
            return _with_energy(tunes), rejected
        for tune_text, tune_id, style in _abc_tunes_with_chords(rejected):
            try:
                tunes.append(abc_tune_to_tune(tune_text, tune_id, style))
            except (ScoreConversionError, MusicError) as error:
                rejected[getattr(error, "reason", "abc_error")] += 1
        lead_sheets = [str(p) for p in corpus.getPaths() if "leadSheet" in str(p)]
        for path in sorted(p for p in lead_sheets if p.endswith(".mxl")):
            try:
                tunes.append(lead_sheet_to_tune(path))
            except (ScoreConversionError, MusicError) as error:
                rejected[getattr(error, "reason", "lead_sheet_error")] += 1
    if corpus_dir is not None:
        known = {_melody_text(t.bars) for t in tunes}
        tunes.extend(_derived_tunes(corpus_dir, known))
    return _with_energy(tunes), rejected


def load_or_build_dataset(cache_dir: Path, *, rebuild: bool = False) -> list[HarmonizedTune]:
    """The dataset from ``cache_dir/harmony_dataset.json.gz``, building it on first use."""
    path = Path(cache_dir) / "harmony_dataset.json.gz"
    if path.exists() and not rebuild:
        data = json.loads(gzip.decompress(path.read_bytes()))
        if data.get("version") == CACHE_FORMAT_VERSION:
            return [HarmonizedTune.from_json(t) for t in data["tunes"]]
    started = time.monotonic()
    tunes, rejected = build_dataset(corpus_dir=Path(cache_dir).parent / "corpus")
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
    print(Counter((t.style.value, t.labels, t.split) for t in built))
