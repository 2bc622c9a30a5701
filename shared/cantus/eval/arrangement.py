"""``cantus eval arrangement``: is the melody heard over its arrangement, and does every
palette render fast enough for a station?

Pieces are composed in process as the stack composes them: the shipped melody model along
the form plan ``auto`` picks (``cantus.melody.local_composition``), keys, meters, styles
and moods mixed; the shipped harmony model under the plan (``ModelHarmonizer``), voiced and
given a bass line as the harmony service does; arranged by the render service's
``PieceParts`` in the palette the gateway picks for style and mood. Per piece:

* the **masking rate** of its ``piece.mid`` (``cantus.eval.masking``): the share of melody
  notes under which another pitched part sounds at or above them;
* the **melody margin**: the melody stem against the sum of the other stems, each through
  its part's mix chain (gain, EQ, compression, pan; ``cantus.render.mix``), in the melody's
  own band (its lowest fundamental to the second harmonic of its highest), dB, the median
  over the 46 ms frames where the melody sounds.

Then the first piece is streamed in every palette as the render service streams it (4-bar
segments through ``SegmentAudio``) for its real-time factor, loudness and true peak.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cantus.eval.masking import midi_masking
from cantus.music.form import AUTO, plan_form
from cantus.music.notes import Key, Melody, Meter, Mode
from cantus.music.styles import MOOD_ENERGY, Energy, Style
from cantus.settings import REPO_ROOT

MELODY_CHECKPOINT = REPO_ROOT / "shared/cantus/checkpoints/melody_lm.pt"
HARMONY_CHECKPOINT = REPO_ROOT / "shared/cantus/checkpoints/harmony_gru.pt"
METERS = tuple(Meter.parse(m) for m in ("4/4", "3/4", "6/8", "2/4", "9/8", "12/8"))
MOODS = ("calm", "happy", "energetic", "tender", "bright", "dreamy", "sad", "driving")
STYLES = (Style.FOLK, Style.CELTIC, Style.CHORALE)
TEMPOS = (88.0, 112.0, 132.0, 72.0, 100.0)
SEGMENT_BARS = 4
BEFORE = (
    "Before the voicing under the melody (commit 5405b3a, the same 24 requests at seed 0 "
    "arranged by that commit's code, measured by the same function): masking median 12.3 %, "
    "mean 26.1 %, worst 93.3 % (the issue's 68 pieces through the gateway: median 36 %, "
    "mean 37 %, worst 88 %; the docs/examples piece: 69.5 %)."
)
"""What the masking rate was before issue #15, for the report."""
SOUNDFONT_CHOICE = """## Sound: the SoundFont, gain per instrument, the palettes' mixes

**SoundFont.** FluidR3 (`fluid-soundfont-gm`) stays the synth's SoundFont. Debian's
MuseScore General (`musescore-general-soundfont`, 76 MB, Ogg-compressed `.sf3`) was
measured against it on the first piece above in every palette, before the trims and mixes
below, by this eval's own functions (`stream_palette`, `melody_margin_db`; the same run with
`CANTUS_SOUNDFONT=/usr/share/sounds/sf3/MuseScore_General_Full.sf3`), at a load of 7 to 17 on
the 2 shared cores: it streams at half FluidR3's real-time factor or less in eight palettes of
nine (CPU time: folk 7.6 against 15.7, chorale 7.6 / 16.0, piano 8.8 / 18.2, piano-strings
5.9 / 15.4, strings 5.7 / 16.6, harp-flute 7.8 / 13.5, ambient 8.4 / 19.1, lullaby 12.6 /
15.1; celtic 14.8 / 12.6), since its presets layer more samples and decode Vorbis; and its
melody margins are lower in seven of nine (harp-flute 3.4 against 5.2 dB, ambient 0.9 / 4.4,
piano-strings 4.4 / 8.1, strings 5.6 / 9.7, chorale 5.1 / 7.5, lullaby -10.5 / 0.9: its
music box is buried under the pad). Spectrally it is darker in the quiet palettes (spectral
centroid of the master: piano 542 against 634 Hz, piano-strings 500 / 610, ambient 440 / 552,
lullaby 325 / 619) and alike in the bands (folk 847 / 724, celtic 961 / 946). Neither
speed (the station needs RTF 20) nor the tune's margin argues for it, so it is not
installed by `make setup`; `PROGRAM_TRIM_DB` keeps its trims for whoever sets
`CANTUS_SOUNDFONT` to it.

**Gain per instrument** (`cantus.render.balance`): every program a palette plays is
measured alone in the SoundFont (a three-octave broken chord, a second a note, velocity
90, BS.1770 loudness) and trimmed to their median through the channel volume (CC 7) when
the synth selects it: in FluidR3 the tin whistle -7.0 dB, slow strings -4.3, church organ
-3.6, flute and pan flute -3.6, vibraphone +4.2, piano +3.3, warm pad +2.1, harp +2.0.

**Mix per palette** (`cantus.render.mix.PALETTE_MIXES`): each palette places its parts on
a stage (a folk band's guitar left and strings right, an orchestra's violins left and
cellos right, ambient pads spread wide), gives its accompaniment an EQ dip where its
melody instrument speaks (1.2 kHz for a choir or a soft piano, 2.5 kHz for a fiddle, a
violin or a music box), and has its own room: a short band room for folk and celtic, a
concert hall for piano, strings and harp, a long church for the chorale, a warm (darker)
hall for ambient, lullaby and therapy, with a send scaled per palette.
"""
"""The SoundFont comparison and what the sound settings are, for the report."""
FRAME = 2048
"""Samples per spectrum frame of the margin (46 ms at 44.1 kHz)."""


