"""``cantus eval realness``: sample melodies from the shipped checkpoint in process and compare
them with held-out real tunes (``realness_report``), then write the Markdown report.

What is sampled. ``pieces`` melodies, compared over their first ``n_bars`` bars, the asked
keys cycling through all 24 (major and minor alternating, so each mode gets half). Each piece
borrows its other controls (meter, tempo, style and energy) from a held-out real tune in its
mode, drawn at random: the generated set has the real tunes' mix of meters and styles, so the
classifier cannot tell the sets apart by their mix. It borrows whether it ends inside the
window too: ``n_bars`` bars long where the tune is, ``ENDING_CLEARANCE_BARS`` longer where the
tune goes on (86 % of the held-out tunes at 16 bars), so a window holds a closing cadence as
often in both sets. Sampling is the melody service's (``served_sampling`` with the default
settings: top-p 1 (0.95 before session 19) at temperature 1, no scale mask since session 7 of
#14, cadences at phrase ends), through the batched ``DecodeEngine`` with a bf16 KV cache; the
tonal emphasis and the classifier-free guidance on the key are parameters (the report records
them; guidance defaults to the service's where the checkpoint was trained for it). With
``composer="form"`` (the default) each piece is composed as the service composes it: along
the form plan ``auto`` draws for it (``cantus.melody.phrase_patterns``: the phrase pattern
of a piece of ``n_bars``, as often as the corpus's tunes of its style and meter are shaped
so; a piece that goes on past the window goes on with new phrases), phrase by phrase with
cadences, repeats copied and returns varied (``cantus.melody.local_composition``);
with ``composer="model"`` a piece is decoded freely in one request, which is what the model
itself does.

What it is compared with. The valid and test splits (never trained on), each tune labelled
with the key music21 hears in it (the labels the model trains on), cut to the same window.

Structure bands of the corpus. Besides the comparison, the report gives the real tunes'
band of each structure measure at 16 and 32 bars: stored (repeat signs not expanded), and
for the held-out celtic tunes with repeat signs, the same tunes with repeats written out.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from cantus.eval.contour_calibration import MoveShares, contour_calibration, format_calibration
from cantus.eval.melody_features import first_bars
from cantus.eval.melody_sampling import SERVED_GUIDANCE, served_guidance
from cantus.eval.realness_report import (
    NOT_PERCENT,
    STRUCTURE_MEASURES,
    RealnessReport,
    format_report,
    realness_report,
    structure_values,
)
from cantus.eval.structure import Band
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.corpus import CorpusSplit, Tune
from cantus.music.form import AUTO, with_pickup
from cantus.music.notes import Bar, Key, Melody, Mode, MusicError
from cantus.music.pickup import pickup_bars
from cantus.music.styles import Style

DEFAULT_PIECES = 200
DEFAULT_BARS = 16
STRUCTURE_WINDOWS = (16, 32)
"""Windows (bars) of the corpus structure bands."""
KEY_CYCLE = tuple(Key(tonic, mode) for tonic in range(12) for mode in (Mode.MAJOR, Mode.MINOR))
"""The asked keys, cycled piece by piece: C major, C minor, C# major, …"""


def held_out_tunes(split: CorpusSplit, cache_dir: Path | None) -> list[Tune]:
    """The valid and test tunes, each labelled with the key music21 hears in it."""
    from cantus.melody.training import relabel_heard_keys

    tunes: list[Tune] = []
    for part in (split.valid, split.test):
        relabelled, _ = relabel_heard_keys(list(part), cache_dir)
        tunes += relabelled
    return tunes


ENDING_CLEARANCE_BARS = 4
"""Bars composed past the window for a piece whose borrowed tune goes on past it: the
window then holds no ending, as a real tune's first bars hold none (issue #14: with every
16-bar piece ending inside its window and 14 % of the real tunes, the piece's closing
whole-bar tone was the classifier's strongest tell)."""


class RealnessJob(NamedTuple):
    """One piece to sample: its controls, sampling seed and length in bars."""

    controls: Controls
    seed: int
    bars: int


