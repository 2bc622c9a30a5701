"""Audio synthesis of a piece's tracks with FluidSynth and a General MIDI SoundFont.

Output is float32 stereo at ``sample_rate`` (44 100 Hz by default), shaped
``[samples, 2]``, with one *stem* per track name (``melody``, ``chords``, ``bass``,
``drums``) so the mixer can treat each part on its own. FluidSynth's own reverb and
chorus are switched off: reverb belongs to the mix (``cantus.render.mix``).

Streaming: the render service publishes audio a few bars at a time, so
``SegmentRenderer`` keeps ONE synthesizer alive for the whole piece and renders
consecutive tick ranges from it. Notes that ring across a segment boundary keep
sounding, and concatenating the segments gives exactly (bit for bit) the audio of
rendering the whole piece at once (``render_stems``/``render_tracks`` are that
one-shot render). Two rules make this exact:

* FluidSynth applies MIDI events only between its 64-sample blocks, so every event is
  placed at the first block boundary at or after its exact sample time (at most
  1.45 ms late at 44.1 kHz); a segment boundary therefore never moves an event.
* Audio is always synthesised in whole blocks; samples rendered past the end of a
  segment are kept and handed out first in the next segment.

Needs the Debian packages ``libfluidsynth3`` and a GM SoundFont (``fluid-soundfont-gm``,
preferred, or ``timgm6mb-soundfont``) and the PyPI package ``pyfluidsynth``.
"""

from __future__ import annotations

import ctypes
import heapq
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cantus.music.notes import TICKS_PER_QUARTER, Track
from cantus.render.balance import trim_db, volume_for_trim
from cantus.render.tempo import TempoMap

SAMPLE_RATE = 44100
"""Default output sample rate, samples per second."""

BLOCK_SAMPLES = 64
"""FluidSynth's internal block (``FLUID_BUFSIZE``): events take effect on these boundaries."""

DRUM_CHANNEL = 9
"""General MIDI percussion channel (0-based)."""

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))
"""Where Debian's SoundFont packages install ``.sf2`` files."""

PREFERRED_SOUNDFONTS = ("FluidR3_GM.sf2", "TimGM6mb.sf2", "default-GM.sf2")
"""In order of preference. FluidR3 (``fluid-soundfont-gm``, 142 MiB) sounds better and
renders faster than TimGM6mb (``timgm6mb-soundfont``, 6 MiB) on our arrangements, and
renders twice as fast as MuseScore General (``musescore-general-soundfont``, not installed),
with a larger melody margin in most palettes (docs/results/arrangement.md)."""

SOUNDFONT_ENV = "CANTUS_SOUNDFONT"
"""Environment variable naming an explicit ``.sf2`` file, checked first."""

SYNTH_GAIN = 0.5
"""FluidSynth master gain; stems stay well below full scale (mastering sets loudness)."""

_MAX_CHANNELS = 16
_VOLUME_CC = 7
_PERCUSSION_BANK = 128
_CHANNEL_TYPE_DRUM = 1


class SynthUnavailable(RuntimeError):
    """FluidSynth or a General MIDI SoundFont is not installed; the message says what to install."""


