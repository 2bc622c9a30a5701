"""A sung vocal stem: the lyrics' syllables sung on the melody's notes.

The voice is eSpeak NG (Debian ``espeak-ng``; English ``en-us``, Mandarin
``cmn-latn-pinyin``, both in its female variant ``f2``) speaking each syllable on its own,
resynthesised to the note's pitch and length by the WORLD vocoder (PyPI ``pyworld``):
WORLD splits the spoken syllable into F0, spectral envelope and aperiodicity (5 ms
frames); the frames are re-timed and the F0 replaced by the melody, then synthesised
again. Why this voice: ``docs/architecture.md``, "Sung lyrics".

How a syllable is sung on its note(s):

* **Phones.** English syllables are read from the whole word's CMUdict pronunciation
  (``hap-`` + ``py`` is HH AE1 P | IY0), split between vowels, and handed to eSpeak as
  phoneme input (``[[h'ap]]``); a word CMUdict lacks is spoken from its letters. Mandarin
  characters become pinyin with tone numbers (pypinyin, read per lyric line so phrases
  get their context's reading).
* **Parts of the syllable.** In the spoken syllable the *vowel* is the run of voiced
  frames whose level in the formant band (``VOWEL_BAND_HZ``) is within ``VOWEL_RANGE_DB``
  of the loudest; before it is the *lead* (onset consonants, voiced or not: a nasal or l
  too), after it the *coda*.
* **Timing.** The vowel starts on the note's onset; the lead is placed before it (so the
  vowel lands on the beat), squeezed when the previous note leaves it less room; its voiced
  frames are sung ``VOICED_LEAD_DB`` softer, on a legato previous note's pitch. The
  vowel is held (its middle stretched, its first and last ``TRANSITION_SECONDS`` kept, at
  a steady level: the spoken vowel's fade is made up, ``SUSTAIN_MAX_DB``) until the coda,
  which ends where the next syllable's lead begins, or at the note's end. A legato next
  syllable that starts on its vowel ("I am") is joined: the note runs on into it
  (``JOIN_LEAD_SECONDS``), an open syllable without the fade eSpeak ends a word with.
* **Melismas** (a note without a syllable right after a sung note, legato, in a lyric
  line): the vowel goes on, gliding to the new pitch, and the coda waits for the last note.
* **Breaths** at phrase ends: before a phrase that follows a rest or the end of a lyric
  line, where the gap has room, ``BREATH_SECONDS`` at most of band-passed noise, ending
  just before the lead. A lyric line's last note that runs into the next line (no rest)
  is cut short to make that room, as a singer catches a breath (``breath_cut``: at most
  ``CATCH_BREATH_SHARE`` of the note; a shorter note is sung through, legato).
* **Pitch.** The note's pitch, a ``GLIDE_SECONDS`` portamento from a legato previous note,
  and a vibrato (``VIBRATO_HZ``, ``VIBRATO_CENTS``) that fades in on notes held longer than
  ``VIBRATO_DELAY_SECONDS``.

Streaming: ``VocalTrack`` renders consecutive sample ranges of one piece, like the synth's
``SegmentRenderer``. Each syllable is synthesised as two independent pieces joined by a
short crossfade on the onset: the lead (depends on the note and the one before it) and
the vowel with coda (depends on the note and the one after it). A segment's renderer is
given the notes of its bars plus the first bar after them (``LOOKAHEAD_BARS``), which is
all it needs to place every piece that starts before its end; pieces are added to a
running buffer whose tail passes to the next segment. So segments join without a click,
and a piece rendered in segments is the same as rendered at once.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import io
import itertools
import math
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile

VOCAL_LANGUAGES = {"en": "en-us+f2", "zh": "cmn-latn-pinyin+f2"}
"""eSpeak NG voice (language and variant) per lyric language."""

ESPEAK_SPEED_WPM = 150
"""Speaking rate of the spoken syllables, words per minute (eSpeak's ``-s``)."""

FRAME_SECONDS = 0.005
"""WORLD analysis and synthesis frame period, seconds."""

VOWEL_RANGE_DB = 10.0
"""A voiced frame belongs to the vowel when its level in ``VOWEL_BAND_HZ`` (WORLD's spectral
envelope) is within this many dB of the syllable's loudest. Nasals and the voice bar of
b, d, g are as loud as the vowel over the whole spectrum (their energy is under 400 Hz) but
15–20 dB under it in this band: counted by broadband level they joined the vowel, were
stretched with it, and the vowel came up to 100 ms after the beat."""

VOWEL_BAND_HZ = (400.0, 3000.0)
"""The band of the first two formants, where a vowel is loud and a sonorant consonant not."""

APERIODICITY_STEP = 2
"""D4C's aperiodicity is analysed every this many frames (``FRAME_SECONDS``) and
interpolated between them."""

SILENCE_RANGE_DB = 40.0
"""Frames more than this many dB under the loudest frame are the silence around a syllable."""

TRANSITION_SECONDS = 0.03
"""The first and last this many seconds of a vowel (formant transitions) are not stretched."""

MAX_LEAD_SECONDS = 0.25
"""Longest lead (onset consonants) sung ahead of the beat, seconds."""

LEAD_SHARE = 0.4
"""A lead may take at most this share of the previous sung note (its vowel must be heard)."""

VOICED_LEAD_DB = -6.0
"""Level of the lead's voiced frames (m, n, l, w, the voice bar of b, d, g) against the
spoken syllable's; voiceless consonants (s, t, k, f, h) keep theirs. Sung, a sonorant held
at the vowel's level before the beat sounds like the vowel come early (and the timing
eval's level-based vowel onset reads it so); the vowel carries the note."""

CROSSFADE_SECONDS = 0.008
"""Crossfade between a syllable's lead and its vowel, and between melisma notes (doubled)."""

GLIDE_SECONDS = 0.04
"""Portamento from a legato previous note's pitch, seconds."""

VIBRATO_HZ = 5.5
VIBRATO_CENTS = 22.0
"""Vibrato rate and depth (peak, cents): within the 50-cent band the pitch eval allows."""

VIBRATO_DELAY_SECONDS = 0.25
"""Vibrato starts this long into a note and fades in over as long again."""

JOIN_LEAD_SECONDS = 0.03
"""A legato note's vowel (or closing consonant) runs on into the next syllable, crossfading
into it, when that syllable's lead is shorter than this (it starts on its vowel: "I am"),
instead of fading out before its onset and leaving a gap (0: never)."""

LEGATO_GAP_SECONDS = 0.06
"""Notes closer than this are sung legato (no breath, a glide, a melisma may continue)."""

BREATH_SECONDS = 0.35
BREATH_MIN_GAP_SECONDS = 0.22
BREATH_LEVEL = 0.016
"""A breath's longest length, the gap it needs and its peak level (the vowels' RMS is 0.08)."""

BREATH_LEAD_GAP_SECONDS = 0.05
"""Silence between a breath's end and the lead after it."""

CATCH_BREATH_SHARE = 0.6
"""A lyric line's last note gives up at most this share of its length for a breath."""

CODA_MAX_SECONDS = 0.12
CODA_SHARE = 0.4
"""A coda (closing consonants) inside a lyric line lasts at most ``CODA_MAX_SECONDS`` (a
line's last note keeps its whole spoken coda) and at most ``CODA_SHARE`` of what is sung of
the note."""

SUSTAIN_MAX_DB = 9.0
"""A held vowel is sung at the level it reaches, not fading as the spoken one does: each
stretched frame is raised to the vowel's loudest level less ``SUSTAIN_BELOW_DB`` (by at
most this many dB; 0: the spoken vowel's own contour)."""

SUSTAIN_BELOW_DB = 1.0
SUSTAIN_ATTACK_SECONDS = 0.03
"""The vowel's first this many seconds rise from its spoken level to the held one."""

VOWEL_LEVEL = 0.08
"""RMS every syllable's vowel is brought to before note velocity and the section's level
(-22 dBFS, where the synth's stems sit: the mix chain's compressor then works on peaks)."""

LOOKAHEAD_BARS = 1
"""Bars after a segment whose notes its vocals need (leads that start before the bar line)."""

VOICE_RANGES = {"en": (50, 67), "zh": (50, 67)}
"""The comfortable sung range (MIDI, inclusive) of each language's voice. eSpeak's ``f2``
speaks at 142–220 Hz (MIDI 49–57), and WORLD keeps the spectral envelope it measured
there: the further the sung F0 rises above it, the fewer harmonics sample the formants,
and the vowels blur into one another (at a soprano's written pitch 12.5 % of the eval's
lines were identified, an octave lower 50 %). So, as a singer does, the voice sings the
melody in the octave that puts it in its range, D3–G4, around and just above its speaking
pitch, and the instruments keep the written pitch (``octave_shift``)."""


class VoiceUnavailable(RuntimeError):
    """eSpeak NG or WORLD is missing; the message says what to install."""


@dataclass(frozen=True)
class SungNote:
    """One melody note as the voice sings it. Times in seconds from the start of the piece;
    ``pitch`` MIDI; ``velocity`` 1..127. ``phones``: what eSpeak speaks for the syllable
    (``[[h'ap]]``, ``hai3``, or a word's letters) — for a melisma note, its syllable's.
    ``continues``: a melisma note (no syllable of its own). ``phrase_end``: the last note of a
    lyric line."""

    onset: float
    end: float
    pitch: int
    velocity: int
    phones: str
    continues: bool = False
    phrase_end: bool = False
    level_db: float = 0.0
    """The planned level of the note's section (``segment_level_db``): the voice sings the
    form's dynamics as the band plays them, so the streaming master hears them as planned."""

    @property
    def duration(self) -> float:
        return self.end - self.onset


# --- WORLD ---------------------------------------------------------------------------------


@functools.cache
def world() -> ModuleType:
    """The pyworld extension module. pyworld 0.3.5's ``__init__`` imports
    ``pkg_resources`` only to read its own version, and setuptools 81 dropped that module;
    the compiled extension itself needs nothing, so it is loaded directly when the package
    import fails for that reason."""
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            raise VoiceUnavailable("pyworld is not installed (pip install pyworld)") from error
    spec = importlib.util.find_spec("pyworld")
    if spec is None or not spec.submodule_search_locations:
        raise VoiceUnavailable("pyworld is not installed (pip install pyworld)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("pyworld*.so"))
    if not found:
        raise VoiceUnavailable(f"pyworld's extension is missing from {folder}")
    loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(found[0]))
    module_spec = importlib.util.spec_from_loader("pyworld.pyworld", loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    return module


# --- the spoken syllable --------------------------------------------------------------------

_ESPEAK_LOCK = threading.Lock()


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise VoiceUnavailable("espeak-ng is not installed (Debian package espeak-ng)")
    return found


def speak(phones: str, language: str) -> tuple[np.ndarray, int]:
    """``phones`` spoken by eSpeak NG in ``language``'s voice: mono float64 and its rate."""
    voice = VOCAL_LANGUAGES[language]
    result = subprocess.run(
        [espeak_binary(), "-v", voice, "-s", str(ESPEAK_SPEED_WPM), "--stdout", phones],
        capture_output=True,
        check=True,
        timeout=20,
    )
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return audio, rate


@dataclass(frozen=True)
class SpokenSyllable:
    """WORLD's analysis of one spoken syllable (``FRAME_SECONDS`` frames): F0 (Hz, 0 =
    unvoiced), spectral envelope and aperiodicity ``[frames, bins]``, the frame ranges of
    lead ``[start, vowel_start)``, vowel ``[vowel_start, vowel_end)`` and coda
    ``[vowel_end, end)``, and the gain that brings the vowel to ``VOWEL_LEVEL``."""

    f0: np.ndarray
    envelope: np.ndarray
    aperiodicity: np.ndarray
    sample_rate: int
    start: int
    vowel_start: int
    vowel_end: int
    end: int
    gain: float
    level_db: np.ndarray | None = None
    """Each frame's level (dB) from the spectral envelope: how loud the voice is there."""

    @property
    def lead_seconds(self) -> float:
        return (self.vowel_start - self.start) * FRAME_SECONDS

    @property
    def coda_seconds(self) -> float:
        return (self.end - self.vowel_end) * FRAME_SECONDS


@functools.lru_cache(maxsize=512)
def spoken_syllable(phones: str, language: str) -> SpokenSyllable:
    """eSpeak's ``phones`` analysed by WORLD and split into lead, vowel and coda (cached:
    a chorus sings its syllables again; about 0.25 MB a syllable, as float32)."""
    pw = world()
    with _ESPEAK_LOCK:
        audio, rate = speak(phones, language)
    # eSpeak pads a word with silence: analyse only what is heard (and 20 ms around it)
    heard = np.flatnonzero(np.abs(audio) > 1e-3 * max(float(np.abs(audio).max()), 1e-9))
    if len(heard):
        margin = rate // 50
        audio = audio[max(0, heard[0] - margin) : heard[-1] + margin]
    if len(audio) < rate // 50:
        audio = np.concatenate([audio, np.zeros(rate // 50)])
    f0, times = pw.dio(
        audio, rate, frame_period=FRAME_SECONDS * 1000, f0_floor=60.0, f0_ceil=800.0, speed=2
    )
    f0 = pw.stonemask(audio, f0, times, rate)
    envelope = pw.cheaptrick(audio, f0, times, rate)
    aperiodicity = _aperiodicity(pw, audio, f0, times, rate)
    hop = rate * FRAME_SECONDS
    centres = np.clip(np.round(times * rate).astype(int), 0, len(audio) - 1)
    half = int(hop)
    energy = np.array([np.mean(audio[max(0, c - half) : c + half] ** 2) + 1e-12 for c in centres])
    level = 10.0 * np.log10(energy)
    peak = level.max()
    audible = np.flatnonzero(level > peak - SILENCE_RANGE_DB)
    start, end = int(audible[0]), int(audible[-1]) + 1
    voiced = f0 > 0
    band = vowel_band_db(envelope, rate)
    loud = voiced & (band > band[start:end].max() - VOWEL_RANGE_DB)
    loud[:start] = loud[end:] = False
    if not loud.any():  # nothing voiced (a whispered fragment): the loudest frames
        loud = level > peak - VOWEL_RANGE_DB
    vowel_frames = np.flatnonzero(loud)
    vowel_start, vowel_end = int(vowel_frames[0]), int(vowel_frames[-1]) + 1
    vowel_start = max(vowel_start, start)
    vowel_end = min(max(vowel_end, vowel_start + 1), end)
    rms = math.sqrt(float(np.mean(energy[vowel_start:vowel_end])))
    return SpokenSyllable(
        f0=f0,
        envelope=envelope.astype(np.float32),
        aperiodicity=aperiodicity.astype(np.float32),
        sample_rate=rate,
        start=start,
        vowel_start=vowel_start,
        vowel_end=vowel_end,
        end=end,
        gain=VOWEL_LEVEL / max(rms, 1e-6),
        level_db=(10.0 * np.log10(envelope.sum(axis=1) + 1e-16)).astype(np.float32),
    )


def _aperiodicity(pw, audio: np.ndarray, f0: np.ndarray, times: np.ndarray, rate: int):
    """WORLD's D4C aperiodicity ``[frames, bins]`` analysed every ``APERIODICITY_STEP``-th
    frame and interpolated between (the analysis's dearest step: 47 of 90 ms of CPU for a
    0.7 s syllable; aperiodicity changes slowly, as voicing does)."""
    step = max(1, APERIODICITY_STEP)
    picked = np.arange(0, len(times), step)
    if picked[-1] != len(times) - 1:
        picked = np.append(picked, len(times) - 1)
    coarse = pw.d4c(
        audio, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), rate
    )
    if step == 1:
        return coarse
    position = np.interp(np.arange(len(times)), picked, np.arange(len(picked)))
    low = np.minimum(position.astype(int), len(picked) - 1)
    high = np.minimum(low + 1, len(picked) - 1)
    weight = (position - low)[:, None]
    return coarse[low] * (1.0 - weight) + coarse[high] * weight


def vowel_band_db(envelope: np.ndarray, rate: int) -> np.ndarray:
    """Level (dB) of each frame of a WORLD spectral envelope ``[frames, bins]`` in
    ``VOWEL_BAND_HZ``."""
    bins = envelope.shape[1]
    freqs = np.arange(bins) * (rate / 2.0) / (bins - 1)
    inside = (freqs >= VOWEL_BAND_HZ[0]) & (freqs < VOWEL_BAND_HZ[1])
    return 10.0 * np.log10(envelope[:, inside].sum(axis=1) + 1e-16)


def octave_shift(pitches: Sequence[int], language: str) -> int:
    """Semitones, a multiple of 12, by which the voice of ``language`` sings a melody whose
    sung notes have ``pitches``: the octave that brings their median nearest the middle
    of ``VOICE_RANGES`` (the written octave on a tie; 0 without notes)."""
    if not len(pitches):
        return 0
    low, high = VOICE_RANGES[language]
    middle = (low + high) / 2.0
    median = float(np.median(pitches))
    nearest = round((middle - median) / 12.0)
    octaves = (nearest - 1, nearest, nearest + 1)
    return 12 * min(octaves, key=lambda k: (abs(median + 12 * k - middle), abs(k)))


# --- placing syllables on notes -------------------------------------------------------------


def legato(before: SungNote | None, note: SungNote) -> bool:
    return before is not None and note.onset - before.end < LEGATO_GAP_SECONDS


def lead_seconds(before: SungNote | None, note: SungNote, syllable: SpokenSyllable) -> float:
    """How long ``note``'s lead sounds before its onset: the spoken lead, at most
    ``MAX_LEAD_SECONDS``, and after a legato note at most ``LEAD_SHARE`` of it."""
    if note.continues:
        return 0.0
    room = MAX_LEAD_SECONDS
    if before is not None:
        if legato(before, note):
            room = min(room, LEAD_SHARE * before.duration)
        else:
            room = min(room, max(0.0, note.onset - before.end))
    room = min(room, max(0.0, note.onset))
    return min(syllable.lead_seconds, room)


def breath_cut(before: SungNote | None, note: SungNote, syllable: SpokenSyllable) -> float:
    """Seconds the end of ``before``, a lyric line's last note, is cut short so that a
    breath fits between it and ``note``'s lead (0: there is room already, ``before`` ends
    no line, or it is too short to give ``CATCH_BREATH_SHARE`` of itself)."""
    if before is None or not before.phrase_end or note.continues:
        return 0.0
    lead = min(syllable.lead_seconds, MAX_LEAD_SECONDS, max(0.0, note.onset))
    # a frame over the least gap: the lead's start is rounded to frames
    cut = BREATH_MIN_GAP_SECONDS + FRAME_SECONDS - (note.onset - lead - before.end)
    if cut <= 0.0 or cut > CATCH_BREATH_SHARE * before.duration:
        return 0.0
    return cut


def sung_before(before: SungNote | None, note: SungNote, syllable: SpokenSyllable):
    """``before`` as sung ahead of ``note``: its end cut for a breath (``breath_cut``)."""
    cut = breath_cut(before, note, syllable)
    return before if before is None or cut == 0.0 else replace(before, end=before.end - cut)


def breath_span(
    before: SungNote | None, note: SungNote, lead_start: float
) -> tuple[float, float] | None:
    """Where a breath is taken before ``note`` (start, seconds), whose lead starts at
    ``lead_start``; ``before`` as sung (``sung_before``). None: no breath (a melisma, a
    legato note within a line, or too little room)."""
    if note.continues or (before is not None and not before.phrase_end and legato(before, note)):
        return None
    gap = lead_start - (before.end if before is not None else 0.0)
    seconds = min(BREATH_SECONDS, gap - 2 * BREATH_LEAD_GAP_SECONDS)
    if gap < BREATH_MIN_GAP_SECONDS or seconds <= 0.1:
        return None
    return lead_start - BREATH_LEAD_GAP_SECONDS - seconds, seconds


def phrase_breaths(notes: Sequence[SungNote], language: str) -> tuple[int, int]:
    """(lyric lines' ends followed by another sung note, those with a breath before it):
    the breaths ``VocalTrack`` takes at phrase ends."""
    ordered = sorted(notes, key=lambda n: n.onset)
    ends = taken = 0
    for before, note in itertools.pairwise(ordered):
        if not before.phrase_end or note.continues:
            continue
        syllable = spoken_syllable(note.phones, language)
        sung = sung_before(before, note, syllable)
        lead = lead_piece(sung, note, syllable)
        ends += 1
        taken += breath_span(sung, note, note.onset if lead is None else lead.start) is not None
    return ends, taken


def consonant_leads(notes: Sequence[SungNote], language: str) -> list[tuple[float, float]]:
    """(spoken lead, lead sung before the onset), seconds, of each sung syllable that
    starts with consonants (a spoken lead over 10 ms): ``VocalTrack`` sings the lead before
    the note's onset so that the vowel lands on it."""
    ordered = sorted(notes, key=lambda n: n.onset)
    leads = []
    for before, note in zip([None, *ordered[:-1]], ordered, strict=True):
        if note.continues:
            continue
        syllable = spoken_syllable(note.phones, language)
        if syllable.lead_seconds > 0.01:
            sung = sung_before(before, note, syllable)
            leads.append((syllable.lead_seconds, lead_seconds(sung, note, syllable)))
    return leads


@dataclass(frozen=True)
class _Piece:
    """Frames to synthesise: source frame (fractional) and F0 per output frame, starting at
    ``start`` seconds, with fades (seconds) at either end."""

    start: float
    source: np.ndarray
    f0: np.ndarray
    fade_in: float
    fade_out: float
    gain_db: np.ndarray | None = None
    """Level per output frame (dB), or none."""


def _pitch_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def _sung_f0(
    times: np.ndarray, note: SungNote, before: SungNote | None, since_onset: np.ndarray
) -> np.ndarray:
    """F0 (Hz) at ``times`` seconds of a note: its pitch, the glide from a legato previous
    note's pitch, and the delayed vibrato. ``since_onset``: seconds since the note's onset."""
    semitones = np.full(len(times), float(note.pitch))
    if legato(before, note) and before is not None and before.pitch != note.pitch:
        glide = np.clip(since_onset / GLIDE_SECONDS, 0.0, 1.0)
        semitones = before.pitch + (note.pitch - before.pitch) * (0.5 - 0.5 * np.cos(np.pi * glide))
    depth = np.clip((since_onset - VIBRATO_DELAY_SECONDS) / VIBRATO_DELAY_SECONDS, 0.0, 1.0)
    vibrato = depth * (VIBRATO_CENTS / 100.0) * np.sin(2 * np.pi * VIBRATO_HZ * since_onset)
    return 440.0 * 2.0 ** ((semitones + vibrato - 69) / 12.0)


def _frames(seconds: float) -> int:
    return max(1, round(seconds / FRAME_SECONDS))


def _stretch(first: int, last: int, count: int) -> np.ndarray:
    """``count`` source positions over frames ``[first, last)``: the ends at their own speed
    (``TRANSITION_SECONDS``), the middle stretched; squeezed evenly when it is too short."""
    length = last - first
    edge = min(_frames(TRANSITION_SECONDS), length // 2)
    if count <= length or length - 2 * edge <= 0:
        return first + np.linspace(0.0, max(length - 1, 0), count)
    head = first + np.arange(edge, dtype=float)
    tail = (last - edge) + np.arange(edge, dtype=float)
    middle = np.linspace(first + edge, last - edge - 1, count - 2 * edge)
    return np.concatenate([head, middle, tail])


def lead_piece(before: SungNote | None, note: SungNote, syllable: SpokenSyllable) -> _Piece | None:
    """The lead of ``note``'s syllable: ends a crossfade after the onset."""
    seconds = lead_seconds(before, note, syllable)
    if seconds <= 0.0:
        return None
    frames = _frames(seconds)
    lead = syllable.vowel_start - syllable.start
    source = syllable.start + np.linspace(0.0, lead, frames, endpoint=False)
    over = _frames(CROSSFADE_SECONDS)
    source = np.concatenate([source, syllable.vowel_start + np.arange(over, dtype=float)])
    start = note.onset - frames * FRAME_SECONDS
    voiced = syllable.f0[np.minimum(np.round(source).astype(int), len(syllable.f0) - 1)] > 0
    # a voiced consonant is sung on the pitch it comes from: after a legato note on that
    # note's (the lead sounds inside it, and the glide to the new pitch starts on the vowel,
    # at the onset), else already on the note's own
    pitch = before.pitch if before is not None and legato(before, note) else note.pitch
    f0 = np.where(voiced, _pitch_hz(pitch), 0.0)
    gain_db = np.where(voiced, VOICED_LEAD_DB, 0.0)
    gain_db[frames:] = 0.0  # the crossfade into the vowel
    return _Piece(start, source, f0, fade_in=0.005, fade_out=CROSSFADE_SECONDS, gain_db=gain_db)


def vowel_piece(
    before: SungNote | None,
    note: SungNote,
    after: SungNote | None,
    syllable: SpokenSyllable,
    after_syllable: SpokenSyllable | None,
) -> _Piece:
    """The vowel (and, unless a melisma note follows, the coda) of ``note``'s syllable,
    from the onset (fading in under the end of the lead or of the previous melisma note)
    to the coda's end. It never starts before the onset, so a segment renders it only if
    the note is its own."""
    overlap = CROSSFADE_SECONDS if not note.continues else 2 * CROSSFADE_SECONDS
    start = note.onset
    melisma_follows = after is not None and after.continues and legato(note, after)
    joins = False
    if melisma_follows:
        end, coda = note.end + 2 * CROSSFADE_SECONDS, 0
    else:
        end = note.end
        cut = (
            0.0
            if after is None or after_syllable is None
            else breath_cut(note, after, after_syllable)
        )
        if cut > 0.0:  # a breath is caught before the next line
            end -= cut
        elif after is not None and after_syllable is not None and legato(note, after):
            lead = lead_seconds(note, after, after_syllable)
            end = min(end, after.onset - lead)
            # a syllable that starts on its vowel ("I am") is joined, not started anew
            joins = JOIN_LEAD_SECONDS > 0.0 and lead < JOIN_LEAD_SECONDS
            if joins:
                end += 2 * CROSSFADE_SECONDS
        end = max(end, note.onset + 2 * FRAME_SECONDS)
        coda = min(syllable.end - syllable.vowel_end, _frames(CODA_SHARE * (end - note.onset)))
        if not note.phrase_end:
            coda = min(coda, _frames(CODA_MAX_SECONDS))
        if joins and open_syllable(note.phones):  # a spoken open syllable's fade: not sung
            coda = 0
    total = max(_frames(end - start), coda + 2)
    vowel = _stretch(syllable.vowel_start, syllable.vowel_end, total - coda)
    tail = syllable.vowel_end + np.linspace(
        0.0, syllable.end - syllable.vowel_end, coda, endpoint=False
    )
    source = np.concatenate([vowel, tail])
    times = start + np.arange(len(source)) * FRAME_SECONDS
    f0 = _sung_f0(times, note, before, np.maximum(times - note.onset, 0.0))
    in_coda = np.arange(len(source)) >= len(vowel)
    coda_voiced = syllable.f0[np.minimum(np.round(source).astype(int), len(syllable.f0) - 1)] > 0
    f0 = np.where(in_coda & ~coda_voiced, 0.0, f0)
    fade_out = 2 * CROSSFADE_SECONDS if melisma_follows or joins else 0.02
    return _Piece(
        start,
        source,
        f0,
        fade_in=overlap,
        fade_out=fade_out,
        gain_db=_sustain_db(syllable, vowel, len(source)),
    )


def open_syllable(phones: str) -> bool:
    """Whether eSpeak input ``phones`` (``[[h'aI]]``, ``hai3``) ends on its vowel: what
    follows the vowel when it is spoken alone is then the word's fading tail, not a
    consonant."""
    core = phones.strip("[]").rstrip("012345:'")
    return bool(core) and core[-1] in "aeiouv@3AEIOUVy"


def _sustain_db(syllable: SpokenSyllable, vowel: np.ndarray, frames: int) -> np.ndarray | None:
    """Gain (dB) per output frame that holds a stretched vowel (source positions ``vowel``)
    at its loudest level less ``SUSTAIN_BELOW_DB`` (``SUSTAIN_MAX_DB``): raised from the
    end of its onset transition on, the coda after it as spoken. None: no change."""
    if SUSTAIN_MAX_DB <= 0.0 or syllable.level_db is None or not len(vowel):
        return None
    level = syllable.level_db
    reference = float(level[syllable.vowel_start : syllable.vowel_end].max()) - SUSTAIN_BELOW_DB
    heard = np.interp(vowel, np.arange(len(level)), level)
    raised = np.clip(reference - heard, 0.0, SUSTAIN_MAX_DB)
    onset = min(len(vowel), _frames(SUSTAIN_ATTACK_SECONDS))
    raised[:onset] *= np.linspace(0.0, 1.0, onset)  # the attack as spoken
    return np.concatenate([raised, np.zeros(frames - len(vowel))])


def _synthesise(piece: _Piece, syllable: SpokenSyllable, sample_rate: int, scale: float):
    """A piece's audio at ``sample_rate``: mono float64, starting at ``piece.start``."""
    pw = world()
    index = np.clip(piece.source, 0, len(syllable.f0) - 1)
    low = np.floor(index).astype(int)
    high = np.minimum(low + 1, len(syllable.f0) - 1)
    weight = (index - low)[:, None]
    envelope = np.exp(
        np.log(syllable.envelope[low] + 1e-16) * (1 - weight)
        + np.log(syllable.envelope[high] + 1e-16) * weight
    )
    aperiodicity = syllable.aperiodicity[low] * (1 - weight) + syllable.aperiodicity[high] * weight
    audio = pw.synthesize(
        np.ascontiguousarray(piece.f0),
        np.ascontiguousarray(envelope),
        np.ascontiguousarray(aperiodicity),
        syllable.sample_rate,
        FRAME_SECONDS * 1000,
    )
    if syllable.sample_rate != sample_rate:
        divisor = math.gcd(sample_rate, syllable.sample_rate)
        from scipy.signal import resample_poly  # not at import: the gateway needs no scipy

        audio = resample_poly(audio, sample_rate // divisor, syllable.sample_rate // divisor)
    length = round(len(piece.source) * FRAME_SECONDS * sample_rate)
    audio = np.pad(audio, (0, max(0, length - len(audio))))[:length] * (syllable.gain * scale)
    if piece.gain_db is not None and length:
        frame_times = (np.arange(len(piece.gain_db)) + 0.5) * FRAME_SECONDS
        sample_times = np.arange(length) / sample_rate
        audio *= 10.0 ** (np.interp(sample_times, frame_times, piece.gain_db) / 20.0)
    for seconds, ramp in ((piece.fade_in, slice(None)), (piece.fade_out, slice(None, None, -1))):
        samples = min(len(audio), round(seconds * sample_rate))
        if samples:
            window = np.sin(np.linspace(0.0, np.pi / 2, samples)) ** 2
            audio[ramp][:samples] *= window
    return audio


def breath(start: float, seconds: float, sample_rate: int) -> np.ndarray:
    """An in-breath: noise band-passed to 600–4000 Hz under a rise-and-fall envelope, seeded
    by its start sample (the same breath in segments as at once)."""
    samples = max(1, round(seconds * sample_rate))
    rng = np.random.default_rng(round(start * sample_rate))
    from scipy.signal import butter, sosfilt

    sos = butter(2, [600.0, 4000.0], btype="bandpass", fs=sample_rate, output="sos")
    noise = sosfilt(sos, rng.standard_normal(samples + 256))[256:]
    noise /= max(float(np.abs(noise).max()), 1e-9)
    envelope = np.sin(np.linspace(0.0, np.pi, samples)) ** 1.5
    return noise * envelope * BREATH_LEVEL


# --- the stem --------------------------------------------------------------------------------


class VocalTrack:
    """One piece's vocal stem, rendered in consecutive sample ranges (see the module
    docstring). ``render_until(end_sample, notes)`` returns mono float32 samples from where
    the last call ended to ``end_sample``; ``notes`` are the piece's sung notes known so
    far, at least those of the range's bars and of ``LOOKAHEAD_BARS`` bars after it."""

    def __init__(self, language: str, sample_rate: int = 44100) -> None:
        if language not in VOCAL_LANGUAGES:
            raise ValueError(
                f"no singing voice for language {language!r} (have {sorted(VOCAL_LANGUAGES)})"
            )
        espeak_binary()
        world()
        self.language = language
        self.sample_rate = sample_rate
        self._buffer = np.zeros(0)
        self._emitted = 0
        self._done: set[tuple[str, int]] = set()

    def _add(self, start_sample: int, audio: np.ndarray) -> None:
        offset = start_sample - self._emitted
        if offset < 0:  # before what was already handed out (no lookahead was given)
            audio, offset = audio[-offset:], 0
        needed = offset + len(audio)
        if needed > len(self._buffer):
            self._buffer = np.pad(self._buffer, (0, needed - len(self._buffer)))
        self._buffer[offset:needed] += audio

    def render_until(self, end_sample: int, notes: Sequence[SungNote]) -> np.ndarray:
        ordered = sorted(notes, key=lambda n: n.onset)
        end_seconds = end_sample / self.sample_rate
        for index, note in enumerate(ordered):
            before = ordered[index - 1] if index else None
            after = ordered[index + 1] if index + 1 < len(ordered) else None
            key = round(note.onset * self.sample_rate)
            if (
                note.onset - MAX_LEAD_SECONDS - BREATH_LEAD_GAP_SECONDS - BREATH_SECONDS
                > end_seconds
            ):
                break
            syllable = spoken_syllable(note.phones, self.language)
            scale = (note.velocity / 100.0) ** 0.5 * 10.0 ** (note.level_db / 20.0)
            before = sung_before(before, note, syllable)  # cut short for a breath
            lead = lead_piece(before, note, syllable)
            lead_start = note.onset if lead is None else lead.start
            if ("lead", key) not in self._done and lead_start < end_seconds:
                self._done.add(("lead", key))
                if lead is not None:
                    audio = _synthesise(lead, syllable, self.sample_rate, scale)
                    self._add(round(lead.start * self.sample_rate), audio)
            taken = breath_span(before, note, lead_start)
            # from its own start: a breath may begin in the segment before its lead's
            if taken is not None and ("breath", key) not in self._done and taken[0] < end_seconds:
                self._done.add(("breath", key))
                begin, seconds = taken
                self._add(round(begin * self.sample_rate), breath(begin, seconds, self.sample_rate))
            if ("vowel", key) not in self._done and note.onset < end_seconds:
                self._done.add(("vowel", key))
                after_syllable = (
                    None if after is None else spoken_syllable(after.phones, self.language)
                )
                piece = vowel_piece(before, note, after, syllable, after_syllable)
                audio = _synthesise(piece, syllable, self.sample_rate, scale)
                self._add(round(piece.start * self.sample_rate), audio)
        count = max(0, end_sample - self._emitted)
        out = np.zeros(count)
        available = min(count, len(self._buffer))
        out[:available] = self._buffer[:available]
        self._buffer = self._buffer[available:]
        self._emitted += count
        return out.astype(np.float32)

    def finish(self, samples: int) -> np.ndarray:
        """The last ``samples`` (the piece's release tail): whatever rings on."""
        return self.render_until(self._emitted + samples, [])


def render_vocals(notes: Sequence[SungNote], language: str, samples: int, sample_rate: int):
    """A whole piece's vocal stem in one call: mono float32, ``samples`` long."""
    return VocalTrack(language, sample_rate).render_until(samples, notes)


# --- phones -----------------------------------------------------------------------------------

_ARPABET_TO_ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E",
    "ER": "3:", "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U",
    "UW": "u:", "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h",
    "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r",
    "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "Z",
}  # fmt: skip
"""CMUdict (ARPAbet) phones to eSpeak NG's English phoneme mnemonics."""

_UNSTRESSED = {"AH": "@", "ER": "3"}
"""Reduced vowels of unstressed syllables (schwa, r-coloured schwa)."""


def arpabet_syllables(phones: str) -> list[list[str]]:
    """A CMUdict pronunciation split into syllables: one vowel each; between two vowels a
    single consonant starts the next syllable, of more the first closes the previous one."""
    tokens = phones.split()
    vowels = [i for i, token in enumerate(tokens) if token[-1].isdigit()]
    if not vowels:
        return [tokens]
    cuts = []
    for left, right in itertools.pairwise(vowels):
        consonants = right - left - 1
        # NG never starts an English syllable: "long-ing" is L AO NG | IH NG
        single_ends = consonants == 1 and tokens[left + 1] == "NG"
        cuts.append(
            left + 1 if consonants == 0 or (consonants == 1 and not single_ends) else left + 2
        )
    bounds = [0, *cuts, len(tokens)]
    return [tokens[a:b] for a, b in itertools.pairwise(bounds)]


def espeak_phonemes(syllable: list[str]) -> str:
    """One ARPAbet syllable as eSpeak phoneme input, stressed (it is sung), e.g. ``[[h'ap]]``."""
    out = []
    for token in syllable:
        base, stress = token.rstrip("012"), token[len(token.rstrip("012")) :]
        if stress:
            vowel = _UNSTRESSED.get(base, _ARPABET_TO_ESPEAK[base]) if stress == "0" else None
            out.append("'" + (vowel or _ARPABET_TO_ESPEAK[base]))
        else:
            out.append(_ARPABET_TO_ESPEAK.get(base, ""))
    return "[[" + "".join(out) + "]]"


def english_word_phones(word_syllables: list[str]) -> list[str]:
    """eSpeak input for each sung piece of one English word (``["hap-", "py"]``): its
    CMUdict syllables when the count matches, else each piece's letters."""
    import pronouncing

    pieces = [s.rstrip("-").strip() for s in word_syllables]
    word = "".join(pieces).lower()
    letters = "".join(c for c in word if c.isalpha() or c == "'")
    for phones in pronouncing.phones_for_word(letters):
        split = arpabet_syllables(phones)
        if len(split) == len(pieces):
            return [espeak_phonemes(s) for s in split]
    return [piece if any(c.isalpha() for c in piece) else "a" for piece in pieces]


def mandarin_phones(characters: list[str]) -> list[str]:
    """Pinyin with tone numbers for each sung character, read in context (pypinyin)."""
    from pypinyin import Style, lazy_pinyin

    readings = lazy_pinyin(characters, style=Style.TONE3, neutral_tone_with_five=True)
    return [r if any(c.isalpha() for c in r) else "a" for r in readings]


def syllable_phones(texts: list[str], language: str) -> list[str]:
    """eSpeak input for consecutive sung syllable texts (karaoke form, ``"hap-"``,
    ``"py"``): English words are put together from their pieces; a word still open at
    the end of ``texts`` is read from its letters."""
    if language == "zh":
        return mandarin_phones(texts)
    out: list[str] = []
    word: list[str] = []
    for text in texts:
        word.append(text)
        if not text.endswith("-"):
            out.extend(english_word_phones(word))
            word = []
    if word:
        out.extend(w.rstrip("-") or "a" for w in word)
    return out
