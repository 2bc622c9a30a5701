"""Render benchmark: how fast synthesis + mixing runs, and how close mastering lands on
its loudness target, over generated arrangements.

``run_render_bench(pieces=20)`` renders each piece both ways the render service does —
streamed in segments of a few bars (``SegmentRenderer`` + ``StreamingMaster``) and
mastered offline in one pass over the whole piece (``master``) — and reports:

* real-time factor (RTF): seconds of audio produced per wall-clock second of
  synthesis + mixing + mastering (target >= 20);
* loudness error: |integrated loudness - target| in LU (ITU-R BS.1770, target <= 0.5);
* true peak in dBTP (4x oversampled) against the preset's ceiling;
* the largest sample-to-sample jump at a segment joint relative to the 99.9th
  percentile of jumps elsewhere (1.0 or less: the joints are not audible as clicks);
* the largest change of the streaming master's gain across one segment, dB.

The arrangements are synthetic (``synthetic_arrangement``: a diatonic melody over a
I-vi-IV-V-style progression with block chords, a root-fifth bass and a style-dependent
drum pattern), so the bench needs no trained model.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Meter, Mode, Note, Track

SEGMENT_BARS = 4
"""Bars per streamed segment, as the render service publishes them."""

_PROGRESSIONS_MAJOR = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (5, 3, 0, 4))
_PROGRESSIONS_MINOR = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4))
_MELODY_PROGRAMS = (0, 40, 73, 71, 24, 56)  # piano, violin, flute, clarinet, guitar, trumpet
_CHORD_PROGRAMS = (0, 48, 4, 24, 19)  # piano, strings, e-piano, guitar, organ
_BASS_PROGRAMS = (32, 33, 43)  # acoustic bass, fingered bass, contrabass
_TRIAD_SUFFIX = {(4, 3): "", (3, 4): "m", (3, 3): "dim", (4, 4): "aug"}


@dataclass(frozen=True)
class SyntheticPiece:
    """A generated arrangement and the lead-sheet view of it (chords as (onset in bar
    ticks, symbol text) per bar; lyrics as (piece tick, syllable))."""

    key: Key
    meter: Meter
    tempo_bpm: float
    melody_bars: tuple[Bar, ...]
    chord_spans_per_bar: tuple[tuple[tuple[int, str], ...], ...]
    lyrics: tuple[tuple[int, str], ...]
    tracks: tuple[Track, ...]

    @property
    def end_tick(self) -> int:
        return len(self.melody_bars) * self.meter.bar_ticks

    @property
    def seconds(self) -> float:
        return self.end_tick / TICKS_PER_QUARTER * 60.0 / self.tempo_bpm


def _scale_pitch(key: Key, degree: int, base_octave_pitch: int) -> int:
    """MIDI pitch of scale ``degree`` (0 = tonic, may be negative or >= 7)."""
    scale = key.scale_pitch_classes
    octave, step = divmod(degree, 7)
    return base_octave_pitch + key.tonic + 12 * octave + (scale[step] - key.tonic) % 12


def _triad(key: Key, degree: int) -> tuple[int, int, int]:
    root = _scale_pitch(key, degree, 48)
    return root, _scale_pitch(key, degree + 2, 48), _scale_pitch(key, degree + 4, 48)


def _chord_name(triad: tuple[int, int, int]) -> str:
    root, third, fifth = triad
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return names[root % 12] + _TRIAD_SUFFIX.get((third - root, fifth - third), "")


def synthetic_arrangement(
    seed: int,
    *,
    bars: int = 16,
    meter: Meter | None = None,
    tempo_bpm: float | None = None,
    energy: str | None = None,
) -> SyntheticPiece:
    """A reproducible four-part arrangement (``melody``, ``chords``, ``bass``, ``drums``)."""
    rng = random.Random(seed)
    meter = meter or rng.choice([Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(2, 4)])
    tempo = tempo_bpm or float(rng.randrange(72, 150, 4))
    energy = energy or rng.choice(["low", "mid", "high"])
    key = Key(rng.randrange(12), rng.choice([Mode.MAJOR, Mode.MAJOR, Mode.MINOR]))
    progressions = _PROGRESSIONS_MAJOR if key.mode is Mode.MAJOR else _PROGRESSIONS_MINOR
    progression = rng.choice(progressions)
    bar_ticks = meter.bar_ticks
    beat = TICKS_PER_QUARTER * 4 // meter.denominator
    if meter.denominator == 8 and meter.numerator % 3 == 0:
        beat *= 3  # compound meter: the felt beat is a dotted quarter
    step = {"low": beat, "mid": beat // 2, "high": beat // 2}[energy]
    melody_bars: list[Bar] = []
    chords_per_bar: list[tuple[tuple[int, str], ...]] = []
    melody_notes: list[Note] = []
    chord_notes: list[Note] = []
    bass_notes: list[Note] = []
    drum_notes: list[Note] = []
    lyrics: list[tuple[int, str]] = []
    syllables = ("la", "lo", "li", "na", "da", "sing", "a", "song", "of", "home")
    degree = 4
    for index in range(bars):
        start = index * bar_ticks
        chord_degree = progression[index % len(progression)]
        triad = _triad(key, chord_degree)
        chords_per_bar.append(((0, _chord_name(triad)),))
        # Melody: steps and small leaps around the scale, a long note at phrase ends.
        bar_notes: list[Note] = []
        onset = 0
        while onset < bar_ticks:
            if index % 4 == 3 and onset >= bar_ticks // 2:
                duration = bar_ticks - onset
            else:
                duration = min(step * rng.choice([1, 1, 1, 2]), bar_ticks - onset)
            degree = max(0, min(11, degree + rng.choice([-2, -1, -1, 0, 1, 1, 2])))
            if rng.random() < 0.1 and onset > 0:
                onset += duration  # a rest
                continue
            note = Note(onset, _scale_pitch(key, degree, 60), duration, rng.randrange(80, 105))
            bar_notes.append(note)
            melody_notes.append(Note(start + onset, note.pitch, duration, note.velocity))
            lyrics.append((start + onset, rng.choice(syllables)))
            onset += duration
        melody_bars.append(Bar(meter, tuple(bar_notes)))
        # Chords: block chords on every beat (high energy) or held for the bar.
        chord_step = beat if energy != "low" else bar_ticks
        for chord_onset in range(0, bar_ticks, chord_step):
            length = min(chord_step, bar_ticks - chord_onset)
            for pitch in triad:
                chord_notes.append(Note(start + chord_onset, pitch, length, 64))
        # Bass: root on the downbeat, fifth half way through the bar.
        root = triad[0] - 12
        half = bar_ticks // 2 if bar_ticks >= 2 * beat else bar_ticks
        bass_notes.append(Note(start, root, half, 96))
        if half < bar_ticks:
            bass_notes.append(Note(start + half, root + 7, bar_ticks - half, 88))
        # Drums (GM percussion keys): kick, snare, closed hi-hat, crash on phrase starts.
        for beat_onset in range(0, bar_ticks, beat):
            beat_index = beat_onset // beat
            drum_notes.append(Note(start + beat_onset, 36 if beat_index % 2 == 0 else 38, 120, 100))
            for hat in range(beat_onset, min(beat_onset + beat, bar_ticks), max(beat // 2, 1)):
                drum_notes.append(Note(start + hat, 42, 60, 70))
        if index % 4 == 0:
            drum_notes.append(Note(start, 49, 480, 90))
    tracks = (
        Track("melody", rng.choice(_MELODY_PROGRAMS), 0, melody_notes, lyrics),
        Track("chords", rng.choice(_CHORD_PROGRAMS), 1, chord_notes),
        Track("bass", rng.choice(_BASS_PROGRAMS), 2, bass_notes),
        Track("drums", 0, 9, drum_notes),
    )
    return SyntheticPiece(
        key=key,
        meter=meter,
        tempo_bpm=tempo,
        melody_bars=tuple(melody_bars),
        chord_spans_per_bar=tuple(chords_per_bar),
        lyrics=tuple(lyrics),
        tracks=tracks,
    )


def tracks_in_ticks(tracks: tuple[Track, ...], first_tick: int, end_tick: int) -> list[Track]:
    """The tracks with only the notes whose onsets lie in ``[first_tick, end_tick)``, as the
    render service has them when a segment's bars are in."""
    return [
        Track(
            t.name,
            t.program,
            t.channel,
            [n for n in t.notes if first_tick <= n.onset < end_tick],
            [(tick, s) for tick, s in t.lyrics if first_tick <= tick < end_tick],
        )
        for t in tracks
    ]