@dataclass(frozen=True)
class PieceRequest:
    key: Key
    meter: Meter
    tempo_bpm: float
    style: Style
    mood: str
    palette: str
    seed: int

    @property
    def energy(self) -> Energy:
        return MOOD_ENERGY[self.mood]


@dataclass(frozen=True)
class PieceResult:
    request: PieceRequest
    melody_notes: int
    masked: int
    margin_db: float

    @property
    def masking(self) -> float:
        return self.masked / self.melody_notes if self.melody_notes else 0.0


def cycled_request(
    index: int,
    style: Style,
    mood: str,
    *,
    minor: bool,
    seed: int,
    meters: Sequence[Meter] = METERS,
    tempos: Sequence[float] = TEMPOS,
) -> PieceRequest:
    """Request ``index`` of a cycled set: key by fifths from C (``minor`` or major), meter
    and tempo cycled (a chorale in compound time gets 4/4: chorales are in simple time),
    in the default palette of its style and mood."""
    from cantus.render.palettes import default_palette

    meter = meters[index % len(meters)]
    if style is Style.CHORALE and not meter.numerator % 3:
        meter = Meter(4, 4)
    return PieceRequest(
        key=Key((index * 7) % 12, Mode.MINOR if minor else Mode.MAJOR),
        meter=meter,
        tempo_bpm=tempos[index % len(tempos)],
        style=style,
        mood=mood,
        palette=default_palette(style, mood),
        seed=seed * 1000 + index,
    )


def mixed_requests(pieces: int, *, seed: int = 0) -> list[PieceRequest]:
    """``pieces`` requests cycling keys (major and minor), meters, styles, moods and tempos
    at co-prime strides, each in the default palette of its style and mood."""
    return [
        cycled_request(
            index,
            STYLES[index % len(STYLES)],
            MOODS[(index * 3) % len(MOODS)],
            minor=bool(index % 2),
            seed=seed,
        )
        for index in range(pieces)
    ]


def compose_melodies(requests: Sequence[PieceRequest], bars: int) -> list[Melody | None]:
    """Melodies of ``requests`` from the shipped model, as the melody service composes."""
    from cantus.melody.checkpoint import load_melody_checkpoint
    from cantus.melody.controls import Controls
    from cantus.melody.local_composition import compose_pieces

    model, tokenizer, _ = load_melody_checkpoint(MELODY_CHECKPOINT)
    jobs = [(Controls(r.key, r.meter, r.tempo_bpm, r.style, r.energy), r.seed) for r in requests]
    return compose_pieces(model, tokenizer, jobs, n_bars=bars)


def piece_parts(request: PieceRequest, melody: Melody, harmonizer, palette: str | None = None):
    """``PieceParts`` of ``melody`` harmonised under its form plan as the harmony service
    does, its spec carrying ``palette`` (default: the request's)."""
    from cantus.events.conversions import form_to_pb, mode_to_pb
    from cantus.harmony.serving import MelodyToHarmonize
    from cantus.render.offline_parts import parts_from_beats
    from cantus.v1 import events_pb2 as pb

    bars = melody.bars
    key = request.key
    plan = plan_form(AUTO, bars=len(bars), key=key, energy=request.energy)
    spec = pb.PieceSpec(
        key_tonic=key.tonic,
        mode=mode_to_pb(key.mode),
        tempo_bpm=request.tempo_bpm,
        meter_numerator=request.meter.numerator,
        meter_denominator=request.meter.denominator,
        bars=len(bars),
        style=request.style.value,
        mood=request.mood,
        energy=request.energy.value,
        seed=request.seed,
        melody_source=pb.MELODY_SOURCE_COMPOSE,
        form=form_to_pb(plan),
        palette=palette or request.palette,
    )
    (beats,) = harmonizer.harmonize(
        [MelodyToHarmonize(bars, key, request.style, request.energy, plan)]
    )
    return parts_from_beats(
        spec, bars, beats, plan, key=key, style=request.style, energy=request.energy
    )


