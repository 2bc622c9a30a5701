"""What the form plan does to harmony and arrangement, measured offline (no stack needed).

``python -m cantus.bench.form --out docs/results/form_render.md`` reports:

* **Cadences.** Held-out corpus tunes of at least 16 bars (folk, celtic, chorale), their first
  16 bars harmonised by the shipped harmony model as the harmony service does
  (``ModelHarmonizer``), once under a 16-bar AABA plan in the tune's key and once without a
  plan. Per cadence bar of the plan: whether its last chord is the intended one (half: V of
  the section's key area; authentic: I), whether an authentic cadence is V–I, and how much of
  the melody in the cadence's last chord segment is on chord tones — split by whether the
  melody itself ends the phrase as the plan asks (its last note the tonic at an authentic
  cadence, a dominant-chord tone at a half cadence), which is what the melody service now
  composes; real tunes do so only in part.
* **Sections.** One piece per form (verse–chorus, AABA, rondo) made of a held-out tune's
  bars (repeated to the plan's length), harmonised under the plan (chords, voicing, bass as
  the harmony service makes them), arranged and rendered as the render service does
  (``PieceParts``, ``SegmentAudio``: streamed in 4-bar segments): per section its role,
  energy, parts, notes per bar (every part), the melody's mean velocity and the loudness
  of the streamed audio; the whole piece's loudness against the target, the closing
  ritardando's tempos and how much longer it makes the piece, and whether the segments'
  times agree with the audio.
* **Endings.** Short pieces as ``auto`` draws them (a pickup bar, then three or four
  four-bar phrases: 20 to 35 seconds), made of held-out folk and celtic tunes' bars,
  harmonised and streamed the same way in six palettes: the whole piece's loudness against
  the target (a short piece has little time to converge, and its ending weighs more) and
  the loudness of the second after the last barline (the held final chord) against the
  last phrase's.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cantus.events.conversions import form_to_pb, mode_to_pb
from cantus.harmony.cadence import bar_harmony_plan, rekey_beats
from cantus.harmony.features import beat_spans
from cantus.harmony.rules import chord_segments
from cantus.harmony.vocabulary import class_to_chord
from cantus.music.form import Cadence, FormPlan, plan_form
from cantus.music.notes import Bar, Key
from cantus.music.styles import Energy, Style
from cantus.render.tempo import ritardando_bars
from cantus.settings import REPO_ROOT

CHECKPOINT = REPO_ROOT / "shared/cantus/checkpoints/harmony_gru.pt"
SEGMENT_BARS = 4
PIECES = (
    ("verse-chorus", 32, Style.FOLK),
    ("AABA", 32, Style.CELTIC),
    ("rondo", 40, Style.CHORALE),
)


@dataclass
class Counter:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(hit)
        self.total += 1

    def __str__(self) -> str:
        if not self.total:
            return "-"
        return f"{self.hits}/{self.total} ({100 * self.hits / self.total:.0f} %)"


@dataclass
class CadenceResult:
    tunes: dict[str, int]
    counts: dict[str, Counter] = field(default_factory=dict)
    tones: dict[str, list[int]] = field(default_factory=dict)

    def count(self, name: str, hit: bool) -> None:
        self.counts.setdefault(name, Counter()).add(hit)

    def tone(self, name: str, on: int, total: int) -> None:
        totals = self.tones.setdefault(name, [0, 0])
        totals[0] += on
        totals[1] += total


def _held_out_tunes(per_style: int):
    from cantus.melody.corpus import load_or_build_corpus

    split = load_or_build_corpus(REPO_ROOT / ".cantus/corpus", progress=False)
    tunes = []
    for style in (Style.FOLK, Style.CELTIC, Style.CHORALE):
        chosen = [t for t in split.test if t.style == style.value and len(t.melody.bars) >= 16]
        tunes += chosen[:per_style]
    return tunes


def _last_segment_chord_tones(
    bar: Bar, beats: Sequence[tuple[int, int]], key: Key
) -> tuple[int, int]:
    """(ticks of melody on chord tones, ticks of melody) in the bar's last chord segment."""
    onset, length = chord_segments(bar.meter, bar)[-1]
    end = onset + length
    on = total = 0
    for (start, span), (chord_class, inversion) in zip(beat_spans(bar.meter), beats, strict=True):
        chord = class_to_chord(chord_class, key, inversion)
        for note in bar.notes:
            overlap = min(note.end, start + span, end) - max(note.onset, start, onset)
            if overlap > 0:
                total += overlap
                on += overlap if note.pitch % 12 in chord.pitch_classes else 0
    return on, total