def joint_discontinuity(audio: np.ndarray, joints: list[int]) -> float:
    """Largest sample-to-sample jump at the ``joints`` (sample indices where one segment
    ends and the next begins) divided by the 99.9th percentile of all jumps; <= 1 means
    no joint stands out from the music around it."""
    jumps = np.abs(np.diff(audio, axis=0)).max(axis=1)
    typical = float(np.percentile(jumps, 99.9))
    at_joints = [float(jumps[j - 1]) for j in joints if 0 < j < len(audio)]
    if not at_joints or typical == 0.0:
        return 0.0
    return max(at_joints) / typical


@dataclass
class PieceResult:
    seed: int
    seconds: float
    streamed_rtf: float
    offline_rtf: float
    streamed_lufs: float
    offline_lufs: float
    streamed_true_peak_dbtp: float
    offline_true_peak_dbtp: float
    joint_discontinuity: float
    max_gain_step_db: float


@dataclass
class RenderBenchReport:
    preset: str
    target_lufs: float
    ceiling_dbtp: float
    soundfont: str
    pieces: list[PieceResult] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return sum(p.seconds for p in self.pieces)

    def rtf(self, which: str) -> float:
        """Total audio seconds / total wall seconds over all pieces (``streamed``/``offline``)."""
        wall = sum(p.seconds / getattr(p, f"{which}_rtf") for p in self.pieces)
        return self.audio_seconds / wall if wall else 0.0

    def loudness_errors(self, which: str) -> list[float]:
        return [abs(getattr(p, f"{which}_lufs") - self.target_lufs) for p in self.pieces]

    def as_dict(self) -> dict[str, object]:
        return {
            "preset": self.preset,
            "target_lufs": self.target_lufs,
            "ceiling_dbtp": self.ceiling_dbtp,
            "soundfont": self.soundfont,
            "pieces": len(self.pieces),
            "audio_seconds": round(self.audio_seconds, 1),
            "rtf_streamed": round(self.rtf("streamed"), 1),
            "rtf_offline": round(self.rtf("offline"), 1),
            "loudness_error_lu_streamed_max": round(max(self.loudness_errors("streamed")), 3),
            "loudness_error_lu_offline_max": round(max(self.loudness_errors("offline")), 3),
            "loudness_error_lu_streamed_mean": round(
                statistics.fmean(self.loudness_errors("streamed")), 3
            ),
            "true_peak_dbtp_max": round(
                max(max(p.streamed_true_peak_dbtp, p.offline_true_peak_dbtp) for p in self.pieces),
                2,
            ),
            "joint_discontinuity_max": round(max(p.joint_discontinuity for p in self.pieces), 3),
            "streamed_gain_step_db_max": round(max(p.max_gain_step_db for p in self.pieces), 2),
        }