def _band_power(audio: np.ndarray, low_hz: float, high_hz: float, rate: int) -> np.ndarray:
    """Power in ``low_hz..high_hz`` of each ``FRAME`` of mono ``audio`` (Hann window)."""
    frames = len(audio) // FRAME
    if frames == 0:
        return np.zeros(0)
    shaped = audio[: frames * FRAME].reshape(frames, FRAME) * np.hanning(FRAME)
    spectrum = np.abs(np.fft.rfft(shaped, axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1.0 / rate)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    return spectrum[:, band].sum(axis=1)


def melody_margin_db(
    stems: dict[str, np.ndarray],
    rate: int,
    pitch_range: tuple[int, int],
    palette: str | None = None,
):
    """The melody stem against the rest, each part through its mix chain in ``palette``'s
    mix (``cantus.render.mix.palette_profiles``), in the melody's band (``pitch_range``'s
    lowest fundamental, a quarter tone lower, to the second harmonic of its highest), dB:
    the median over frames where the melody sounds (within 30 dB of its loudest frame)."""
    from cantus.render.mix import PartProfile, _pan_gains, _part_board, _run, palette_profiles

    profiles = palette_profiles(palette)
    treated: dict[str, np.ndarray] = {}
    for name, stem in stems.items():
        profile = profiles.get(name, PartProfile())
        board = _part_board(profile, rate)
        treated[name] = (_run(board, stem, rate) * _pan_gains(profile.pan, profile.gain_db)).mean(
            axis=1
        )
    low = 440.0 * 2 ** ((pitch_range[0] - 69) / 12) * 2 ** (-1 / 24)
    high = 2 * 440.0 * 2 ** ((pitch_range[1] - 69) / 12) * 2 ** (1 / 24)
    melody = _band_power(treated["melody"], low, high, rate)
    rest_audio = sum(
        (a for n, a in treated.items() if n != "melody"), np.zeros_like(treated["melody"])
    )
    rest = _band_power(rest_audio, low, high, rate)
    if not len(melody) or melody.max() <= 0:
        return float("nan")
    sounding = melody > melody.max() * 1e-3
    ratios = 10 * np.log10((melody[sounding] + 1e-12) / (rest[sounding] + 1e-12))
    return float(np.median(ratios))


def measure_piece(parts, request: PieceRequest) -> PieceResult:
    from cantus.render.synth import SAMPLE_RATE, render_stems

    masking = midi_masking(parts.midi(0, parts.bar_count))
    tracks = parts.piece_tracks(0, parts.bar_count)
    stems = render_stems(tracks, tempo_bpm=parts.tempo_map, sample_rate=SAMPLE_RATE)
    pitches = [n.pitch for t in tracks if t.name == "melody" for n in t.notes]
    margin = melody_margin_db(stems, SAMPLE_RATE, (min(pitches), max(pitches)), parts.palette.name)
    return PieceResult(request, masking.melody_notes, masking.masked, margin)


@dataclass(frozen=True)
class StreamedPalette:
    """One palette's piece streamed as the render service streams it: real-time factor
    by wall clock and by this process's CPU time (what one free core would give; the wall
    clock counts the other work on a shared machine too), and the streamed audio's
    integrated loudness (LUFS) and true peak (dBTP)."""

    rtf_wall: float
    rtf_cpu: float
    lufs: float
    true_peak_dbtp: float
    audio_seconds: float = 0.0


def stream_palette(parts) -> StreamedPalette:
    """Render ``parts`` in ``SEGMENT_BARS``-bar segments through ``SegmentAudio``
    (synthesis, mix, streaming master), timed; then measure the joined audio."""
    from cantus.render.mix import integrated_loudness, true_peak_dbtp
    from cantus.render.piece import SegmentAudio

    started, cpu_started = time.perf_counter(), time.process_time()
    audio = SegmentAudio(parts.tempo_map)
    seconds = 0.0
    for segment in range(parts.segment_count(SEGMENT_BARS)):
        seconds += audio.render(parts, segment, SEGMENT_BARS).duration_seconds
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    joined = audio.piece_audio()
    rate = audio.sample_rate
    return StreamedPalette(
        seconds / wall,
        seconds / cpu,
        integrated_loudness(joined, rate),
        true_peak_dbtp(joined, rate),
        seconds,
    )


@dataclass
class ArrangementRun:
    pieces: list[PieceResult]
    failed: int
    streamed: dict[str, StreamedPalette]
    bars: int
    seconds: float


def run_arrangement_eval(pieces: int = 24, *, bars: int = 16, seed: int = 0) -> ArrangementRun:
    """Compose, arrange and measure ``pieces`` pieces, then stream one per palette."""
    import torch

    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.render.palettes import PALETTES

    torch.set_num_threads(1)
    started = time.perf_counter()
    requests = mixed_requests(pieces, seed=seed)
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    results, failed, parts_of = [], 0, []
    for request, melody in zip(requests, melodies, strict=True):
        if melody is None:
            failed += 1
            continue
        parts = piece_parts(request, melody, harmonizer)
        parts_of.append((request, melody))
        results.append(measure_piece(parts, request))
    streamed: dict[str, StreamedPalette] = {}
    if parts_of:
        request, melody = parts_of[0]
        # Once untimed: the first render pays for imports and SoundFont loading.
        stream_palette(piece_parts(request, melody, harmonizer))
        for name in PALETTES:
            streamed[name] = stream_palette(piece_parts(request, melody, harmonizer, palette=name))
    return ArrangementRun(results, failed, streamed, bars, time.perf_counter() - started)


def _summary(values: Sequence[float], worst) -> str:
    return f"{statistics.median(values):.1f} | {statistics.fmean(values):.1f} | {worst(values):.1f}"


def format_run(run: ArrangementRun, *, command: str, before: str = BEFORE) -> str:
    from cantus.render.mix import PRESETS

    target, ceiling = PRESETS["streaming"].target_lufs, PRESETS["streaming"].ceiling_dbtp
    rates = [100 * p.masking for p in run.pieces]
    margins = [p.margin_db for p in run.pieces if not np.isnan(p.margin_db)]
    lines = [
        "# Arrangement: the melody on top",
        "",
        f"Command: `{command}` ({platform.machine()}, Python {platform.python_version()}; "
        f"2 CPU cores shared with other work, load average {os.getloadavg()[0]:.1f} at the "
        f"end; {run.seconds:.0f} s).",
        "",
        f"{len(run.pieces)} pieces of {run.bars} bars composed in process (shipped melody and "
        f"harmony models, form `auto`), keys, meters, styles and moods mixed, each in the "
        f"default palette of its style and mood ({run.failed} failed to compose).",
        "",
        "| measure | median | mean | worst |",
        "|---|---|---|---|",
        f"| masking rate, % of melody notes with another pitched part at or above them "
        f"| {_summary(rates, max)} |",
        f"| melody margin in its band, dB (melody stem against the rest, mixed) "
        f"| {_summary(margins, min)} |",
        "",
    ]
    if before:
        lines += [before, ""]
    lines += [
        "| style | meter | key | mood | palette | melody notes | masked | margin dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in run.pieces:
        r = p.request
        lines.append(
            f"| {r.style.value} | {r.meter} | {r.key.name} | {r.mood} | {r.palette} "
            f"| {p.melody_notes} | {p.masked} ({100 * p.masking:.1f} %) | {p.margin_db:.1f} |"
        )
    lines += ["", SOUNDFONT_CHOICE.rstrip()]
    lines += [
        "",
        "## Real-time factor and loudness per palette (streamed)",
        "",
        "The first piece above re-arranged in every palette and streamed in "
        f"{SEGMENT_BARS}-bar segments through the render service's `SegmentAudio` "
        "(FluidSynth, mix, streaming master): seconds of audio per second of rendering, by "
        "the wall clock (the machine's other work included) and by this process's CPU time "
        "(what one free core gives); the streamed audio's loudness (target "
        f"{target:g} LUFS ±0.5 LU) and true peak (ceiling {ceiling:g} dBTP).",
        "",
        "| palette | RTF (wall clock) | RTF (CPU time) | loudness LUFS | true peak dBTP |",
        "|---|---|---|---|---|",
    ]
    for name, streamed in run.streamed.items():
        lines.append(
            f"| {name} | {streamed.rtf_wall:.1f} | {streamed.rtf_cpu:.1f} | {streamed.lufs:.2f} "
            f"| {streamed.true_peak_dbtp:.2f} |"
        )
    return "\n".join(lines) + "\n"
