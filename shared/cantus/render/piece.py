"""A piece as the render service assembles it from events, and the files rendered from it.

``PieceParts`` is the join of one piece's melody, harmony and lyric events by bar; it
answers which bars are complete and arranges them (humanised, seeded by the piece's seed,
unless switched off).

Segments, while the piece is composed: ``render_segment_midi`` (all parts as MIDI) and
``SegmentAudio``, which keeps one ``SegmentRenderer`` (FluidSynth) and one
``StreamingMaster`` per piece and turns each segment into mastered audio, which the render
service encodes as a small Ogg Opus file (``cantus.render.exports.encode_segment_audio``).
Rendering is deterministic, so a ``SegmentAudio`` lost with its process is rebuilt by
replaying the segments already published (``SegmentAudio.catch_up``) and then renders the
next one exactly as the lost one would have.

The finished piece (``render_piece_files``): ``piece.mid``, the mastered full mix
(``master``) as ``piece.wav``/``.flac``/``.mp3``/``.opus`` (``Settings.audio_formats``),
the lead sheet as ``piece.musicxml`` and, engraved by LilyPond, ``piece.pdf`` and
``piece.png``, ``pianoroll.png``, ``selfsim.png`` (the melody's bar self-similarity), and
``piece.json`` (summary, loudness, file list, event log). File names are fixed here; only
the folder comes from the piece id.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from cantus.events.conversions import (
    pb_to_bar,
    pb_to_notes,
    spec_energy,
    spec_form,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.rules import ChordSpan
from cantus.lyrics.song_form import title_line
from cantus.music.chords import ChordSymbol
from cantus.music.form import FormPlan
from cantus.music.midi_io import tracks_to_midi_bytes
from cantus.music.notes import TICKS_PER_QUARTER, Bar, MusicError, Note, Track
from cantus.render.arrangement import (
    ArrangedBar,
    Humanise,
    arrange_tracks,
    segment_level_db,
)
from cantus.render.palettes import Palette, get_palette, spec_palette
from cantus.render.tempo import (
    RUBATO_DEPTH,
    RUBATO_ENERGY,
    TempoMap,
    broadened_at_cadences,
    ending_tempo_map,
    midi_tempo_changes,
    phrase_rubato,
    ritardando_bars,
    section_tempo_map,
)
from cantus.v1 import events_pb2 as pb

if TYPE_CHECKING:
    from cantus.render.leadsheet import EngravedLeadsheet
    from cantus.render.vocals import SungNote, VocalTrack

log = logging.getLogger("cantus.render.piece")

TAIL_SECONDS = 2.0
"""Release and reverb tail rendered after the last bar, seconds (last segment and files)."""


@dataclass
class PieceParts:
    """Everything known of one piece so far, by bar index."""

    spec: pb.PieceSpec
    melody: dict[int, pb.MelodyBar]
    harmony_by_bar: dict[int, pb.HarmonyBar]
    lyric_lines: dict[int, pb.LyricLine]
    requested: pb.ComposeRequested | None
    humanise: bool = True

    @classmethod
    def from_events(
        cls, events: dict[str, dict[int, Message]], *, humanise: bool = True
    ) -> PieceParts | None:
        """From one piece's decoded events (kind → index → message, the kinds of
        ``cantus.events.codec.EVENT_TYPES``); None until some event carries the piece's
        spec. ``humanise``: arrange with the piece's seeded humanisation."""
        spec = None
        for kind in ("compose_requested", "melody_bar", "harmony_bar", "lyric_line"):
            for message in events.get(kind, {}).values():
                spec = message.spec
                break
            if spec is not None:
                break
        if spec is None:
            return None
        requested = events.get("compose_requested", {}).get(0)
        return cls(
            spec=spec,
            melody=events.get("melody_bar", {}),
            harmony_by_bar=events.get("harmony_bar", {}),
            lyric_lines=events.get("lyric_line", {}),
            requested=requested,
            humanise=humanise,
        )

    @classmethod
    def from_record(cls, record: pb.PieceRecord, *, humanise: bool = True) -> PieceParts:
        """From a stored ``parts.pb`` (``to_record``): bars and lines by their indices."""
        return cls(
            spec=record.spec,
            melody={bar.meta.index: bar for bar in record.melody},
            harmony_by_bar={bar.meta.index: bar for bar in record.harmony},
            lyric_lines={line.meta.index: line for line in record.lyric_lines},
            requested=record.requested if record.HasField("requested") else None,
            humanise=humanise,
        )

    def to_record(self) -> pb.PieceRecord:
        """The parts as stored beside the files (``parts.pb``), for edits (issue #18)."""
        record = pb.PieceRecord(
            spec=self.spec,
            melody=[self.melody[i] for i in sorted(self.melody)],
            harmony=[self.harmony_by_bar[i] for i in sorted(self.harmony_by_bar)],
            lyric_lines=[self.lyric_lines[i] for i in sorted(self.lyric_lines)],
        )
        if self.requested is not None:
            record.requested.CopyFrom(self.requested)
        return record

    # --- readiness -----------------------------------------------------------------------
    @property
    def bar_count(self) -> int:
        return self.spec.bars

    def _lyrics_cover(self, index: int) -> bool:
        return any(
            line.first_bar <= index < line.first_bar + line.bar_count
            for line in self.lyric_lines.values()
        )

    def bar_ready(self, index: int) -> bool:
        return index in self.melody and index in self.harmony_by_bar and self._lyrics_cover(index)

    def bars_ready(self, first: int, count: int) -> bool:
        return all(self.bar_ready(i) for i in range(first, first + count))

    def all_bars_ready(self) -> bool:
        return self.bars_ready(0, self.bar_count)

    @property
    def vocals(self) -> bool:
        """Whether the piece sings its lyrics (``PieceSpec.vocals`` with a lyrics theme)."""
        return bool(self.spec.vocals and self.spec.lyrics_theme)

    def segment_ready(self, segment: int, segment_bars: int) -> bool:
        """Whether segment ``segment`` can be rendered: its bars are ready and, with vocals,
        the bar after it too (a syllable on its downbeat is sung from before the bar line:
        ``cantus.render.vocals.LOOKAHEAD_BARS``)."""
        first, count = self.segment_bars(segment, segment_bars)
        if not self.bars_ready(first, count):
            return False
        after = first + count
        if not self.vocals:
            return True
        from cantus.render.vocals import LOOKAHEAD_BARS

        return all(
            self.bar_ready(i) for i in range(after, min(after + LOOKAHEAD_BARS, self.bar_count))
        )

    def segment_count(self, segment_bars: int) -> int:
        return -(-self.bar_count // segment_bars)

    def segment_bars(self, segment: int, segment_bars: int) -> tuple[int, int]:
        first = segment * segment_bars
        return first, min(segment_bars, self.bar_count - first)

    # --- time ----------------------------------------------------------------------------
    @property
    def bar_seconds(self) -> float:
        quarters = spec_meter(self.spec).bar_ticks / TICKS_PER_QUARTER
        return quarters * 60.0 / self.spec.tempo_bpm

    @functools.cached_property
    def tempo_map(self) -> TempoMap:
        """The spec's tempo; with a form plan, closing with a ritardando (``cantus.render.
        tempo``), unless ``no_ritardando``; ramped beat by beat to ``tempo_end_bpm`` when it
        is set (session pieces): MIDI, audio and segment times all follow it."""
        form = piece_form(self)
        if form is None and not self.spec.tempo_end_bpm:
            return TempoMap.constant(self.spec.tempo_bpm)
        base = ending_tempo_map(
            self.spec.tempo_bpm,
            spec_meter(self.spec),
            self.bar_count,
            tempo_end_bpm=self.spec.tempo_end_bpm,
            ritardando=form is not None and not self.spec.no_ritardando,
        )
        if form is None:
            return base
        # sections an edit set to their own tempo (issue #18), ramped in and out by beats
        mapped = section_tempo_map(
            base,
            self.spec.tempo_bpm,
            spec_meter(self.spec),
            self.bar_count,
            [
                (s.first_bar, s.bar_count, s.tempo_bpm)
                for s in self.spec.form.sections
                if s.tempo_bpm > 0
            ],
        )
        if self.spec.tempo_end_bpm or self.spec.no_ritardando:
            return mapped  # a session's piece keeps the time its station planned for it
        # phrases shaped as the style and energy allow, up to the closing ritardando
        phrases = []
        for section in form.sections:
            first = section.first_bar
            for end, _ in section.phrase_ends():
                phrases.append((first, end + 1 - first))
                first = end + 1
        depth = RUBATO_DEPTH.get(self.spec.style, 0.0) * RUBATO_ENERGY[spec_energy(self.spec).value]
        closing = self.bar_count - ritardando_bars(self.bar_count)
        shaped = phrase_rubato(mapped, spec_meter(self.spec), phrases, depth, before_bar=closing)
        return broadened_at_cadences(
            shaped,
            spec_meter(self.spec),
            [s.first_bar + s.bar_count for s in self.spec.form.sections],
            self.bar_count,
        )

    @functools.cached_property
    def bar_durations(self) -> tuple[float, ...]:
        """How long each bar lasts, seconds, by the tempo map (the final chord's hold past
        the last barline is the ending's, not the last bar's)."""
        starts = [self.seconds_before_bar(index) for index in range(self.bar_count + 1)]
        return tuple(b - a for a, b in itertools.pairwise(starts))

    def seconds_before_bar(self, index: int) -> float:
        if self.tempo_map.is_constant:
            return index * self.bar_seconds
        return self.tempo_map.seconds_at(index * self.bar_ticks)

    # --- parts ---------------------------------------------------------------------------
    @property
    def harmony(self) -> list[pb.HarmonyBar]:
        return [self.harmony_by_bar[i] for i in sorted(self.harmony_by_bar)]

    def arranged_bar(self, index: int) -> ArrangedBar:
        meter = spec_meter(self.spec)
        melody = pb_to_bar(self.melody[index].notes, meter)
        harmony = self.harmony_by_bar[index]
        lyrics = []
        for line in self.lyric_lines.values():
            for syllable in line.syllables:
                if syllable.bar_index == index and syllable.note_index < len(melody.notes):
                    lyrics.append((melody.notes[syllable.note_index].onset, syllable.text))
        return ArrangedBar(
            melody=melody,
            chords=[
                ChordSpan(
                    span.onset_ticks,
                    span.duration_ticks,
                    ChordSymbol.parse(span.symbol),
                    span.roman,
                )
                for span in harmony.chords
            ],
            voicing=pb_to_notes(harmony.voicing),
            bass=pb_to_notes(harmony.bass),
            lyrics=sorted(lyrics),
        )

    @property
    def bar_ticks(self) -> int:
        return spec_meter(self.spec).bar_ticks

    def tick_seconds(self, tick: float) -> float:
        """Seconds from the start of the piece to piece tick ``tick`` (the tempo map's)."""
        if self.tempo_map.is_constant:
            return tick * 60.0 / (self.spec.tempo_bpm * TICKS_PER_QUARTER)
        return self.tempo_map.seconds_at(tick)

    @functools.cached_property
    def _line_phones(self) -> dict[tuple[int, int], tuple[str, bool]]:
        """(bar, note) → (eSpeak input, last syllable of its line) of every syllable in the
        lyric lines so far; each line is read whole (a word never crosses a line)."""
        from cantus.render.vocals import syllable_phones

        language = self.spec.lyrics_language or "en"
        found: dict[tuple[int, int], tuple[str, bool]] = {}
        for line in self.lyric_lines.values():
            syllables = sorted(line.syllables, key=lambda s: (s.bar_index, s.note_index))
            phones = syllable_phones([s.text for s in syllables], language)
            for position, (syllable, phone) in enumerate(zip(syllables, phones, strict=True)):
                found[(syllable.bar_index, syllable.note_index)] = (
                    phone,
                    position == len(syllables) - 1,
                )
        return found

    @property
    def vocal_octave_shift(self) -> int:
        """Semitones (a multiple of 12) the voice sings the melody away from its written
        pitch, to sing in its range (``cantus.render.vocals.octave_shift``): decided by the
        syllables' notes of the first lyric line, which is there (with its bars) before the
        first segment renders, so a streamed piece and one rendered at once sing alike."""
        from cantus.render.vocals import octave_shift

        if not self.lyric_lines:
            return 0
        meter = spec_meter(self.spec)
        line = min(self.lyric_lines.values(), key=lambda line: (line.first_bar, line.meta.index))
        pitches = []
        for syllable in line.syllables:
            if syllable.bar_index not in self.melody:
                continue
            notes = pb_to_bar(self.melody[syllable.bar_index].notes, meter).notes
            if 0 <= syllable.note_index < len(notes):
                pitches.append(notes[syllable.note_index].pitch)
        return octave_shift(pitches, self.spec.lyrics_language or "en")

    def sung_notes(self, first: int, count: int) -> list[SungNote]:
        """The notes the voice sings in bars ``first - 1`` .. ``first + count - 1`` (the bar
        before for context), times in seconds from the start of the piece: a note with a
        syllable sings it, a note right after a sung one (legato) without a syllable of
        its own continues its vowel (a melisma), other notes are not sung. Bars not yet
        in are left out. The voice sings them ``vocal_octave_shift`` from the written
        pitch (the instruments keep it)."""
        from cantus.render.vocals import LEGATO_GAP_SECONDS, SungNote

        meter = spec_meter(self.spec)
        shift = self.vocal_octave_shift
        phones = self._line_phones
        form, style = piece_form(self), spec_style(self.spec)
        notes: list[SungNote] = []
        previous: SungNote | None = None
        for index in range(max(0, first - 1), min(first + count, self.bar_count)):
            if index not in self.melody:
                previous = None
                continue
            bar = pb_to_bar(self.melody[index].notes, meter)
            level = segment_level_db(form, style, index, 1, self.palette, self.bar_durations)
            for position, note in enumerate(bar.notes):
                tick = index * meter.bar_ticks + note.onset
                onset = self.tick_seconds(tick)
                end = self.tick_seconds(tick + note.duration)
                sung = phones.get((index, position))
                if sung is not None:
                    previous = SungNote(
                        onset,
                        end,
                        note.pitch + shift,
                        note.velocity,
                        sung[0],
                        phrase_end=sung[1],
                        level_db=level,
                    )
                elif (
                    previous is not None
                    and onset - previous.end < LEGATO_GAP_SECONDS
                    and self._lyrics_cover(index)
                ):
                    previous = SungNote(
                        onset,
                        end,
                        note.pitch + shift,
                        note.velocity,
                        previous.phones,
                        continues=True,
                        phrase_end=previous.phrase_end,
                        level_db=level,
                    )
                else:
                    previous = None
                    continue
                notes.append(previous)
        return notes

    @property
    def palette(self) -> Palette:
        """The spec's palette (its style and mood's default for a spec without one)."""
        return spec_palette(spec_style(self.spec), self.spec.mood, self.spec.palette)

    def bar_palette(self, index: int) -> Palette:
        """The palette bar ``index`` plays in: its section's own (an edit gave the section
        one, issue #18), else the piece's."""
        if any(s.palette for s in self.spec.form.sections) and piece_form(self) is not None:
            for section in self.spec.form.sections:
                if section.palette and section.first_bar <= index < (
                    section.first_bar + section.bar_count
                ):
                    return get_palette(section.palette)
        return self.palette

    def tracks(self, first: int, count: int) -> list[Track]:
        """The arranged parts of bars ``first`` .. ``first + count - 1`` (section by section
        with a form plan), onsets from the start of bar ``first``. Bars in a section with
        its own palette are arranged in it, and each part switches program on their first
        downbeat (``Track.program_changes``) and back after them."""
        runs: list[tuple[int, int, Palette]] = []  # first bar, count, palette
        for index in range(first, first + count):
            palette = self.bar_palette(index)
            if runs and runs[-1][2] is palette:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1, palette)
            else:
                runs.append((index, 1, palette))
        arranged = [
            arrange_tracks(
                [self.arranged_bar(i) for i in range(start, start + run)],
                style=spec_style(self.spec),
                energy=spec_energy(self.spec),
                first_index=start,
                total_bars=self.bar_count,
                humanise=Humanise(self.spec.seed) if self.humanise else None,
                tempo_bpm=self.spec.tempo_bpm,
                form=piece_form(self),
                palette=palette,
            )
            for start, run, palette in runs
        ]
        if len(arranged) <= 1:
            return arranged[0] if arranged else []
        merged = []
        for position, track in enumerate(arranged[0]):
            notes, lyrics, changes = list(track.notes), list(track.lyrics), []
            program = track.program
            for (start, _, _), tracks in zip(runs[1:], arranged[1:], strict=True):
                other = tracks[position]
                shift = (start - first) * self.bar_ticks
                notes += [
                    Note(n.onset + shift, n.pitch, n.duration, n.velocity) for n in other.notes
                ]
                lyrics += [(tick + shift, text) for tick, text in other.lyrics]
                if other.program != program:
                    changes.append((shift, other.program))
                    program = other.program
            merged.append(
                Track(track.name, track.program, track.channel, sorted(notes), lyrics, changes)
            )
        return merged

    def piece_tracks(self, first: int, count: int) -> list[Track]:
        """Like ``tracks``, with onsets from the start of the piece (what the synth wants)."""
        shift = first * self.bar_ticks
        return [
            Track(
                track.name,
                track.program,
                track.channel,
                [Note(n.onset + shift, n.pitch, n.duration, n.velocity) for n in track.notes],
                [(tick + shift, syllable) for tick, syllable in track.lyrics],
                [(tick + shift, program) for tick, program in track.program_changes],
            )
            for track in self.tracks(first, count)
        ]

    def midi(self, first: int, count: int) -> bytes:
        tempo = self.tempo_map.from_tick(first * self.bar_ticks)
        return tracks_to_midi_bytes(
            self.tracks(first, count),
            tempo_bpm=tempo.initial_bpm,
            tempo_changes=midi_tempo_changes(tempo),
            meter=spec_meter(self.spec),
            key=spec_key(self.spec),
        )