def realness_jobs(
    real_tunes: Sequence[Tune],
    pieces: int,
    n_bars: int,
    thresholds: EnergyThresholds,
    seed: int = 0,
) -> list[RealnessJob]:
    """Each piece's job: keys from ``KEY_CYCLE``, the rest borrowed from a random real tune of
    the key's mode that is at least ``n_bars`` long, and so is whether the piece ends inside
    the ``n_bars`` window: ``n_bars`` bars where the tune ends there, else
    ``ENDING_CLEARANCE_BARS`` more."""
    rng = np.random.default_rng(seed)
    long_enough = [t for t in real_tunes if len(t.melody.bars) >= n_bars]
    by_mode = {mode: [t for t in long_enough if t.melody.key.mode is mode] for mode in Mode}
    jobs = []
    for index in range(pieces):
        key = KEY_CYCLE[index % len(KEY_CYCLE)]
        pool = by_mode[key.mode] or long_enough
        tune = pool[int(rng.integers(len(pool)))]
        controls = Controls(
            key=key,
            meter=tune.melody.meter,
            tempo_bpm=tune.melody.tempo_bpm,
            style=Style(tune.style),
            energy=thresholds.energy(tune.melody),
        )
        ends_in_window = len(tune.melody.bars) <= n_bars
        bars = n_bars if ends_in_window else n_bars + ENDING_CLEARANCE_BARS
        jobs.append(RealnessJob(controls, seed * 1_000_000 + index, bars))
    return jobs


COMPOSERS = ("form", "model")


def sample_melodies(
    checkpoint: Path,
    jobs: Sequence[tuple[Controls, int]],
    *,
    n_bars: int,
    tonal_emphasis: float,
    guidance: float | None = None,
    max_batch: int = 50,
    composer: str = "form",
    top_p: float | None = None,
    bars: Sequence[int] | None = None,
    lead_on: bool = True,
    key_candidates: int | None = None,
    register_contrast: bool | None = None,
    corpus_key_clarity: bool | None = None,
    register_window: bool | None = None,
    pickups: bool | None = None,
    corpus_forms: bool | None = None,
) -> list[Melody | None]:
    """One melody per job from the checkpoint, sampled as the melody service does (module
    docstring; ``guidance`` None: ``served_guidance``; ``top_p`` None: the service's, for
    ``composer="form"``); ``bars``: each piece's length (default ``n_bars`` for all);
    ``lead_on``, ``key_candidates``, ``register_contrast``, ``corpus_key_clarity``,
    ``register_window``, ``pickups``, ``corpus_forms``: the form composer's
    (``FormComposer``, ``compose_pieces``); None where the engine failed or the tokens do
    not decode."""
    from cantus.eval.melody_sampling import sample_transformer
    from cantus.melody.checkpoint import load_melody_checkpoint
    from cantus.melody.local_composition import compose_pieces, default_sampling

    if composer not in COMPOSERS:
        raise ValueError(f"composer must be one of {COMPOSERS}, got {composer!r}")
    model, tokenizer, _ = load_melody_checkpoint(Path(checkpoint))
    guidance = served_guidance(tokenizer) if guidance is None else guidance
    if composer == "form":
        sampling = dataclasses.replace(
            default_sampling(), guidance=guidance, tonal_emphasis=tonal_emphasis
        )
        if top_p is not None:
            sampling = dataclasses.replace(sampling, top_p=top_p)
        return compose_pieces(
            model,
            tokenizer,
            jobs,
            n_bars=n_bars,
            bars=bars,
            sampling=sampling,
            max_batch=max_batch,
            lead_on=lead_on,
            key_candidates=key_candidates,
            register_contrast=register_contrast,
            corpus_key_clarity=corpus_key_clarity,
            register_window=register_window,
            pickups=pickups,
            corpus_forms=corpus_forms,
            pattern_window=n_bars,
        )
    sequences = sample_transformer(
        model,
        tokenizer,
        [(controls, seed, True) for controls, seed in jobs],
        n_bars=n_bars,
        bars=bars,
        max_batch=max_batch,
        tonal_emphasis=tonal_emphasis,
        guidance=guidance,
    )
    melodies: list[Melody | None] = []
    for tokens in sequences:
        try:
            melodies.append(tokenizer.decode(tokens)[1] if tokens is not None else None)
        except MusicError:
            melodies.append(None)
    return melodies


@dataclass(frozen=True)
class CorpusBand:
    """Structure bands (``STRUCTURE_MEASURES``) of a set of real tunes over one window."""

    label: str
    n_bars: int
    bands: dict[str, Band]


def corpus_bands(label: str, melodies: Sequence[Melody], n_bars: int) -> CorpusBand | None:
    """The bands of ``melodies`` cut to ``n_bars`` (None when fewer than 5 are that long)."""
    window = [m for m in (first_bars(m, n_bars) for m in melodies) if m]
    if len(window) < 5:
        return None
    values = structure_values(window)
    return CorpusBand(label, n_bars, {name: Band.of(values[name]) for name in values})


