"""``cantus eval vocals``: does the voice sing the tune, on time, intelligibly, in a mix that
stays on target and renders fast enough to stream?

Pieces are composed in process as the stack composes them (``cantus.eval.arrangement``:
the shipped melody model along the form plan, the harmony model, each style and mood's
palette), their lyrics written by the shipped lyric LM under the lyric service's
constraints (``cantus.lyrics``), and they are streamed as the render service streams them
(4-bar segments through ``SegmentAudio``), with vocals and, side by side, without. Measured
on the vocal stem and the mix:

* **pitch**: the stem's F0 by Praat's autocorrelation tracker (parselmouth: another
  tracker than the WORLD analysis that made the voice) against the sung note, on voiced
  10 ms frames from 50 ms after each onset (the glide and the consonants) to 30 ms
  before its end: the share within 50 cents; also over whole notes;
* **timing**: each syllable's vowel onset — the first 5 ms frame around the onset, voiced,
  whose level comes within 6 dB of the level the vowel then holds (voiced consonants
  such as l, m, n stay further under it) — against the note's onset;
* **intelligibility** (English): pocketsphinx (its wheel's en-us acoustic model and
  language model) on each sung lyric line cut from the stem, and on the same words
  spoken plainly by the same eSpeak voice: word error rates and the ratio of word
  accuracies, sung over spoken. Mandarin has no offline recogniser in the registries
  this project uses, so it gets pitch, timing and the mix;
* **mix**: integrated loudness and true peak of the streamed audio against the preset;
* **the voice in front**: the loudness of the vocal stem through its mix chain against the
  instrument that plays the tune through its chain (stepped back under the voice), and
  against the rest of the band, each alone through the palette's mix (LU);
* **speed**: the streamed render's real-time factor with and without vocals, whole pieces
  and per streamed segment, three ways: by the wall clock; by the wall clock less the time
  the render waited for a core (the kernel's run-queue delay of this thread,
  ``/proc/self/schedstat``), the wall clock it would have had with a core of its own; and
  by CPU time (this process's and its eSpeak subprocesses'). The machine's load average
  is beside them (the machine is shared).

A small comparison of the resynthesis candidates runs first on one English line
(``compare_candidates``): the product's WORLD resynthesis, Praat's PSOLA on the very same
spoken syllables and placement, and Festival's singing mode with its HTS voice.
"""

from __future__ import annotations

import functools
import io
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cantus.render.vocals import SungNote, consonant_leads, phrase_breaths

SEGMENT_BARS = 4
THEMES = {
    "en": (
        "a sailor longing for the sea",
        "morning light on the hills",
        "a letter from an old friend",
        "dancing in the summer rain",
        "the road that takes me home",
        "stars above a quiet town",
    ),
    "zh": ("大海", "月光下的思念", "春天的花", "远方的故乡", "秋天的风", "山上的雪"),
}
MOODS = ("calm", "happy", "tender", "bright", "dreamy", "hopeful")
PITCH_TOLERANCE_CENTS = 50.0
ONSET_TOLERANCE_SECONDS = 0.040
ONSET_LEVEL_DB = 6.0


@dataclass
class PieceVocals:
    """What one piece measured (see the module docstring)."""

    language: str
    palette: str
    meter: str
    tempo_bpm: float
    seconds: float
    lines: list[str]
    pitch_frames: int = 0
    pitch_within: int = 0
    whole_frames: int = 0
    whole_within: int = 0
    onset_errors: list[float] = field(default_factory=list)
    onsets_missed: int = 0
    lufs: float = 0.0
    lufs_without: float = 0.0
    true_peak_dbtp: float = 0.0
    target_lufs: float = 0.0
    ceiling_dbtp: float = 0.0
    rtf_wall: float = 0.0
    rtf_cpu: float = 0.0
    rtf_wall_without: float = 0.0
    rtf_cpu_without: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    octave_shift: int = 0
    """Semitones the voice sang away from the written melody (``vocal_octave_shift``)."""
    segment_rtf_cpu: list[float] = field(default_factory=list)
    """Each streamed segment's CPU-time real-time factor, with vocals."""
    segment_rtf_wall: list[float] = field(default_factory=list)
    segment_rtf_running: list[float] = field(default_factory=list)
    """Each streamed segment's real-time factor with vocals by the wall clock, and by the
    wall clock less the time the render waited for a core (``run_queue_seconds``)."""
    rtf_running: float = 0.0
    """The whole piece's, by the wall clock less the time waited for a core."""
    voice_over_tune_lu: float | None = None
    voice_over_band_lu: float | None = None
    tune_step_back_lu: float | None = None
    """Loudness (LU) of the vocals through their chain over the tune's instrument through
    its (stepped back) chain, over the rest of the band, and the tune's instrument under
    the voice against the same instrument without vocals (``lead_margins``)."""
    phrase_ends: int = 0
    phrase_breaths: int = 0
    """Lyric lines' ends followed by another sung note, and those sung with a breath."""
    leads: list[tuple[float, float]] = field(default_factory=list)
    """(spoken, sung before the onset) seconds of each syllable's onset consonants."""
    heard: list[LineHeard] = field(default_factory=list)
    recognised: list[tuple[str, str, str]] = field(default_factory=list)
    """(reference, sung hypothesis, spoken hypothesis) per line."""


SINGINGS = ("sung", "spoken", "written", "lower")
"""What each line is recognised in: the stem as sung (in the voice's octave), the same
words spoken plainly by the same voice, the stem sung at the melody's written pitch (as
before the voice chose its octave), and sung an octave under the voice's octave."""


