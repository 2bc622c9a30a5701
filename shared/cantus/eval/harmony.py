"""``cantus eval harmony``: harmonising held-out chorale sopranos, side by side in one run.

Harmonisers: the trained model (``cantus.harmony.serving.ModelHarmonizer``, bar by bar
with one bar of lookahead as the service runs it; once more without the
melody-fit term of its decoding), Bach's own chords (read from the four
voices, ``cantus.harmony.dataset``), the rule-based diatonic harmoniser
(``cantus.harmony.rules``) and the HMM (``cantus.harmony.hmm``, fitted on the train
split). Every harmoniser gives one chord per beat; the test split's sopranos are the input.

Metrics, after Yeh et al. 2020 ("Automatic melody harmonization with triad chords"),
computed per piece and averaged over pieces; chords compared without their bass note:

* CHE, chord histogram entropy (nats) of the beat chords; CC, chord coverage: distinct
  chords used.
* CTD, chord tonal distance: mean distance between the 6-D tonal centroids (Harte et al.
  2006) of the chords of adjacent beats.
* CTnCTR, chord-tone to non-chord-tone ratio ``(n_c + n_p) / (n_c + n_n)`` over melody
  notes against the chord at their onset: chord tones n_c, non-chord tones n_n, and n_p
  of those within two semitones of the next note (passing and neighbour tones).
  CTnCTR saturates on chorale sopranos, which move by step almost everywhere, so the
  strict chord-tone share ``n_c / (n_c + n_n)`` is reported beside it.
* PCS, pitch consistency score: each sixteenth of melody against each chord tone, +1 for
  a unison, third, fifth or sixth (0, 3, 4, 7, 8, 9 semitones), 0 for a fourth, -1
  otherwise; averaged.
* MCTD, melody-chord tonal distance: tonal distance between each melody note and its chord,
  weighted by duration.
* Root agreement with Bach: share of beats whose chord root equals Bach's.
* Parallel rate: share of beat-to-beat moves of the four-part texture (the soprano and the
  chorale voicing of ``cantus.harmony.voicing``; for Bach, his alto, tenor and bass) with a
  parallel fifth or octave between any two voices.

The controls (``run_controls_eval``): the same held-out melodies (test split: the
chorales, every real chord-annotated folk and celtic tune, and derived-label folk and
celtic tunes) harmonised by the model once per style and energy level. Per run: the share
of beats on each chord function (``I``, ``IV``, ``V``, ``vi``: roots on the tonic,
subdominant, dominant and submediant, any quality; ``VI`` in minor counts as ``vi``),
sevenths and sus chords, chord changes per bar (harmonic rhythm), CHE, CC, PCS, the
share of beats whose chord differs from another setting's, and root and chord agreement
with the melodies' own annotations (Bach's, the real folk and celtic chord symbols, or
the derived analysis).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cantus.harmony.dataset import ANNOTATED, DERIVED, HarmonizedTune, load_or_build_dataset
from cantus.harmony.features import beat_spans
from cantus.harmony.hmm import HMMHarmonizer
from cantus.harmony.rules import ChordSpan, harmonize_bars
from cantus.harmony.vocabulary import class_to_chord
from cantus.harmony.voicing import tune_before, voice_chords
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Bar, Key, Mode
from cantus.music.styles import Energy, Style
from cantus.settings import REPO_ROOT

SIXTEENTH = 120
"""Ticks per sixteenth note, the PCS frame."""
CONSONANT = frozenset({0, 3, 4, 7, 8, 9})
PERFECT_FOURTH = 5

BeatChords = list[list[ChordSymbol | None]]
"""One chord (or None) per beat, per bar."""


# --- tonal space ---------------------------------------------------------------------------

_RADII = (1.0, 1.0, 0.5)
_PHI = np.array(
    [
        [
            _RADII[0] * math.sin(pc * 7 * math.pi / 6),
            _RADII[0] * math.cos(pc * 7 * math.pi / 6),
            _RADII[1] * math.sin(pc * 3 * math.pi / 2),
            _RADII[1] * math.cos(pc * 3 * math.pi / 2),
            _RADII[2] * math.sin(pc * 2 * math.pi / 3),
            _RADII[2] * math.cos(pc * 2 * math.pi / 3),
        ]
        for pc in range(12)
    ]
)


def tonal_centroid(pitch_classes: Sequence[int] | frozenset[int]) -> np.ndarray:
    """The 6-D tonal centroid (Harte, Sandler and Gasser 2006) of a set of pitch classes."""
    chroma = np.zeros(12)
    for pc in pitch_classes:
        chroma[pc % 12] = 1.0
    return chroma @ _PHI / max(chroma.sum(), 1.0)


def tonal_distance(a: Sequence[int] | frozenset[int], b: Sequence[int] | frozenset[int]) -> float:
    return float(np.linalg.norm(tonal_centroid(a) - tonal_centroid(b)))


# --- metrics -------------------------------------------------------------------------------


def _filled(chords: BeatChords) -> list[ChordSymbol]:
    """Beat chords flattened, a missing chord replaced by the one before (or after)."""
    flat = [c for bar in chords for c in bar]
    known = [c for c in flat if c is not None]
    if not known:
        return []
    result, current = [], known[0]
    for chord in flat:
        current = chord if chord is not None else current
        result.append(current)
    return result


def chord_histogram_entropy(chords: BeatChords) -> float:
    counts = Counter(c.without_bass for c in _filled(chords))
    total = sum(counts.values())
    return float(-sum(n / total * math.log(n / total) for n in counts.values())) if total else 0.0


def chord_coverage(chords: BeatChords) -> int:
    return len({c.without_bass for c in _filled(chords)})


def chord_tonal_distance(chords: BeatChords) -> float:
    flat = _filled(chords)
    distances = [tonal_distance(a.tones, b.tones) for a, b in itertools.pairwise(flat)]
    return float(np.mean(distances)) if distances else 0.0


def _notes_with_chords(
    bars: Sequence[Bar], chords: BeatChords
) -> list[tuple[int, int, int, ChordSymbol]]:
    """(absolute onset, duration, pitch, chord at the onset's beat) for every melody note."""
    flat_chords = _filled(chords)
    result, bar_start, beat_base = [], 0, 0
    for bar in bars:
        spans = beat_spans(bar.meter)
        for note in bar.notes:
            beat = next(i for i, (on, length) in enumerate(spans) if on <= note.onset < on + length)
            if flat_chords:
                result.append(
                    (
                        bar_start + note.onset,
                        note.duration,
                        note.pitch,
                        flat_chords[beat_base + beat],
                    )
                )
        bar_start += bar.meter.bar_ticks
        beat_base += len(spans)
    return result


def chord_tone_counts(bars: Sequence[Bar], chords: BeatChords) -> tuple[int, int, int]:
    """(n_c chord tones, n_n non-chord tones, n_p non-chord tones within two semitones of
    the next note) over the melody's notes."""
    notes = _notes_with_chords(bars, chords)
    chord_tones = non_chord = proper = 0
    for index, (_, _, pitch, chord) in enumerate(notes):
        if pitch % 12 in chord.pitch_classes:
            chord_tones += 1
            continue
        non_chord += 1
        following = notes[index + 1][2] if index + 1 < len(notes) else None
        if following is not None and abs(following - pitch) <= 2:
            proper += 1
    return chord_tones, non_chord, proper


def chord_tone_ratio(bars: Sequence[Bar], chords: BeatChords) -> float:
    """CTnCTR: ``(n_c + n_p) / (n_c + n_n)``; 1.0 for a melody of chord tones only."""
    chord_tones, non_chord, proper = chord_tone_counts(bars, chords)
    denominator = chord_tones + non_chord
    return (chord_tones + proper) / denominator if denominator else 1.0


def chord_tone_share(bars: Sequence[Bar], chords: BeatChords) -> float:
    """``n_c / (n_c + n_n)``: the share of melody notes that are chord tones."""
    chord_tones, non_chord, _ = chord_tone_counts(bars, chords)
    return chord_tones / (chord_tones + non_chord) if chord_tones + non_chord else 1.0


def pitch_consistency(bars: Sequence[Bar], chords: BeatChords) -> float:
    """PCS: mean over sixteenth frames and chord tones of +1 / 0 / -1 (see the module)."""
    scores = []
    for _, duration, pitch, chord in _notes_with_chords(bars, chords):
        frames = max(1, duration // SIXTEENTH)
        for tone in chord.tones:
            interval = (pitch - tone) % 12
            score = 1 if interval in CONSONANT else 0 if interval == PERFECT_FOURTH else -1
            scores.extend([score] * frames)
    return float(np.mean(scores)) if scores else 0.0


def melody_chord_tonal_distance(bars: Sequence[Bar], chords: BeatChords) -> float:
    total = weight = 0.0
    for _, duration, pitch, chord in _notes_with_chords(bars, chords):
        total += duration * tonal_distance([pitch % 12], chord.tones)
        weight += duration
    return total / weight if weight else 0.0


def _both_chorded(
    chords: BeatChords, reference: BeatChords
) -> list[tuple[ChordSymbol, ChordSymbol]]:
    """The (chord, reference chord) pairs of the beats where both have a chord."""
    return [
        (a, b)
        for bar_a, bar_b in zip(chords, reference, strict=True)
        for a, b in zip(bar_a, bar_b, strict=True)
        if a is not None and b is not None
    ]


def root_agreement(chords: BeatChords, reference: BeatChords) -> float:
    pairs = _both_chorded(chords, reference)
    return sum(a.root == b.root for a, b in pairs) / len(pairs) if pairs else 0.0


def parallel_rate(slices: Sequence[tuple[int, ...] | None]) -> tuple[int, int]:
    """(moves with a parallel fifth or octave, moves) between consecutive complete slices
    of voice pitches (bottom voice first); a pair is parallel when both voices move in the
    same direction and keep a fifth or an octave (unison) apart, modulo the octave."""
    parallels = moves = 0
    for before, after in itertools.pairwise(slices):
        if before is None or after is None or before == after:
            continue
        moves += 1
        for low, high in itertools.combinations(range(len(before)), 2):
            step_low, step_high = after[low] - before[low], after[high] - before[high]
            if step_low == 0 or step_high == 0 or (step_low > 0) != (step_high > 0):
                continue
            interval_before = (before[high] - before[low]) % 12
            if interval_before == (after[high] - after[low]) % 12 and interval_before in (0, 7):
                parallels += 1
                break
    return parallels, moves


def voiced_slices(bars: Sequence[Bar], chords: BeatChords) -> list[tuple[int, ...] | None]:
    """The four-part texture at every beat onset: the chorale voicing of the chord spans
    (bass, tenor, alto) and the soprano, None where the soprano rests."""
    slices: list[tuple[int, ...] | None] = []
    previous_voicing: tuple[int, ...] | None = None
    melody_before: tuple[int, ...] = ()
    flat = iter(_filled(chords))
    for bar in bars:
        spans = _beats_to_spans(bar, [next(flat) for _ in beat_spans(bar.meter)])
        voicing = voice_chords(
            spans,
            style=Style.CHORALE,
            previous_voicing=previous_voicing,
            melody=bar,
            melody_before=melody_before,
        )
        melody_before = tune_before(bar, bar.meter.bar_ticks)
        for onset, _ in beat_spans(bar.meter):
            lower = sorted(n.pitch for n in voicing if n.onset <= onset < n.end)
            soprano = next((n.pitch for n in bar.notes if n.onset <= onset < n.end), None)
            slices.append((*lower, soprano) if soprano is not None and len(lower) == 3 else None)
        last_onset = max(n.onset for n in voicing)
        previous_voicing = tuple(sorted(n.pitch for n in voicing if n.onset == last_onset))
    return slices


def _beats_to_spans(bar: Bar, chords: Sequence[ChordSymbol]) -> list[ChordSpan]:
    spans: list[ChordSpan] = []
    for (onset, length), chord in zip(beat_spans(bar.meter), chords, strict=True):
        if spans and spans[-1].symbol == chord:
            spans[-1] = ChordSpan(spans[-1].onset, spans[-1].duration + length, chord, "")
        else:
            spans.append(ChordSpan(onset, length, chord, ""))
    return spans


# --- the run -------------------------------------------------------------------------------

UNAIDED = "model, no melody fit"
"""The same model decoded on its own probabilities alone (``melody_fit`` 0)."""

METRICS = (
    "CHE",
    "CC",
    "CTD",
    "CTnCTR",
    "chord-tone share",
    "PCS",
    "MCTD",
    "root agreement",
    "parallel rate",
)


@dataclass
class HarmonizerResult:
    name: str
    per_piece: dict[str, list[float]] = field(default_factory=dict)
    parallels: int = 0
    moves: int = 0
    seconds: float = 0.0

    def mean(self, metric: str) -> float:
        if metric == "parallel rate":
            return self.parallels / self.moves if self.moves else 0.0
        return float(np.mean(self.per_piece[metric]))


@dataclass
class HarmonyEvalReport:
    pieces: int
    beats: int
    results: list[HarmonizerResult]
    checkpoint: str
    checkpoint_metadata: dict

    def result(self, name: str) -> HarmonizerResult:
        return next(r for r in self.results if r.name == name)


def _beats_from_classes(key: Key, per_bar: Sequence[Sequence[tuple[int, int]]]) -> BeatChords:
    return [[class_to_chord(c, key, inversion) for c, inversion in bar] for bar in per_bar]


def _rules_beats(tune: HarmonizedTune, style: Style = Style.CHORALE) -> BeatChords:
    result: BeatChords = []
    for bar, spans in zip(tune.bars, harmonize_bars(tune.bars, tune.key, style=style), strict=True):
        result.append(
            [
                next(s.symbol for s in spans if s.onset <= onset < s.onset + s.duration)
                for onset, _ in beat_spans(bar.meter)
            ]
        )
    return result


def _score(
    result: HarmonizerResult,
    tune: HarmonizedTune,
    chords: BeatChords,
    reference: BeatChords,
    slices: Sequence[tuple[int, ...] | None],
) -> None:
    values = {
        "CHE": chord_histogram_entropy(chords),
        "CC": chord_coverage(chords),
        "CTD": chord_tonal_distance(chords),
        "CTnCTR": chord_tone_ratio(tune.bars, chords),
        "chord-tone share": chord_tone_share(tune.bars, chords),
        "PCS": pitch_consistency(tune.bars, chords),
        "MCTD": melody_chord_tonal_distance(tune.bars, chords),
        "root agreement": root_agreement(chords, reference),
    }
    for metric, value in values.items():
        result.per_piece.setdefault(metric, []).append(float(value))
    parallels, moves = parallel_rate(slices)
    result.parallels += parallels
    result.moves += moves


def run_harmony_eval(
    checkpoint: Path,
    *,
    cache_dir: Path,
    limit: int | None = None,
    split: str = "test",
    melody_fit: float | None = None,
    log: Callable[[str], None] = print,
) -> HarmonyEvalReport:
    """Harmonise every chorale of ``split`` (test; valid to tune decoding) with each
    harmoniser and score it. ``melody_fit`` overrides the served decoding weight."""
    import torch

    from cantus.harmony.model import load_harmony_checkpoint
    from cantus.harmony.serving import HarmonyServing, MelodyToHarmonize, ModelHarmonizer

    torch.set_num_threads(1)
    tunes = load_or_build_dataset(cache_dir)
    test = [t for t in tunes if t.split == split and t.style is Style.CHORALE][:limit]
    # The HMM is a chorale baseline: fitted on the chorales alone.
    train = [t for t in tunes if t.split == "train" and t.style is Style.CHORALE]
    log(f"{len(test)} test chorales, HMM fitted on {len(train)} training tunes")
    names = ("model", UNAIDED, "Bach", "rules", "HMM")
    results = {name: HarmonizerResult(name) for name in names}
    melodies = [MelodyToHarmonize(t.bars, t.key, Style.CHORALE, t.energy) for t in test]

    started = time.monotonic()
    serving = HarmonyServing.load(checkpoint)
    if melody_fit is not None:
        serving.melody_fit = melody_fit
    model_beats = ModelHarmonizer(serving).harmonize(melodies)
    results["model"].seconds = time.monotonic() - started
    started = time.monotonic()
    unaided = HarmonyServing(serving.net, serving.model_version, melody_fit=0.0)
    unaided_beats = ModelHarmonizer(unaided).harmonize(melodies)
    results[UNAIDED].seconds = time.monotonic() - started
    started = time.monotonic()
    hmm = HMMHarmonizer.fit(train)
    hmm_beats = [hmm.harmonize(t.bars, t.key) for t in test]
    results["HMM"].seconds = time.monotonic() - started
    started = time.monotonic()
    rules_beats = [_rules_beats(t) for t in test]
    results["rules"].seconds = time.monotonic() - started

    beats = 0
    for index, tune in enumerate(test):
        bach = tune.chord_symbols()
        beats += sum(len(bar) for bar in bach)
        bach_slices = [v for bar in tune.voices for v in bar]
        _score(results["Bach"], tune, bach, bach, bach_slices)
        for name, chords in (
            ("model", _beats_from_classes(tune.key, model_beats[index])),
            (UNAIDED, _beats_from_classes(tune.key, unaided_beats[index])),
            ("HMM", _beats_from_classes(tune.key, hmm_beats[index])),
            ("rules", rules_beats[index]),
        ):
            _score(results[name], tune, chords, bach, voiced_slices(tune.bars, chords))
    _, metadata = load_harmony_checkpoint(checkpoint)
    shown = Path(checkpoint).resolve()
    if shown.is_relative_to(REPO_ROOT):
        shown = shown.relative_to(REPO_ROOT)
    return HarmonyEvalReport(len(test), beats, list(results.values()), str(shown), metadata)


def format_report(report: HarmonyEvalReport, *, command: str) -> str:
    lines = [
        "# Harmony evaluation",
        "",
        f"Regenerate: `{command}`",
        "",
        f"{report.pieces} held-out Bach chorales (test split by melody hash), {report.beats} "
        "beats; the soprano is given, every harmoniser picks one chord per beat. Metrics as "
        "in Yeh et al. 2020 (definitions in `shared/cantus/eval/harmony.py`), averaged over "
        "pieces. Model checkpoint: "
        f"`{report.checkpoint}` (chorale validation chord accuracy "
        f"{report.checkpoint_metadata.get('valid_chord_accuracy', float('nan')):.3f}, "
        f"made by `{report.checkpoint_metadata.get('command', '?')}`).",
        "",
        "| harmoniser | " + " | ".join(METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for result in report.results:
        cells = []
        for metric in METRICS:
            value = result.mean(metric)
            cells.append(
                f"{value:.1%}" if metric in ("root agreement", "parallel rate") else f"{value:.3f}"
            )
        lines.append(f"| {result.name} | " + " | ".join(cells) + " |")
    model, bach = report.result("model"), report.result("Bach")
    rules, hmm = report.result("rules"), report.result("HMM")
    lines += [
        "",
        "Higher CTnCTR, chord-tone share and PCS mean chords that fit the melody better, "
        "lower MCTD likewise; CHE, CC and CTD describe the chord vocabulary and movement and "
        "are best read against Bach's. CTnCTR saturates here: chorale sopranos move by step "
        "almost everywhere, so nearly every non-chord tone counts as a proper one, for Bach "
        "and for every harmoniser; the chord-tone share shows the difference it hides. The "
        "model decodes with its served melody-fit weight (chosen on the validation split, "
        "`cantus.harmony.serving.MELODY_FIT`). Parallel rate: the voicing of "
        "`cantus.harmony.voicing` under the soprano for model, rules and HMM; Bach's own "
        "voices for Bach, read at beat onsets (passing notes make a few of his). Most of "
        "the voicing's remaining parallels are between bass and tune where the chosen chord "
        "and inversion put the bass note under the tune's note in similar motion, which no "
        "other spacing of that chord avoids.",
        "",
    ]
    lines.append("## Targets")
    lines.append("")
    unaided = report.result(UNAIDED)
    for metric in ("CTnCTR", "PCS"):
        best_baseline = max(rules.mean(metric), hmm.mean(metric))
        beaten = model.mean(metric) > best_baseline
        margin = model.mean(metric) - best_baseline
        lines.append(
            f"* model beats both baselines on {metric}: **{'yes' if beaten else 'no'}** "
            f"(model {model.mean(metric):.3f}, rules {rules.mean(metric):.3f}, "
            f"HMM {hmm.mean(metric):.3f}; ratio to the better baseline "
            f"{model.mean(metric) / best_baseline:.3f}"
            + ("; a margin within noise" if beaten and margin < 0.005 else "")
            + f"; without the melody fit {unaided.mean(metric):.3f})"
        )
    gap = abs(model.mean("CTnCTR") - bach.mean("CTnCTR"))
    lines.append(
        f"* model CTnCTR within 0.05 of Bach's: **{'yes' if gap <= 0.05 else 'no'}** "
        f"(|{model.mean('CTnCTR'):.3f} - {bach.mean('CTnCTR'):.3f}| = {gap:.3f})"
    )
    lines += [
        "",
        "Time to harmonise the whole test set on this machine, single thread, in this run: "
        + ", ".join(f"{r.name} {r.seconds:.1f} s" for r in report.results if r.name != "Bach")
        + ".",
        "",
    ]
    return "\n".join(lines)


# --- the controls: style and energy on the same melodies ----------------------------------

CONTROL_STYLES = (Style.CHORALE, Style.FOLK, Style.CELTIC)
CONTROL_ENERGIES = (Energy.LOW, Energy.MID, Energy.HIGH)
DERIVED_CONTROL_TUNES = 40
"""Derived-label test tunes per style among the control melodies (the real annotated
ones and the test chorales are all used)."""
FUNCTIONS = ("I", "IV", "V", "vi")
PROFILE_COLUMNS = (
    *FUNCTIONS,
    "7ths",
    "sus",
    "changes/bar",
    "CHE",
    "CC",
    "PCS",
    "chord-tone share",
)


def chord_function(chord: ChordSymbol, key: Key) -> str | None:
    """``I``, ``IV``, ``V`` or ``vi`` for a chord rooted on the tonic, subdominant,
    dominant or submediant (``VI`` in minor) of ``key``, whatever its quality; else None."""
    interval = (chord.root - key.tonic) % 12
    submediant = 8 if key.mode is Mode.MINOR else 9
    return {0: "I", 5: "IV", 7: "V", submediant: "vi"}.get(interval)


def chord_changes(chords: BeatChords) -> int:
    """Beats whose chord (without its bass) differs from the beat before."""
    flat = [c.without_bass for c in _filled(chords)]
    return sum(a != b for a, b in itertools.pairwise(flat))


def chord_profile(
    pieces: Sequence[tuple[HarmonizedTune, BeatChords]],
) -> dict[str, float]:
    """The ``PROFILE_COLUMNS`` over ``pieces``: function, seventh and sus shares of all
    beats, chord changes per bar over all bars; CHE, CC, PCS and chord-tone share averaged
    over pieces."""
    counts: Counter[str] = Counter()
    beats = bars = changes = 0
    per_piece: dict[str, list[float]] = {"CHE": [], "CC": [], "PCS": [], "chord-tone share": []}
    for tune, chords in pieces:
        flat = _filled(chords)
        if not flat:
            continue
        for chord in flat:
            counts[chord_function(chord, tune.key) or "other"] += 1
            counts["7ths"] += chord.quality.is_seventh
            counts["sus"] += chord.quality in (
                ChordQuality.SUS2,
                ChordQuality.SUS4,
                ChordQuality.DOMINANT_7_SUS4,
            )
        beats += len(flat)
        bars += len(tune.bars)
        changes += chord_changes(chords)
        per_piece["CHE"].append(chord_histogram_entropy(chords))
        per_piece["CC"].append(chord_coverage(chords))
        per_piece["PCS"].append(pitch_consistency(tune.bars, chords))
        per_piece["chord-tone share"].append(chord_tone_share(tune.bars, chords))
    profile = {name: counts[name] / beats if beats else 0.0 for name in (*FUNCTIONS, "7ths", "sus")}
    profile["changes/bar"] = changes / bars if bars else 0.0
    profile.update({name: float(np.mean(v)) if v else 0.0 for name, v in per_piece.items()})
    return profile


def chord_agreement(chords: BeatChords, reference: BeatChords) -> float:
    """Share of beats, where both have a chord, with the same chord (bass ignored)."""
    pairs = _both_chorded(chords, reference)
    return sum(a.without_bass == b.without_bass for a, b in pairs) / len(pairs) if pairs else 0.0


def beats_differing(first: Sequence[BeatChords], second: Sequence[BeatChords]) -> float:
    """Share of beats whose chord (bass ignored) differs between two harmonisations of the
    same melodies."""
    pairs = [
        (a, b)
        for x, y in zip(first, second, strict=True)
        for a, b in zip(_filled(x), _filled(y), strict=True)
    ]
    return sum(a.without_bass != b.without_bass for a, b in pairs) / len(pairs) if pairs else 0.0


@dataclass(frozen=True)
class MelodyGroup:
    """Held-out melodies that share a style and a kind of annotation."""

    name: str
    style: Style
    tunes: tuple[HarmonizedTune, ...]


def control_groups(tunes: Sequence[HarmonizedTune], limit: int | None = None) -> list[MelodyGroup]:
    """The held-out melodies of the controls run, in groups: test chorales (Bach's chords),
    real annotated folk and celtic tunes, and derived-label folk and celtic test tunes."""
    test = [t for t in tunes if t.split == "test"]
    groups = [MelodyGroup("chorales (Bach)", Style.CHORALE, ())]
    for style in (Style.FOLK, Style.CELTIC):
        groups.append(MelodyGroup(f"{style.value}, real chord symbols", style, ()))
        groups.append(MelodyGroup(f"{style.value}, derived labels", style, ()))
    filled = []
    for group in groups:
        labels = DERIVED if "derived" in group.name else ANNOTATED
        chosen = [t for t in test if t.style is group.style and t.labels == labels]
        cap = DERIVED_CONTROL_TUNES if labels == DERIVED else None
        cap = min(cap or len(chosen), limit or len(chosen))
        filled.append(MelodyGroup(group.name, group.style, tuple(chosen[:cap])))
    return [g for g in filled if g.tunes]


@dataclass
class ControlsReport:
    groups: list[MelodyGroup]
    # (style, energy or None for each tune's own) -> per group, per tune: beat chords
    runs: dict[tuple[Style, Energy | None], list[list[BeatChords]]]
    rules: list[list[BeatChords]]
    seconds: float

    def flat(self, setting: tuple[Style, Energy | None]) -> list[tuple[HarmonizedTune, BeatChords]]:
        return [
            (tune, chords)
            for group, pieces in zip(self.groups, self.runs[setting], strict=True)
            for tune, chords in zip(group.tunes, pieces, strict=True)
        ]


def run_controls_eval(
    checkpoint: Path,
    *,
    cache_dir: Path,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> ControlsReport:
    """Harmonise the control melodies with every style at each tune's own energy and at
    every energy level, and with the rule-based harmoniser in the group's style."""
    import torch

    from cantus.harmony.serving import HarmonyServing, MelodyToHarmonize, ModelHarmonizer

    torch.set_num_threads(1)
    groups = control_groups(load_or_build_dataset(cache_dir), limit)
    log("control melodies: " + ", ".join(f"{g.name} {len(g.tunes)}" for g in groups))
    harmonizer = ModelHarmonizer(HarmonyServing.load(checkpoint))
    tunes = [t for g in groups for t in g.tunes]
    started = time.monotonic()
    runs: dict[tuple[Style, Energy | None], list[list[BeatChords]]] = {}
    for style in CONTROL_STYLES:
        for energy in (None, *CONTROL_ENERGIES):
            melodies = [MelodyToHarmonize(t.bars, t.key, style, energy or t.energy) for t in tunes]
            classes = harmonizer.harmonize(melodies)
            flat = [_beats_from_classes(t.key, c) for t, c in zip(tunes, classes, strict=True)]
            per_group, position = [], 0
            for group in groups:
                per_group.append(flat[position : position + len(group.tunes)])
                position += len(group.tunes)
            runs[(style, energy)] = per_group
    seconds = time.monotonic() - started
    rules = [[_rules_beats(t, style=g.style) for t in g.tunes] for g in groups]
    return ControlsReport(groups, runs, rules, seconds)


def _cell(column: str, value: float) -> str:
    if column in ("changes/bar", "CHE", "CC", "PCS", "chord-tone share"):
        return f"{value:.3f}" if column != "CC" else f"{value:.2f}"
    return f"{value:.1%}"


def format_controls(report: ControlsReport) -> str:
    """The controls section of the results file."""
    lines = [
        "## Style and energy controls",
        "",
        "The same held-out melodies harmonised by the model with each style (at each "
        "tune's own energy level) and each energy level. Melodies: "
        + ", ".join(f"{g.name}: {len(g.tunes)}" for g in report.groups)
        + ". Real chord symbols: the chord-annotated tunes found offline (music21 corpus, "
        "Debian `abcmidi` and `abcm2ps` examples; list in `cantus.harmony.dataset`), all "
        "held out. Derived labels: folk and celtic corpus melodies chorded by the analysis "
        "of `cantus.harmony.analysis` (what the model trained on for those styles; not "
        "real annotations). Function shares (`I`, `IV`, `V`, `vi`: chords on those roots, "
        "any quality), sevenths and sus are shares of all beats; changes/bar is the "
        "harmonic rhythm; CHE, CC, PCS and chord-tone share are averaged over pieces.",
        "",
        "### Per melody group: annotations against the model in each style",
        "",
        "| melodies | chords | "
        + " | ".join(PROFILE_COLUMNS)
        + " | root agreement | chord agreement |",
        "|---|---|" + "---|" * (len(PROFILE_COLUMNS) + 2),
    ]
    for index, group in enumerate(report.groups):
        references = [t.chord_symbols() for t in group.tunes]
        rows: list[tuple[str, list[BeatChords]]] = [("annotations", references)]
        rows += [
            (f"model, {style.value}", report.runs[(style, None)][index]) for style in CONTROL_STYLES
        ]
        rows.append((f"rules, {group.style.value}", report.rules[index]))
        for name, pieces in rows:
            profile = chord_profile(list(zip(group.tunes, pieces, strict=True)))
            pairs = list(zip(pieces, references, strict=True))
            roots = np.mean([root_agreement(c, r) for c, r in pairs])
            exact = np.mean([chord_agreement(c, r) for c, r in pairs])
            lines.append(
                f"| {group.name} | {name} | "
                + " | ".join(_cell(c, profile[c]) for c in PROFILE_COLUMNS)
                + f" | {roots:.1%} | {exact:.1%} |"
            )
    lines += [
        "",
        "### All control melodies: style × energy",
        "",
        "Beats changed: share of beats whose chord differs from the same style at the "
        "tune's own energy (energy rows) or from the chorale style (style rows).",
        "",
        "| style | energy | " + " | ".join(PROFILE_COLUMNS) + " | beats changed |",
        "|---|---|" + "---|" * (len(PROFILE_COLUMNS) + 1),
    ]
    chorale = [c for _, c in report.flat((Style.CHORALE, None))]
    for style in CONTROL_STYLES:
        own = [c for _, c in report.flat((style, None))]
        for energy in (None, *CONTROL_ENERGIES):
            flat = report.flat((style, energy))
            profile = chord_profile(flat)
            chords = [c for _, c in flat]
            changed = beats_differing(chords, chorale if energy is None else own)
            lines.append(
                f"| {style.value} | {energy.value if energy else 'own'} | "
                + " | ".join(_cell(c, profile[c]) for c in PROFILE_COLUMNS)
                + f" | {changed:.1%} |"
            )
    own_by_style = {style: [c for _, c in report.flat((style, None))] for style in CONTROL_STYLES}
    energy_moves = [
        beats_differing([c for _, c in report.flat((style, energy))], own_by_style[style])
        for style in CONTROL_STYLES
        for energy in CONTROL_ENERGIES
    ]
    lines += [
        "",
        "Reading: the style input moves "
        + ", ".join(
            f"{beats_differing(own_by_style[style], own_by_style[Style.CHORALE]):.0%} of beats "
            f"({style.value})"
            for style in CONTROL_STYLES[1:]
        )
        + " away from the chorale style, and folk and celtic differ from each other on "
        f"{beats_differing(own_by_style[Style.FOLK], own_by_style[Style.CELTIC]):.0%} of beats; "
        "an energy "
        f"level moves {min(energy_moves):.0%} to {max(energy_moves):.0%} of beats within a "
        "style. Folk and celtic learned the derived analysis, whose two styles differ only "
        "in its chord priors and change costs, so they stay close to each other. Energy is "
        "the tune's note-density tertile within its style: nothing in the data ties it to "
        "chords beyond how harmony co-varies with note density, so its effect is small.",
    ]
    lines += [
        "",
        f"Time for the {len(report.runs)} model runs over the control melodies, single "
        f"thread: {report.seconds:.1f} s.",
        "",
    ]
    return "\n".join(lines)