def structure_bands(
    split: CorpusSplit, held_out: Sequence[Tune], *, expand: bool, log: Callable[[str], None]
) -> list[CorpusBand]:
    """The corpus's structure bands at each ``STRUCTURE_WINDOWS`` window: held-out and all
    tunes as stored; with ``expand`` also the held-out celtic tunes with repeat signs, as
    stored and with their repeats expanded."""
    everything = [t.melody for part in (split.train, split.valid, split.test) for t in part]
    sets = [
        ("held-out tunes, stored", [t.melody for t in held_out]),
        ("all corpus tunes, stored", everything),
    ]
    if expand:
        from cantus.eval.expanded_repeats import expanded_tunes

        started = time.monotonic()
        with_signs, expanded = expanded_tunes(held_out)
        log(
            f"expanded the repeats of {len(expanded)} of {len(with_signs)} held-out tunes with "
            f"repeat signs in {time.monotonic() - started:.0f} s"
        )
        sets += [
            ("held-out tunes with repeat signs, stored", [t.melody for t in with_signs]),
            ("the same tunes, repeats expanded", expanded),
        ]
    bands = []
    for label, melodies in sets:
        for n_bars in STRUCTURE_WINDOWS:
            band = corpus_bands(label, melodies, n_bars)
            if band is not None:
                bands.append(band)
    return bands


@dataclass
class RealnessRun:
    """One ``cantus eval realness`` run: the report, the corpus bands and how it was made."""

    report: RealnessReport
    bands: list[CorpusBand]
    checkpoint: str
    pieces: int
    failed: int
    tonal_emphasis: float
    guidance: float
    timings: dict[str, float]
    composer: str = "form"
    joins: BarLineJoins | None = None
    top_p: float | None = None
    lead_on: bool = True
    calibration: list[MoveShares] | None = None
    calibration_tunes: int = 0
    key_candidates: int | None = None
    register_contrast: bool | None = None
    contrast_lifts: ContrastLifts | None = None
    corpus_key_clarity: bool | None = None
    register_window: bool | None = None
    pickups: bool | None = None
    openings: Openings | None = None
    corpus_forms: bool | None = None
    phrase_patterns: PhrasePatterns | None = None
    varied: VariedReturns | None = None


@dataclass(frozen=True)
class ContrastLifts:
    """Mean pitch of bars 9-12 less that of bars 1-8 (``register.strain_lift``; a real
    tune's pickup bar left out), semitones: in a 16-bar piece along ``auto``'s plan, its B
    against its A and A'; in a real tune, the first phrase of its second strain against
    its first strain."""

    generated: list[float]
    real: list[float]


def contrast_lifts(generated: Sequence[Melody], real: Sequence[Melody]) -> ContrastLifts:
    from cantus.melody.register import strain_lift

    def lifts(melodies: Sequence[Melody]) -> list[float]:
        return [lift for m in melodies if (lift := strain_lift(m)) is not None]

    return ContrastLifts(lifts(generated), lifts(real))


@dataclass(frozen=True)
class Openings:
    """How melodies open: of each, the length of its pickup in beats of its meter (0: it opens
    on the downbeat)."""

    generated: list[float]
    real: list[float]


def openings_of(generated: Sequence[Melody], real: Sequence[Melody]) -> Openings:
    def pickups(melodies: Sequence[Melody]) -> list[float]:
        lengths = []
        for melody in melodies:
            meter = melody.bars[0].meter
            onset = melody.bars[0].notes[0].onset if pickup_bars(melody.bars) else meter.bar_ticks
            lengths.append((meter.bar_ticks - onset) / meter.beat_ticks)
        return lengths

    return Openings(pickups(generated), pickups(real))