@functools.cache
def _harmonizer():
    """The shipped harmony model, loaded once (every piece of the bench harmonises with it)."""
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer

    return ModelHarmonizer(HarmonyServing.load(CHECKPOINT))


def measure_cadences(per_style: int = 40) -> CadenceResult:
    """Cadence bars of held-out tunes under an AABA plan, with and without the plan."""
    from cantus.harmony.serving import MelodyToHarmonize

    tunes = _held_out_tunes(per_style)
    harmonizer = _harmonizer()
    pieces = []
    for tune in tunes:
        bars = tuple(tune.melody.bars[:16])
        plan = plan_form("AABA", bars=16, key=tune.melody.key, energy=Energy.MID)
        pieces.append((bars, tune.melody.key, Style(tune.style), plan))
    planned = harmonizer.harmonize(
        [MelodyToHarmonize(b, k, s, Energy.MID, p) for b, k, s, p in pieces]
    )
    free = harmonizer.harmonize([MelodyToHarmonize(b, k, s, Energy.MID) for b, k, s, _ in pieces])
    result = CadenceResult({s.value: sum(t.style == s.value for t in tunes) for s in Style})
    for (bars, key, _, plan), with_plan, without in zip(pieces, planned, free, strict=True):
        for index, bar in enumerate(bars):
            following = bars[index + 1] if index + 1 < len(bars) else None
            bar_plan = bar_harmony_plan(
                plan, index, bar, home_key=key, energy=Energy.MID, next_bar=following
            )
            if bar_plan.cadence is None or not bar.notes:
                continue
            authentic = bar_plan.cadence is Cadence.AUTHENTIC
            last_note = max(bar.notes, key=lambda n: n.onset)
            degree = (last_note.pitch - bar_plan.key.tonic) % 12
            follows = degree == 0 if authentic else degree in (7, 11, 2)
            for name, beats in (("plan", with_plan), ("no plan", without)):
                local = rekey_beats(beats[index], key, bar_plan.key)
                last = class_to_chord(local[-1][0], bar_plan.key)
                wanted = 0 if authentic else 7
                hit = (last.root - bar_plan.key.tonic) % 12 == wanted
                kind = bar_plan.cadence.value
                result.count(f"{name}|{kind}", hit)
                if authentic:
                    # the chord heard before the closing tonic (in this bar or the one before)
                    heard = [*rekey_beats(beats[index - 1], key, bar_plan.key), *local]
                    roots = [
                        (class_to_chord(c, bar_plan.key).root - bar_plan.key.tonic) % 12
                        for c, _ in heard
                    ]
                    while roots and roots[-1] == 0:
                        roots.pop()
                    result.count(f"{name}|V-I", hit and bool(roots) and roots[-1] == 7)
                on, total = _last_segment_chord_tones(bar, local, bar_plan.key)
                result.tone(f"{name}|{'follows' if follows else 'does not follow'}", on, total)
                result.count(f"melody follows|{name}", follows)
    return result


# --- sections -------------------------------------------------------------------------------


@dataclass
class SectionRow:
    label: str
    role: str
    energy: str
    parts: str
    accompaniment: str
    notes_per_bar: float
    melody_velocity: float
    lufs: float


@dataclass
class PieceResult:
    form: str
    bars: int
    style: str
    tempo_bpm: float
    rows: list[SectionRow]
    lufs: float
    target_lufs: float
    ritardando: list[float]
    music_seconds: float
    steady_seconds: float
    audio_seconds: float
    segments_agree: bool
    render_seconds: float


