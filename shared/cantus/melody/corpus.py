"""The melody training corpus: folk, celtic and chorale tunes from the music21 corpus.

Sources (all shipped inside the installed music21 wheel, nothing is downloaded):
``essen`` (Essen folk songs, ABC, style folk), ``oneill`` (O'Neill's 1850, ABC, celtic),
``ryans`` (Ryan's Mammoth Collection, ABC, celtic), ``chorales`` (soprano lines of the Bach
chorales, MusicXML/Humdrum, chorale) and optionally ``midi`` (a folder of MIDI files).

Every tune becomes a quantized monophonic ``Melody`` with one supported meter, pitches in
``PITCH_RANGE`` and at least ``MIN_BARS`` bars, or is rejected with a counted
``RejectReason``. Exact duplicates (same rhythm and intervals) are kept once, so a tune
cannot leak between splits. Splits are by tune and deterministic (sha1 of the tune id).
``load_or_build_corpus`` caches the result as gzip JSON so later runs load in seconds.

Build from a shell: ``python -m cantus.melody.corpus --cache-dir .cantus/corpus``.
"""

from __future__ import annotations

import argparse
import enum
import gzip
import hashlib
import json
import multiprocessing
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cantus.music.notes import Bar, Key, Melody, Meter, Mode, MusicError, Note
from cantus.music.styles import SUPPORTED_METERS, Style

PITCH_RANGE = (36, 96)
"""Lowest and highest MIDI pitch (inclusive) a corpus melody may use."""

MIN_BARS = 4
"""Fewest bars a corpus melody may have (after trailing empty bars are dropped)."""

VELOCITY = 90
"""Velocity of every corpus note."""

DEFAULT_TEMPO_BPM = {Style.FOLK: 100.0, Style.CELTIC: 110.0, Style.CHORALE: 80.0}
"""Tempo (quarter-note bpm) for tunes whose score names none, by style."""

ALL_SOURCES = ("essen", "oneill", "ryans", "chorales")
"""The sources built from the music21 corpus (``midi`` is added by passing ``midi_dir``)."""

CACHE_FORMAT_VERSION = 1
"""Bumped whenever the conversion or the cache layout changes, so stale caches are rebuilt."""

_ABC_SOURCES = {
    "essen": ("essenFolksong", Style.FOLK),
    "oneill": ("oneills1850", Style.CELTIC),
    "ryans": ("ryansMammoth", Style.CELTIC),
}
_SUPPORTED_METER_NAMES = frozenset(str(m) for m in SUPPORTED_METERS)
_ABC_TUNE_START = re.compile(r"^X:", re.MULTILINE)
_ABC_COMMON_METERS = {"C": "4/4", "C|": "2/2"}


class RejectReason(enum.Enum):
    """Why a tune was left out of the corpus."""

    PARSE_ERROR = "parse_error"  # music21 or mido could not read it
    NO_NOTES = "no_notes"
    TOO_FEW_BARS = "too_few_bars"  # fewer than MIN_BARS bars
    UNSUPPORTED_METER = "unsupported_meter"  # free meter, or not in styles.SUPPORTED_METERS
    METER_CHANGE = "meter_change"  # more than one time signature
    IRREGULAR_BARS = "irregular_bars"  # a measure longer than a bar
    OFF_GRID = "off_grid"  # more than 5 % of notes off the sixteenth grid (triplets)
    OUT_OF_RANGE = "out_of_range"  # a pitch outside PITCH_RANGE
    POLYPHONIC = "polyphonic"  # more than 20 % of notes under an independent higher voice
    DUPLICATE = "duplicate"  # same rhythm and intervals as a tune with a smaller id


_CONVERSION_REASONS = {
    "parse_error": RejectReason.PARSE_ERROR,
    "no_notes": RejectReason.NO_NOTES,
    "no_meter": RejectReason.UNSUPPORTED_METER,
    "meter_change": RejectReason.METER_CHANGE,
    "irregular_bars": RejectReason.IRREGULAR_BARS,
    "off_grid": RejectReason.OFF_GRID,
    "polyphonic": RejectReason.POLYPHONIC,
}