def format_openings(openings: Openings, pickups: bool | None) -> list[str]:
    """The report's section on how the melodies open (``pickups`` None: the service's)."""
    pickups = _served(pickups, "melody_pickups")
    how = (
        "a pickup drawn as often as the corpus's tunes of the style and meter open with one "
        "(`cantus.melody.openings`)"
        if pickups
        else "every piece on the downbeat (`--no-pickups`)"
    )
    lines = [
        "",
        "## Openings",
        "",
        f"Share of melodies that open with a pickup bar, and its length in beats of the meter; "
        f"generated: {how}.",
        "",
        "| melodies | n | on the downbeat | pickup ≤ 1/2 beat | ≤ 1 beat | longer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, lengths in (("generated", openings.generated), ("real tunes", openings.real)):
        values = np.array(lengths, float)
        if not len(values):
            continue
        bins = (
            values == 0,
            (values > 0) & (values <= 0.5),
            (values > 0.5) & (values <= 1),
            values > 1,
        )
        cells = " | ".join(f"{100 * np.mean(b):.0f} %" for b in bins)
        lines.append(f"| {label} | {len(values)} | {cells} |")
    return lines


_T = TypeVar("_T")


def _served(value: _T | None, setting: str) -> _T:
    """``value``, or where it is None the melody service's default ``setting``."""
    if value is not None:
        return value
    from cantus.settings import Settings

    served: _T = getattr(Settings.model_construct(), setting)
    return served


PATTERN_ROWS = 8
"""The real tunes' commonest phrase patterns shown one per row; the rest share a row."""


@dataclass(frozen=True)
class PhrasePatterns:
    """The phrase pattern of each melody's window (``structure.phrase_pattern`` after any
    pickup bar; melodies too short left out), and the real tunes split in two halves at
    random: how far apart two sets of real tunes' patterns lie."""

    generated: list[str]
    real: list[str]
    real_halves: tuple[list[str], list[str]]

    @staticmethod
    def shares(patterns: Sequence[str]) -> dict[str, float]:
        counts = Counter(patterns)
        return {pattern: count / len(patterns) for pattern, count in counts.items()}

    @classmethod
    def distance(cls, first: Sequence[str], second: Sequence[str]) -> float:
        """Total variation distance of the two sets' pattern shares (0: the same mix, 1: no
        pattern in common)."""
        a, b = cls.shares(first), cls.shares(second)
        return 0.5 * sum(abs(a.get(p, 0.0) - b.get(p, 0.0)) for p in set(a) | set(b))


def phrase_bodies(melodies: Sequence[Melody], n_bars: int) -> list[tuple[Bar, ...]]:
    """Each melody's bars after any pickup bar, where they fill the ``n_bars`` window (the
    bars the phrase-level measures read; shorter melodies left out)."""
    bodies = (melody.bars[pickup_bars(melody.bars) :] for melody in melodies)
    return [tuple(body) for body in bodies if len(body) >= n_bars]


def phrase_patterns_of(
    generated: Sequence[Melody], real: Sequence[Melody], n_bars: int, seed: int = 0
) -> PhrasePatterns:
    from cantus.eval.structure import PHRASE_BARS, phrase_pattern

    def patterns(melodies: Sequence[Melody]) -> list[str]:
        phrases = n_bars // PHRASE_BARS
        return [phrase_pattern(body, phrases) for body in phrase_bodies(melodies, n_bars)]

    real_patterns = patterns(real)
    order = np.random.default_rng(seed).permutation(len(real_patterns))
    half = len(order) // 2
    halves = (
        [real_patterns[i] for i in order[:half]],
        [real_patterns[i] for i in order[half:]],
    )
    return PhrasePatterns(patterns(generated), real_patterns, halves)


@dataclass(frozen=True)
class VariedReturns:
    """Each varied return in the melodies' windows (``structure.varied_returns`` after any
    pickup bar): its bars' likeness to its source's, bar by bar."""

    generated: list[tuple[float, ...]]
    real: list[tuple[float, ...]]


def varied_returns_of(
    generated: Sequence[Melody], real: Sequence[Melody], n_bars: int
) -> VariedReturns:
    from cantus.eval.structure import PHRASE_BARS, varied_returns

    def returns(melodies: Sequence[Melody]) -> list[tuple[float, ...]]:
        phrases = n_bars // PHRASE_BARS
        return [
            r for body in phrase_bodies(melodies, n_bars) for r in varied_returns(body, phrases)
        ]

    return VariedReturns(returns(generated), returns(real))


def format_varied_returns(varied: VariedReturns) -> list[str]:
    """The report's table of varied returns against their sources, bar by bar."""
    from cantus.eval.structure import PHRASE_BARS, VARIATION_SIMILARITY

    lines = [
        "",
        "## Varied returns, bar by bar",
        "",
        "Each phrase of the window heard as a varied return (`~` above), each of its bars "
        "against the same bar of the phrase it returns to (`cantus.eval.structure."
        "bar_similarity`: 1 the same notes, 0 none in common); the last columns: the share "
        f"of its bars heard as new (under {VARIATION_SIMILARITY:g}) and of its bars that "
        "repeat the source's note for note.",
        "",
        "| melodies | returns | "
        + " | ".join(f"bar {i + 1}" for i in range(PHRASE_BARS))
        + " | mean | bars heard as new | bars note for note |",
        "|---|---:|" + "---:|" * (PHRASE_BARS + 3),
    ]
    for name, returns in (("generated", varied.generated), ("real tunes", varied.real)):
        if not returns:
            lines.append(f"| {name} | 0 |" + " |" * (PHRASE_BARS + 3))
            continue
        table = np.array(returns)
        lines.append(
            f"| {name} | {len(returns)} | "
            + " | ".join(f"{value:.2f}" for value in table.mean(axis=0))
            + f" | {table.mean():.2f} | {100 * (table < VARIATION_SIMILARITY).mean():.0f} % "
            f"| {100 * (table >= 1.0).mean():.0f} % |"
        )
    return lines


def format_phrase_patterns(patterns: PhrasePatterns, corpus_forms: bool | None) -> list[str]:
    """The report's section on the melodies' forms, phrase by phrase."""
    corpus_forms = _served(corpus_forms, "melody_corpus_forms")
    how = (
        "each piece's `auto` form drawn as often as the corpus's tunes of its style and meter "
        "are shaped so (`cantus.melody.phrase_patterns`)"
        if corpus_forms
        else "`auto` picking the form by length alone (`--no-corpus-forms`)"
    )
    generated = PhrasePatterns.shares(patterns.generated)
    real = PhrasePatterns.shares(patterns.real)
    top = sorted(real, key=lambda p: -real[p])[:PATTERN_ROWS]
    lines = [
        "",
        "## Phrase patterns",
        "",
        "The window's four-bar phrases after any pickup bar, each new (a letter) or returning "
        "to an earlier one (`~` varied, `=` repeated; `cantus.eval.structure.phrase_pattern`); "
        f"generated: {how}. Distance: total variation between the two sets' mixes of "
        "patterns (0: the same mix); the control splits the real tunes in two halves.",
        "",
        "| pattern | generated | real |",
        "|---|---:|---:|",
    ]
    for pattern in top:
        shares = f"{100 * generated.get(pattern, 0):.1f} % | {100 * real[pattern]:.1f} %"
        lines.append(f"| `{pattern}` | {shares} |")
    apart = PhrasePatterns.distance(patterns.generated, patterns.real)
    control = PhrasePatterns.distance(*patterns.real_halves)
    rest_generated = 1 - sum(generated.get(p, 0) for p in top)
    rest_real = 1 - sum(real[p] for p in top)
    lines += [
        f"| every other pattern | {100 * rest_generated:.1f} % | {100 * rest_real:.1f} % |",
        f"| melodies | {len(patterns.generated)} | {len(patterns.real)} |",
        f"| distinct patterns | {len(generated)} | {len(real)} |",
        "",
        f"Distance generated–real **{apart:.2f}**; real half–real half {control:.2f}.",
    ]
    return lines


SMOOTH_JOIN_SEMITONES = 5
"""A join across a bar line is smooth within this many semitones: the 90th percentile of the
held-out tunes' bar-line intervals (``cantus eval infill``)."""


@dataclass(frozen=True)
class BarLineJoins:
    """Intervals across bar lines (semitones, absolute): into a return that follows a
    contrasting section (the B of AABA into A''), every other bar line of the generated
    pieces, and every bar line of the real tunes in the window."""

    into_returns: list[int]
    elsewhere: list[int]
    real: list[int]

    @staticmethod
    def smooth(intervals: Sequence[int]) -> float:
        return float(np.mean([i <= SMOOTH_JOIN_SEMITONES for i in intervals])) if intervals else 0.0


def bar_line_joins(
    generated: Sequence[Melody | None],
    jobs: Sequence[RealnessJob],
    real: Sequence[Melody],
    n_bars: int,
    corpus_forms: bool | None = None,
) -> BarLineJoins:
    """The joins of form-composed pieces (each job's ``auto`` plan, drawn as
    ``compose_pieces`` draws it) and of the real tunes."""

    def intervals(bars: Sequence[Bar]) -> list[tuple[int, int]]:
        out = []
        for index in range(1, len(bars)):
            last = next((b.notes[-1] for b in reversed(bars[:index]) if b.notes), None)
            first = bars[index].notes[0] if bars[index].notes else None
            if last is not None and first is not None:
                out.append((index, abs(first.pitch - last.pitch)))
        return out

    from cantus.melody.local_composition import piece_plan

    into: list[int] = []
    elsewhere: list[int] = []
    corpus_forms = _served(corpus_forms, "melody_corpus_forms")
    for melody, (controls, seed, *_) in zip(generated, jobs, strict=True):
        if melody is None:
            continue
        opening = pickup_bars(melody.bars)
        length = len(melody.bars) - opening
        plan = piece_plan(AUTO, controls, bars=length, seed=seed, window=n_bars, drawn=corpus_forms)
        plan = with_pickup(plan) if opening else plan
        returns = {
            section.first_bar
            for section in plan.sections
            if section.source is not None
            and plan.sections[section.source].end_bar != section.first_bar
        }
        for index, interval in intervals(melody.bars):
            (into if index in returns else elsewhere).append(interval)
    real_joins = [i for m in real if (w := first_bars(m, n_bars)) for _, i in intervals(w.bars)]
    return BarLineJoins(into, elsewhere, real_joins)


def run_realness_eval(
    checkpoint: Path,
    *,
    pieces: int = DEFAULT_PIECES,
    n_bars: int = DEFAULT_BARS,
    tonal_emphasis: float = 0.0,
    guidance: float | None = None,
    expand_repeats: bool = True,
    seed: int = 0,
    composer: str = "form",
    top_p: float | None = None,
    lead_on: bool = True,
    key_candidates: int | None = None,
    register_contrast: bool | None = None,
    corpus_key_clarity: bool | None = None,
    register_window: bool | None = None,
    pickups: bool | None = None,
    corpus_forms: bool | None = None,
    split: CorpusSplit | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> RealnessRun:
    """Sample, compare, measure the corpus bands (module docstring); ``guidance`` None: the
    service's (``served_guidance``)."""
    from cantus.melody.checkpoint import load_melody_checkpoint
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR, encode_tunes

    timings: dict[str, float] = {}
    clock = started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    cache_dir = cache_dir or CORPUS_CACHE_DIR
    split = split or load_or_build_corpus(cache_dir)
    held_out = held_out_tunes(split, cache_dir)
    model, tokenizer, metadata = load_melody_checkpoint(Path(checkpoint))
    thresholds = metadata["energy_thresholds"]
    guidance = served_guidance(tokenizer) if guidance is None else guidance
    lap("corpus and key labels")
    jobs = realness_jobs(held_out, pieces, n_bars, thresholds, seed)
    log(f"sampling {len(jobs)} pieces of {n_bars}-{n_bars + ENDING_CLEARANCE_BARS} bars")
    generated = sample_melodies(
        checkpoint,
        [(job.controls, job.seed) for job in jobs],
        bars=[job.bars for job in jobs],
        n_bars=n_bars,
        tonal_emphasis=tonal_emphasis,
        guidance=guidance,
        composer=composer,
        top_p=top_p,
        lead_on=lead_on,
        key_candidates=key_candidates,
        register_contrast=register_contrast,
        corpus_key_clarity=corpus_key_clarity,
        register_window=register_window,
        pickups=pickups,
        corpus_forms=corpus_forms,
    )
    lap("sampling")
    found = [m for m in generated if m is not None]
    report = realness_report(found, [t.melody for t in held_out], n_bars=n_bars, seed=seed)
    lap("comparison")
    joins = (
        bar_line_joins(generated, jobs, [t.melody for t in held_out], n_bars, corpus_forms)
        if composer == "form"
        else None
    )
    bands = structure_bands(split, held_out, expand=expand_repeats, log=log)
    lap("corpus structure bands")
    sequences = [t.tokens for t in encode_tunes(held_out, tokenizer, thresholds)]
    calibration = contour_calibration(model, tokenizer, sequences)
    lap("the model's next move")
    timings["total"] = round(time.monotonic() - started, 1)
    return RealnessRun(
        report=report,
        bands=bands,
        checkpoint=str(checkpoint),
        pieces=pieces,
        failed=len(generated) - len(found),
        tonal_emphasis=tonal_emphasis,
        guidance=guidance,
        timings=timings,
        composer=composer,
        joins=joins,
        top_p=top_p,
        lead_on=lead_on,
        calibration=calibration,
        calibration_tunes=len(sequences),
        key_candidates=key_candidates,
        register_contrast=register_contrast,
        contrast_lifts=contrast_lifts(found, [t.melody for t in held_out]),
        corpus_key_clarity=corpus_key_clarity,
        register_window=register_window,
        pickups=pickups,
        openings=openings_of(found, [t.melody for t in held_out]),
        corpus_forms=corpus_forms,
        phrase_patterns=phrase_patterns_of(found, [t.melody for t in held_out], n_bars, seed),
        varied=varied_returns_of(found, [t.melody for t in held_out], n_bars),
    )


def format_run(run: RealnessRun, *, command: str) -> str:
    """The whole Markdown report of a run, starting with the command that made it."""
    report = run.report
    sampling = _sampling_words(
        run.composer, run.top_p, run.lead_on, run.key_candidates, run.corpus_key_clarity
    )
    lines = [
        "# Melody realness: generated melodies against held-out real tunes",
        "",
        f"Command: `{command}` ({run.timings['total']:.0f} s wall; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in run.timings.items() if k != "total")
        + ").",
        "",
        f"Checkpoint `{_relative(run.checkpoint)}`; {run.pieces} pieces sampled in process "
        f"({run.failed} failed), asked keys cycling through all 24, meter, tempo, style, "
        "energy and whether the piece ends inside the window borrowed from a random held-out "
        "tune of the same mode (the window's length where the tune ends there, "
        f"{ENDING_CLEARANCE_BARS} bars more where it goes on); sampled as the "
        f"melody service samples "
        f"({sampling}), "
        f"tonal emphasis **{run.tonal_emphasis:g}** nats, classifier-free guidance on the key "
        f"**{run.guidance:g}** (1: none; the service asks for {SERVED_GUIDANCE:g} from a "
        "checkpoint trained with key dropout); "
        + (
            "each piece composed as the melody service composes it, along the form plan "
            "`auto` gives a piece of the window's length (see Phrase patterns; a piece that "
            "goes on past the window goes on with new phrases), phrase by phrase with "
            "cadences, repeats copied, returns varied. "
            if run.composer == "form"
            else "each piece decoded freely in one request, without a form plan. "
        )
        + "Real tunes: "
        "the valid and test splits, keys as music21 hears them (the training labels). "
        "Module docs: `cantus.eval.realness_run`, `realness_report`, `melody_features`, "
        "`melody_overlap`, `realness`, `structure`.",
        "",
        *format_report(report),
        "",
        "## Structure bands of the corpus",
        "",
        "Median (5th–95th percentile) of each measure over real tunes cut to the window "
        "(tunes shorter than it left out). The corpus stores tunes as written, without "
        "expanding repeat signs: a celtic tune played AABB is stored as AB, so stored tunes "
        "show fewer returns than a listener hears. Essen folk songs carry no repeat signs; "
        "for the held-out celtic tunes that do, the last rows show the same tunes stored "
        "and with their repeats written out (`cantus.eval.expanded_repeats`).",
        "",
        "| tunes | bars | n | " + " | ".join(STRUCTURE_MEASURES.values()) + " |",
        "|---|---|---|" + "---|" * len(STRUCTURE_MEASURES),
    ]
    for band in run.bands:
        cells = []
        for name in STRUCTURE_MEASURES:
            b = band.bands[name]
            if name in NOT_PERCENT:
                cells.append(f"{b.median:.2f} ({b.low:.2f}–{b.high:.2f})")
            else:
                cells.append(f"{100 * b.median:.0f} % ({100 * b.low:.0f}–{100 * b.high:.0f} %)")
        n = next(iter(band.bands.values())).n
        lines.append(f"| {band.label} | {band.n_bars} | {n} | " + " | ".join(cells) + " |")
    if run.joins is not None:
        lines += _join_lines(run.joins)
    if run.openings is not None:
        lines += format_openings(run.openings, run.pickups)
    if run.phrase_patterns is not None:
        lines += format_phrase_patterns(run.phrase_patterns, run.corpus_forms)
    if run.varied is not None:
        lines += format_varied_returns(run.varied)
    if run.contrast_lifts is not None:
        lines += format_contrast_lifts(
            run.contrast_lifts, run.register_contrast, run.register_window
        )
    if run.calibration is not None:
        lines += ["", *format_calibration(run.calibration, run.calibration_tunes)]
    return "\n".join(lines) + "\n"


def format_contrast_lifts(
    lifts: ContrastLifts, register_contrast: bool | None, register_window: bool | None = None
) -> list[str]:
    """The report's "Register of the contrasting section" (``register_contrast``,
    ``register_window`` None: the service's settings): mean, percentiles and both tails of
    each set's lifts."""
    from cantus.settings import Settings

    served = Settings.model_construct()
    if register_contrast is None:
        register_contrast = served.melody_register_contrast
    if register_window is None:
        register_window = served.melody_register_window
    window = ", decoded inside a window of pitches around it" if register_window else ""
    chosen = (
        "chosen among its candidates near a register drawn from the corpus's second strains"
        f"{window} (`cantus.melody.register`)"
        if register_contrast
        else "its candidates kept without regard to register (`--no-register-contrast`)"
    )

    def row(label: str, values: Sequence[float]) -> str:
        if not values:
            return f"| {label} | 0 | | | | | |"
        low, median, high = np.percentile(values, [10, 50, 90])
        above = float(np.mean([v > 2 for v in values]))
        below = float(np.mean([v < -1 for v in values]))
        return (
            f"| {label} | {len(values)} | {float(np.mean(values)):+.2f} | "
            f"{low:+.2f} / {median:+.2f} / {high:+.2f} | {100 * above:.0f} % | "
            f"{100 * below:.0f} % |"
        )

    return [
        "",
        "## Register of the contrasting section",
        "",
        "Mean pitch of bars 9-12 less that of bars 1-8, in semitones: a 16-bar piece's B "
        f"against its A and A' ({chosen}); a real tune's second strain's first phrase against "
        "its first strain (a pickup bar left out).",
        "",
        "| melodies | n | mean | 10th / 50th / 90th percentile | over +2 | under -1 |",
        "|---|---|---|---|---|---|",
        row("generated", lifts.generated),
        row("real tunes", lifts.real),
    ]


def _join_lines(joins: BarLineJoins) -> list[str]:
    rows = [
        ("generated: into a return after a contrasting section", joins.into_returns),
        ("generated: every other bar line", joins.elsewhere),
        ("real tunes: every bar line", joins.real),
    ]
    return [
        "",
        "## Joins across bar lines",
        "",
        "The interval from the last note before a bar line to the first after it. A return "
        "after a contrasting section (the B of AABA into A'') is where a form-composed piece "
        "joins material decoded apart; its B is chosen among candidates by how it leads into "
        "the return (`settings.melody_return_candidates`). Smooth: within "
        f"{SMOOTH_JOIN_SEMITONES} semitones.",
        "",
        "| bar lines | n | smooth | mean (semitones) |",
        "|---|---|---|---|",
        *(
            f"| {label} | {len(values)} | {100 * BarLineJoins.smooth(values):.1f} % | "
            f"{float(np.mean(values)) if values else 0.0:.2f} |"
            for label, values in rows
        ),
    ]


def _relative(path: str) -> str:
    from cantus.settings import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path


def _sampling_words(
    composer: str,
    top_p: float | None = None,
    lead_on: bool = True,
    key_candidates: int | None = None,
    corpus_key_clarity: bool | None = None,
) -> str:
    """How the pieces were sampled, in the report's words (``top_p``: a run's own nucleus,
    None: the service's; ``lead_on`` False: upbeats left to the model; ``key_candidates``:
    phrases chosen in key among that many, None: the service's; ``corpus_key_clarity``: how
    clearly, None: the service's)."""
    if composer != "form":
        from cantus.eval.melody_sampling import SAMPLING

        return (
            f"key constraint, tonic cadence, top-p {SAMPLING.top_p:g}, "
            f"temperature {SAMPLING.temperature:g}"
        )
    from cantus.melody.local_composition import default_sampling

    sampling = default_sampling()
    mask = "scale mask" if sampling.key_constraint else "no scale mask"
    upbeats = "" if lead_on else ", upbeats after them left to the model"
    key_candidates = _served(key_candidates, "melody_key_candidates")
    corpus_key_clarity = _served(corpus_key_clarity, "melody_corpus_key_clarity")
    clear = (
        " (its key area as clear in its key as most real tunes are at that length)"
        if corpus_key_clarity
        else " (its key area reading in the asked key from the first phrase on)"
    )
    in_key = (
        f", each phrase chosen in key among {key_candidates}{clear}" if key_candidates > 1 else ""
    )
    return (
        f"{mask}, cadences at phrase ends{upbeats}{in_key}, "
        f"top-p {sampling.top_p if top_p is None else top_p:g}, "
        f"temperature {sampling.temperature:g}"
    )