def planned_piece(
    plan: FormPlan,
    tune_bars: Sequence[Bar],
    style: Style,
    tempo_bpm: float,
    palette: str = "",
):
    """``PieceParts`` of ``tune_bars`` (repeated to the plan's length) harmonised under
    ``plan`` as the harmony service does, played in ``palette`` (default: the style's and
    mood's)."""
    from cantus.harmony.serving import MelodyToHarmonize
    from cantus.render.offline_parts import parts_from_beats
    from cantus.v1 import events_pb2 as pb

    key = plan.home_key
    bars = tuple(tune_bars[i % len(tune_bars)] for i in range(plan.total_bars))
    meter = bars[0].meter
    spec = pb.PieceSpec(
        key_tonic=key.tonic,
        mode=mode_to_pb(key.mode),
        tempo_bpm=tempo_bpm,
        meter_numerator=meter.numerator,
        meter_denominator=meter.denominator,
        bars=plan.total_bars,
        style=style.value,
        mood="happy",
        energy=Energy.MID.value,
        seed=1,
        melody_source=pb.MELODY_SOURCE_COMPOSE,
        palette=palette,
    )
    spec.form.CopyFrom(form_to_pb(plan))
    (beats,) = _harmonizer().harmonize([MelodyToHarmonize(bars, key, style, Energy.MID, plan)])
    return parts_from_beats(spec, bars, beats, plan, key=key, style=style, energy=Energy.MID)


def measure_piece(form: str, bars: int, style: Style, tune_bars: Sequence[Bar], key: Key):
    from cantus.render.arrangement import section_arrangements
    from cantus.render.mix import PRESETS, integrated_loudness
    from cantus.render.piece import SegmentAudio

    tempo = 110.0
    plan = plan_form(form, bars=bars, key=key, energy=Energy.MID)
    parts = planned_piece(plan, tune_bars, style, tempo)
    tracks = parts.piece_tracks(0, bars)
    started = time.perf_counter()
    audio = SegmentAudio(parts.tempo_map)
    segments = [audio.render(parts, i, SEGMENT_BARS) for i in range(parts.segment_count(4))]
    render_seconds = time.perf_counter() - started
    joined = audio.piece_audio()
    rate = audio.sample_rate
    agree = True
    position = 0.0
    for index, segment in enumerate(segments):
        first, count = parts.segment_bars(index, SEGMENT_BARS)
        agree &= abs(segment.start_seconds - position) < 1e-6
        agree &= abs(segment.start_seconds - parts.seconds_before_bar(first)) < 0.01
        if index < len(segments) - 1:
            expected = parts.seconds_before_bar(first + count) - parts.seconds_before_bar(first)
            agree &= abs(segment.duration_seconds - expected) < 0.01
        position += segment.duration_seconds
    rows = []
    bar_ticks = parts.bar_ticks
    for section, arrangement in zip(plan.sections, section_arrangements(plan, style), strict=True):
        low, high = section.first_bar * bar_ticks, section.end_bar * bar_ticks
        notes = [n for t in tracks for n in t.notes if low <= n.onset < high]
        melody = [n for n in tracks[0].notes if low <= n.onset < high]
        start = round(parts.seconds_before_bar(section.first_bar) * rate)
        end = round(parts.seconds_before_bar(section.end_bar) * rate)
        rows.append(
            SectionRow(
                section.label,
                arrangement.role,
                arrangement.energy.value,
                " ".join(
                    p
                    for p in ("melody", "chords", "bass", "drums", "pad")
                    if p in arrangement.parts
                ),
                arrangement.accompaniment,
                len(notes) / section.bars,
                float(np.mean([n.velocity for n in melody])) if melody else 0.0,
                integrated_loudness(joined[start:end], rate),
            )
        )
    # the closing ritardando: from the piece's tempo, its steps over the last bars (the
    # phrases' rubato and the cadences' broadening before them are not counted)
    closing = (bars - ritardando_bars(bars)) * parts.bar_ticks
    tempos = [tempo, *(bpm for tick, bpm in parts.tempo_map.changes if tick >= closing)]
    return PieceResult(
        form,
        bars,
        style.value,
        tempo,
        rows,
        integrated_loudness(joined, rate),
        PRESETS["streaming"].target_lufs,
        tempos,
        parts.seconds_before_bar(bars),
        bars * parts.bar_seconds,
        len(joined) / rate,
        agree,
        render_seconds,
    )


# --- endings --------------------------------------------------------------------------------

ENDING_PATTERNS = ("A B C", "A A~ B A~", "A B C D")
"""Phrase patterns of short pieces ``auto`` draws (``cantus.melody.phrase_patterns``)."""
ENDING_PALETTES = (
    "folk",
    "celtic",
    "piano",
    "piano-strings",
    "strings",
    "harp-flute",
    "ambient",
    "lullaby",
    "therapy",
    "chorale",
)
ENDING_TEMPO_BPM = 120.0