@dataclass(frozen=True)
class Tune:
    """One corpus tune. ``tune_id`` is stable across builds (``essen/han1.abc#12``: source,
    file, ABC ``X:`` number); ``source`` one of essen, oneill, ryans, chorales, midi;
    ``style`` a ``Style`` value; ``melody`` quantized to sixteenths, single meter."""

    tune_id: str
    source: str
    style: str
    melody: Melody


@dataclass
class CorpusSplit:
    """Train, validation and test tunes, and a manifest: per split the sorted tune ids and a
    sha256 over them (to check two machines trained on the same data), plus reject counts."""

    train: list[Tune]
    valid: list[Tune]
    test: list[Tune]
    manifest: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, list[Tune]]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


# ---------------------------------------------------------------- compact melody records
# A record is JSON-friendly and cheap to pickle: [tonic, mode, tempo_bpm, "n/d", bars],
# each bar a flat list [onset, pitch, duration, onset, pitch, duration, ...] in ticks.


def melody_to_record(melody: Melody) -> list[Any]:
    """A single-meter melody as a compact JSON-friendly list (velocities are dropped)."""
    bars = [[v for n in bar.notes for v in (n.onset, n.pitch, n.duration)] for bar in melody.bars]
    return [melody.key.tonic, melody.key.mode.value, melody.tempo_bpm, str(melody.meter), bars]


def record_to_melody(record: Sequence[Any]) -> Melody:
    """Inverse of ``melody_to_record``; every note gets velocity ``VELOCITY``."""
    tonic, mode, tempo_bpm, meter_name, bars = record
    meter = Meter.parse(meter_name)
    return Melody(
        Key(tonic, Mode(mode)),
        tempo_bpm,
        tuple(
            Bar(
                meter,
                tuple(
                    Note(flat[i], flat[i + 1], flat[i + 2], VELOCITY)
                    for i in range(0, len(flat), 3)
                ),
            )
            for flat in bars
        ),
    )


# ---------------------------------------------------------------- jobs (one per tune/file)


@dataclass(frozen=True)
class _Job:
    tune_id: str
    source: str
    style: str
    kind: str  # "abc" (payload: tune text), "score" or "midi" (payload: file path)
    payload: str


