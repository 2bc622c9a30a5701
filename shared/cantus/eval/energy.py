"""``cantus eval energy``: is the energy asked for the energy played (#17)?

Pieces are composed in process as the stack composes them (``cantus.eval.arrangement``:
the shipped melody model along the form plan ``auto``, the shipped harmony model, the
render service's ``PieceParts``): each style at each energy level, asked as a station asks
(a mood of that level, ``cantus.stations.steering.mood_for``'s words), keys, meters and
tempos cycled, in the palette the gateway picks; the folk pieces are also arranged in the
session presets' palettes (lullaby, ambient, piano). Each ``piece.mid`` is measured by
``cantus.stations.measure.midi_energy`` (which reads only the notes) and compared with the
level asked: medians per level, per style and palette, and Spearman's rank correlation.

Then the intensity stage's level against heard energy: the first pieces re-rendered with
every velocity scaled for a level change of ``g`` dB (``10^(g/40)``: FluidSynth's default
velocity-to-attenuation curve, ``40·log10(v/127)`` dB); the mix bus's integrated loudness
is measured (so the change really is ``g`` dB) and so is ``midi_energy`` of the re-struck
MIDI: the slope is the energy a listener would hear per dB if a louder stream sounded as
the same piece played harder (``cantus.stations.listeners.ENERGY_PER_DB``).
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cantus.eval.arrangement import PieceRequest, cycled_request
from cantus.music.notes import Meter
from cantus.music.styles import Style

LEVELS = ("low", "mid", "high")
LEVEL_MOODS = {
    "low": ("calm", "dreamy", "sad"),
    "mid": ("happy", "hopeful", "bright"),
    "high": ("energetic", "driving", "triumphant"),
}
"""The moods a station asks for at each level (``mood_for``), cycled."""
STYLES = (Style.FOLK, Style.CELTIC, Style.CHORALE)
SESSION_PALETTES = ("lullaby", "ambient", "piano")
"""The palettes the session presets sleep, relax and focus play (walk: the default)."""
METERS = (Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(2, 4))
TEMPOS = (72.0, 88.0, 100.0, 112.0, 126.0)
LEVEL_GAINS_DB = (-9.0, -4.5, 4.0)
"""Level changes measured: the intensity stage's range (-9..+4 dB) and its middle cut."""
MEDIANS_SEED = 0
"""The seed of the run whose medians are ``cantus.stations.measure.ENERGY_MEDIANS``: the
session's energy check is in sample at this seed, out of sample at any other."""
BEST_OF = 3
"""The report's alternative rule: compose this many pieces a step, keep the closest."""


@dataclass(frozen=True)
class Measured:
    style: str
    palette: str
    level: str
    energy: float


@dataclass(frozen=True)
class LevelPoint:
    gain_db: float
    loudness_change_db: float
    energy_change: float


@dataclass
class EnergyRun:
    pieces: list[Measured]
    levels: list[LevelPoint]
    failed: int
    per_level: int
    bars: int
    seconds: float
    seed: int = MEDIANS_SEED


def energy_requests(per_level: int, *, seed: int = 0) -> list[PieceRequest]:
    """``per_level`` requests per style and level, in the style's default palette for
    the mood; keys (major and minor), meters, tempos and moods cycled."""
    return [
        cycled_request(
            index,
            style,
            LEVEL_MOODS[level][index % 3],
            minor=index % 3 == 2,
            seed=seed,
            meters=METERS,
            tempos=TEMPOS,
        )
        for style in STYLES
        for level in LEVELS
        for index in range(per_level)
    ]