@dataclass
class EndingRow:
    palette: str
    pattern: str
    style: str
    seconds: float
    lufs: float
    hold_over_last_phrase: float
    """Loudness of the second after the last barline less the last phrase's, LU."""
    ending_peak: float = 0.0
    """The loudest momentary loudness (400 ms) of the last bar and the second after it, less
    the 95th percentile of the momentary loudness before the last bar, LU: a final note that
    swells over everything the piece played before it."""


def measure_endings(tunes_per_style: int = 3) -> list[EndingRow]:
    """Every palette of ``ENDING_PALETTES`` streams each pattern of ``ENDING_PATTERNS``
    with a pickup, on the bars of ``tunes_per_style`` held-out folk and celtic tunes."""
    from cantus.music.form import plan_pattern, with_pickup
    from cantus.render.mix import integrated_loudness
    from cantus.render.piece import SegmentAudio

    tunes = [t for t in _held_out_tunes(tunes_per_style) if t.style != Style.CHORALE.value]
    rows = []
    for tune in tunes:
        for pattern in ENDING_PATTERNS:
            plan = with_pickup(plan_pattern(pattern, key=tune.melody.key, energy=Energy.MID))
            for palette in ENDING_PALETTES:
                style = Style(tune.style)
                parts = planned_piece(plan, tune.melody.bars, style, ENDING_TEMPO_BPM, palette)
                audio = SegmentAudio(parts.tempo_map)
                for index in range(parts.segment_count(SEGMENT_BARS)):
                    audio.render(parts, index, SEGMENT_BARS)
                joined, rate = audio.piece_audio(), audio.sample_rate
                music = parts.seconds_before_bar(plan.total_bars)
                last = parts.seconds_before_bar(plan.sections[-1].first_bar)
                phrase = integrated_loudness(joined[round(last * rate) : round(music * rate)], rate)
                hold = integrated_loudness(
                    joined[round(music * rate) : round((music + 1.0) * rate)], rate
                )
                last_bar = parts.seconds_before_bar(plan.total_bars - 1)
                body = momentary_loudness(joined[: round(last_bar * rate)], rate)
                ending = momentary_loudness(
                    joined[round(last_bar * rate) : round((music + 1.0) * rate)], rate
                )
                rows.append(
                    EndingRow(
                        palette,
                        pattern,
                        style.value,
                        len(joined) / rate,
                        integrated_loudness(joined, rate),
                        hold - phrase,
                        float(ending.max() - np.percentile(body, 95)),
                    )
                )
    return rows