def music21_corpus_dir() -> Path:
    """The ``corpus`` folder of the installed music21 package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise MusicError("music21 is not installed: the corpus is built from its bundled files")
    return Path(next(iter(spec.submodule_search_locations))) / "corpus"


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_abc_file(text: str) -> list[tuple[str, str]]:
    """The tunes of an ABC file as (X: number, tune text); the file header (text before the
    first ``X:``) is prepended to every tune so default fields still apply."""
    starts = [m.start() for m in _ABC_TUNE_START.finditer(text)]
    if not starts:
        return []
    header = text[: starts[0]]
    tunes = []
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        body = text[begin:end]
        number = body[2 : body.find("\n") if "\n" in body else None].strip() or "?"
        tunes.append((number, header + body))
    return tunes


def _abc_jobs(source: str, limit: int | None) -> list[_Job]:
    folder, style = _ABC_SOURCES[source]
    jobs: list[_Job] = []
    for path in sorted((music21_corpus_dir() / folder).glob("*.abc")):
        # test*.abc in the Essen folder are music21's parser fixtures, copies of real tunes.
        if source == "essen" and path.name.startswith("test"):
            continue
        seen: Counter[str] = Counter()
        for number, text in split_abc_file(_read_text(path)):
            seen[number] += 1
            suffix = f"-{seen[number]}" if seen[number] > 1 else ""
            jobs.append(
                _Job(f"{source}/{path.name}#{number}{suffix}", source, style.value, "abc", text)
            )
    return jobs[:limit] if limit is not None else jobs


def _chorale_jobs(limit: int | None) -> list[_Job]:
    folder = music21_corpus_dir() / "bach"
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".mxl", ".xml", ".krn", ".musicxml"))
    jobs = [
        _Job(f"chorales/{p.name}", "chorales", Style.CHORALE.value, "score", str(p)) for p in paths
    ]
    return jobs[:limit] if limit is not None else jobs


def _midi_jobs(midi_dir: Path, style: str, limit: int | None) -> list[_Job]:
    paths = sorted(
        p
        for p in Path(midi_dir).rglob("*")
        if p.is_file() and p.suffix.lower() in (".mid", ".midi")
    )
    jobs = [
        _Job(f"midi/{p.relative_to(midi_dir).as_posix()}", "midi", style, "midi", str(p))
        for p in paths
    ]
    return jobs[:limit] if limit is not None else jobs


def _abc_header_meter(tune_text: str) -> str | None:
    """The ``M:`` value of an ABC tune normalised to N/D (``C`` is 4/4), or None if absent."""
    from cantus.music.music21_io import abc_header_fields

    value = abc_header_fields(tune_text).get("M")
    if value is None:
        return None
    value = value.strip().rstrip("]").strip()
    return _ABC_COMMON_METERS.get(value, value)


def _check_melody(melody: Melody) -> RejectReason | None:
    if str(melody.meter) not in _SUPPORTED_METER_NAMES:
        return RejectReason.UNSUPPORTED_METER
    if len({bar.meter for bar in melody.bars}) > 1:
        return RejectReason.METER_CHANGE
    if len(melody.bars) < MIN_BARS:
        return RejectReason.TOO_FEW_BARS
    low, high = PITCH_RANGE
    pitches = [n.pitch for bar in melody.bars for n in bar.notes]
    if not pitches:
        return RejectReason.NO_NOTES
    if min(pitches) < low or max(pitches) > high:
        return RejectReason.OUT_OF_RANGE
    return None


def _convert(job: _Job) -> tuple[_Job, list[Any] | None, RejectReason | None]:
    """Worker: one job to (job, melody record, None) or (job, None, reject reason)."""
    from cantus.music import music21_io

    default_tempo = DEFAULT_TEMPO_BPM[Style(job.style)]
    try:
        if job.kind == "abc":
            meter = _abc_header_meter(job.payload)
            # Reject unsupported meters before parsing: parsing is most of the cost.
            if meter is not None and meter not in _SUPPORTED_METER_NAMES:
                return job, None, RejectReason.UNSUPPORTED_METER
            melody = music21_io.abc_tune_to_melody(job.payload, default_tempo_bpm=default_tempo)
        elif job.kind == "score":
            from music21 import converter

            try:
                score = converter.parse(job.payload, forceSource=True)
            except Exception as error:  # music21 raises many unrelated types
                raise music21_io.ScoreConversionError("parse_error", str(error)) from error
            melody = music21_io.score_to_melody(score, default_tempo_bpm=default_tempo)
        else:
            from cantus.music.midi_io import midi_bytes_to_melody

            melody = midi_bytes_to_melody(
                Path(job.payload).read_bytes(), default_tempo_bpm=default_tempo
            )
    except music21_io.ScoreConversionError as error:
        return job, None, _CONVERSION_REASONS.get(error.reason, RejectReason.PARSE_ERROR)
    except MusicError:
        # MidiError and invalid values built from a malformed score.
        return job, None, RejectReason.PARSE_ERROR
    except Exception:  # music21 fails in odd ways on odd input; one bad tune must not stop a build
        return job, None, RejectReason.PARSE_ERROR
    reason = _check_melody(melody)
    if reason is not None:
        return job, None, reason
    return job, melody_to_record(melody), None


def convert_abc_tune(tune_text: str, *, style: str = Style.FOLK.value) -> Melody | RejectReason:
    """One ABC tune (text from ``X:`` on) converted exactly as the corpus build does: the
    corpus melody, or the reason the build would reject it."""
    _, record, reason = _convert(_Job("abc#1", "abc", Style(style).value, "abc", tune_text))
    if record is None:
        return reason or RejectReason.PARSE_ERROR
    return record_to_melody(record)


def _worker_init() -> None:
    # music21 warns about every odd ABC construct; thousands of warnings help no one.
    warnings.simplefilter("ignore")


def melody_fingerprint(melody: Melody) -> str:
    """A hash of a melody's meter, rhythm and intervals (transposition-independent), used to
    find duplicate tunes."""
    notes = melody.notes_absolute()
    first = notes[0].pitch if notes else 0
    text = (
        str(melody.meter)
        + ";"
        + ",".join(f"{n.onset}:{n.pitch - first}:{n.duration}" for n in notes)
    )
    return hashlib.sha1(text.encode()).hexdigest()


def _log(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def build_corpus(
    sources: Sequence[str] = ALL_SOURCES,
    *,
    midi_dir: Path | None = None,
    midi_style: str = Style.FOLK.value,
    limit_per_source: int | None = None,
    workers: int = 2,
    progress: bool = True,
) -> tuple[list[Tune], Counter[RejectReason]]:
    """Convert every tune of ``sources`` (see ``ALL_SOURCES``; ``midi`` is added when
    ``midi_dir`` is given, its tunes get ``midi_style``). ``limit_per_source`` takes only the
    first N candidate tunes of each source (in file order), for tests and quick runs.
    ``workers`` processes parse in parallel (1: in this process). Returns the accepted tunes
    sorted by id and the count of rejected tunes by reason. Progress goes to stderr."""
    unknown = set(sources) - set(ALL_SOURCES) - {"midi"}
    if unknown:
        raise MusicError(
            f"unknown corpus sources {sorted(unknown)}: expected some of {ALL_SOURCES}"
        )
    jobs: list[_Job] = []
    # Slow whole-file jobs first, so the workers do not wait on one straggler at the end.
    if "chorales" in sources:
        jobs += _chorale_jobs(limit_per_source)
    for source in ("essen", "oneill", "ryans"):
        if source in sources:
            jobs += _abc_jobs(source, limit_per_source)
    if midi_dir is not None:
        jobs += _midi_jobs(midi_dir, Style(midi_style).value, limit_per_source)

    started = time.monotonic()
    records: list[tuple[_Job, list[Any]]] = []
    rejects: Counter[RejectReason] = Counter()
    if progress:
        _log(f"converting {len(jobs)} candidate tunes with {workers} worker(s)")

    def collect(results: Iterable[tuple[_Job, list[Any] | None, RejectReason | None]]) -> None:
        for done, (job, record, reason) in enumerate(results, start=1):
            if record is not None:
                records.append((job, record))
            elif reason is not None:
                rejects[reason] += 1
            if progress and (done % 500 == 0 or done == len(jobs)):
                elapsed = time.monotonic() - started
                _log(
                    f"{done}/{len(jobs)} done, {len(records)} kept, "
                    f"{sum(rejects.values())} rejected, {elapsed:.0f} s"
                )

    if workers <= 1 or len(jobs) < 2:
        with warnings.catch_warnings():
            _worker_init()
            collect(map(_convert, jobs))
    else:
        import music21  # noqa: F401  # imported once here so forked workers inherit it

        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_worker_init) as pool:
            collect(pool.imap_unordered(_convert, jobs, chunksize=8))

    tunes: list[Tune] = []
    seen_fingerprints: set[str] = set()
    for job, record in sorted(records, key=lambda item: item[0].tune_id):
        melody = record_to_melody(record)
        fingerprint = melody_fingerprint(melody)
        if fingerprint in seen_fingerprints:
            rejects[RejectReason.DUPLICATE] += 1
            continue
        seen_fingerprints.add(fingerprint)
        tunes.append(Tune(job.tune_id, job.source, job.style, melody))
    if progress:
        _log(
            f"built {len(tunes)} tunes, rejected {sum(rejects.values())} "
            f"in {time.monotonic() - started:.0f} s"
        )
    return tunes, rejects


# ---------------------------------------------------------------- splits and augmentation


def _split_position(tune_id: str) -> float:
    """A stable pseudo-random number in [0, 1) from the tune id."""
    return int(hashlib.sha1(tune_id.encode()).hexdigest()[:12], 16) / 16**12


def _ids_digest(tune_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(tune_ids).encode()).hexdigest()


def split_corpus(
    tunes: Iterable[Tune],
    *,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    rejects: Counter[RejectReason] | None = None,
) -> CorpusSplit:
    """Split tunes into train/valid/test by sha1 of the tune id, so a tune's split never
    depends on which other tunes exist. Fractions are 0..1 of the tunes (approximately).
    The manifest holds, per split, the sorted ids, their count and a sha256 over them, and
    the reject counts when given."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise MusicError(
            f"split fractions must be >= 0 and sum below 1, got valid={valid_fraction}, "
            f"test={test_fraction}"
        )
    split = CorpusSplit([], [], [])
    for tune in sorted(tunes, key=lambda t: t.tune_id):
        position = _split_position(tune.tune_id)
        if position < test_fraction:
            split.test.append(tune)
        elif position < test_fraction + valid_fraction:
            split.valid.append(tune)
        else:
            split.train.append(tune)
    manifest: dict[str, Any] = {}
    for name, members in split.splits().items():
        ids = [t.tune_id for t in members]
        manifest[name] = {"count": len(ids), "sha256": _ids_digest(ids), "tune_ids": ids}
    manifest["rejects"] = {
        r.value: n for r, n in sorted((rejects or {}).items(), key=lambda x: x[0].value)
    }
    split.manifest = manifest
    return split