@dataclass
class LineHeard:
    """One English lyric line recognised: its words, and per singing (``SINGINGS``) the word
    errors of the open-vocabulary decoder and whether the closed-set grammar found it."""

    words: int
    errors: dict[str, int]
    identified: dict[str, bool]


# --- measures -----------------------------------------------------------------------------


def praat_f0(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and F0 (Hz, 0 = unvoiced) of mono ``audio`` every 10 ms, by Praat's
    autocorrelation pitch tracker (75..1000 Hz)."""
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=75.0, pitch_ceiling=1000.0)
    return pitch.xs(), np.nan_to_num(pitch.selected_array["frequency"])


def pitch_hits(
    times: np.ndarray, f0: np.ndarray, notes: Sequence[SungNote], *, whole: bool = False
) -> tuple[int, int]:
    """Voiced frames inside the notes (their middles, or ``whole`` notes) and how many of
    them are within ``PITCH_TOLERANCE_CENTS`` of the note."""
    frames = within = 0
    for note in notes:
        begin, end = (note.onset, note.end) if whole else (note.onset + 0.05, note.end - 0.03)
        inside = (times >= begin) & (times < end) & (f0 > 0)
        if not inside.any():
            continue
        cents = 1200.0 * np.log2(f0[inside] / (440.0 * 2.0 ** ((note.pitch - 69) / 12.0)))
        frames += int(inside.sum())
        within += int((np.abs(cents) <= PITCH_TOLERANCE_CENTS).sum())
    return frames, within


def vowel_onsets(
    audio: np.ndarray,
    sample_rate: int,
    times: np.ndarray,
    f0: np.ndarray,
    notes: Sequence[SungNote],
) -> tuple[list[float], int]:
    """Vowel onset minus note onset (s) of every note with a syllable of its own (see the
    module docstring), and how many had no onset marked within 150 ms: the search starts
    after the middle of the note before, and an onset counts only after a frame that is
    not yet vowel (a consonant, a dip, silence); a vowel sung legato into a vowel on the
    same level shows no such frame."""
    hop, window = round(0.005 * sample_rate), round(0.02 * sample_rate)
    errors, missed = [], 0
    before: SungNote | None = None
    for note in notes:
        previous, before = before, note
        if note.continues:
            continue
        earliest = note.onset - 0.15
        if previous is not None:
            earliest = max(earliest, previous.onset + previous.duration / 2)
        start = max(0, round(earliest * sample_rate))
        stop = round(min(note.end, note.onset + 0.15) * sample_rate)
        frame_starts = np.arange(start, max(start, stop - window), hop)
        if len(frame_starts) == 0:
            missed += 1
            continue
        level = np.array(
            [10 * np.log10(np.mean(audio[s : s + window] ** 2) + 1e-12) for s in frame_starts]
        )
        centres = (frame_starts + window / 2) / sample_rate
        hold_from = round((note.onset + 0.03) * sample_rate)
        hold_to = round(
            max(note.onset + 0.06, min(note.end - 0.03, note.onset + 0.3)) * sample_rate
        )
        held = audio[hold_from:hold_to]
        if len(held) == 0:
            missed += 1
            continue
        held_db = 10 * np.log10(np.mean(held**2) + 1e-12)
        voiced = np.interp(centres, times, (f0 > 0).astype(float)) > 0.5
        vowel = voiced & (level >= held_db - ONSET_LEVEL_DB)
        not_yet = np.flatnonzero(~vowel)
        found = np.flatnonzero(vowel[not_yet[0] :]) + not_yet[0] if len(not_yet) else []
        if len(found) == 0:
            missed += 1
            continue
        errors.append(float(centres[found[0]] - note.onset))
    return errors, missed


class Recogniser:
    """pocketsphinx with its wheel's US English model (16 kHz): ``words`` decodes with its
    language model (open vocabulary); ``line`` with a grammar of ``lines`` (closed set: which
    of the run's lyric lines was sung)."""

    def __init__(self, lines: Sequence[str] = ()) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=16000, loglevel="FATAL")
        self._grammar = None
        choices = sorted({" ".join(_words(line)) for line in lines if _words(line)})
        if choices:
            self._grammar = Decoder(samprate=16000, loglevel="FATAL")
            alternatives = " | ".join(f"( {choice} )" for choice in choices)
            self._grammar.add_jsgf_string(
                "lines", f"#JSGF V1.0;\ngrammar lines;\npublic <line> = {alternatives};\n"
            )
            self._grammar.activate_search("lines")

    @staticmethod
    def _decode(decoder, audio: np.ndarray, sample_rate: int) -> list[str]:
        from scipy.signal import resample_poly

        mono = resample_poly(audio, 16000, sample_rate) if sample_rate != 16000 else audio
        peak = float(np.abs(mono).max()) or 1.0
        pcm = (np.clip(mono / peak * 0.7, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return _words(hypothesis.hypstr if hypothesis else "")

    def words(self, audio: np.ndarray, sample_rate: int) -> list[str]:
        return self._decode(self._decoder, audio, sample_rate)

    def line(self, audio: np.ndarray, sample_rate: int) -> list[str]:
        """The grammar's line for ``audio`` (a partial one where the search did not reach
        a line's end)."""
        assert self._grammar is not None
        return self._decode(self._grammar, audio, sample_rate)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance in words (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, 1):
        current = [i]
        for j, other in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1]


def spoken_line(text: str, language: str) -> tuple[np.ndarray, int]:
    """``text`` spoken plainly by the singing voice's eSpeak voice."""
    import soundfile

    from cantus.render.vocals import ESPEAK_SPEED_WPM, VOCAL_LANGUAGES, espeak_binary

    result = subprocess.run(
        [
            espeak_binary(),
            "-v",
            VOCAL_LANGUAGES[language],
            "-s",
            str(ESPEAK_SPEED_WPM),
            "--stdout",
            text,
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float64")
    return audio, rate


# --- pieces -------------------------------------------------------------------------------


def lyric_pieces(language: str, pieces: int, bars: int, seed: int, log: Callable[[str], None]):
    """``pieces`` pieces composed in process with lyrics in ``language`` and vocals on:
    (parts, lines' texts) each."""
    import torch

    from cantus.eval.arrangement import (
        HARMONY_CHECKPOINT,
        compose_melodies,
        mixed_requests,
        piece_parts,
    )
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.lyrics.lexicon import Lexicon
    from cantus.lyrics.serving import load_lyric_scorer
    from cantus.lyrics.slots import plan_lines
    from cantus.lyrics.theme import ThemeEmbedder
    from cantus.lyrics.training import CHECKPOINT_DIR, checkpoint_path, lexicon_path
    from cantus.lyrics.writer import themed_writer
    from cantus.v1 import events_pb2 as pb

    torch.set_num_threads(1)
    # the voice sings in a soprano's range: meters and tempos as the stack's, every piece
    # a lyric piece
    requests = mixed_requests(pieces, seed=seed + (0 if language == "en" else 500))
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    scorer = load_lyric_scorer(checkpoint_path(language, CHECKPOINT_DIR))
    lexicon = Lexicon.load(lexicon_path(language, CHECKPOINT_DIR))
    embedder = ThemeEmbedder()
    out = []
    for number, (request, melody) in enumerate(zip(requests, melodies, strict=True)):
        if melody is None:
            continue
        parts = piece_parts(request, melody, harmonizer)
        theme = THEMES[language][number % len(THEMES[language])]
        mood = MOODS[number % len(MOODS)]
        parts.spec.lyrics_theme = theme
        parts.spec.lyrics_language = language
        parts.spec.vocals = True
        lines = plan_lines([bar.notes for bar in melody.bars], melody.meter, scheme="AABB")
        writer = themed_writer(scorer, lexicon, embedder, theme, mood, seed=request.seed)
        decoded = writer.write_lines(lines)
        parts.lyric_lines = {
            line.index: pb.LyricLine(
                meta=pb.EventMeta(piece_id="0" * 32, index=line.index),
                spec=parts.spec,
                first_bar=line.first_bar,
                bar_count=line.bar_count,
                syllables=[
                    pb.Syllable(bar_index=slot.bar_index, note_index=slot.note_index, text=text)
                    for slot, text in zip(line.slots, written.syllables, strict=False)
                ],
                text=written.text,
            )
            for line, written in zip(lines, decoded, strict=True)
        }
        out.append((parts, [written.text for written in decoded]))
        log(f"{language}: piece {len(out)}/{pieces} composed ({theme!r}, {parts.palette.name})")
    return out


@dataclass
class Streamed:
    """A piece streamed as the render service streams it: the mix, the vocal stem, audio
    seconds, wall and CPU seconds, and each segment's (audio seconds, CPU seconds)."""

    mix: np.ndarray
    stem: np.ndarray | None
    seconds: float
    wall: float
    cpu: float
    segments: list[tuple[float, float, float, float]]
    """Per segment: audio seconds, CPU seconds, wall seconds, seconds waited for a core."""
    waited: float = 0.0


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (eSpeak NG speaks each new
    syllable in a subprocess: its time is the voice's too)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_queue_seconds() -> float:
    """Seconds this thread has waited, runnable, for a core (Linux ``/proc/self/task/<tid>/
    schedstat``'s run delay; 0 where the kernel does not say). The wall clock less this is
    what the render took with a core of its own, short of what a busy machine's shared
    caches cost it."""
    try:
        fields = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text()
        return int(fields.split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def stream(parts) -> Streamed:
    """Stream ``parts`` as the render service does (4-bar segments), timed. CPU time is
    this process's and its subprocesses' (``cpu_seconds``; the render runs in one thread):
    on a shared machine it is what the render itself costs, where the wall clock also
    counts the other work."""
    from cantus.render.piece import SegmentAudio

    started, cpu_started, waited_before = time.perf_counter(), cpu_seconds(), run_queue_seconds()
    audio = SegmentAudio(parts.tempo_map)
    seconds = 0.0
    segments = []
    for segment in range(parts.segment_count(SEGMENT_BARS)):
        cpu_before, wall_before, wait_before = (
            cpu_seconds(),
            time.perf_counter(),
            run_queue_seconds(),
        )
        rendered = audio.render(parts, segment, SEGMENT_BARS).duration_seconds
        segments.append(
            (
                rendered,
                cpu_seconds() - cpu_before,
                time.perf_counter() - wall_before,
                run_queue_seconds() - wait_before,
            )
        )
        seconds += rendered
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return Streamed(
        audio.piece_audio(),
        audio.piece_vocals(),
        seconds,
        wall,
        cpu,
        segments,
        waited=run_queue_seconds() - waited_before,
    )


def without_vocals(parts):
    from cantus.render.piece import PieceParts

    spec = type(parts.spec)()
    spec.CopyFrom(parts.spec)
    spec.vocals = False
    return PieceParts(spec, parts.melody, parts.harmony_by_bar, parts.lyric_lines, None)


def line_spans(parts, notes: Sequence[SungNote]) -> list[tuple[float, float]]:
    """(start, end) seconds of each lyric line's sung notes, in line order."""
    spans = []
    for index in sorted(parts.lyric_lines):
        line = parts.lyric_lines[index]
        first = parts.tick_seconds(line.first_bar * parts.bar_ticks)
        last = parts.tick_seconds((line.first_bar + line.bar_count) * parts.bar_ticks)
        inside = [n for n in notes if first <= n.onset < last]
        if inside:
            spans.append((inside[0].onset - 0.3, inside[-1].end + 0.25))
    return spans


def measure(parts, texts: list[str], recogniser: Recogniser | None) -> PieceVocals:
    from cantus.mastering_presets import PRESETS
    from cantus.render.mix import integrated_loudness, true_peak_dbtp

    language = parts.spec.lyrics_language
    # untimed first: warm caches for the side-by-side runs (and the mix's loudness without)
    mix_without = stream(without_vocals(parts)).mix
    plain = stream(without_vocals(parts))
    load = os.getloadavg()
    sung = stream(parts)
    stem = sung.stem
    assert stem is not None
    rate = 44100
    preset = PRESETS["streaming"]
    result = PieceVocals(
        language=language,
        palette=parts.palette.name,
        meter=f"{parts.spec.meter_numerator}/{parts.spec.meter_denominator}",
        tempo_bpm=parts.spec.tempo_bpm,
        seconds=sung.seconds,
        lines=texts,
        lufs=integrated_loudness(sung.mix, rate),
        lufs_without=integrated_loudness(mix_without, rate),
        true_peak_dbtp=true_peak_dbtp(sung.mix, rate),
        target_lufs=preset.target_lufs,
        ceiling_dbtp=preset.ceiling_dbtp,
        rtf_wall=sung.seconds / sung.wall,
        rtf_cpu=sung.seconds / sung.cpu,
        rtf_wall_without=plain.seconds / plain.wall,
        rtf_cpu_without=plain.seconds / plain.cpu,
        load=load,
        octave_shift=parts.vocal_octave_shift,
        segment_rtf_cpu=[audio / max(cpu, 1e-9) for audio, cpu, _, _ in sung.segments],
        segment_rtf_wall=[audio / max(wall, 1e-9) for audio, _, wall, _ in sung.segments],
        segment_rtf_running=[
            audio / max(wall - waited, 1e-9) for audio, _, wall, waited in sung.segments
        ],
        rtf_running=sung.seconds / max(sung.wall - sung.waited, 1e-9),
    )
    result.voice_over_tune_lu, result.voice_over_band_lu, result.tune_step_back_lu = lead_margins(
        parts, stem
    )
    notes = parts.sung_notes(0, parts.bar_count)
    times, f0 = praat_f0(stem, rate)
    result.pitch_frames, result.pitch_within = pitch_hits(times, f0, notes)
    result.whole_frames, result.whole_within = pitch_hits(times, f0, notes, whole=True)
    result.onset_errors, result.onsets_missed = vowel_onsets(stem, rate, times, f0, notes)
    result.phrase_ends, result.phrase_breaths = phrase_breaths(notes, language)
    result.leads = consonant_leads(notes, language)
    if recogniser is not None:
        from cantus.render.vocals import render_vocals

        def sung_at(semitones: int) -> np.ndarray:
            if semitones == 0:
                return stem
            moved = [replace(n, pitch=n.pitch + semitones) for n in notes]
            return render_vocals(moved, language, len(stem), rate)

        # the controls: the melody's written pitch (the voice's octave not chosen), and an
        # octave under the voice's octave
        stems = {
            "sung": stem,
            "written": sung_at(-result.octave_shift),
            "lower": sung_at(-12),
        }
        for (start, end), text in zip(line_spans(parts, notes), texts, strict=False):
            reference = _words(text)
            if not reference:
                continue
            cut = slice(max(0, round(start * rate)), round(end * rate))
            clips = {name: (audio[cut], rate) for name, audio in stems.items()}
            clips["spoken"] = spoken_line(text, language)
            heard = {name: recogniser.words(*clip) for name, clip in clips.items()}
            result.heard.append(
                LineHeard(
                    words=len(reference),
                    errors={name: word_errors(reference, heard[name]) for name in SINGINGS},
                    identified={
                        name: recogniser.line(*clips[name]) == reference for name in SINGINGS
                    },
                )
            )
            result.recognised.append((text, " ".join(heard["sung"]), " ".join(heard["spoken"])))
    return result


def lead_margins(parts, stem: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(voice over the tune's instrument, voice over the rest of the band, the tune's
    instrument under the voice against it without vocals), LU: each stem alone through its
    chain of the palette's mix (``vocal_profiles``; ``palette_profiles`` for the last), the
    synth's stems rendered for the whole piece as the stream renders them."""
    from cantus.render.mix import integrated_loudness, mix_stems, palette_profiles, vocal_profiles
    from cantus.render.synth import SegmentRenderer

    rate = 44100
    renderer = SegmentRenderer(parts.tempo_map, sample_rate=rate)
    end_tick = parts.bar_count * parts.bar_ticks
    stems = renderer.render_stems_until(end_tick, parts.piece_tracks(0, parts.bar_count))
    renderer.close()
    if "melody" not in stems:
        return None, None, None
    length = min(len(stem), *(len(s) for s in stems.values()))
    palette = parts.palette.name
    with_voice, without = vocal_profiles(palette), palette_profiles(palette)

    def loudness(chosen: dict[str, np.ndarray], profiles) -> float:
        return integrated_loudness(mix_stems(chosen, rate, profiles, palette), rate)

    voice = loudness({"vocals": np.repeat(stem[:length, None], 2, axis=1)}, with_voice)
    tune = {"melody": stems["melody"][:length]}
    band = {name: s[:length] for name, s in stems.items() if name != "melody"}
    return (
        voice - loudness(tune, with_voice),
        voice - loudness(band, with_voice),
        loudness(tune, with_voice) - loudness(tune, without),
    )


def accuracy_ratio(lines: Sequence[LineHeard], singing: str = "sung") -> float:
    """Word accuracy of ``singing`` over that of the spoken lines (accuracy = 1 - word
    error rate, at least 0), pooled over ``lines``."""
    words = sum(line.words for line in lines)
    if not words:
        return float("nan")
    sung = min(sum(line.errors[singing] for line in lines) / words, 1.0)
    spoken = min(sum(line.errors["spoken"] for line in lines) / words, 1.0)
    return (1.0 - sung) / max(1.0 - spoken, 1e-9)


def bootstrap_interval(
    lines: Sequence[LineHeard],
    statistic: Callable[[Sequence[LineHeard]], float],
    *,
    draws: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """A 95 % percentile bootstrap interval of ``statistic`` over ``lines`` resampled with
    replacement (lines, not words, are the unit: a line's words are heard together)."""
    if not lines:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        chosen = rng.integers(0, len(lines), len(lines))
        values.append(statistic([lines[i] for i in chosen]))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def wilson_interval(hits: int, total: int) -> tuple[float, float]:
    """A 95 % Wilson score interval of the proportion ``hits`` / ``total``."""
    if not total:
        return float("nan"), float("nan")
    z = 1.959964
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)


# --- candidates ---------------------------------------------------------------------------


@dataclass
class Candidate:
    name: str
    pitch_within: float | None
    word_error_rate: float | None
    seconds_per_audio_second: float | None
    note: str = ""


def psola_vocals(notes: Sequence[SungNote], language: str, samples: int, rate: int):
    """The same spoken syllables and placement as the product, resynthesised by Praat's
    PSOLA (``Manipulation``: pitch tier set to the note, duration tier stretching the vowel)
    instead of WORLD."""
    import parselmouth
    from parselmouth.praat import call
    from scipy.signal import resample_poly

    from cantus.render.vocals import FRAME_SECONDS, lead_seconds, speak, spoken_syllable

    out = np.zeros(samples)
    ordered = sorted(notes, key=lambda n: n.onset)
    for index, note in enumerate(ordered):
        if note.continues:
            continue
        before = ordered[index - 1] if index else None
        end = note.end
        for later in ordered[index + 1 :]:
            if not later.continues:
                break
            end = later.end
        syllable = spoken_syllable(note.phones, language)
        audio, source_rate = speak(note.phones, language)
        heard = np.flatnonzero(np.abs(audio) > 1e-3 * max(float(np.abs(audio).max()), 1e-9))
        margin = source_rate // 50
        audio = audio[max(0, heard[0] - margin) : heard[-1] + margin]
        lead = lead_seconds(before, note, syllable)
        vowel_start = syllable.vowel_start * FRAME_SECONDS
        vowel_end = syllable.vowel_end * FRAME_SECONDS
        total = len(audio) / source_rate
        sound = parselmouth.Sound(audio, sampling_frequency=source_rate)
        manipulation = call(sound, "To Manipulation", 0.01, 75, 600)
        pitch_tier = call("Create PitchTier", "sung", 0.0, total)
        call(pitch_tier, "Add point", total / 2, 440.0 * 2.0 ** ((note.pitch - 69) / 12.0))
        call([pitch_tier, manipulation], "Replace pitch tier")
        stretch = max(0.1, (end - note.onset) / max(total - vowel_start, 0.01))
        lead_factor = lead / max(vowel_start, 1e-3) if vowel_start > 0 else 1.0
        duration_tier = call("Create DurationTier", "sung", 0.0, total)
        call(duration_tier, "Add point", 0.0, max(lead_factor, 0.05))
        call(duration_tier, "Add point", max(vowel_start - 0.001, 0.0), max(lead_factor, 0.05))
        call(duration_tier, "Add point", vowel_start, stretch)
        call(duration_tier, "Add point", max(vowel_end, vowel_start + 0.001), stretch)
        call([duration_tier, manipulation], "Replace duration tier")
        sung = call(manipulation, "Get resynthesis (overlap-add)").values[0]
        sung = resample_poly(sung, rate, source_rate) * syllable.gain
        start = round((note.onset - lead) * rate)
        stop = min(samples, start + len(sung))
        if start < stop:
            out[max(0, start) : stop] += sung[max(0, -start) : stop - start]
    return out.astype(np.float32)


def festival_line(notes: Sequence[SungNote], words: list[str], tempo_bpm: float):
    """Festival's singing mode (``text2wave -mode singing``) with the HTS voice, the line's
    words on its notes one word per note run: mono audio and its rate, or None."""
    import soundfile

    if shutil.which("text2wave") is None:
        return None
    pitches = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    body = []
    syllable_notes = [n for n in notes if not n.continues]
    for word, note in zip(words, syllable_notes, strict=False):
        name = f"{pitches[note.pitch % 12]}{note.pitch // 12 - 1}"
        beats = max(0.25, round(note.duration * tempo_bpm / 60.0 * 4) / 4)
        body.append(f'<PITCH NOTE="{name}"><DURATION BEATS="{beats}">{word}</DURATION></PITCH>')
    xml = (
        '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN"'
        f' "Singing.v0_1.dtd" []>\n<SINGING BPM="{tempo_bpm:.0f}">\n'
        + "\n".join(body)
        + "\n</SINGING>\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        score, wav = Path(folder) / "line.xml", Path(folder) / "line.wav"
        score.write_text(xml)
        done = subprocess.run(
            [
                "text2wave",
                "-mode",
                "singing",
                "-eval",
                "(voice_cmu_us_slt_arctic_hts)",
                str(score),
                "-o",
                str(wav),
            ],
            capture_output=True,
            timeout=120,
        )
        if done.returncode or not wav.exists():
            return None
        audio, rate = soundfile.read(wav, dtype="float64")
    return audio, rate


def compare_candidates(parts, texts: list[str], recogniser: Recogniser) -> list[Candidate]:
    """WORLD (the product), Praat PSOLA and Festival on the first two lines of ``parts``."""
    from cantus.render.vocals import render_vocals

    rate = 44100
    language = parts.spec.lyrics_language
    notes = parts.sung_notes(0, parts.bar_count)
    spans = line_spans(parts, notes)[:2]
    end = spans[-1][1]
    chosen = [n for n in notes if n.onset < end]
    samples = round(end * rate)
    words = [w for t in texts[:2] for w in _words(t)]
    candidates = []
    for name, make in (
        ("eSpeak NG + WORLD (chosen)", render_vocals),
        ("eSpeak NG + Praat PSOLA", psola_vocals),
    ):
        make(chosen[:2], language, round(chosen[1].end * rate), rate)  # warm the caches
        started = time.process_time()
        audio = make(chosen, language, samples, rate)
        cpu = time.process_time() - started
        times, f0 = praat_f0(audio, rate)
        frames, within = pitch_hits(times, f0, chosen)
        errors = sum(
            word_errors(
                _words(t), recogniser.words(audio[max(0, round(a * rate)) : round(b * rate)], rate)
            )
            for (a, b), t in zip(spans, texts[:2], strict=False)
        )
        candidates.append(
            Candidate(name, within / max(frames, 1), errors / max(len(words), 1), cpu / end)
        )
    started = time.perf_counter()
    festival = festival_line(chosen, words, parts.spec.tempo_bpm)
    if festival is None:
        candidates.append(
            Candidate(
                "Festival singing mode + HTS slt", None, None, None, "not installed or failed"
            )
        )
    else:
        audio, source_rate = festival
        seconds = time.perf_counter() - started
        times, f0 = praat_f0(audio, source_rate)
        voiced = f0[f0 > 0]
        targets = np.array([440.0 * 2.0 ** ((n.pitch - 69) / 12.0) for n in chosen])
        # lenient: a frame counts if it is within 50 cents of any note of the lines
        near = [
            np.min(np.abs(1200 * np.log2(f / targets))) <= PITCH_TOLERANCE_CENTS for f in voiced
        ]
        errors = word_errors(words, recogniser.words(audio, source_rate))
        candidates.append(
            Candidate(
                "Festival singing mode + HTS slt",
                float(np.mean(near)) if len(near) else 0.0,
                errors / max(len(words), 1),
                seconds / (len(audio) / source_rate),
                f"median F0 {np.median(voiced):.0f} Hz against notes "
                f"{targets.min():.0f}–{targets.max():.0f} Hz; one word per note",
            )
        )
    return candidates


# --- the run ------------------------------------------------------------------------------


@dataclass
class VocalsRun:
    pieces: list[PieceVocals]
    candidates: list[Candidate]
    seconds: float
    bars: int
    seeds: tuple[int, ...] = (0,)


def run_vocals_eval(
    *,
    pieces: int = 4,
    bars: int = 8,
    seed: int = 0,
    seeds: int = 1,
    languages: Sequence[str] = ("en", "zh"),
    examples: Path | None = None,
    candidates: bool = True,
    intelligibility: bool = True,
    log: Callable[[str], None] = print,
) -> VocalsRun:
    """``pieces`` pieces per language for each of ``seeds`` seeds from ``seed`` on (each
    seed composes other requests: meters, tempos, palettes, melodies, lyrics). The
    recogniser's closed set is each seed's lines of a language."""
    started = time.perf_counter()
    results: list[PieceVocals] = []
    compared: list[Candidate] = []
    used = tuple(range(seed, seed + seeds))
    for language in languages:
        for run_seed in used:
            composed = lyric_pieces(language, pieces, bars, run_seed * 1000, log)
            heard = intelligibility and language == "en"
            lines = [line for _, texts in composed for line in texts]
            recogniser = Recogniser(lines) if heard or candidates else None
            for number, (parts, texts) in enumerate(composed):
                results.append(measure(parts, texts, recogniser if heard else None))
                log(f"{language}, seed {run_seed}: piece {number + 1} measured")
                first = number == 0 and run_seed == seed
                if first and examples is not None:
                    write_example(parts, examples / f"{language}")
                if first and language == "en" and candidates and recogniser is not None:
                    compared = compare_candidates(parts, texts, recogniser)
    return VocalsRun(results, compared, time.perf_counter() - started, bars, used)


def write_example(parts, folder: Path) -> None:
    """``folder``.opus (the streamed mix), ``folder``.vocals.opus (the stem) and
    ``folder``.f0.png (the stem's F0 over the notes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cantus.render.exports import audio_export_files

    streamed = stream(parts)
    mix, stem = streamed.mix, streamed.stem
    assert stem is not None
    folder.parent.mkdir(parents=True, exist_ok=True)
    exported = audio_export_files(mix, 44100, ("opus",))
    folder.with_suffix(".opus").write_bytes(exported["piece.opus"])
    stem_files = audio_export_files(np.repeat(stem[:, None], 2, axis=1), 44100, ("opus",))
    Path(f"{folder}.vocals.opus").write_bytes(stem_files["piece.opus"])
    notes = parts.sung_notes(0, parts.bar_count)
    times, f0 = praat_f0(stem, 44100)
    figure, axis = plt.subplots(figsize=(10, 3.2), dpi=100)
    for note in notes:
        axis.plot([note.onset, note.end], [note.pitch, note.pitch], color="0.75", linewidth=5)
    voiced = f0 > 0
    axis.plot(times[voiced], 69 + 12 * np.log2(f0[voiced] / 440.0), ".", markersize=2)
    axis.set_xlabel("seconds")
    axis.set_ylabel("MIDI pitch")
    if parts.spec.lyrics_language == "zh":  # the plot's font has no hanzi: their pinyin
        lines = " ".join(note.phones for note in notes if not note.continues)
    else:
        lines = " / ".join(line.text for _, line in sorted(parts.lyric_lines.items()))
    axis.set_title(f"{folder.name}: sung F0 (dots) over the melody (bars) — {lines[:70]}")
    figure.tight_layout()
    figure.savefig(f"{folder}.f0.png")
    plt.close(figure)


def _intelligibility_rows(chosen: Sequence[PieceVocals]) -> list[str]:
    """The English table's recogniser rows: word error rates, accuracy ratios and lines
    identified, with 95 % intervals, for each singing (``SINGINGS``)."""
    lines = [line for p in chosen for line in p.heard]
    words = sum(line.words for line in lines)
    total = len(lines)
    closed = len({" ".join(_words(text)) for p in chosen for text in p.lines})
    names = {
        "sung": "sung (in the voice's octave)",
        "written": "sung at the written pitch (control)",
        "lower": "sung an octave under the voice's octave (control)",
    }
    rows = []
    for name in ("sung", "spoken", "written", "lower"):
        wer = sum(line.errors[name] for line in lines) / max(words, 1)
        label = names.get(name, "the same lines spoken by the same voice")
        rows.append(f"| word error rate, {label} ({words} words) | {100 * wer:.0f} % | |")
    for name in ("sung", "written", "lower"):
        ratio = accuracy_ratio(lines, name)
        low, high = bootstrap_interval(lines, functools.partial(accuracy_ratio, singing=name))
        rows.append(
            f"| word accuracy {names[name]} / spoken (95 % bootstrap over {total} lines) | "
            f"{ratio:.2f} ({low:.2f}–{high:.2f}) | |"
        )
    for name in ("sung", "spoken", "written", "lower"):
        hits = sum(line.identified[name] for line in lines)
        low, high = wilson_interval(hits, total)
        label = names.get(name, "the same lines spoken")
        rows.append(
            f"| lines identified in a closed set of each seed's lines ({closed} in all): "
            f"{label} | {_percent(hits, total)} of {total} "
            f"({100 * low:.0f}–{100 * high:.0f} %) | |"
        )
    return rows


def _percent(numerator: float, denominator: float) -> str:
    return f"{100.0 * numerator / denominator:.1f} %" if denominator else "n/a"


def format_run(run: VocalsRun, *, command: str) -> str:
    out = [
        "# Sung vocals",
        "",
        f"Command: `{command}`",
        "",
        f"{len(run.pieces)} pieces of {run.bars} bars (seeds "
        f"{', '.join(str(seed) for seed in run.seeds)}) composed in process (melody and harmony "
        "models, the lyric LM under the lyric service's constraints, each style and mood's "
        "palette), streamed in 4-bar segments with vocals and, side by side, without; "
        f"{run.seconds:.0f} s in all. Machine: {os.cpu_count()} cores, shared with other "
        "work (load averages beside each speed). Measures: `cantus.eval.vocals`.",
        "",
    ]
    for language in ("en", "zh"):
        chosen = [p for p in run.pieces if p.language == language]
        if not chosen:
            continue
        frames = sum(p.pitch_frames for p in chosen)
        within = sum(p.pitch_within for p in chosen)
        whole = sum(p.whole_frames for p in chosen)
        whole_within = sum(p.whole_within for p in chosen)
        errors = np.array([e for p in chosen for e in p.onset_errors])
        missed = sum(p.onsets_missed for p in chosen)
        name = {"en": "English", "zh": "Mandarin"}[language]
        out += [
            f"## {name}",
            "",
            "| measure | result | target |",
            "|---|---|---|",
            f"| F0 within 50 cents (voiced frames, note middles) | {_percent(within, frames)} "
            f"of {frames} | ≥ 90 % |",
            f"| F0 within 50 cents (voiced frames, whole notes, glides and consonants in) | "
            f"{_percent(whole_within, whole)} of {whole} | |",
        ]
        if len(errors):
            on_time = int(np.sum(np.abs(errors) <= ONSET_TOLERANCE_SECONDS))
            out.append(
                f"| vowel onset − note onset: within 40 ms | "
                f"{_percent(on_time, len(errors) + missed)}"
                f" of {len(errors) + missed} syllables ({missed} without a marked onset) |"
                " within 40 ms |"
            )
            out.append(
                f"| the same, of the syllables with a marked onset (a vowel joined legato to "
                f"the vowel before shows no dip to mark) | {_percent(on_time, len(errors))} of "
                f"{len(errors)} | |"
            )
            out.append(
                f"| vowel onset − note onset: median, 10th–90th percentile | "
                f"{1000 * np.median(errors):+.0f} ms, {1000 * np.percentile(errors, 10):+.0f}"
                f"…{1000 * np.percentile(errors, 90):+.0f} ms | |"
            )
        leads = np.array([lead for p in chosen for lead in p.leads]).reshape(-1, 2)
        if len(leads):
            ahead = _percent(int(np.sum(leads[:, 1] > 0.005)), len(leads))
            out.append(
                f"| syllables with onset consonants sung ahead of the note (their lead before "
                f"the onset): share, median lead, median spoken | {ahead} of {len(leads)}, "
                f"{1000 * np.median(leads[:, 1]):.0f} ms, {1000 * np.median(leads[:, 0]):.0f} ms"
                " | |"
            )
        ends = sum(p.phrase_ends for p in chosen)
        if ends:
            out.append(
                f"| lyric lines' ends followed by another line with a breath | "
                f"{_percent(sum(p.phrase_breaths for p in chosen), ends)} of {ends} | |"
            )
        if any(p.heard for p in chosen):
            out += _intelligibility_rows(chosen)
        over_tune = [p.voice_over_tune_lu for p in chosen if p.voice_over_tune_lu is not None]
        over_band = [p.voice_over_band_lu for p in chosen if p.voice_over_band_lu is not None]
        step_back = [p.tune_step_back_lu for p in chosen if p.tune_step_back_lu is not None]
        if over_tune and over_band and step_back:
            out += [
                "| the voice over the tune's instrument, each through its chain (LU): median, "
                f"least | {np.median(over_tune):+.1f}, {min(over_tune):+.1f} | > 0 |",
                "| the voice over the rest of the band (LU): median, least | "
                f"{np.median(over_band):+.1f}, {min(over_band):+.1f} | |",
                "| the tune's instrument under the voice against without vocals (LU): median | "
                f"{np.median(step_back):+.1f} | < 0 |",
            ]
        sung_seconds = sum(p.seconds for p in chosen)
        speeds: tuple[tuple[str, str, str], ...] = (
            ("CPU time", "segment_rtf_cpu", "rtf_cpu"),
            ("wall clock less the wait for a core", "segment_rtf_running", "rtf_running"),
            ("wall clock", "segment_rtf_wall", "rtf_wall"),
        )
        for label, per_segment, piece_rtf in speeds:
            segment_rtf = np.array([r for p in chosen for r in getattr(p, per_segment)])
            if not len(segment_rtf):
                continue
            spent = sum(p.seconds / getattr(p, piece_rtf) for p in chosen if getattr(p, piece_rtf))
            out.append(
                f"| RTF with vocals by {label}: per streamed 4-bar segment median, minimum "
                f"({len(segment_rtf)} segments); whole pieces ({sung_seconds:.0f} s of audio) | "
                f"{np.median(segment_rtf):.1f}, {segment_rtf.min():.1f}; "
                f"{sung_seconds / max(spent, 1e-9):.1f} | ≥ 5 |"
            )
        out += [
            "",
            "| piece | palette | meter | tempo | sung octave | seconds | LUFS (without vocals) "
            "| true peak dBTP | RTF wall (without vocals) | RTF CPU (without) | load 1/5/15 min |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for number, p in enumerate(chosen):
            out.append(
                f"| {number + 1} | {p.palette} | {p.meter} | {p.tempo_bpm:g} | "
                f"{p.octave_shift:+d} | {p.seconds:.1f} | "
                f"{p.lufs:.2f} ({p.lufs_without:.2f}; target {p.target_lufs:g}) | "
                f"{p.true_peak_dbtp:.2f} (≤ {p.ceiling_dbtp:g}) | "
                f"{p.rtf_wall:.1f} ({p.rtf_wall_without:.1f}) | "
                f"{p.rtf_cpu:.1f} ({p.rtf_cpu_without:.1f}) | "
                + "/".join(f"{x:.1f}" for x in p.load)
                + " |"
            )
        out += ["", "Lyrics sung:", ""]
        for number, p in enumerate(chosen):
            out.append(f"{number + 1}. " + " / ".join(p.lines))
        if chosen[0].recognised:
            out += ["", "Recognised (reference → sung → spoken), first piece:", ""]
            for reference, sung_words, spoken_words in chosen[0].recognised:
                out.append(f"* {reference} → *{sung_words}* → *{spoken_words}*")
        out.append("")
    if run.candidates:
        out += [
            "## Candidates (first English piece, its first two lines)",
            "",
            "| voice | F0 within 50 cents | word error rate | CPU s per audio s | note |",
            "|---|---|---|---|---|",
        ]
        for c in run.candidates:
            pitch = "n/a" if c.pitch_within is None else f"{100 * c.pitch_within:.0f} %"
            wer = "n/a" if c.word_error_rate is None else f"{100 * c.word_error_rate:.0f} %"
            speed = (
                "n/a" if c.seconds_per_audio_second is None else f"{c.seconds_per_audio_second:.2f}"
            )
            out.append(f"| {c.name} | {pitch} | {wer} | {speed} | {c.note} |")
        out.append("")
    return "\n".join(out) + "\n"