def bench_piece(piece: SyntheticPiece, seed: int, preset: str) -> PieceResult:
    """Render and master one piece streamed and offline; measure both."""
    from cantus.render.mix import StreamingMaster, integrated_loudness, master, true_peak_dbtp
    from cantus.render.synth import SAMPLE_RATE, SegmentRenderer, render_stems

    segment_ticks = SEGMENT_BARS * piece.meter.bar_ticks
    started = time.perf_counter()
    renderer = SegmentRenderer(piece.tempo_bpm)
    streaming = StreamingMaster(SAMPLE_RATE, preset)
    chunks: list[np.ndarray] = []
    joints: list[int] = []
    produced = 0
    for first in range(0, piece.end_tick, segment_ticks):
        end = min(first + segment_ticks, piece.end_tick)
        stems = renderer.render_stems_until(end, tracks_in_ticks(piece.tracks, first, end))
        chunk = streaming.process(stems)
        chunks.append(chunk)
        produced += len(chunk)
        joints.append(produced)
    chunks.append(streaming.finish(renderer.finish_stems()))
    streamed = np.concatenate(chunks)
    streamed_wall = time.perf_counter() - started

    started = time.perf_counter()
    offline = master(render_stems(piece.tracks, tempo_bpm=piece.tempo_bpm), SAMPLE_RATE, preset)
    offline_wall = time.perf_counter() - started

    seconds = len(streamed) / SAMPLE_RATE
    return PieceResult(
        seed=seed,
        seconds=seconds,
        streamed_rtf=seconds / streamed_wall,
        offline_rtf=len(offline.audio) / SAMPLE_RATE / offline_wall,
        streamed_lufs=integrated_loudness(streamed, SAMPLE_RATE),
        offline_lufs=offline.integrated_lufs,
        streamed_true_peak_dbtp=true_peak_dbtp(streamed, SAMPLE_RATE),
        offline_true_peak_dbtp=offline.true_peak_dbtp,
        joint_discontinuity=joint_discontinuity(streamed, joints[:-1]),
        max_gain_step_db=max(abs(r.end_db - r.start_db) for r in streaming.ramps),
    )


def run_render_bench(
    pieces: int = 20, *, preset: str = "streaming", bars: int = 16, seed: int = 0
) -> RenderBenchReport:
    """Bench ``pieces`` generated arrangements of ``bars`` bars each (see module docstring)."""
    from cantus.render.mix import PRESETS
    from cantus.render.synth import find_soundfont

    chosen = PRESETS[preset]
    report = RenderBenchReport(
        preset=preset,
        target_lufs=chosen.target_lufs,
        ceiling_dbtp=chosen.ceiling_dbtp,
        soundfont=str(find_soundfont()),
    )
    for index in range(pieces):
        piece_seed = seed + index
        piece = synthetic_arrangement(piece_seed, bars=bars)
        report.pieces.append(bench_piece(piece, piece_seed, preset))
    return report