def run_energy_eval(
    per_level: int = 12, *, bars: int = 8, seed: int = 0, level_pieces: int = 6
) -> EnergyRun:
    """Compose, arrange and measure; then the level calibration on ``level_pieces``."""
    import torch

    from cantus.eval.arrangement import HARMONY_CHECKPOINT, compose_melodies, piece_parts
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.stations.measure import midi_energy

    torch.set_num_threads(1)
    started = time.perf_counter()
    requests = energy_requests(per_level, seed=seed)
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    pieces: list[Measured] = []
    levels: list[LevelPoint] = []
    failed = 0
    calibrated = level_sample(requests, level_pieces)
    for index, (request, melody) in enumerate(zip(requests, melodies, strict=True)):
        if melody is None:
            failed += 1
            continue
        level = request.energy.value
        palettes = [request.palette]
        if request.style is Style.FOLK:
            palettes += [p for p in SESSION_PALETTES if p != request.palette]
        for palette in palettes:
            parts = piece_parts(request, melody, harmonizer, palette=palette)
            midi = parts.midi(0, parts.bar_count)
            pieces.append(Measured(request.style.value, palette, level, midi_energy(midi)))
            if palette == request.palette and index in calibrated:
                levels += level_points(parts)
    seconds = time.perf_counter() - started
    return EnergyRun(pieces, levels, failed, per_level, bars, seconds, seed)