def render_segment_midi(parts: PieceParts, first: int, count: int) -> bytes:
    """Bars ``first`` .. ``first + count - 1`` as a Standard MIDI File of every part."""
    return parts.midi(first, count)


@dataclass
class RenderedSegment:
    """One segment's mastered audio: float32 ``[samples, 2]`` starting ``start_seconds``
    into the piece."""

    audio: np.ndarray
    sample_rate: int
    start_seconds: float

    @property
    def duration_seconds(self) -> float:
        return len(self.audio) / self.sample_rate


class SegmentAudio:
    """One piece's audio, rendered and mastered segment by segment, in order, from one
    persistent synthesizer and master (``SegmentRenderer`` + ``StreamingMaster``).

    ``render(parts, segment, segment_bars)`` renders segment ``next_segment``; the last
    segment of the piece also gets the release tail, and closes the synthesizer. After a
    restart, ``catch_up(parts, segments_done, segment_bars)`` replays segments
    ``0 .. segments_done - 1`` (discarding their audio): rendering is deterministic, so
    the next segment then comes out exactly as it would have without the restart."""

    def __init__(self, tempo_bpm: float | TempoMap, *, preset: str = "streaming") -> None:
        from cantus.render.mix import StreamingMaster
        from cantus.render.synth import SAMPLE_RATE, SegmentRenderer

        self.sample_rate = SAMPLE_RATE
        self._renderer = SegmentRenderer(tempo_bpm, sample_rate=SAMPLE_RATE)
        self._master = StreamingMaster(SAMPLE_RATE, preset)
        self.next_segment = 0
        self.samples_out = 0
        self.finished = False
        self.last_used = time.monotonic()
        self.mastered: list[np.ndarray] = []
        """Every segment's mastered audio so far: joined, they are the piece's final mix."""
        self.preset = preset
        self._vocals: VocalTrack | None = None
        self._vocal_samples = 0
        self.vocal_chunks: list[np.ndarray] = []
        """The vocal stem (mono, before the mix) segment by segment, for ``vocals.wav``."""

    def _vocal_stems(
        self, parts: PieceParts, stems: dict[str, np.ndarray], first: int, count: int
    ) -> dict[str, np.ndarray]:
        """``stems`` with the vocals' stem for the same samples (with vocals; the first call
        sets up the voice and the mix that puts it in front)."""
        if not parts.vocals:
            return stems
        from cantus.render.mix import StreamingMaster, vocal_profiles
        from cantus.render.vocals import LOOKAHEAD_BARS, VocalTrack

        if self._vocals is None:
            if self.samples_out or self.next_segment:
                raise RuntimeError("vocals must be set up from the first segment")
            self._vocals = VocalTrack(parts.spec.lyrics_language or "en", self.sample_rate)
            self._master = StreamingMaster(
                self.sample_rate,
                self.preset,
                profiles=vocal_profiles(parts.palette.name),
                palette=parts.palette.name,
            )
        samples = len(next(iter(stems.values()))) if stems else 0
        notes = [] if count == 0 else parts.sung_notes(first, count + LOOKAHEAD_BARS)
        voice = self._vocals.render_until(self._vocal_samples + samples, notes)
        self._vocal_samples += samples
        self.vocal_chunks.append(voice)
        return {**stems, "vocals": np.repeat(voice[:, None], 2, axis=1)}

    def piece_vocals(self) -> np.ndarray | None:
        """The whole vocal stem as rendered (mono float32), None without vocals."""
        if self._vocals is None:
            return None
        return np.concatenate(self.vocal_chunks) if self.vocal_chunks else np.zeros(0, np.float32)

    @property
    def master_gain_db(self) -> float:
        """The streaming master's last gain, dB (0 before the first segment)."""
        return self._master.gain_db or 0.0

    def render(self, parts: PieceParts, segment: int, segment_bars: int) -> RenderedSegment:
        if self.finished:
            raise RuntimeError("this piece's audio is finished")
        if segment != self.next_segment:
            raise ValueError(f"segment {segment} asked for, {self.next_segment} is next")
        first, count = parts.segment_bars(segment, segment_bars)
        if segment == 0 and not parts.vocals:  # the palette's mix from the first segment on
            from cantus.render.mix import StreamingMaster

            self._master = StreamingMaster(
                self.sample_rate, self.preset, palette=parts.palette.name
            )
        end_tick = (first + count) * parts.bar_ticks
        stems = self._renderer.render_stems_until(end_tick, parts.piece_tracks(first, count))
        stems = self._vocal_stems(parts, stems, first, count)
        form, style = piece_form(parts), spec_style(parts.spec)
        level = segment_level_db(form, style, first, count, parts.palette, parts.bar_durations)
        chunks = [self._master.process(stems, level_db=level)]
        if segment == parts.segment_count(segment_bars) - 1:
            # the ending: the final chord's hold past the barline and its release
            tail = self._renderer.finish_stems(TAIL_SECONDS)
            tail = self._vocal_stems(parts, tail, first + count, 0)
            samples = len(next(iter(tail.values()))) if tail else 0
            hold = max(0.0, samples / self.sample_rate - TAIL_SECONDS)
            last_bar = segment_level_db(
                form, style, first + count - 1, 1, parts.palette, parts.bar_durations
            )
            chunks.append(self._master.process(tail, level_db=last_bar, ending_seconds=hold))
            chunks.append(self._master.finish())
            self.finished = True
        audio = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        self.mastered.append(audio)
        rendered = RenderedSegment(audio, self.sample_rate, self.samples_out / self.sample_rate)
        self.samples_out += len(audio)
        self.next_segment += 1
        self.last_used = time.monotonic()
        return rendered

    def catch_up(self, parts: PieceParts, segments_done: int, segment_bars: int) -> None:
        """Replay segments up to ``segments_done`` (exclusive); their audio is kept in
        ``mastered`` only, as it was already published."""
        while self.next_segment < segments_done and not self.finished:
            self.render(parts, self.next_segment, segment_bars)

    def close(self) -> None:
        self._renderer.close()
        self.finished = True

    def piece_audio(self) -> np.ndarray:
        """The whole mastered piece: the segments as listeners heard them, joined."""
        return np.concatenate(self.mastered) if self.mastered else np.zeros((0, 2), np.float32)


