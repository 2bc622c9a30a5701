"""Generated melodies against held-out real tunes, in one report: ``realness_report``.

It takes melodies from anywhere (sampled in process by ``cantus eval realness``, or composed
through a form plan) and compares them over the same window, the first ``n_bars`` bars of
each (shorter melodies are left out):

* every feature of ``melody_features``: generated and real means, the real 5th-95th
  percentile band, MGEval overlap area and KL (``melody_overlap``);
* the realness classifiers (``realness``), on sets matched by mode (as many major and as many
  minor melodies on both sides, so the mix of modes gives nothing away), with the real-vs-real
  control on two halves of the real tunes;
* key agreement per key: music21 hears the key each generated melody was asked for, and
  what it hears instead (the relative, the parallel, the dominant... of the asked key);
* the pitch-class profile per mode, generated against real: the histogram table pools the
  modes, in which a minor third reads as a wrong note of a major tune;
* repetition structure (``structure``): the share of bars returning to earlier material and
  the structureness indicator SI, generated against the real band;
* phrase ends that lead on, per meter: the share of 4-bar phrase-end bars inside the window
  (the melody's last bar aside) where a note follows the cadence tone
  (``cantus.melody.phrase_endings.leads_on``; phrases counted after a pickup).

``format_report`` writes it as Markdown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cantus.eval.melody_features import feature_matrix, feature_names, first_bars
from cantus.eval.melody_overlap import overlap_report
from cantus.eval.realness import (
    CLASSIFIERS,
    Accuracy,
    cross_validated_accuracy,
    matched_by_group,
    split_halves,
    telltale_features,
)
from cantus.eval.structure import Band, phrase_end_weight, structure_measures
from cantus.melody.phrase_endings import (
    HOLD_BEAT,
    HOLDS,
    breathes,
    cadence_note_of,
    hold_of,
    leads_on,
    phrase_end_indices,
)
from cantus.music.form import KeyArea
from cantus.music.notes import Key, Melody, Mode

STRUCTURE_MEASURES = {
    "returning": "bars that repeat or vary an earlier bar",
    "exact": "bars that repeat an earlier bar note for note",
    "si": "structureness indicator SI (bar-level, MusDr-style)",
    "phrase_ends": "longest note at phrase ends minus elsewhere (share of a bar)",
}
"""The structure measures of the report and what each one is."""
NOT_PERCENT = frozenset({"si", "phrase_ends"})
"""Structure measures written as numbers, not percentages."""


@dataclass(frozen=True)
class StructureComparison:
    """One structure measure: the generated melodies' band, the real band, the share of
    generated melodies inside the real band, and where the generated median ranks among the
    real melodies (0..1, ties counted half: 0.5 is the real median)."""

    measure: str
    generated: Band
    real: Band
    generated_inside: float
    median_rank: float


def percentile_rank(value: float, sample: Sequence[float]) -> float:
    """Share of ``sample`` below ``value``, ties counted half."""
    values = np.asarray(sample, dtype=float)
    return float(np.mean(values < value) + 0.5 * np.mean(values == value))


@dataclass(frozen=True)
class KeyAgreement:
    """Generated melodies asked for ``key``, how many of them music21 hears in it, and how
    the key it hears in the others relates to the asked one (``key_relation``: count)."""

    key: str
    pieces: int
    heard_as_asked: int
    heard_instead: dict[str, int] = field(default_factory=dict)


KEY_RELATIONS = ("relative", "parallel", "dominant", "subdominant", "other")
"""How a key heard instead of the asked one relates to it (``key_relation``)."""


def key_relation(asked: Key, heard: Key | None) -> str:
    """``KEY_RELATIONS`` name of ``heard`` against ``asked`` (two different keys): its
    relative (same scale, other tonic), its parallel (same tonic, other mode), the dominant or
    subdominant key in the same mode, or other (None: nothing heard)."""
    for area in (KeyArea.RELATIVE, KeyArea.DOMINANT, KeyArea.SUBDOMINANT):
        if heard == area.key(asked):
            return area.value
    if heard is not None and heard.tonic == asked.tonic:
        return "parallel"
    return "other"


@dataclass(frozen=True)
class PitchClassProfile:
    """Mean pitch-class histograms (12 shares, semitones above the tonic) of the generated
    and the real melodies of one mode, and how many melodies each mean is over."""

    mode: str
    generated: tuple[float, ...]
    real: tuple[float, ...]
    n_generated: int
    n_real: int


@dataclass(frozen=True)
class PhraseEnds:
    """Phrase-end bars of one meter (``"6/8"``) that lead on, and how many were counted; of
    those that lead on, how many hold their cadence tone for each of ``HOLDS``; and, as
    (breathing, counted), how many of those held a beat or more rest before the upbeat
    (``breathes``)."""

    meter: str
    generated_leading: int
    generated: int
    real_leading: int
    real: int
    generated_holds: tuple[int, ...] = ()
    real_holds: tuple[int, ...] = ()
    generated_breaths: tuple[int, int] = (0, 0)
    real_breaths: tuple[int, int] = (0, 0)


def phrase_ends_leading_on(
    generated: Sequence[Melody], real: Sequence[Melody], n_bars: int
) -> list[PhraseEnds]:
    """Per meter (both sets, by count), the phrase-end bars among each melody's first
    ``n_bars`` that lead on, how long their cadence tones last (``hold_of``) and whether
    those held a beat or more rest before the upbeat (``breathes``); its last bar is left
    out (the end of the tune holds)."""
    counts: dict[str, list[int]] = {}
    holds: dict[str, list[list[int]]] = {}
    breaths: dict[str, list[list[int]]] = {}
    for side, melodies in ((0, generated), (2, real)):
        for melody in melodies:
            meter = melody.meter
            key = f"{meter.numerator}/{meter.denominator}"
            row = counts.setdefault(key, [0, 0, 0, 0])
            held = holds.setdefault(key, [[0] * len(HOLDS), [0] * len(HOLDS)])
            breathing = breaths.setdefault(key, [[0, 0], [0, 0]])
            for index in phrase_end_indices(melody):
                if index >= n_bars or index == len(melody.bars) - 1:
                    continue
                bar = melody.bars[index]
                if leads_on(bar, meter):
                    row[side] += 1
                    note = cadence_note_of(bar, meter)
                    if note is not None:
                        hold = hold_of(note, meter)
                        held[side // 2][hold] += 1
                        if hold >= HOLD_BEAT:
                            breathing[side // 2][0] += breathes(bar, meter)
                            breathing[side // 2][1] += 1
                row[side + 1] += 1
    order = sorted(counts, key=lambda k: -(counts[k][1] + counts[k][3]))
    ends = []
    for k in order:
        generated_leading, generated_count, real_leading, real_count = counts[k]
        if generated_count and real_count:
            ends.append(
                PhraseEnds(
                    k,
                    generated_leading,
                    generated_count,
                    real_leading,
                    real_count,
                    generated_holds=tuple(holds[k][0]),
                    real_holds=tuple(holds[k][1]),
                    generated_breaths=(breaths[k][0][0], breaths[k][0][1]),
                    real_breaths=(breaths[k][1][0], breaths[k][1][1]),
                )
            )
    return ends


@dataclass
class RealnessReport:
    """See the module docstring. ``generated`` and ``real``: melodies compared (after the
    window); ``dropped_generated`` and ``dropped_real``: melodies shorter than the window;
    ``matched``: melodies per class in the classifier comparison, by mode."""

    n_bars: int
    generated: int
    real: int
    dropped_generated: int
    dropped_real: int
    overlap: dict[str, Any]
    classifier: list[Accuracy]
    control: list[Accuracy]
    matched: dict[str, int]
    telltale: list[tuple[str, float]]
    key_agreement: list[KeyAgreement]
    structure: list[StructureComparison]
    phrase_ends: list[PhraseEnds] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pitch_profiles: list[PitchClassProfile] = field(default_factory=list)

    @property
    def strongest(self) -> Accuracy:
        """The detector that told the sets apart best (the honest headline)."""
        return max(self.classifier, key=lambda a: a.mean)


def structure_values(melodies: Sequence[Melody]) -> dict[str, list[float]]:
    """Every ``STRUCTURE_MEASURES`` value of every melody."""
    values: dict[str, list[float]] = {name: [] for name in STRUCTURE_MEASURES}
    for melody in melodies:
        measures = structure_measures(melody)
        values["returning"].append(measures.repetition.returning)
        values["exact"].append(measures.repetition.exact)
        values["si"].append(measures.structureness.si)
        values["phrase_ends"].append(phrase_end_weight(melody))
    return values


def key_agreement(
    melodies: Sequence[Melody], key_of: Callable[[Melody], Key]
) -> list[KeyAgreement]:
    """Per asked key (majors, then minors, by tonic): pieces, those music21 hears in it,
    and what it hears in the others (``key_relation``)."""
    from cantus.eval.melody_scoring import detect_key

    asked = Counter[Key]()
    heard = Counter[Key]()
    instead: dict[Key, Counter[str]] = {}
    for melody in melodies:
        key = key_of(melody)
        asked[key] += 1
        detected = detect_key(melody)
        if detected == key:
            heard[key] += 1
        else:
            instead.setdefault(key, Counter())[key_relation(key, detected)] += 1
    order = sorted(asked, key=lambda k: (k.mode is Mode.MINOR, k.tonic))
    return [KeyAgreement(k.name, asked[k], heard[k], dict(instead.get(k, {}))) for k in order]


def pitch_class_profiles(
    generated: np.ndarray,
    generated_modes: Sequence[str],
    real: np.ndarray,
    real_modes: Sequence[str],
) -> list[PitchClassProfile]:
    """Per mode present on both sides, the mean pitch-class histograms (the first 12 columns
    of ``feature_matrix`` rows) of the generated and the real melodies."""
    profiles = []
    for mode in Mode:
        mine = [i for i, m in enumerate(generated_modes) if m == mode.value]
        theirs = [i for i, m in enumerate(real_modes) if m == mode.value]
        if mine and theirs:
            profiles.append(
                PitchClassProfile(
                    mode.value,
                    tuple(float(v) for v in generated[mine, :12].mean(axis=0)),
                    tuple(float(v) for v in real[theirs, :12].mean(axis=0)),
                    len(mine),
                    len(theirs),
                )
            )
    return profiles


def realness_report(
    generated: Sequence[Melody],
    real: Sequence[Melody],
    *,
    n_bars: int,
    key_of: Callable[[Melody], Key] = lambda melody: melody.key,
    seed: int = 0,
) -> RealnessReport:
    """Compare ``generated`` with ``real`` melodies over their first ``n_bars`` bars (module
    docstring). ``key_of``: the key a melody is heard against (pitch classes relative to its
    tonic) and, for generated melodies, the key it was asked for; by default each melody's
    own ``key``."""
    generated_window = [m for m in (first_bars(m, n_bars) for m in generated) if m]
    real_window = [m for m in (first_bars(m, n_bars) for m in real) if m]
    rng = np.random.default_rng(seed)
    generated_keys = [key_of(m) for m in generated_window]
    real_keys = [key_of(m) for m in real_window]
    generated_features = feature_matrix(generated_window, generated_keys)
    real_features = feature_matrix(real_window, real_keys)

    generated_modes = [k.mode.value for k in generated_keys]
    real_modes = [k.mode.value for k in real_keys]
    in_generated, in_real = matched_by_group(generated_modes, real_modes, rng)
    classifier = [
        cross_validated_accuracy(
            generated_features[in_generated], real_features[in_real], name, seed=seed
        )
        for name in CLASSIFIERS
    ]
    matched = Counter(generated_modes[i] for i in in_generated)
    first_half, second_half = split_halves(real_modes, rng, sizes=dict(matched))
    control = [
        cross_validated_accuracy(
            real_features[first_half], real_features[second_half], name, seed=seed
        )
        for name in CLASSIFIERS
    ]
    telltale = telltale_features(
        real_features[in_real], generated_features[in_generated], feature_names(), seed=seed
    )

    generated_structure = structure_values(generated_window)
    real_structure = structure_values(real_window)
    structure = []
    for name in STRUCTURE_MEASURES:
        real_band, generated_band = (
            Band.of(real_structure[name]),
            Band.of(generated_structure[name]),
        )
        inside = np.mean([real_band.contains(v) for v in generated_structure[name]])
        rank = percentile_rank(generated_band.median, real_structure[name])
        structure.append(StructureComparison(name, generated_band, real_band, float(inside), rank))
    return RealnessReport(
        n_bars=n_bars,
        generated=len(generated_window),
        real=len(real_window),
        dropped_generated=len(generated) - len(generated_window),
        dropped_real=len(real) - len(real_window),
        overlap=overlap_report(generated_window, real_window, key_of, seed=seed),
        classifier=classifier,
        control=control,
        matched=dict(matched),
        telltale=telltale,
        key_agreement=key_agreement(generated_window, key_of),
        structure=structure,
        phrase_ends=phrase_ends_leading_on(generated, real, n_bars),
        pitch_profiles=pitch_class_profiles(
            generated_features, generated_modes, real_features, real_modes
        ),
    )


# ---------------------------------------------------------------------------- Markdown


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


COUNTED_FEATURES = frozenset({"pitch_range", "notes_per_bar"})
"""Scalar features that are not shares (shown as numbers, not percentages)."""


def _number(value: float, feature: str) -> str:
    return f"{value:.2f}" if feature in COUNTED_FEATURES else f"{100 * value:.1f} %"


def _accuracy_row(label: str, accuracy: Accuracy) -> str:
    return (
        f"| {label} | {accuracy.classifier} | {accuracy.per_class} | "
        f"{_pct(accuracy.mean)} ± {100 * accuracy.std:.0f} | "
        f"{_pct(accuracy.low)}–{_pct(accuracy.high)} |"
    )


SCALAR_LABELS = {
    "repeated_note_rate": "repeated-note intervals",
    "stepwise_rate": "stepwise intervals (1–2 semitones)",
    "top_pitch_class_share": "share of the most frequent pitch class",
    "pitch_range": "pitch range (semitones)",
    "direction_change_rate": "direction changes between intervals",
    "notes_per_bar": "notes per bar",
    "on_beat_share": "notes on a beat",
    "syncopation_rate": "syncopated notes",
    "rest_share": "time in rests",
}


def format_report(report: RealnessReport) -> list[str]:
    """The report's sections as Markdown lines (the caller adds a title and how it was made)."""
    summaries = {s["name"]: s for s in report.overlap["summaries"]}
    overlaps = {o["name"]: o for o in report.overlap["overlap"]}
    lines = [
        f"Window: the first {report.n_bars} bars of each melody; {report.generated} generated "
        f"melodies ({report.dropped_generated} shorter ones left out) against {report.real} "
        f"real ones ({report.dropped_real} shorter tunes left out).",
        "",
        "## Realness: a classifier telling generated from real",
        "",
        "Stratified 5-fold cross-validation repeated 3 times, balanced classes; the sets "
        "are matched by mode ("
        + ", ".join(f"{n} {mode}" for mode, n in sorted(report.matched.items()))
        + " per class). Classifiers: `logistic`, logistic regression on standardised "
        "features; `boosting`, histogram gradient boosting (200 trees of at most 8 leaves). "
        "The control tells two disjoint random sets of real tunes apart, with the same mode "
        "mix and, where the real tunes suffice, the same size. Goal (issue 14): ≤ 60 %.",
        "",
        "| comparison | classifier | melodies per class | accuracy (mean ± sd over folds) "
        "| range of repeat means |",
        "|---|---|---|---|---|",
        *(_accuracy_row("generated vs real", a) for a in report.classifier),
        *(_accuracy_row("real vs real (control)", a) for a in report.control),
        "",
        f"Strongest detector: **{report.strongest.classifier}, "
        f"{_pct(report.strongest.mean)}**. What gives generated melodies away (standardised "
        "logistic-regression coefficients, positive: more of it in generated melodies): "
        + ", ".join(f"`{name}` {coef:+.2f}" for name, coef in report.telltale)
        + ".",
        "",
        "## Features: generated against real",
        "",
        "Means over melodies; the real band is the real tunes' 5th–95th percentile; "
        '"in band": share of generated melodies inside it. OA and KL: MGEval overlap of '
        "the intra-real and the generated-to-real distance densities (OA 1 and KL 0: as "
        "close to the real tunes as they are to each other). A band of 0–0 means that "
        "over 95 % of real tunes have none of it.",
        "",
        "| feature | generated | real | real band | mean in band | in band | OA | KL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in SCALAR_LABELS.items():
        s, o = summaries[name], overlaps[name]
        lines.append(
            f"| {label} | {_number(s['generated_mean'], name)} | "
            f"{_number(s['real_mean'], name)} | "
            f"{_number(s['real_low'], name)}–{_number(s['real_high'], name)} | "
            f"{'yes' if s['mean_inside'] else '**no**'} | {_pct(s['generated_inside'])} | "
            f"{o['overlap_area']:.2f} | {o['kl_divergence']:.3f} |"
        )
    lines += [
        "",
        "Histograms, whole (OA and KL of Euclidean distances between histograms):",
        "",
        "| histogram | OA | KL | mean distance real–real | generated–real |",
        "|---|---|---|---|---|",
    ]
    for name in ("pitch_class", "interval", "note_length"):
        o = overlaps[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {o['overlap_area']:.2f} | {o['kl_divergence']:.3f} | "
            f"{o['intra_real_mean']:.3f} | {o['inter_mean']:.3f} |"
        )
    lines += [
        "",
        "Histogram bins (share of notes or intervals; pitch classes relative to the tonic):",
        "",
        "| bin | generated | real | real band | mean in band |",
        "|---|---|---|---|---|",
    ]
    for name in feature_names():
        if name in SCALAR_LABELS:
            continue
        s = summaries[name]
        lines.append(
            f"| {name} | {_number(s['generated_mean'], name)} | {_number(s['real_mean'], name)} | "
            f"{_number(s['real_low'], name)}–{_number(s['real_high'], name)} | "
            f"{'yes' if s['mean_inside'] else '**no**'} |"
        )
    lines += _key_lines(report) + _structure_lines(report) + _phrase_end_lines(report)
    return lines


def _phrase_end_lines(report: RealnessReport) -> list[str]:
    if not report.phrase_ends:
        return []
    lines = [
        "",
        "## Phrase ends that lead on",
        "",
        "Share of phrase-end bars (every 4th bar, counted after a pickup, within the window; "
        "the melody's last bar aside) with a note after the cadence tone, the bar's longest "
        "note on a beat (`cantus.melody.phrase_endings.leads_on`), by meter.",
        "",
        "| meter | generated | real |",
        "|---|---|---|",
    ]
    for ends in report.phrase_ends:
        lines.append(
            f"| {ends.meter} | {_pct(ends.generated_leading / ends.generated)} "
            f"({ends.generated}) | {_pct(ends.real_leading / ends.real)} ({ends.real}) |"
        )
    lines += [
        "",
        "How long the cadence tone of those that lead on lasts, against the beat "
        "(`cantus.melody.phrase_endings.hold_of`; the composer draws it from the training "
        "split's shares, `CADENCE_HOLDS`): shares under half a beat / half a beat or more / "
        "a beat or more / two beats or more.",
        "",
        "| meter | generated | real |",
        "|---|---|---|",
    ]
    for ends in report.phrase_ends:
        if sum(ends.generated_holds) and sum(ends.real_holds):
            lines.append(
                f"| {ends.meter} | {_hold_shares(ends.generated_holds)} "
                f"| {_hold_shares(ends.real_holds)} |"
            )
    lines += [
        "",
        "Of those held a beat or more, the share with a rest before the upbeat "
        "(`cantus.melody.phrase_endings.breathes`; the composer draws a piece's habit, never, "
        "sometimes or always, as the training split's tunes of its style and meter have "
        "theirs, `BREATH_HABITS`).",
        "",
        "| meter | generated | real |",
        "|---|---|---|",
    ]
    for ends in report.phrase_ends:
        (generated, generated_count), (real, real_count) = ends.generated_breaths, ends.real_breaths
        if generated_count and real_count:
            lines.append(
                f"| {ends.meter} | {_pct(generated / generated_count)} ({generated_count}) "
                f"| {_pct(real / real_count)} ({real_count}) |"
            )
    return lines


def _hold_shares(counts: Sequence[int]) -> str:
    total = sum(counts)
    return " / ".join(f"{round(100 * c / total)}" for c in counts) + f" % ({total})"


def _key_lines(report: RealnessReport) -> list[str]:
    total = sum(k.pieces for k in report.key_agreement)
    heard = sum(k.heard_as_asked for k in report.key_agreement)
    lines = [
        "",
        "## Key agreement",
        "",
        f"music21 hears the asked key in {heard} of {total} generated melodies "
        f"({_pct(heard / max(total, 1))}). Goal (issue 14): ≥ 90 % for every key.",
        "",
        "| key | pieces | heard as asked |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k.key} | {k.pieces} | {k.heard_as_asked} ({_pct(k.heard_as_asked / k.pieces)}) |"
        for k in report.key_agreement
    ]
    for mode in Mode:
        instead = Counter[str]()
        for k in report.key_agreement:
            if k.key.endswith(mode.value):
                instead.update(k.heard_instead)
        if instead:
            heard_as = ", ".join(f"{relation} {instead[relation]}" for relation in KEY_RELATIONS)
            lines += ["", f"Asked {mode.value}, heard in another key: {heard_as}."]
    return lines + _pitch_profile_lines(report)


SCALE_DEGREES = ("1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7")
"""Names of the semitones above the tonic, for the pitch-class tables."""


def _pitch_profile_lines(report: RealnessReport) -> list[str]:
    if not report.pitch_profiles:
        return []
    header = " | ".join(
        f"{p.mode}: generated ({p.n_generated}) | real ({p.n_real})" for p in report.pitch_profiles
    )
    lines = [
        "",
        "## Pitch classes by mode",
        "",
        "Mean share of notes per degree (semitones above the asked or labelled tonic), "
        "generated against real melodies of the same mode.",
        "",
        f"| degree | {header} |",
        "|---|" + "---:|---:|" * len(report.pitch_profiles),
    ]
    for pc, name in enumerate(SCALE_DEGREES):
        cells = " | ".join(
            f"{_share(p.generated[pc])} | {_share(p.real[pc])}" for p in report.pitch_profiles
        )
        lines.append(f"| {name} | {cells} |")
    return lines


def _share(value: float) -> str:
    return f"{100 * value:.1f} %"


def _band(band: Band, percent: bool) -> str:
    show = _pct if percent else (lambda v: f"{v:.2f}")
    return f"{show(band.median)} ({show(band.low)}–{show(band.high)})"


def _structure_lines(report: RealnessReport) -> list[str]:
    lines = [
        "",
        "## Structure",
        "",
        "Median (5th–95th percentile) over melodies, the first "
        f"{report.n_bars} bars of each (`cantus.eval.structure`).",
        "",
        'A real band that starts at 0 holds every melody that never returns, so "in the '
        'real band" is weak here; the rank of the generated median among the real tunes '
        "(50 %: the real median) says more.",
        "",
        "| measure | generated | real | generated in the real band | rank of the generated "
        "median among real |",
        "|---|---|---|---|---|",
    ]
    for row in report.structure:
        percent = row.measure not in NOT_PERCENT
        lines.append(
            f"| {STRUCTURE_MEASURES[row.measure]} | {_band(row.generated, percent)} | "
            f"{_band(row.real, percent)} | {_pct(row.generated_inside)} | "
            f"{_pct(row.median_rank)} |"
        )
    return lines