def momentary_loudness(audio: np.ndarray, rate: int, step_seconds: float = 0.1) -> np.ndarray:
    """Momentary loudness (400 ms windows, every ``step_seconds``) of ``audio``, LUFS; the
    silent windows left out."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate, block_size=0.4)
    window = round(0.4 * rate)
    starts = range(0, max(len(audio) - window, 0) + 1, round(step_seconds * rate))
    levels = [
        meter.integrated_loudness(audio[start : start + window].astype(np.float64))
        for start in starts
        if start + window <= len(audio)
    ]
    return np.array([level for level in levels if np.isfinite(level)] or [-np.inf])


def format_endings(rows: list[EndingRow], target_lufs: float) -> list[str]:
    lines = [
        "## Endings: short pieces streamed",
        "",
        f"{len(rows) // len(ENDING_PALETTES)} short pieces "
        f"({', '.join(ENDING_PATTERNS)} after a pickup bar, at {ENDING_TEMPO_BPM:g} bpm, on "
        "held-out folk and celtic tunes' bars), each streamed in every palette. Error: the "
        f"whole piece's integrated loudness less the target ({target_lufs:g} LUFS). Hold: the "
        "second after the last barline (the held final chord) against the last phrase. "
        "Ending peak: the loudest 400 ms of the last bar and that second against the 95th "
        "percentile of the 400 ms loudness before the last bar (a final note swelling over "
        "the piece).",
        "",
        "| palette | pieces | seconds | mean error | mean abs. error | worst | hold − last "
        "phrase, mean | hold − last phrase, max | ending peak, mean | ending peak, max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for palette in (*ENDING_PALETTES, None):
        chosen = [r for r in rows if palette is None or r.palette == palette]
        errors = [r.lufs - target_lufs for r in chosen]
        holds = [r.hold_over_last_phrase for r in chosen]
        peaks = [r.ending_peak for r in chosen]
        lines.append(
            f"| {palette or '**all**'} | {len(chosen)} "
            f"| {np.mean([r.seconds for r in chosen]):.1f} "
            f"| {np.mean(errors):+.2f} | {np.mean(np.abs(errors)):.2f} "
            f"| {max(errors, key=abs):+.2f} | {np.mean(holds):+.1f} | {max(holds):+.1f} "
            f"| {np.mean(peaks):+.1f} | {max(peaks):+.1f} |"
        )
    return [*lines, ""]


def format_report(
    cadences: CadenceResult,
    pieces: list[PieceResult],
    command: str,
    endings: list[EndingRow] | None = None,
) -> str:
    lines = [
        "# Form in harmony and arrangement",
        "",
        f"Command: `{command}` (x86_64, Python {platform.python_version()}; 2 CPU cores shared "
        "with other work).",
        "",
        "## Cadences",
        "",
        "Held-out tunes ("
        + ", ".join(f"{n} {s}" for s, n in cadences.tunes.items() if n)
        + "), first 16 bars, harmonised by the shipped model under a 16-bar AABA plan "
        "(A: half cadence; A': authentic; B in the dominant: half; A'': authentic, the end) "
        "and without a plan.",
        "",
        "| cadence bars | with the plan | without a plan |",
        "|---|---|---|",
    ]
    c = cadences.counts
    for label, key in (
        ("half cadence ends on V of the section's key", "half"),
        ("authentic cadence ends on I", "authentic"),
        ("authentic cadence is V–I", "V-I"),
    ):
        lines.append(f"| {label} | {c.get('plan|' + key)} | {c.get('no plan|' + key)} |")
    lines += [
        "",
        "Melody in the cadence's last chord segment on chord tones (share of its duration):",
        "",
        "| the tune's own phrase ending | with the plan | without a plan |",
        "|---|---|---|",
    ]
    for follows in ("follows", "does not follow"):
        cells = []
        for name in ("plan", "no plan"):
            on, total = cadences.tones.get(f"{name}|{follows}", [0, 0])
            cells.append(f"{100 * on / total:.1f} %" if total else "-")
        lines.append(f"| {follows} the plan's cadence | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"Tunes whose phrase end follows the plan: {c.get('melody follows|plan')} of the "
        "cadence bars. Where it does (what the melody service composes), the plan's chords "
        "keep most of the melody on chord tones; where a real tune ends its phrase elsewhere, "
        "forcing the cadence costs consonance — the price of a plan the melody did not follow.",
        "",
        "## Sections",
        "",
    ]
    for piece in pieces:
        lines += [
            f"### {piece.form}, {piece.bars} bars, {piece.style}, {piece.tempo_bpm:g} bpm",
            "",
            "| section | role | energy | parts | accompaniment | notes/bar | melody velocity "
            "| loudness (streamed) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in piece.rows:
            lines.append(
                f"| {row.label} | {row.role} | {row.energy} | {row.parts} | {row.accompaniment} "
                f"| {row.notes_per_bar:.1f} | {row.melody_velocity:.1f} | {row.lufs:.1f} LUFS |"
            )
        rit = piece.ritardando
        lines += [
            "",
            f"Whole piece {piece.lufs:.2f} LUFS (target {piece.target_lufs:g}). Ritardando "
            f"{rit[0]:g} → {rit[-1]:g} bpm over the last two bars ({len(rit) - 1} steps): the "
            f"music lasts {piece.music_seconds:.2f} s instead of {piece.steady_seconds:.2f} s; "
            f"audio {piece.audio_seconds:.2f} s with the held final chord and the 2 s tail. "
            f"Segment times agree with the audio: {'yes' if piece.segments_agree else 'NO'}. "
            f"Rendered (streamed) in {piece.render_seconds:.1f} s.",
            "",
        ]
    if endings:
        lines += format_endings(endings, pieces[0].target_lufs if pieces else -14.0)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cantus.bench.form", description=__doc__)
    parser.add_argument("--tunes-per-style", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    command = "python -m cantus.bench.form" + (
        f" --tunes-per-style {args.tunes_per_style}" if args.tunes_per_style != 40 else ""
    )
    if args.out:
        command += f" --out {args.out}"
    cadences = measure_cadences(args.tunes_per_style)
    tunes = _held_out_tunes(40)
    pieces = []
    for form, bars, style in PIECES:
        tune = next(t for t in tunes if t.style == style.value)
        pieces.append(measure_piece(form, bars, style, tune.melody.bars[:16], tune.melody.key))
    report = format_report(cadences, pieces, command, measure_endings())
    if args.out:
        args.out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