def level_sample(requests: Sequence[PieceRequest], count: int) -> set[int]:
    """Indices of ``count`` of ``requests`` for the level calibration, spread over styles
    and levels: the pairs in a Latin-square order (folk low, celtic mid, chorale high, folk
    mid, …), each pair's first request, then each pair's second, and so on. The intensity
    stage re-levels whatever plays, quiet pieces and loud (the first six requests, all
    quiet folk, measured 0.007 per dB where this sample measures the whole range)."""
    order = [(STYLES[i % 3].value, LEVELS[(i + i // 3) % 3]) for i in range(9)]
    groups: dict[tuple[str, str], list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.style.value, request.energy.value), []).append(index)
    chosen = [
        group[round_]
        for round_ in range(max((len(g) for g in groups.values()), default=0))
        for pair in order
        if round_ < len(group := groups.get(pair, []))
    ]
    return set(chosen[:count])


def level_points(parts) -> list[LevelPoint]:
    """One piece re-struck for each of ``LEVEL_GAINS_DB``: the mix bus's loudness change
    and ``midi_energy``'s change against the piece as arranged."""
    from cantus.render.mix import integrated_loudness, mix_stems
    from cantus.render.synth import SAMPLE_RATE, render_stems
    from cantus.stations.measure import midi_energy

    tracks = parts.piece_tracks(0, parts.bar_count)
    midi = parts.midi(0, parts.bar_count)

    def loudness(scale: float) -> float:
        scaled = [
            replace(t, notes=[replace(n, velocity=_velocity(n.velocity, scale)) for n in t.notes])
            for t in tracks
        ]
        stems = render_stems(scaled, tempo_bpm=parts.tempo_map, sample_rate=SAMPLE_RATE)
        return integrated_loudness(mix_stems(stems, SAMPLE_RATE), SAMPLE_RATE)

    base_loudness, base_energy = loudness(1.0), midi_energy(midi)
    out = []
    for gain in LEVEL_GAINS_DB:
        scale = 10.0 ** (gain / 40.0)
        out.append(
            LevelPoint(
                gain,
                loudness(scale) - base_loudness,
                midi_energy(scale_velocities(midi, scale)) - base_energy,
            )
        )
    return out


def _velocity(velocity: int, scale: float) -> int:
    return max(1, min(127, round(velocity * scale)))


def scale_velocities(midi: bytes, scale: float) -> bytes:
    """``midi`` with every note-on velocity times ``scale`` (1..127)."""
    import mido

    parsed = mido.MidiFile(file=io.BytesIO(midi))
    for track in parsed.tracks:
        for index, message in enumerate(track):
            if message.type == "note_on" and message.velocity > 0:
                track[index] = message.copy(velocity=_velocity(message.velocity, scale))
    out = io.BytesIO()
    parsed.save(file=out)
    return out.getvalue()


def spearman(levels: Sequence[str], energies: Sequence[float]) -> float:
    """Spearman's rank correlation of the level asked (low < mid < high) and the energy."""
    from scipy.stats import spearmanr

    return float(spearmanr([LEVELS.index(level) for level in levels], energies)[0])


def _row(label: str, pieces: Sequence[Measured]) -> str:
    cells = []
    for level in LEVELS:
        values = [p.energy for p in pieces if p.level == level]
        cells.append(f"{statistics.median(values):.3f} ({len(values)})" if values else "–")
    rho = spearman([p.level for p in pieces], [p.energy for p in pieces])
    return f"| {label} | {' | '.join(cells)} | {rho:.2f} |"


def energy_per_db(levels: Sequence[LevelPoint]) -> float:
    """The least-squares slope through the origin of energy change against loudness change."""
    return sum(p.energy_change * p.loudness_change_db for p in levels) / sum(
        p.loudness_change_db**2 for p in levels
    )


def format_run(run: EnergyRun, *, command: str) -> str:
    from cantus.stations.listeners import ENERGY_PER_DB

    everything = run.pieces
    default = [p for p in everything if p.palette not in SESSION_PALETTES or p.style != "folk"]
    lines = [
        "# Energy asked against energy played",
        "",
        f"Command: `{command}` ({platform.machine()}, Python {platform.python_version()}; "
        f"2 CPU cores shared with other work, load average {os.getloadavg()[0]:.1f} at the "
        f"end; {run.seconds:.0f} s).",
        "",
        f"{run.per_level} pieces of {run.bars} bars per style and level composed in process "
        "as the stack composes them (shipped melody and harmony models, form `auto`), asked "
        "as a station asks (a mood of the level), keys, meters and tempos cycled, in the "
        "palette the gateway picks; the folk pieces also arranged in the session presets' "
        f"palettes ({', '.join(SESSION_PALETTES)}). {run.failed} failed to compose. Energy "
        "played: `cantus.stations.measure.midi_energy` of each `piece.mid` (the mean of the "
        "melody's note density, the whole arrangement's onsets per quarter note, drums "
        "included, and the parts' loudness, mean velocity per part), which reads only the "
        "notes. Medians (pieces), and Spearman's rank correlation of level and energy:",
        "",
        "| pieces | low | mid | high | Spearman |",
        "|---|---|---|---|---|",
        _row("every style, default palettes (folk's quiet ones: in the rows below)", default),
        _row("every piece, session palettes too", everything),
    ]
    for style in STYLES:
        lines.append(_row(style.value, [p for p in default if p.style == style.value]))
    for palette in SESSION_PALETTES:
        lines.append(_row(f"folk in {palette}", [p for p in everything if p.palette == palette]))
    lines += held_to_level(everything, seed=run.seed)
    if run.levels:
        slope = energy_per_db(run.levels)
        lines += [
            "",
            "## Stream level against heard energy",
            "",
            "The intensity stage re-levels the stream (-9..+4 dB); the therapy bench's "
            f"listeners hear {ENERGY_PER_DB:g} energy per dB "
            "(`cantus.stations.listeners.ENERGY_PER_DB`). Measured: "
            f"{len(run.levels) // len(LEVEL_GAINS_DB)} pieces (spread over the styles and "
            "levels, `level_sample`) re-struck with every "
            "velocity times 10^(g/40) (FluidSynth's velocity curve) for each level change "
            "g, the mix bus's loudness measured (BS.1770) and `midi_energy` of the "
            "re-struck notes:",
            "",
            "| level change g, dB | loudness change, dB (median) | energy change (median) |",
            "|---|---|---|",
        ]
        for gain in LEVEL_GAINS_DB:
            points = [p for p in run.levels if p.gain_db == gain]
            lines.append(
                f"| {gain:+g} | {statistics.median(p.loudness_change_db for p in points):+.2f} "
                f"| {statistics.median(p.energy_change for p in points):+.3f} |"
            )
        lines += [
            "",
            f"Energy per dB of loudness (least squares through 0): **{slope:.3f}**. This "
            "rests on one assumption, stated here: that a stream made louder is heard as "
            "the same piece played harder (its notes struck harder, which is what "
            "`midi_energy`'s loudness term reads); the melody's density and the "
            "arrangement's activity, the other two thirds of the energy, do not change "
            "with the level. Finished pieces are mastered to one loudness target, so "
            "between pieces the level carries no energy: only the notes do.",
        ]
    return "\n".join(lines) + "\n"


def held_to_level(pieces: Sequence[Measured], *, seed: int = MEDIANS_SEED) -> list[str]:
    """The session's energy check (``cantus.stations.measure.energy_problem``) on these
    pieces: how many a session would keep at the first try per level, and the energy error
    (distance to the asked level's median in the piece's palette) of all pieces against
    what a session streams with ``ENERGY_TRIES`` retries (a piece rejected is composed again
    from the same distribution; the last try is kept whatever its energy), and against a
    rule that composes ``BEST_OF`` pieces a step and keeps the closest. In sample when
    ``seed`` is ``MEDIANS_SEED`` (the medians are these pieces' own), else out of sample."""
    from cantus.stations.measure import ENERGY_MEDIANS, energy_problem
    from cantus.stations.program import ENERGY_TRIES

    def error(p: Measured) -> float:
        medians = ENERGY_MEDIANS.get(p.palette, ENERGY_MEDIANS[""])
        return abs(p.energy - medians[LEVELS.index(p.level)])

    sample = (
        "the medians are these pieces' own, so in sample"
        if seed == MEDIANS_SEED
        else f"out of sample: the medians are those of seed {MEDIANS_SEED}'s pieces, "
        f"these are seed {seed}'s"
    )
    lines = [
        "",
        "## Held to the step's level",
        "",
        "A session piece must measure inside its level's band in its palette "
        "(`cantus.stations.measure.energy_band`: low not above the midpoint of the mid and "
        "high medians, high not below that of the low and mid, mid between the low and high "
        f"medians); after {ENERGY_TRIES} rejections the next piece is kept. On these pieces "
        f"({sample}), kept at the first try, and the "
        "energy error |measured - its level's median|, mean, of every piece against what "
        f"a session streams (up to {ENERGY_TRIES + 1} tries), and against composing "
        f"{BEST_OF} pieces a step and keeping the closest to the median ({BEST_OF}x the "
        "composing; expected over draws from these pieces):",
        "",
        "| level | kept at the first try | error, every piece | error, streamed | "
        f"error, closest of {BEST_OF} | out of band: every piece / streamed | "
        "nearest its own median |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in (*LEVELS, "all"):
        chosen = [p for p in pieces if level in (p.level, "all")]
        if not chosen:
            continue
        inside = [p for p in chosen if not energy_problem(p.energy, p.level, p.palette)]
        outside = [p for p in chosen if p not in inside]
        kept = len(inside) / len(chosen)
        missed = (1 - kept) ** (ENERGY_TRIES + 1)  # every try out of band
        every = statistics.fmean(error(p) for p in chosen)
        streamed = (1 - missed) * statistics.fmean(error(p) for p in inside) if inside else 0.0
        if outside:
            streamed += missed * statistics.fmean(error(p) for p in outside)
        # the closest of BEST_OF pieces asked at one level, weighted by the level's pieces
        best = sum(
            _expected_least([error(p) for p in chosen if p.level == one], BEST_OF)
            * sum(1 for p in chosen if p.level == one)
            for one in LEVELS
        ) / len(chosen)
        nearest = sum(1 for p in chosen if _nearest_level(p, ENERGY_MEDIANS) == p.level)
        lines.append(
            f"| {level} | {kept:.0%} ({len(inside)}/{len(chosen)}) | {every:.3f} | "
            f"{streamed:.3f} | {best:.3f} | {1 - kept:.1%} / {missed:.2%} | "
            f"{nearest / len(chosen):.0%} |"
        )
    return [
        *lines,
        "",
        "The last column is a stricter rule, not used: a piece kept only when its energy is "
        "nearest its own level's median. The levels overlap, so it would compose a good "
        "share of the pieces again (a piece's time each) while the order rule catches "
        "only a piece that plays another level outright.",
    ]


def _expected_least(errors: Sequence[float], draws: int) -> float:
    """The expected least of ``draws`` errors drawn at random (with replacement) from
    ``errors``: the error of keeping the closest of that many pieces."""
    ordered = sorted(errors)
    n = len(ordered)
    if not n:
        return 0.0
    return sum(
        value * ((n - i) ** draws - (n - i - 1) ** draws) / n**draws
        for i, value in enumerate(ordered)
    )


def _nearest_level(piece: Measured, medians: dict[str, tuple[float, float, float]]) -> str:
    row = medians.get(piece.palette, medians[""])
    return LEVELS[min(range(3), key=lambda i: abs(piece.energy - row[i]))]