def streamed_piece_audio(parts: PieceParts, segment_bars: int, *, preset: str) -> np.ndarray:
    """Render every segment as the service streams them and join them (used when the live
    renderer of a finished piece is gone, e.g. after a restart: rendering is deterministic)."""
    return streamed_piece_render(parts, segment_bars, preset=preset)[0]


def streamed_piece_render(
    parts: PieceParts, segment_bars: int, *, preset: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """``streamed_piece_audio`` and the vocal stem (mono; None without vocals)."""
    audio = SegmentAudio(parts.tempo_map, preset=preset)
    try:
        audio.catch_up(parts, parts.segment_count(segment_bars), segment_bars)
        return audio.piece_audio(), audio.piece_vocals()
    finally:
        audio.close()


VOCALS_FILE = "vocals.wav"


def vocals_wav(vocals: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[bytes, float]:
    """The vocal stem as a mono 16-bit WAV at ``target_lufs`` (the mix's target), its sample
    peak kept under -1 dBFS, and the gain applied (dB; piece.json's ``vocals.gain_db``, by
    which an edit gets the stem as sung back to splice it, ``stored_vocals``)."""
    import soundfile

    from cantus.render.mix import integrated_loudness

    stereo = np.repeat(vocals[:, None], 2, axis=1)
    lufs = integrated_loudness(stereo, sample_rate)
    gain = 10.0 ** ((target_lufs - lufs) / 20.0) if np.isfinite(lufs) else 1.0
    peak = float(np.abs(vocals).max()) if len(vocals) else 0.0
    if peak * gain > 10.0 ** (-1.0 / 20.0):
        gain = 10.0 ** (-1.0 / 20.0) / peak
    out = io.BytesIO()
    soundfile.write(out, (vocals * gain).astype(np.float32), sample_rate, "PCM_16", format="WAV")
    return out.getvalue(), 20.0 * math.log10(gain)


def stored_vocals(wav: bytes, gain_db: float) -> np.ndarray:
    """A stored ``vocals.wav`` back at the level it was sung and mixed at (mono float32):
    ``vocals_wav``'s gain undone, to 16-bit precision."""
    import soundfile

    stem, _ = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return (stem[:, 0] * np.float32(10.0 ** (-gain_db / 20.0))).astype(np.float32)


# --- the finished piece ------------------------------------------------------------------

PIANOROLL_FILE = "pianoroll.png"
PARTS_FILE = "parts.pb"
"""The piece's ``PieceRecord`` (melody, harmony and lyric events as joined)."""


@dataclass
class PieceFiles:
    """The files of a finished piece by name, and what ``PieceCompleted`` reports of them:
    loudness of the mastered mix (None if audio failed), the audio's length with its
    tail, seconds per rendering step, and what could not be rendered (name: reason)."""

    files: dict[str, bytes]
    loudness: dict[str, object] | None = None
    audio_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    vocals_gain_db: float | None = None
    """The gain ``vocals.wav`` was written with (None: no stem)."""


def leadsheet_inputs(parts: PieceParts) -> tuple[list[Bar], list[list[tuple[int, str]]], list]:
    """Melody bars, chord spans ``(onset in bar, symbol)`` per bar and lyrics ``(piece tick,
    syllable)`` of the whole piece, un-humanised (notation is written as composed)."""
    meter = spec_meter(parts.spec)
    bars, chords, lyrics = [], [], []
    for index in range(parts.bar_count):
        bar = pb_to_bar(parts.melody[index].notes, meter)
        bars.append(bar)
        chords.append(
            [(span.onset_ticks, span.symbol) for span in parts.harmony_by_bar[index].chords]
        )
        for line in parts.lyric_lines.values():
            for syllable in line.syllables:
                if syllable.bar_index == index and syllable.note_index < len(bar.notes):
                    onset = index * meter.bar_ticks + bar.notes[syllable.note_index].onset
                    lyrics.append((onset, syllable.text))
    return bars, chords, hyphenated_for_notation(sorted(lyrics))


def section_tempo_marks(parts: PieceParts) -> dict[int, float]:
    """Bar (0-based) → bpm where a section set to its own tempo (an edit, issue #18) starts,
    and where the piece's tempo returns after it: the lead sheet's metronome marks."""
    bars = parts.bar_count
    own = [0.0] * bars  # each bar's section tempo, 0 for the piece's
    for section in parts.spec.form.sections:
        if section.tempo_bpm > 0:
            for bar in range(section.first_bar, min(bars, section.first_bar + section.bar_count)):
                own[bar] = section.tempo_bpm
    marks = {0: own[0]} if bars and own[0] else {}
    for bar in range(1, bars):
        if own[bar] != own[bar - 1]:
            marks[bar] = own[bar] or parts.spec.tempo_bpm
    return marks


def hyphenated_for_notation(lyrics: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Syllables as notation wants them: a word's later syllables also get a leading hyphen
    ("hap-", "py" → "hap-", "-py"), which music21 reads as the end (or middle) of a word.
    Events and MIDI keep the karaoke form, a trailing hyphen on all but the last."""
    out, continues = [], False
    for tick, text in lyrics:
        out.append((tick, f"-{text}" if continues and not text.startswith("-") else text))
        continues = text.endswith("-")
    return out


def piece_form(parts: PieceParts) -> FormPlan | None:
    """The piece's form plan; None for a spec without one (or with a plan that does not
    hold, which is logged: the files are rendered without sections then)."""
    try:
        plan = spec_form(parts.spec)
    except MusicError as error:
        log.warning("ignoring the piece's form plan: %s", error)
        return None
    if plan is not None and plan.total_bars != parts.bar_count:
        log.warning(
            "ignoring a form plan of %d bars in a %d-bar piece", plan.total_bars, parts.bar_count
        )
        return None
    return plan


def lyric_title(parts: PieceParts) -> str | None:
    """The lyrics' title line (``song_form.title_line``: the first line of the first
    chorus, else the first line), or None without lyrics."""
    lines = {i: (line.first_bar, line.text) for i, line in parts.lyric_lines.items()}
    found = title_line(piece_form(parts), lines)
    return None if found is None else found[1]


def ci_stanza_marks(parts: PieceParts) -> dict[int, str]:
    """Bar → the ci stanza (词牌) sung from there: the first bar of each run of lyric lines
    that carry one (``LyricLine.ci_stanza``)."""
    marks: dict[int, str] = {}
    previous = ""
    for _, line in sorted(parts.lyric_lines.items()):
        if line.ci_stanza and line.ci_stanza != previous:
            marks[line.first_bar] = line.ci_stanza
        if line.text:
            previous = line.ci_stanza
    return marks


def piece_title(parts: PieceParts) -> str:
    """The lyrics' title line when the piece has lyrics, else its style and key."""
    title = lyric_title(parts)
    if title:
        return title[:1].upper() + title[1:]
    return f"{parts.spec.style.title() or 'Folk'} in {spec_key(parts.spec).name}"


def _synthesise(step, tracks: list[Track], parts: PieceParts):
    """All parts synthesised in one pass (stems by part name), or None if that failed."""
    from cantus.render.synth import render_stems

    stems = None
    with step("synth"):
        last_end = max((n.end for t in tracks for n in t.notes), default=0)
        stems = render_stems(
            tracks,
            tempo_bpm=parts.tempo_map,
            end_tick=max(parts.bar_count * parts.bar_ticks, last_end),
            tail_seconds=TAIL_SECONDS,
        )
    return stems


def _measured_master(audio: np.ndarray, preset: str):
    """Already-mastered audio (the streamed segments) with its loudness measured."""
    from cantus.render.mix import MasterResult, integrated_loudness, true_peak_dbtp
    from cantus.render.synth import SAMPLE_RATE

    return MasterResult(
        audio=audio,
        sample_rate=SAMPLE_RATE,
        integrated_lufs=integrated_loudness(audio, SAMPLE_RATE),
        true_peak_dbtp=true_peak_dbtp(audio, SAMPLE_RATE),
        gain_db=0.0,
        preset=preset,
    )


def _record_loudness(result: PieceFiles, mastered) -> None:
    from cantus.render.mix import PRESETS

    chosen = PRESETS[mastered.preset]
    result.audio_seconds = len(mastered.audio) / mastered.sample_rate
    result.loudness = {
        "preset": mastered.preset,
        "target_lufs": chosen.target_lufs,
        "ceiling_dbtp": chosen.ceiling_dbtp,
        "integrated_lufs": round(mastered.integrated_lufs, 2),
        "true_peak_dbtp": round(mastered.true_peak_dbtp, 2),
        "gain_db": round(mastered.gain_db, 2),
    }


@dataclass(frozen=True)
class PieceOutputs:
    """Which of a finished piece's files are made besides piece.mid, its parts and
    piece.json."""

    audio_formats: tuple[str, ...]
    leadsheet: bool
    pictures: bool

    @classmethod
    def asked(
        cls, spec: pb.PieceSpec, *, audio_formats: Sequence[str], leadsheet: bool
    ) -> PieceOutputs:
        """What the piece's request asked for (``PieceSpec.outputs``; a station asks for its
        stream's audio only), else the render service's settings. The lead sheet needs the
        service's too: it is off where LilyPond is not installed."""
        asked = list(spec.outputs)
        if not asked:
            return cls(tuple(audio_formats), leadsheet, True)
        return cls(
            tuple(name for name in asked if name not in ("leadsheet", "pictures")),
            leadsheet and "leadsheet" in asked,
            "pictures" in asked,
        )


def render_piece_files(
    parts: PieceParts,
    *,
    piece_id: str,
    event_log: list[dict],
    preset: str = "streaming",
    audio_formats: tuple[str, ...] | list[str] = ("wav", "flac", "mp3", "opus"),
    leadsheet: bool = True,
    pictures: bool = True,
    streamed_audio: np.ndarray | None = None,
    streamed_vocals: np.ndarray | None = None,
) -> PieceFiles:
    """Every file of a finished piece (see the module docstring). A step that fails (no
    FluidSynth, no LilyPond, music21 refusing a chord) leaves its files out and is named
    in ``PieceFiles.errors`` and piece.json; the MIDI and the summary are always there.

    ``streamed_audio``: the piece's segments as they were streamed, mastered and joined
    ([samples, 2] float at ``SAMPLE_RATE``). Given, the audio files are exactly what
    listeners heard; without it the piece is synthesised and mastered here in one pass.
    ``streamed_vocals``: the vocal stem of those segments (mono), written as ``vocals.wav``;
    a piece with vocals rendered here gets its stem sung here."""
    from cantus.render.exports import audio_export_files
    from cantus.render.mix import master
    from cantus.render.pianoroll import pianoroll_png
    from cantus.render.synth import SAMPLE_RATE

    started = time.perf_counter()
    result = PieceFiles(files={})
    meter = spec_meter(parts.spec)
    tracks = parts.piece_tracks(0, parts.bar_count)

    def step(name: str):
        return _Step(result, name)

    with step("midi"):
        result.files["piece.mid"] = parts.midi(0, parts.bar_count)
    # What an edit starts from (issue #18): the parts exactly as they were rendered.
    result.files[PARTS_FILE] = parts.to_record().SerializeToString()
    # The lead sheet first: LilyPond (a subprocess) engraves it while the audio is
    # mastered and encoded and the pictures are drawn.
    engraving: Future[EngravedLeadsheet] | None = None
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="piece-files")
    if leadsheet:
        from cantus.render.leadsheet import engrave_leadsheet, leadsheet_musicxml

        with step("musicxml"):
            bars, chords, lyrics = leadsheet_inputs(parts)
            result.files["piece.musicxml"] = leadsheet_musicxml(
                bars,
                chords,
                lyrics,
                spec_key(parts.spec),
                meter,
                parts.spec.tempo_bpm,
                title=piece_title(parts),
                form=piece_form(parts),
                tempo_marks=section_tempo_marks(parts),
                stanzas=ci_stanza_marks(parts),
            )
        if "piece.musicxml" in result.files:
            engraving = pool.submit(engrave_leadsheet, result.files["piece.musicxml"])
    stems = mastered = None
    vocals = streamed_vocals
    profiles = None
    if streamed_audio is not None and len(streamed_audio):
        with step("master"):
            mastered = _measured_master(streamed_audio, preset)
            _record_loudness(result, mastered)
    else:
        stems = _synthesise(step, tracks, parts)
    if stems is not None and parts.vocals:
        from cantus.render.mix import vocal_profiles
        from cantus.render.vocals import render_vocals

        with step("vocals"):
            samples = len(next(iter(stems.values())))
            vocals = render_vocals(
                parts.sung_notes(0, parts.bar_count),
                parts.spec.lyrics_language or "en",
                samples,
                SAMPLE_RATE,
            )
            stems["vocals"] = np.repeat(vocals[:, None], 2, axis=1)
            profiles = vocal_profiles(parts.palette.name)
    if stems is not None:
        with step("master"):
            mastered = master(
                stems, SAMPLE_RATE, preset, profiles=profiles, palette=parts.palette.name
            )
            _record_loudness(result, mastered)
        del stems
    if vocals is not None and mastered is not None:
        from cantus.render.mix import PRESETS

        with step("vocals_wav"):
            target = PRESETS[mastered.preset].target_lufs
            result.files[VOCALS_FILE], gain_db = vocals_wav(vocals, SAMPLE_RATE, target)
            result.vocals_gain_db = gain_db
    # The encoders (ffmpeg or libsndfile, outside the GIL) run while the pictures are drawn.
    encoding: Future[tuple[dict[str, bytes], float]] | None = None
    if mastered is not None:
        encoding = pool.submit(
            _timed, audio_export_files, mastered.audio, SAMPLE_RATE, tuple(audio_formats)
        )
    drawn: dict[str, bytes] = {}  # filed after the audio, in the order files always had
    if pictures:
        with step("pianoroll"):
            drawn[PIANOROLL_FILE] = pianoroll_png(tracks, meter=meter, title=piece_title(parts))
        with step("selfsim"):
            from cantus.render.selfsim import SELFSIM_FILE, selfsim_png

            melody = [pb_to_bar(parts.melody[i].notes, meter) for i in range(parts.bar_count)]
            drawn[SELFSIM_FILE] = selfsim_png(
                melody, key=spec_key(parts.spec), plan=piece_form(parts), title=piece_title(parts)
            )
    if encoding is not None:
        with step("encode"):
            exported, seconds = encoding.result()
            result.files.update(exported)
        if "encode" not in result.errors:
            result.timings["encode"] = round(seconds, 3)  # its own time, not the wait
    result.files.update(drawn)
    if engraving is not None:
        with step("engrave"):
            engraved = engraving.result()
            result.files["piece.pdf"] = engraved.pdf
            result.files["piece.png"] = engraved.png
        if "engrave" not in result.errors:
            result.timings["engrave"] = round(engraved.seconds, 3)  # its own time, not the wait
    pool.shutdown(wait=True)
    result.timings["wall"] = round(time.perf_counter() - started, 3)  # steps overlap
    result.files["piece.json"] = _summary_json(parts, piece_id, event_log, result)
    return result