def find_soundfont(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The GM SoundFont to use: ``explicit``, else ``$CANTUS_SOUNDFONT``, else the first of
    ``PREFERRED_SOUNDFONTS`` found in ``SOUNDFONT_DIRS``, else any ``.sf2`` there."""
    for candidate in (explicit, os.environ.get(SOUNDFONT_ENV)):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise SynthUnavailable(f"SoundFont {path} does not exist")
            return path
    for name in PREFERRED_SOUNDFONTS:
        for folder in SOUNDFONT_DIRS:
            if (folder / name).is_file():
                return folder / name
    for folder in SOUNDFONT_DIRS:
        found = sorted(folder.glob("*.sf2")) if folder.is_dir() else []
        if found:
            return found[0]
    raise SynthUnavailable(
        "no General MIDI SoundFont found in "
        + ", ".join(str(d) for d in SOUNDFONT_DIRS)
        + ": install the Debian package fluid-soundfont-gm (or timgm6mb-soundfont), "
        f"or set {SOUNDFONT_ENV} to an .sf2 file"
    )


def _load_fluidsynth():
    """The ``fluidsynth`` module and a ctypes handle on ``fluid_synth_process``, which
    pyfluidsynth does not wrap (it renders every MIDI channel to its own stereo pair)."""
    try:
        import fluidsynth
    except ImportError as error:  # pyfluidsynth missing, or libfluidsynth.so not found
        raise SynthUnavailable(
            f"FluidSynth is not available ({error}): install the Debian package "
            "libfluidsynth3 and the PyPI package pyfluidsynth"
        ) from None
    library = ctypes.CDLL(fluidsynth.lib)
    process = library.fluid_synth_process
    process.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    process.restype = ctypes.c_int
    set_channel_type = library.fluid_synth_set_channel_type
    set_channel_type.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    set_channel_type.restype = ctypes.c_int
    set_gen = library.fluid_synth_set_gen
    set_gen.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float]
    set_gen.restype = ctypes.c_int
    _SET_GEN.append(set_gen)
    return fluidsynth, process, set_channel_type


_SET_GEN: list = []
"""``fluid_synth_set_gen`` once loaded (a channel's SoundFont generator offset)."""
_GEN_VOLENV_RELEASE = 38
"""SoundFont 2 generator: release time of the volume envelope, in timecents."""
RELEASE_OFFSET_TIMECENTS: dict[int, float] = {46: -1200.0}
"""Release-time offsets per General MIDI program (timecents; -1200 halves it). FluidR3's
orchestral harp rings on for ten seconds after its note-off (10 dB a second), so every
plucked note kept a voice that long: the harp alone took 16-18 ms of CPU per second of
audio, a third of a harp palette's whole render. Released twice as fast (20 dB a second,
silent 4.5 s after a short note), like strings a harpist's hand damps, it costs half."""


def ticks_to_samples(tick: int, tempo_bpm: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Sample index (rounded to nearest) of ``tick`` at a constant tempo."""
    return round(tick * 60.0 * sample_rate / (tempo_bpm * TICKS_PER_QUARTER))


def _block_at_or_after(sample: int) -> int:
    return -(-sample // BLOCK_SAMPLES) * BLOCK_SAMPLES


_NOTE_OFF, _PROGRAM, _NOTE_ON = 0, 1, 2


@dataclass(order=True)
class _Event:
    """A note event at a block boundary; note-offs sort before program changes and those
    before note-ons of the same block, so a repeated pitch is released before it is struck
    again, and a note on a section's downbeat sounds in that section's program (the pitch
    field holds the program)."""

    sample: int
    kind: int
    order: int
    channel: int = field(compare=False)
    pitch: int = field(compare=False)
    velocity: int = field(compare=False, default=0)


@dataclass
class _Part:
    name: str
    channel: int
    program: int
    is_drums: bool


class SegmentRenderer:
    """Renders one piece segment by segment from one persistent FluidSynth state.

    ``tempo``: the piece's quarter-note tempo, or its ``TempoMap`` (a closing ritardando):
    every tick is placed in time by it.

    ``render_until(tick, tracks_so_far)`` returns the audio from the end of the previous
    call up to ``tick`` (piece ticks, from the start of the piece). ``tracks_so_far`` must
    hold at least every note with an onset in that range, with onsets counted from the
    start of the piece; it may be the cumulative tracks or just the new bars' tracks.
    Notes with onsets before the previous end were already played and are skipped; a note
    arriving that late cannot be played any more. ``finish(tail_seconds)`` plays the
    pending note-offs and the release tails and closes the synthesizer.
    """

    def __init__(
        self,
        tempo: float | TempoMap,
        *,
        sample_rate: int = SAMPLE_RATE,
        soundfont: str | os.PathLike[str] | None = None,
        gain: float = SYNTH_GAIN,
        trim: bool = True,
    ) -> None:
        tempo_map = tempo if isinstance(tempo, TempoMap) else None
        tempo_bpm = tempo.initial_bpm if isinstance(tempo, TempoMap) else tempo
        if tempo_bpm <= 0:
            raise ValueError(f"tempo must be > 0 beats per minute, got {tempo_bpm}")
        self.tempo_bpm = float(tempo_bpm)
        """The tempo at the start of the piece."""
        self.tempo_map = tempo_map if tempo_map and not tempo_map.is_constant else None
        """The tempo map when the tempo changes (None: ``tempo_bpm`` throughout)."""
        self.sample_rate = int(sample_rate)
        self.soundfont = find_soundfont(soundfont)
        self.trim = trim
        """Whether each program plays at its trim (``cantus.render.balance``)."""
        fluidsynth, self._process, self._set_channel_type = _load_fluidsynth()
        self._synth = fluidsynth.Synth(
            gain=gain,
            samplerate=self.sample_rate,
            channels=_MAX_CHANNELS,
            **{
                "synth.audio-channels": _MAX_CHANNELS,
                "synth.audio-groups": _MAX_CHANNELS,  # MIDI channel n -> output pair n
                "synth.reverb.active": 0,
                "synth.chorus.active": 0,
                "synth.cpu-cores": 1,
                "synth.dynamic-sample-loading": 1,  # load only the presets used
            },
        )
        self._soundfont_id = self._synth.sfload(str(self.soundfont))
        if self._soundfont_id < 0:
            raise SynthUnavailable(f"FluidSynth could not load SoundFont {self.soundfont}")
        self._parts: dict[str, _Part] = {}
        self._events: list[_Event] = []
        self._event_order = 0
        self._sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> notes held
        self._scheduled_until_tick = 0
        self._synth_samples = 0  # samples synthesised so far (a multiple of BLOCK_SAMPLES)
        self._emitted_samples = 0  # samples handed out so far
        self._carry = np.zeros((0, 0), dtype=np.float32)  # [2 x parts, samples] rendered ahead
        self._last_emitted = 0
        self._closed = False

    # --- public ---------------------------------------------------------------------------
    @property
    def position_samples(self) -> int:
        """Samples handed out so far (the start of the next segment)."""
        return self._emitted_samples

    @property
    def part_names(self) -> list[str]:
        """Stem names in the order their tracks first appeared."""
        return list(self._parts)

    def render_stems_until(
        self, tick: int, tracks_so_far: Iterable[Track]
    ) -> dict[str, np.ndarray]:
        """Stems (name -> float32 ``[samples, 2]``) from the previous end up to ``tick``."""
        self._check_open()
        if tick < self._scheduled_until_tick:
            raise ValueError(
                f"segment end {tick} ticks is before the previous end "
                f"{self._scheduled_until_tick} ticks"
            )
        for track in tracks_so_far:
            part = self._part_for(track)
            for change_tick, program in track.program_changes:
                if self._scheduled_until_tick < change_tick < tick:
                    sample = _block_at_or_after(self._sample_at(change_tick))
                    self._push(max(sample, self._synth_samples), _PROGRAM, part, program)
            for note in track.notes:
                if self._scheduled_until_tick <= note.onset < tick:
                    self._schedule_note(part, note.onset, note.end, note.pitch, note.velocity)
        self._scheduled_until_tick = tick
        return self._emit(self._sample_at(tick))

    def render_until(self, tick: int, tracks_so_far: Iterable[Track]) -> np.ndarray:
        """The sum of all stems from the previous end up to ``tick``: float32 ``[samples, 2]``."""
        return self._sum(self.render_stems_until(tick, tracks_so_far))

    def finish_stems(self, tail_seconds: float = 2.0) -> dict[str, np.ndarray]:
        """Stems of the rest: pending note-offs, then ``tail_seconds`` of release after the
        last one. Closes the synthesizer."""
        self._check_open()
        last_event = max((event.sample for event in self._events), default=0)
        end_sample = max(last_event, self._emitted_samples) + round(tail_seconds * self.sample_rate)
        stems = self._emit(end_sample)
        self.close()
        return stems

    def finish(self, tail_seconds: float = 2.0) -> np.ndarray:
        """Like ``finish_stems``, summed to float32 ``[samples, 2]``."""
        return self._sum(self.finish_stems(tail_seconds))

    def close(self) -> None:
        if not self._closed:
            self._synth.delete()
            self._closed = True

    def __enter__(self) -> SegmentRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- parts and events -----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this SegmentRenderer is finished; start a new one")

    def _part_for(self, track: Track) -> _Part:
        """Each track name gets its own MIDI channel (so its own stem): drums on 9 (further
        drum tracks on a free channel switched to percussion), other parts on 0..15."""
        part = self._parts.get(track.name)
        is_drums = track.channel == DRUM_CHANNEL
        program = track.program_at(self._scheduled_until_tick)
        if part is not None:
            if part.program != program:
                part.program = program
                self._select_program(part)
            return part
        used = {p.channel for p in self._parts.values()}
        if is_drums and DRUM_CHANNEL not in used:
            channel = DRUM_CHANNEL
        else:
            free = [c for c in range(_MAX_CHANNELS) if c not in used and c != DRUM_CHANNEL]
            if not free:
                raise ValueError(f"more than {_MAX_CHANNELS} tracks cannot be rendered")
            channel = free[0]
        part = _Part(track.name, channel, program, is_drums)
        if is_drums and channel != DRUM_CHANNEL:
            self._set_channel_type(self._synth.synth, channel, _CHANNEL_TYPE_DRUM)
        self._select_program(part)
        self._parts[track.name] = part
        return part

    def _select_program(self, part: _Part) -> None:
        bank = _PERCUSSION_BANK if part.is_drums else 0
        status = self._synth.program_select(part.channel, self._soundfont_id, bank, part.program)
        if status != 0:  # preset missing from this SoundFont: fall back to the bank's first
            self._synth.program_select(part.channel, self._soundfont_id, bank, 0)
        if self.trim and not part.is_drums:
            trim = trim_db(self.soundfont, part.program)
            self._synth.cc(part.channel, _VOLUME_CC, volume_for_trim(trim))
        if not part.is_drums and _SET_GEN:  # 0 for a program without one: a channel reused
            offset = RELEASE_OFFSET_TIMECENTS.get(part.program, 0.0)
            _SET_GEN[0](self._synth.synth, part.channel, _GEN_VOLENV_RELEASE, offset)

    def _push(self, sample: int, kind: int, part: _Part, pitch: int, velocity: int = 0) -> None:
        self._event_order += 1
        heapq.heappush(
            self._events, _Event(sample, kind, self._event_order, part.channel, pitch, velocity)
        )

    def _sample_at(self, tick: int) -> int:
        """The sample index of a piece tick (the tempo map's, else the constant tempo's)."""
        if self.tempo_map is not None:
            return self.tempo_map.samples_at(tick, self.sample_rate)
        return ticks_to_samples(tick, self.tempo_bpm, self.sample_rate)

    def _schedule_note(self, part: _Part, onset: int, end: int, pitch: int, velocity: int) -> None:
        on = _block_at_or_after(self._sample_at(onset))
        off = _block_at_or_after(self._sample_at(end))
        on = max(on, self._synth_samples)  # never in the past (only by rounding)
        self._push(on, _NOTE_ON, part, pitch, velocity)
        self._push(max(off, on + BLOCK_SAMPLES), _NOTE_OFF, part, pitch)  # off after its on

    def _apply_events_up_to(self, sample: int) -> None:
        while self._events and self._events[0].sample <= sample:
            event = heapq.heappop(self._events)
            key = (event.channel, event.pitch)
            if event.kind == _PROGRAM:
                # voices already sounding ring on in the program they started with
                for part in self._parts.values():
                    if part.channel == event.channel:
                        part.program = event.pitch
                        self._select_program(part)
                continue
            if event.kind == _NOTE_ON:
                self._sounding[key] = self._sounding.get(key, 0) + 1
                self._synth.noteon(event.channel, event.pitch, event.velocity)
            else:
                # Overlapping notes of one pitch on one channel: release on the last end only.
                held = self._sounding.get(key, 0) - 1
                if held <= 0:
                    self._sounding.pop(key, None)
                    self._synth.noteoff(event.channel, event.pitch)
                else:
                    self._sounding[key] = held

    # --- audio ----------------------------------------------------------------------------
    def _synthesise_into(self, planar: np.ndarray, start: int, samples: int) -> None:
        """Synthesise ``samples`` (a multiple of the block) into ``planar[:, start:]``: one
        stereo pair of rows per part, in part order. Channels without a part get NULL
        buffers, which FluidSynth skips."""
        pointers = (ctypes.c_void_p * (_MAX_CHANNELS * 2))()
        for row, part in enumerate(self._parts.values()):
            pointers[2 * part.channel] = planar[2 * row, start:].ctypes.data
            pointers[2 * part.channel + 1] = planar[2 * row + 1, start:].ctypes.data
        status = self._process(self._synth.synth, samples, 0, None, _MAX_CHANNELS * 2, pointers)
        if status != 0:
            raise RuntimeError(f"fluid_synth_process failed with status {status}")

    def _emit(self, end_sample: int) -> dict[str, np.ndarray]:
        """Hand out audio up to ``end_sample``: first what the last call rendered past its
        end, then whole blocks, applying each event at its block boundary."""
        target = _block_at_or_after(end_sample)
        rows = 2 * len(self._parts)
        carried = self._carry.shape[1]
        planar = np.zeros((rows, carried + max(0, target - self._synth_samples)), np.float32)
        planar[: self._carry.shape[0], :carried] = self._carry  # parts added since carry: 0
        written = carried
        while self._synth_samples < target:
            self._apply_events_up_to(self._synth_samples)
            next_event = self._events[0].sample if self._events else target
            run_end = min(max(next_event, self._synth_samples + BLOCK_SAMPLES), target)
            self._synthesise_into(planar, written, run_end - self._synth_samples)
            written += run_end - self._synth_samples
            self._synth_samples = run_end
        wanted = max(0, end_sample - self._emitted_samples)
        self._carry = planar[:, wanted:]
        self._emitted_samples += wanted
        self._last_emitted = wanted
        # Transposed views of the planar buffer: the mixer takes them planar without a copy.
        return {
            name: planar[2 * row : 2 * row + 2, :wanted].T for row, name in enumerate(self._parts)
        }

    def _sum(self, stems: dict[str, np.ndarray]) -> np.ndarray:
        if not stems:  # no track seen yet: silence of the segment's length
            return np.zeros((self._last_emitted, 2), dtype=np.float32)
        return sum_stems(stems)


def sum_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    """All stems added together: float32 ``[samples, 2]`` (empty for no stems)."""
    length = next(iter(stems.values())).shape[0] if stems else 0
    total = np.zeros((length, 2), dtype=np.float32)
    for stem in stems.values():
        total += stem
    return total


def piece_end_tick(tracks: Sequence[Track]) -> int:
    """The tick at which the last note of any track ends (0 for no notes)."""
    return max((note.end for track in tracks for note in track.notes), default=0)


def render_stems(
    tracks: Sequence[Track],
    *,
    tempo_bpm: float | TempoMap,
    sample_rate: int = SAMPLE_RATE,
    end_tick: int | None = None,
    tail_seconds: float = 2.0,
    soundfont: str | os.PathLike[str] | None = None,
    trim: bool = True,
) -> dict[str, np.ndarray]:
    """One-shot render: stems (track name -> float32 ``[samples, 2]``) of the whole piece up
    to ``end_tick`` (default: the last note's end) plus ``tail_seconds`` of release.
    ``tempo_bpm``: a constant tempo or the piece's ``TempoMap``."""
    end = piece_end_tick(tracks) if end_tick is None else end_tick
    with SegmentRenderer(
        tempo_bpm, sample_rate=sample_rate, soundfont=soundfont, trim=trim
    ) as renderer:
        body = renderer.render_stems_until(end, tracks)
        tail = renderer.finish_stems(tail_seconds)
    return {name: np.concatenate([body[name], tail[name]]) for name in tail}


def render_tracks(
    tracks: Sequence[Track],
    *,
    tempo_bpm: float | TempoMap,
    sample_rate: int = SAMPLE_RATE,
    end_tick: int | None = None,
    tail_seconds: float = 2.0,
    soundfont: str | os.PathLike[str] | None = None,
    trim: bool = True,
) -> np.ndarray:
    """One-shot render of all tracks, summed (dry, unmixed): float32 ``[samples, 2]``."""
    stems = render_stems(
        tracks,
        tempo_bpm=tempo_bpm,
        sample_rate=sample_rate,
        end_tick=end_tick,
        tail_seconds=tail_seconds,
        soundfont=soundfont,
        trim=trim,
    )
    return sum_stems(stems)