def format_report(report: RenderBenchReport) -> str:
    """A short human-readable summary of ``report``."""
    summary = report.as_dict()
    lines = [
        f"render bench: {summary['pieces']} pieces, {summary['audio_seconds']} s of audio, "
        f"preset {report.preset} ({report.target_lufs:g} LUFS, {report.ceiling_dbtp:g} dBTP)",
        f"  soundfont            {report.soundfont}",
        f"  real-time factor     streamed {summary['rtf_streamed']}x, "
        f"offline {summary['rtf_offline']}x   (target >= 20x)",
        f"  loudness error       streamed max {summary['loudness_error_lu_streamed_max']} LU "
        f"(mean {summary['loudness_error_lu_streamed_mean']}), "
        f"offline max {summary['loudness_error_lu_offline_max']} LU   (target <= 0.5 LU)",
        f"  true peak            max {summary['true_peak_dbtp_max']} dBTP "
        f"(ceiling {report.ceiling_dbtp:g})",
        f"  segment joints       max jump {summary['joint_discontinuity_max']} x the 99.9th "
        "percentile of all jumps (<= 1: no click)",
        f"  streamed gain        largest change across one segment "
        f"{summary['streamed_gain_step_db_max']} dB (ramped over the segment's start)",
    ]
    return "\n".join(lines)


# --- per palette ---------------------------------------------------------------------------


@dataclass
class PaletteSpeed:
    """One palette streamed over the bench's pieces: audio produced, this process's CPU
    time and the wall time it took, the streamed audio's loudness (LUFS) and true peak
    (dBTP) per piece."""

    palette: str
    audio_seconds: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    lufs: list[float] = field(default_factory=list)
    true_peaks: list[float] = field(default_factory=list)

    @property
    def rtf_cpu(self) -> float:
        return self.audio_seconds / self.cpu_seconds if self.cpu_seconds else 0.0

    @property
    def rtf_wall(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


def run_palette_bench(
    pieces: int = 3,
    *,
    bars: int = 16,
    seed: int = 0,
    palettes: tuple[str, ...] | None = None,
    log=None,
) -> list[PaletteSpeed]:
    """Stream ``pieces`` composed pieces (the first of ``cantus eval arrangement``'s mixed
    requests: the shipped melody and harmony models, form ``auto``) in every palette, as
    the render service streams them (4-bar segments through ``SegmentAudio``: synthesis,
    mix, streaming master). Palettes take turns within each piece, so a change of the
    machine's load falls on all of them alike."""
    import torch

    from cantus.eval.arrangement import (
        HARMONY_CHECKPOINT,
        compose_melodies,
        mixed_requests,
        piece_parts,
        stream_palette,
    )
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.render.palettes import PALETTES

    torch.set_num_threads(1)
    names = palettes or tuple(PALETTES)
    requests = mixed_requests(pieces, seed=seed)
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    speeds = {name: PaletteSpeed(name) for name in names}
    warmed = False
    for request, melody in zip(requests, melodies, strict=True):
        if melody is None:
            continue
        if not warmed:  # the first render pays for imports and loading the SoundFont
            stream_palette(piece_parts(request, melody, harmonizer))
            warmed = True
        for name in names:
            streamed = stream_palette(piece_parts(request, melody, harmonizer, palette=name))
            speed = speeds[name]
            speed.audio_seconds += streamed.audio_seconds
            speed.cpu_seconds += streamed.audio_seconds / streamed.rtf_cpu
            speed.wall_seconds += streamed.audio_seconds / streamed.rtf_wall
            speed.lufs.append(streamed.lufs)
            speed.true_peaks.append(streamed.true_peak_dbtp)
            if log is not None:
                log(
                    f"{name}: {streamed.audio_seconds:.1f} s, CPU RTF {streamed.rtf_cpu:.1f}, "
                    f"{streamed.lufs:.2f} LUFS, {streamed.true_peak_dbtp:.2f} dBTP"
                )
    return list(speeds.values())


def format_palette_speeds(speeds: list[PaletteSpeed], target_lufs: float) -> str:
    """A Markdown table of ``speeds``."""
    lines = [
        "| palette | audio s | CPU s | RTF (CPU time) | RTF (wall clock) | loudness error, "
        "max LU | true peak, max dBTP |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for speed in speeds:
        error = max(abs(lufs - target_lufs) for lufs in speed.lufs) if speed.lufs else 0.0
        peak = max(speed.true_peaks) if speed.true_peaks else float("nan")
        lines.append(
            f"| {speed.palette} | {speed.audio_seconds:.1f} | {speed.cpu_seconds:.2f} | "
            f"{speed.rtf_cpu:.1f} | {speed.rtf_wall:.1f} | {error:.2f} | {peak:.2f} |"
        )
    return "\n".join(lines)