def _timed(function, *args):
    """``function(*args)`` and the seconds it took (for a step run beside others)."""
    started = time.perf_counter()
    return function(*args), time.perf_counter() - started


class _Step:
    """Times one rendering step into ``timings``; an exception is logged and recorded in
    ``errors`` instead of failing the piece."""

    def __init__(self, result: PieceFiles, name: str) -> None:
        self.result, self.name = result, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, kind, error, traceback) -> bool:
        if self.name not in self.result.timings:
            self.result.timings[self.name] = round(time.perf_counter() - self.started, 3)
        if error is None:
            return False
        if self.name == "midi" or not isinstance(error, Exception):
            return False  # no MIDI, no piece: let the service retry and dead-letter
        log.warning("rendering %s failed: %s: %s", self.name, type(error).__name__, error)
        self.result.errors[self.name] = f"{type(error).__name__}: {error}"[:500]
        return True


def _summary_json(
    parts: PieceParts, piece_id: str, event_log: list[dict], result: PieceFiles
) -> bytes:
    key = spec_key(parts.spec)
    melody_models = sorted({bar.model for bar in parts.melody.values() if bar.model})
    harmonizers = sorted({bar.harmonizer for bar in parts.harmony})
    plan = piece_form(parts)
    lyrics = [
        {
            "line": index,
            "first_bar": line.first_bar,
            "bar_count": line.bar_count,
            "text": line.text,
            "section": (
                plan.sections[plan.heard_section_index(line.first_bar)].label
                if plan is not None
                else None
            ),
            "ci_stanza": line.ci_stanza or None,
        }
        for index, line in sorted(parts.lyric_lines.items())
        if line.text
    ]
    summary = {
        "piece_id": piece_id,
        "request": MessageToDict(parts.spec, preserving_proto_field_name=True),
        "key": key.name,
        "meter": str(spec_meter(parts.spec)),
        "tempo_bpm": parts.spec.tempo_bpm,
        "bars": parts.bar_count,
        "form": _form_summary(parts),
        "palette": parts.palette.name,
        "duration_seconds": round(parts.seconds_before_bar(parts.bar_count), 3),
        "audio_duration_seconds": round(result.audio_seconds, 3),
        "loudness": result.loudness,
        "humanised": parts.humanise,
        "chords_per_bar": [[span.symbol for span in bar.chords] for bar in parts.harmony],
        "roman_numerals_per_bar": [[span.roman for span in bar.chords] for bar in parts.harmony],
        "melody_per_bar": [
            [[n.onset_ticks, n.pitch, n.duration_ticks] for n in parts.melody[i].notes]
            for i in sorted(parts.melody)
        ],
        "lyrics": lyrics,
        "lyrics_title": lyric_title(parts),
        "vocals": (
            None
            if result.vocals_gain_db is None
            else {"file": VOCALS_FILE, "gain_db": round(result.vocals_gain_db, 6)}
        ),
        "models": {"melody": melody_models, "harmony": harmonizers},
        "ticks_per_quarter": TICKS_PER_QUARTER,
        "files": sorted([*result.files, "piece.json"]),
        "render_seconds": result.timings,
        "render_errors": result.errors,
        "event_log": sorted(event_log, key=lambda entry: entry["produced_at_unix_ns"]),
    }
    return json.dumps(summary, indent=2).encode()


def _form_summary(parts: PieceParts) -> dict | None:
    """piece.json's ``form``: the plan's name, home key and sections (label, first bar and
    bars, key and key area, energy, treatment, cadence, the source section a repeat or
    variation reuses by index and label, where the section starts in seconds, and the
    palette and tempo an edit gave it, if any); None without a plan."""
    plan = piece_form(parts)
    if plan is None:
        return None
    summary = plan.to_dict()
    labels = plan.labels()
    for section, stated in zip(summary["sections"], parts.spec.form.sections, strict=True):
        section["source_label"] = None if section["source"] is None else labels[section["source"]]
        section["start_seconds"] = round(parts.seconds_before_bar(section["first_bar"]), 3)
        if stated.palette:
            section["palette"] = stated.palette
        if stated.tempo_bpm:
            section["tempo_bpm"] = stated.tempo_bpm
    return summary