def transpose_melody(melody: Melody, semitones: int) -> Melody:
    """The melody shifted by ``semitones`` (key too); ``MusicError`` if a pitch leaves 0..127."""
    return Melody(
        melody.key.transpose(semitones),
        melody.tempo_bpm,
        tuple(
            Bar(bar.meter, tuple(replace(n, pitch=n.pitch + semitones) for n in bar.notes))
            for bar in melody.bars
        ),
    )


def transpositions(tune: Tune, semitones: Iterable[int] = range(-5, 7)) -> Iterator[Tune]:
    """Key-transposition augmentation (for the train split only): the tune shifted by each
    of ``semitones``, skipping shifts that would leave ``PITCH_RANGE``. Shift 0 yields the
    tune itself; others get ids like ``essen/han1.abc#12^+3``."""
    pitches = [n.pitch for bar in tune.melody.bars for n in bar.notes]
    low, high = PITCH_RANGE
    for shift in semitones:
        if shift == 0:
            yield tune
        elif pitches and min(pitches) + shift >= low and max(pitches) + shift <= high:
            yield Tune(
                f"{tune.tune_id}^{shift:+d}",
                tune.source,
                tune.style,
                transpose_melody(tune.melody, shift),
            )


# ---------------------------------------------------------------- statistics


def corpus_statistics(split: CorpusSplit) -> dict[str, Any]:
    """Counts for a split: per split the tunes, bars and notes and tunes per source; over all
    splits the histograms of keys (``"G major"``), meters (``"6/8"``) and styles; rejects."""
    per_split: dict[str, Any] = {}
    keys: Counter[str] = Counter()
    meters: Counter[str] = Counter()
    styles: Counter[str] = Counter()
    for name, tunes in split.splits().items():
        per_split[name] = {
            "tunes": len(tunes),
            "bars": sum(len(t.melody.bars) for t in tunes),
            "notes": sum(len(b.notes) for t in tunes for b in t.melody.bars),
            "sources": dict(sorted(Counter(t.source for t in tunes).items())),
        }
        keys.update(t.melody.key.name for t in tunes)
        meters.update(str(t.melody.meter) for t in tunes)
        styles.update(t.style for t in tunes)
    return {
        "splits": per_split,
        "keys": dict(keys.most_common()),
        "meters": dict(meters.most_common()),
        "styles": dict(styles.most_common()),
        "rejects": dict(split.manifest.get("rejects", {})),
    }


def format_statistics(stats: dict[str, Any]) -> str:
    """``corpus_statistics`` as a short plain-text report."""
    lines = [f"{'split':<6} {'tunes':>7} {'bars':>8} {'notes':>9}  sources"]
    for name, row in stats["splits"].items():
        sources = ", ".join(f"{s} {n}" for s, n in row["sources"].items())
        lines.append(f"{name:<6} {row['tunes']:>7} {row['bars']:>8} {row['notes']:>9}  {sources}")

    def histogram(title: str, counts: dict[str, int]) -> str:
        return f"{title}: " + ", ".join(f"{k} {n}" for k, n in counts.items())

    lines.append(histogram("styles", stats["styles"]))
    lines.append(histogram("meters", stats["meters"]))
    lines.append(histogram("keys", stats["keys"]))
    lines.append(histogram("rejects", stats["rejects"]) if stats["rejects"] else "rejects: none")
    return "\n".join(lines)


# ---------------------------------------------------------------- cache


def _cache_path(cache_dir: Path, build_kwargs: dict[str, Any]) -> Path:
    """The cache file for ``build_corpus(**build_kwargs)``: named by a hash of the arguments
    that change the result, with defaults filled in, so equal builds share one file."""
    import inspect

    arguments = inspect.signature(build_corpus).bind(**build_kwargs)
    arguments.apply_defaults()
    # Worker count and progress output do not change the result, so they are not in the key.
    relevant = {k: v for k, v in arguments.arguments.items() if k not in ("workers", "progress")}
    relevant["sources"] = list(relevant["sources"])
    relevant["midi_style"] = Style(relevant["midi_style"]).value
    if relevant["midi_dir"] is None:
        # Builds made before MIDI support had no such key; keep their cache names valid.
        del relevant["midi_dir"], relevant["midi_style"]
    else:
        relevant["midi_dir"] = str(Path(relevant["midi_dir"]).resolve())
    if relevant["limit_per_source"] is None:
        del relevant["limit_per_source"]
    normalised = json.dumps({"format": CACHE_FORMAT_VERSION, **relevant}, sort_keys=True)
    digest = hashlib.sha1(normalised.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"corpus-{digest}.json.gz"


def save_corpus(path: Path, tunes: Sequence[Tune], rejects: Counter[RejectReason]) -> None:
    """Write tunes and reject counts as gzip JSON (atomically: temp file, then rename)."""
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "rejects": {r.value: n for r, n in rejects.items()},
        "tunes": [[t.tune_id, t.source, t.style, melody_to_record(t.melody)] for t in tunes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with gzip.open(temporary, "wt", encoding="utf-8", compresslevel=6) as stream:
        json.dump(payload, stream, separators=(",", ":"))
    temporary.replace(path)


def load_corpus(path: Path) -> tuple[list[Tune], Counter[RejectReason]]:
    """Read a file written by ``save_corpus``."""
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        payload = json.load(stream)
    if payload.get("format") != CACHE_FORMAT_VERSION:
        raise MusicError(
            f"corpus cache {path} has format {payload.get('format')}, "
            f"expected {CACHE_FORMAT_VERSION}"
        )
    tunes = [
        Tune(tid, source, style, record_to_melody(rec))
        for tid, source, style, rec in payload["tunes"]
    ]
    rejects = Counter({RejectReason(r): n for r, n in payload["rejects"].items()})
    return tunes, rejects


def load_or_build_corpus(cache_dir: Path, **build_kwargs: Any) -> CorpusSplit:
    """The split corpus, from ``cache_dir`` when a cache for the same ``build_corpus``
    arguments exists, else built (and cached, with ``manifest.json`` and ``statistics.txt``
    beside it for people). Default split fractions (5 % valid, 5 % test)."""
    cache_dir = Path(cache_dir)
    path = _cache_path(cache_dir, build_kwargs)
    if path.exists():
        started = time.monotonic()
        tunes, rejects = load_corpus(path)
        if build_kwargs.get("progress", True):
            _log(f"loaded {len(tunes)} tunes from {path} in {time.monotonic() - started:.1f} s")
        return split_corpus(tunes, rejects=rejects)
    tunes, rejects = build_corpus(**build_kwargs)
    save_corpus(path, tunes, rejects)
    split = split_corpus(tunes, rejects=rejects)
    (cache_dir / "manifest.json").write_text(json.dumps(split.manifest, indent=1))
    (cache_dir / "statistics.txt").write_text(format_statistics(corpus_statistics(split)) + "\n")
    return split


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or load) the cached corpus and print its statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".cantus/corpus"))
    parser.add_argument("--sources", nargs="+", default=list(ALL_SOURCES))
    parser.add_argument("--midi-dir", type=Path, default=None)
    parser.add_argument("--limit-per-source", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {"sources": tuple(args.sources), "workers": args.workers}
    if args.midi_dir is not None:
        kwargs["midi_dir"] = args.midi_dir
    if args.limit_per_source is not None:
        kwargs["limit_per_source"] = args.limit_per_source
    split = load_or_build_corpus(args.cache_dir, **kwargs)
    print(format_statistics(corpus_statistics(split)))


if __name__ == "__main__":
    main()
