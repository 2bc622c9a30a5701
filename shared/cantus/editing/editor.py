"""Edits of stored pieces: each makes a new version of the piece and streams only what
changes (issue #18).

``PieceEditor.open`` reads the version edited (its ``parts.pb``: melody, harmony and lyric
events as render joined them), checks the edit against it and claims the next version
number (an exclusive create in the store, so concurrent edits never share one);
``PieceEditor.run`` streams ``PieceEdited``, then the melody and harmony bars that change
as they are made, the render segments whose audio changes, and ``PieceCompleted``
once the new version's files are stored. Nothing is stored before the end, and the
version's ``piece.json`` is written last (``cantus.storage``): an edit that fails leaves
every stored version as it was.

* **regenerate** bars i..j: the melody is infilled (``cantus.melody.infill``: left context
  in the prompt, the closing phrase chosen by the likelihood of the bars after it, the
  plan's cadence kept), and each new bar is harmonised as soon as the bar after it is
  known (the harmony model reads one bar of lookahead).
* **reharmonize** bars i..j (or all): chords again in another style or energy, with the
  same history, cadences and voicing as the harmony service.
* **change_sound**: palette and/or tempo of the whole piece; no bar changes, every
  segment is rendered again.

The models come in as functions (``EditModels``), so the same editor runs on Triton in the
gateway and on in-process fakes in unit tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cantus.editing.audio import (
    SPLICE_CLICK_RATIO,
    SplicedAudio,
    join_steps,
    merge_spans,
    splice_bars,
    splice_spans,
    vocal_changes,
    wav_to_audio,
    whole_piece_audio,
)
from cantus.editing.requests import (
    Edit,
    EditError,
    LyricsEdit,
    RegenerateEdit,
    ReharmonizeEdit,
    SectionSoundEdit,
    SoundEdit,
    validate_edit,
)
from cantus.events.codec import new_meta
from cantus.events.conversions import (
    notes_to_pb,
    pb_to_bar,
    pb_to_notes,
    spec_energy,
    spec_form,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.bar_harmony import AskModel, HarmonyContext, harmonize_piece_bar, span_beats
from cantus.harmony.context import HarmonizedBar
from cantus.harmony.rules import ChordSpan
from cantus.harmony.serving import HISTORY_BARS
from cantus.harmony.voicing import tune_before
from cantus.melody.composition import DecodePhrase
from cantus.melody.infill import RIGHT_BARS, Infiller, ScoreSuffix
from cantus.melody.prompting import MelodyPrompter
from cantus.music.chords import ChordSymbol
from cantus.music.form import FormPlan, plan_form
from cantus.music.notes import Bar, MusicError
from cantus.music.styles import Energy, Style
from cantus.render.piece import (
    PARTS_FILE,
    VOCALS_FILE,
    PieceParts,
    render_piece_files,
    render_segment_midi,
    stored_vocals,
)
from cantus.storage import (
    PieceNotFound,
    PieceStore,
    StorageError,
    VersionNotFound,
    check_piece_id,
)
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

if TYPE_CHECKING:
    from cantus.lyrics.writer import LyricResources

log = logging.getLogger("cantus.editing")

PRODUCER = "editor"
EDIT_INPUTS = (PARTS_FILE, "piece.json", "piece.wav", VOCALS_FILE)
"""What an edit reads of the version it starts from (not the other exports or pictures)."""


class EditUnsupported(StorageError):
    """The stored version cannot be edited (it predates stored parts)."""


@dataclass
class EditModels:
    """What an edit asks of the models: a phrase decoder for a piece's spec (melody_lm), the
    suffix scorer (melody_score; None: left context only), one bar's chords (harmony)."""

    decoder: Callable[[pb.PieceSpec], DecodePhrase]
    score: ScoreSuffix | None
    harmonize: AskModel
    prompter: MelodyPrompter
    harmony_model_version: str
    lyrics: LyricResources | None = None
    """Lexicons, theme embedder and the lyric_lm scorer (lyric rewrites)."""


@dataclass(frozen=True)
class EditOptions:
    """Rendering and infilling settings (the service's ``Settings`` hold them)."""

    segment_bars: int = 4
    candidates: int = 4
    preset: str = "streaming"
    audio_formats: tuple[str, ...] = ("wav", "flac", "mp3", "opus")
    leadsheet: bool = True
    humanise: bool = True
    lyric_melisma: bool = False
    fill_in_middle: bool = False
    register_contrast: bool = True
    register_window: bool = True


@dataclass
class OpenedEdit:
    """An edit checked against the version it starts from, ready to run."""

    piece_id: str
    from_version: int
    version: int
    edit: Edit
    parts: PieceParts
    summary: dict[str, Any]
    previous_audio: bytes | None
    seed: int
    previous_vocals: bytes | None = None
    """The version's vocals.wav (a sung piece's stem, spliced as its mix is)."""
    timings: dict[str, float] = field(default_factory=dict)
    infill: dict[str, Any] | None = None
    """How the closing phrase of a regeneration was chosen (piece.json's history)."""
    sound_spans: list[tuple[int, int]] | None = None
    """The bars whose sound a section's sound edit changes (``sound_changes``)."""
    sung_spans: list[tuple[int, int]] | None = None
    """A sung piece's spans of bars rendered again (instruments and voice), where spliced."""


class PieceEditor:
    def __init__(self, store: PieceStore, models: EditModels, options: EditOptions) -> None:
        self.store = store
        self.models = models
        self.options = options
        self.locks: dict[str, asyncio.Lock] = {}

    def lock(self, piece_id: str) -> asyncio.Lock:
        """One edit of a piece at a time in this process (edits in other processes are kept
        apart by the store's exclusive version claim, ``PieceStore.claim_version``)."""
        return self.locks.setdefault(piece_id, asyncio.Lock())

    # --- checking ------------------------------------------------------------------------

    def open(self, request: api.EditRequest) -> OpenedEdit:
        """Read and check; raises ``InvalidPieceId``, ``PieceNotFound``, ``VersionNotFound``,
        ``EditUnsupported`` or ``EditError`` (each naming the request field)."""
        piece_id = check_piece_id(request.piece_id)
        versions = self.store.versions(piece_id)
        if not versions:
            raise PieceNotFound(f"piece_id: piece {piece_id} is not finished or does not exist")
        from_version = request.from_version or versions[-1]
        if from_version not in versions:
            raise VersionNotFound(
                f"from_version: piece {piece_id} has no version {from_version} "
                f"(versions 1..{versions[-1]})"
            )
        files = self.store.read_files(piece_id, EDIT_INPUTS, from_version)
        if PARTS_FILE not in files:
            raise EditUnsupported(
                f"piece_id: version {from_version} of piece {piece_id} was stored before "
                f"pieces kept their parts ({PARTS_FILE}); compose it again to edit it"
            )
        record = pb.PieceRecord.FromString(files[PARTS_FILE])
        parts = PieceParts.from_record(record, humanise=self.options.humanise)
        edit = validate_edit(request, parts.spec, record)
        if isinstance(edit, RegenerateEdit) and edit.sung and self.models.lyrics is None:
            raise EditError(
                "regenerate.bars",
                f"bars {edit.first + 1}-{edit.last + 1} are sung (lyric lines "
                f"{', '.join(str(i + 1) for i in edit.sung)}) and this editor has no lyric "
                "model to fit new words to the new notes",
            )
        seed = request.seed if request.HasField("seed") else random.randrange(2**31)
        # last, once the edit is known to be valid: an exclusive claim, so two edits of the
        # piece at once (here or in another gateway) never make the same version
        version = self.store.claim_version(piece_id)
        return OpenedEdit(
            piece_id=piece_id,
            from_version=from_version,
            version=version,
            edit=edit,
            parts=parts,
            summary=json.loads(files["piece.json"]),
            previous_audio=files.get("piece.wav"),
            seed=seed,
            previous_vocals=files.get(VOCALS_FILE),
        )

    # --- running -------------------------------------------------------------------------

    async def run(self, opened: OpenedEdit) -> AsyncIterator[api.PieceEvent]:
        """Make the new version, streaming what changes; stores it at the end. An edit that
        fails or is abandoned (the client went away) gives its claimed version back."""
        stored = False
        try:
            async for event in self._run(opened):
                stored = event.HasField("completed")
                yield event
        finally:
            if not stored:
                await asyncio.to_thread(self.release, opened)

    def release(self, opened: OpenedEdit) -> None:
        """Give back the version ``open`` claimed, for an edit that will not run."""
        try:
            self.store.release_version(opened.piece_id, opened.version)
        except Exception as error:  # a gap in the version numbers, never a mixed version
            log.warning(
                "piece %s: version %d not given back (%s)", opened.piece_id, opened.version, error
            )

    async def _run(self, opened: OpenedEdit) -> AsyncIterator[api.PieceEvent]:
        started = time.perf_counter()
        edit, old = opened.edit, opened.parts
        spec = pb.PieceSpec()
        spec.CopyFrom(old.spec)
        # An edit is a user's: its version gets every file, whatever the piece was made for
        # (a station's piece is made with its stream's audio only).
        del spec.outputs[:]
        if isinstance(edit, SoundEdit):
            spec.palette = edit.palette
            spec.tempo_bpm = edit.tempo_bpm
        elif isinstance(edit, SectionSoundEdit):
            _set_section_sound(spec, edit)
        parts = dataclasses.replace(
            old,
            spec=spec,
            melody=dict(old.melody),
            harmony_by_bar=dict(old.harmony_by_bar),
            lyric_lines=dict(old.lyric_lines),
        )
        yield api.PieceEvent(
            edited=api.PieceEdited(
                piece_id=opened.piece_id,
                version=opened.version,
                from_version=opened.from_version,
                spec=spec,
                kind=edit.kind,
                description=edit.describe(),
            )
        )
        if isinstance(edit, RegenerateEdit):
            async for event in self._regenerate(opened, parts, edit, started):
                if "first_bar" not in opened.timings and event.HasField("melody_bar"):
                    opened.timings["first_bar"] = round(time.perf_counter() - started, 3)
                yield event
            if edit.sung:  # the sung lines on the new notes: written again to fit them
                async for event in self._rewrite_lyrics(
                    opened,
                    parts,
                    lambda line: _overlaps(line, edit.first, edit.last),
                    theme=parts.spec.lyrics_theme,
                    field="regenerate.bars",
                ):
                    yield event
            changed = (edit.first, edit.last)
        elif isinstance(edit, ReharmonizeEdit):
            async for event in self._reharmonize(opened, parts, edit):
                yield event
            changed = (edit.first, edit.last)
        elif isinstance(edit, LyricsEdit):
            async for event in self._rewrite_lyrics(
                opened,
                parts,
                lambda line: edit.first <= line.first_bar <= edit.last,
                theme=edit.theme,
                field="rewrite_lyrics",
            ):
                yield event
            changed = (edit.first, edit.last)
        elif isinstance(edit, SectionSoundEdit):
            opened.sound_spans = sound_changes(old, parts)
            spans = opened.sound_spans or [(edit.first, edit.last)]
            changed = (spans[0][0], spans[-1][1])
        else:
            changed = (0, parts.bar_count - 1)
        opened.timings["bars"] = round(time.perf_counter() - started, 3)

        audio = await asyncio.to_thread(self._audio, opened, parts, changed)
        opened.timings["audio"] = round(time.perf_counter() - started, 3)
        streamed = changed
        if opened.sung_spans:  # the voice changed around the bars too: their segments again
            streamed = (
                min(changed[0], opened.sung_spans[0][0]),
                max(changed[1], opened.sung_spans[-1][1]),
            )
        for segment in await asyncio.to_thread(self._segments, opened, parts, streamed, audio):
            yield api.PieceEvent(render_segment=segment)
        completed = await asyncio.to_thread(self._store, opened, parts, changed, audio, started)
        yield api.PieceEvent(completed=completed)

    async def _regenerate(
        self, opened: OpenedEdit, parts: PieceParts, edit: RegenerateEdit, started: float
    ) -> AsyncIterator[api.PieceEvent]:
        spec = parts.spec
        meter = spec_meter(spec)
        bars = [pb_to_bar(parts.melody[i].notes, meter) for i in range(parts.bar_count)]
        controls = self.models.prompter.controls(spec)
        plan = _plan(spec, controls.key, spec_energy(spec))
        infiller = Infiller(
            plan,
            controls,
            opened.seed,
            self.models.prompter.tokenizer,
            candidates=self.options.candidates,
            fill_in_middle=self.options.fill_in_middle,
            register_contrast=self.options.register_contrast,
            register_window=self.options.register_window,
        )
        harmonizer = _RangeHarmonizer(
            self.models, parts, edit.first, spec_style(spec), spec_energy(spec), plan
        )
        # seconds from the edit's start to its first request to melody_lm (the rest of the
        # first bar's time is the model's: prompt, then the bar's tokens)
        opened.timings["decode_start"] = round(time.perf_counter() - started, 3)
        try:
            async for index, bar in infiller.fill(
                bars, edit.first, edit.last, self.models.decoder(spec), self.models.score
            ):
                melody = pb.MelodyBar(
                    meta=new_meta(opened.piece_id, index, PRODUCER),
                    spec=spec,
                    notes=notes_to_pb(bar.notes),
                    model=self.models.prompter.model_version,
                )
                parts.melody[index] = melody
                yield api.PieceEvent(melody_bar=melody)
                if index > edit.first:
                    yield api.PieceEvent(harmony_bar=await harmonizer.next(opened.piece_id))
        except MusicError as error:
            raise EditError("regenerate.bars", f"the bars around them: {error}") from None
        yield api.PieceEvent(harmony_bar=await harmonizer.next(opened.piece_id))
        scores = infiller.report.suffix_logprobs
        opened.infill = {
            "candidates": len(scores) or 1,
            "suffix_logprobs": [round(s, 3) for s in scores],
            "chosen": infiller.report.chosen,
            "scored_bars_after": min(RIGHT_BARS, parts.bar_count - 1 - edit.last),
        }
        if scores:
            log.info(
                "piece %s v%d: closing phrase chosen among %d candidates by the bars after "
                "them (log P %s, kept %d)",
                opened.piece_id,
                opened.version,
                len(scores),
                ", ".join(f"{s:.1f}" for s in scores),
                infiller.report.chosen,
            )

    async def _reharmonize(
        self, opened: OpenedEdit, parts: PieceParts, edit: ReharmonizeEdit
    ) -> AsyncIterator[api.PieceEvent]:
        spec = parts.spec
        plan = _plan(spec, spec_key(spec), spec_energy(spec))
        if edit.energy != spec_energy(spec):
            plan = dataclasses.replace(
                plan,
                sections=tuple(dataclasses.replace(s, energy=edit.energy) for s in plan.sections),
            )
        harmonizer = _RangeHarmonizer(self.models, parts, edit.first, edit.style, edit.energy, plan)
        for _ in range(edit.first, edit.last + 1):
            yield api.PieceEvent(harmony_bar=await harmonizer.next(opened.piece_id))

    async def _rewrite_lyrics(
        self,
        opened: OpenedEdit,
        parts: PieceParts,
        chosen: Callable[[pb.LyricLine], bool],
        *,
        theme: str,
        field: str,
    ) -> AsyncIterator[api.PieceEvent]:
        """The ``chosen`` sung lines written again on the notes they now have, each on the
        lines before it (as the lyric service writes them: same slots, rhyme scheme per
        section, constraints), seeded by the edit, and with them every later line of the
        stanza that rhymes with one of them (else its rhyme would be lost); the other
        lines are kept word for word. ``field`` names the request field in errors."""
        from cantus.lyrics.ci import sing_named
        from cantus.lyrics.decoding import DecodedLine, NoWordsFit
        from cantus.lyrics.slots import (
            DEFAULT_RHYME_SCHEME,
            LineSlots,
            is_rhyme_anchor,
            make_line,
            rhyme_word,
        )
        from cantus.lyrics.song_form import SungLine, line_melody, stanza_start
        from cantus.lyrics.writer import write_piece_line

        if self.models.lyrics is None:
            raise RuntimeError("this editor has no lyric model")
        spec = parts.spec
        meter = spec_meter(spec)
        plan = spec_form(spec)
        scheme = spec.lyrics_rhyme_scheme or DEFAULT_RHYME_SCHEME
        written: dict[int, DecodedLine] = {}
        sung: list[SungLine] = []
        rewritten_lines: set[int] = set()
        planned: dict[int, LineSlots] = {}
        for index in sorted(parts.lyric_lines):
            line = parts.lyric_lines[index]
            bars = [
                pb_to_notes(parts.melody[b].notes)
                for b in range(line.first_bar, line.first_bar + line.bar_count)
            ]
            stanza = stanza_start(plan, line.first_bar, sung)
            planned[index] = make_line(
                index,
                line.first_bar,
                bars,
                meter,
                scheme,
                self.options.lyric_melisma,
                stanza_start=stanza,
            )
            sung.append(SungLine(index, line.first_bar, line.bar_count, (), (), ()))
        # sections sung to a ci stanza keep it, on the notes they have now
        names = {i: line.ci_stanza for i, line in parts.lyric_lines.items() if line.ci_stanza}
        carried = sing_named(list(planned.values()), names, plan) if names else {}
        anchors = {s.rhymes_with for s in carried.values() if s.rhymes_with is not None}
        sung = []
        for index in sorted(parts.lyric_lines):
            line = parts.lyric_lines[index]
            stanza = stanza_start(plan, line.first_bar, sung)
            slots = carried.get(index, planned[index])
            is_anchor = (
                index in anchors if index in carried else is_rhyme_anchor(index - stanza, scheme)
            )
            rhymes_with_rewritten = (
                slots.rhymes_with is not None and slots.rhymes_with in rewritten_lines
            )
            if line.syllables and (chosen(line) or rhymes_with_rewritten):
                rewritten_lines.add(index)
                try:
                    decoded = await asyncio.to_thread(
                        write_piece_line,
                        self.models.lyrics,
                        slots,
                        language=spec.lyrics_language or "en",
                        theme=theme,
                        mood=spec.mood,
                        seed=opened.seed,
                        written=dict(written),
                        is_anchor=is_anchor,
                        register=spec.lyrics_register,
                    )
                except NoWordsFit as error:
                    raise EditError(field, f"lyric line {index + 1}: {error}") from None
                rewritten = pb.LyricLine(
                    meta=new_meta(opened.piece_id, index, PRODUCER),
                    spec=spec,
                    first_bar=line.first_bar,
                    bar_count=line.bar_count,
                    syllables=[
                        pb.Syllable(bar_index=slot.bar_index, note_index=slot.note_index, text=text)
                        for slot, text in zip(slots.slots, decoded.syllables, strict=True)
                    ],
                    text=decoded.text,
                    ci_stanza=line.ci_stanza if index in carried else "",
                )
                parts.lyric_lines[index] = rewritten
                yield api.PieceEvent(lyric_line=rewritten)
            else:
                decoded = DecodedLine.from_text(line.text, [s.text for s in line.syllables])
                if decoded.words:  # the rhyme a rewritten line after it must keep
                    decoded.rhyme = self.models.lyrics.rhyme_of(
                        spec.lyrics_language or "en",
                        spec.lyrics_register,
                        rhyme_word(slots, decoded.words),
                    )
            written[index] = decoded
            sung.append(
                SungLine(
                    index,
                    line.first_bar,
                    line.bar_count,
                    line_melody(line.first_bar, slots.slots),
                    tuple(decoded.words),
                    tuple(decoded.syllables),
                    decoded.rhyme,
                    tuple(decoded.clauses),
                )
            )

    # --- audio and files (worker threads) ------------------------------------------------

    def _audio(
        self, opened: OpenedEdit, parts: PieceParts, changed: tuple[int, int]
    ) -> SplicedAudio | None:
        edit = opened.edit
        try:
            if parts.vocals and opened.previous_audio and not isinstance(edit, SoundEdit):
                spliced = self._sung_splice(opened, parts, changed)
                if spliced is not None:
                    return spliced
            unchanged = isinstance(edit, LyricsEdit) or (
                isinstance(edit, SectionSoundEdit) and not opened.sound_spans
            )
            if unchanged and not parts.vocals and opened.previous_audio:
                previous, rate = wav_to_audio(opened.previous_audio)
                return SplicedAudio(previous, rate, rendered_bars=None, rendered_seconds=0.0)
            if (
                isinstance(edit, SectionSoundEdit)
                and opened.sound_spans
                and opened.previous_audio is not None
                and not parts.vocals
            ):
                previous, rate = wav_to_audio(opened.previous_audio)
                return splice_spans(
                    previous,
                    rate,
                    opened.parts,
                    parts,
                    opened.sound_spans,
                    preset=self._preset(parts),
                )
            if isinstance(edit, SoundEdit) or opened.previous_audio is None or parts.vocals:
                return whole_piece_audio(
                    parts, self.options.segment_bars, preset=self._preset(parts)
                )
            previous, rate = wav_to_audio(opened.previous_audio)
            return splice_bars(
                previous, rate, parts, changed[0], changed[1], preset=self._preset(parts)
            )
        except Exception as error:  # no synthesiser: the version is stored without audio
            log.warning("piece %s: no audio for the edit (%s)", opened.piece_id, error)
            return None

    def _sung_splice(
        self, opened: OpenedEdit, parts: PieceParts, changed: tuple[int, int]
    ) -> SplicedAudio | None:
        """A sung piece's edit spliced: the bars whose instruments change (``changed``, or a
        section's sound spans; none for lyrics) and those whose sung notes change
        (``vocal_changes``), rendered with the voice; None (render it whole) where a join
        would click (a step over ``SPLICE_CLICK_RATIO`` times the music's around it)."""
        edit = opened.edit
        assert opened.previous_audio is not None
        if isinstance(edit, SectionSoundEdit):
            bars = [b for first, last in opened.sound_spans or [] for b in range(first, last + 1)]
        elif isinstance(edit, LyricsEdit):
            bars = []
        else:
            bars = list(range(changed[0], changed[1] + 1))
        bars += vocal_changes(opened.parts, parts)
        previous, rate = wav_to_audio(opened.previous_audio)
        previous_vocals = _previous_vocals(opened)
        if not bars:
            return SplicedAudio(
                previous,
                rate,
                rendered_bars=None,
                rendered_seconds=0.0,
                vocals=previous_vocals
                if previous_vocals is not None
                else _sung_whole(parts, len(previous), rate),
            )
        spans = merge_spans(bars)
        audio = splice_spans(
            previous,
            rate,
            opened.parts,
            parts,
            spans,
            preset=self._preset(parts),
            previous_vocals=previous_vocals,
        )
        clicks = [j for j in join_steps(audio) if j["ratio"] > SPLICE_CLICK_RATIO]
        if clicks:
            log.info(
                "piece %s: a sung splice would click (%s): rendered whole", opened.piece_id, clicks
            )
            return None
        opened.sung_spans = spans
        if audio.vocals is None:  # a stem stored without its gain: the voice sung whole
            audio = dataclasses.replace(audio, vocals=_sung_whole(parts, len(audio.audio), rate))
        return audio

    def _preset(self, parts: PieceParts) -> str:
        return parts.spec.loudness_preset or self.options.preset

    def _segments(
        self,
        opened: OpenedEdit,
        parts: PieceParts,
        changed: tuple[int, int],
        audio: SplicedAudio | None,
    ) -> list[pb.RenderSegment]:
        """The render segments whose bars changed (MIDI and, where rendered, audio), and the
        next one when the crossfade out of the changed bars spills into it; every segment
        after them too when they now last longer or shorter (a section's tempo): the
        later segments' audio is the same, but starts at another time."""
        from cantus.render.exports import SEGMENT_AUDIO_MEDIA_TYPE, encode_segment_audio

        size = self.options.segment_bars
        last_segment = changed[1] // size
        after = changed[1] + 1
        if audio is not None and after % size == 0 and after < parts.bar_count:
            last_segment += 1  # the crossfade into the unchanged bars starts that segment
        bars = parts.bar_count
        if abs(parts.seconds_before_bar(bars) - opened.parts.seconds_before_bar(bars)) > 1e-9:
            last_segment = parts.segment_count(size) - 1
        segments = []
        for index in range(changed[0] // size, last_segment + 1):
            first, count = parts.segment_bars(index, size)
            start = parts.seconds_before_bar(first)
            end = parts.seconds_before_bar(first + count)
            segment = pb.RenderSegment(
                meta=new_meta(opened.piece_id, index, PRODUCER),
                first_bar=first,
                bar_count=count,
                start_seconds=start,
                duration_seconds=end - start,
                midi=render_segment_midi(parts, first, count),
            )
            if audio is not None:
                last = first + count == parts.bar_count
                begin = round(start * audio.sample_rate)
                stop = len(audio.audio) if last else round(end * audio.sample_rate)
                samples = audio.audio[begin:stop]
                segment.audio = encode_segment_audio(samples, audio.sample_rate, serial=index + 1)
                segment.audio_media_type = SEGMENT_AUDIO_MEDIA_TYPE
                segment.audio_start_seconds = begin / audio.sample_rate
                segment.audio_duration_seconds = len(samples) / audio.sample_rate
                segment.audio_sample_rate = audio.sample_rate
            segments.append(segment)
        return segments

    def _store(
        self,
        opened: OpenedEdit,
        parts: PieceParts,
        changed: tuple[int, int],
        audio: SplicedAudio | None,
        started: float,
    ) -> pb.PieceCompleted:
        from cantus.render.exports import export_file_name
        from cantus.storage import media_type

        unchanged = audio is not None and audio.rendered_bars is None
        formats = list(self.options.audio_formats)
        if unchanged:  # encode only what the previous version lacks (a station's piece)
            kept = set(opened.summary.get("files", []))
            formats = [fmt for fmt in formats if export_file_name(fmt) not in kept]
        rendered = render_piece_files(
            parts,
            piece_id=opened.piece_id,
            event_log=[],
            preset=self._preset(parts),
            audio_formats=formats,
            leadsheet=self.options.leadsheet,
            streamed_audio=None if audio is None else audio.audio,
            streamed_vocals=None if audio is None else audio.vocals,
        )
        summary = json.loads(rendered.files["piece.json"])
        if unchanged:  # the same mix: the previous version's exports, byte for byte
            exports = [
                export_file_name(fmt) for fmt in self.options.audio_formats if fmt not in formats
            ]
            rendered.files.update(
                self.store.read_files(opened.piece_id, exports, opened.from_version)
            )
            summary["files"] = sorted(rendered.files)
        history = list(opened.summary.get("edit_history", []))
        entry = {
            "version": opened.version,
            "from_version": opened.from_version,
            "kind": opened.edit.kind,
            "description": opened.edit.describe(),
            "bars": [changed[0] + 1, changed[1] + 1],
            "seed": opened.seed,
            "edit": _edit_dict(opened.edit),
            "rendered_bars": (
                None
                if audio is None or audio.rendered_bars is None
                else [b + 1 for b in audio.rendered_bars]
            ),
            "rendered_audio_seconds": None if audio is None else round(audio.rendered_seconds, 3),
            "joins": None if audio is None or not audio.joins else join_steps(audio),
            "rendered_spans": (
                None
                if audio is None or not audio.spans
                else [[a + 1, b + 1] for a, b in audio.spans]
            ),
            "infill": opened.infill,
            "edited_at_unix_s": round(time.time(), 3),
            "seconds": {**opened.timings, "total": round(time.perf_counter() - started, 3)},
        }
        summary["version"] = opened.version
        summary["edit_history"] = [*history, entry]
        summary["event_log"] = opened.summary.get("event_log", [])
        rendered.files["piece.json"] = json.dumps(summary, indent=2).encode()
        completed = pb.PieceCompleted(
            meta=new_meta(opened.piece_id, parts.bar_count, PRODUCER),
            duration_seconds=parts.seconds_before_bar(parts.bar_count),
            chords_per_bar=[" ".join(span.symbol for span in bar.chords) for bar in parts.harmony],
        )
        # piece.json last: the version exists once it is stored
        for name in sorted(rendered.files, key=lambda n: n == "piece.json"):
            content = rendered.files[name]
            uri = self.store.write(opened.piece_id, name, content, version=opened.version)
            completed.files.append(
                pb.StoredFile(
                    name=name, media_type=media_type(name), size_bytes=len(content), uri=uri
                )
            )
        if rendered.loudness is not None:
            completed.integrated_lufs = float(rendered.loudness["integrated_lufs"])  # type: ignore[arg-type]
            completed.true_peak_dbtp = float(rendered.loudness["true_peak_dbtp"])  # type: ignore[arg-type]
            completed.loudness_preset = str(rendered.loudness["preset"])
            completed.target_lufs = float(rendered.loudness["target_lufs"])  # type: ignore[arg-type]
        return completed


def _previous_vocals(opened: OpenedEdit) -> np.ndarray | None:
    """The version's vocal stem as it was mixed (mono), from its vocals.wav and the gain
    piece.json records it was written with; None where either is missing (a version
    stored before the gain was recorded)."""
    stored = opened.summary.get("vocals") or {}
    if opened.previous_vocals is None or "gain_db" not in stored:
        return None
    return stored_vocals(opened.previous_vocals, float(stored["gain_db"]))


def _sung_whole(parts: PieceParts, samples: int, sample_rate: int) -> np.ndarray:
    """The whole piece's vocal stem (mono, ``samples`` long), sung from its first sample as
    the streamed segments sing it."""
    from cantus.render.vocals import render_vocals

    return render_vocals(
        parts.sung_notes(0, parts.bar_count),
        parts.spec.lyrics_language or "en",
        samples,
        sample_rate,
    )


class _RangeHarmonizer:
    """Harmonises bars from ``first`` on, one per ``next`` call, with the stored bars before
    them as history (as the harmony service would have had it)."""

    def __init__(
        self,
        models: EditModels,
        parts: PieceParts,
        first: int,
        style: Style,
        energy: Energy,
        plan: FormPlan,
    ) -> None:
        self.models, self.parts = models, parts
        self.style, self.energy, self.plan = style, energy, plan
        self.key = spec_key(parts.spec)
        self.meter = spec_meter(parts.spec)
        self.index = first
        self.context = HarmonyContext(complete=first <= HISTORY_BARS)
        for i in range(max(0, first - HISTORY_BARS), first):
            bar = self._melody(i)
            spans = _spans(parts.harmony_by_bar[i])
            self.context.history.append(HarmonizedBar(bar, tuple(span_beats(bar, spans, self.key))))
        if first > 0:
            before = parts.harmony_by_bar[first - 1]
            voicing = pb_to_notes(before.voicing)
            last_onset = max((n.onset for n in voicing), default=None)
            chord = sorted(n.pitch for n in voicing if n.onset == last_onset)
            self.context.voicing = tuple(chord) or None
            self.context.melody_before = tuple(
                tune_before(self._melody(first - 1), self.meter.bar_ticks)
            )

    def _melody(self, index: int) -> Bar:
        return pb_to_bar(self.parts.melody[index].notes, self.meter)

    async def next(self, piece_id: str) -> pb.HarmonyBar:
        index = self.index
        bar = self._melody(index)
        next_bar = self._melody(index + 1) if index + 1 < self.parts.bar_count else None
        made = await harmonize_piece_bar(
            index,
            bar,
            next_bar,
            self.context,
            self.models.harmonize,
            bars=self.parts.bar_count,
            key=self.key,
            style=self.style,
            energy=self.energy,
            plan=self.plan,
            model_version=self.models.harmony_model_version,
        )
        self.context.advance(bar, made.spans, made.voicing, self.key)
        harmony = made.to_pb(new_meta(piece_id, index, PRODUCER), self.parts.spec)
        self.parts.harmony_by_bar[index] = harmony
        self.index += 1
        return harmony


def _set_section_sound(spec: pb.PieceSpec, edit: SectionSoundEdit) -> None:
    """The edit's palette and tempo on its sections of ``spec``'s plan (the piece's own
    palette or tempo is stored as none of the section's own)."""
    for index in edit.sections:
        section = spec.form.sections[index]
        if edit.palette is not None:
            section.palette = "" if edit.palette == spec.palette else edit.palette
        if edit.tempo_bpm is not None:
            section.tempo_bpm = 0.0 if edit.tempo_bpm == spec.tempo_bpm else edit.tempo_bpm


def sound_changes(old: PieceParts, new: PieceParts) -> list[tuple[int, int]]:
    """The spans of bars (first, last; 0-based) that sound otherwise in ``new``: another
    palette, or another tempo on any beat (a ramp into or out of a section included)."""
    from cantus.harmony.rules import pulse_ticks

    meter = spec_meter(new.spec)
    pulse = pulse_ticks(meter)
    changed = []
    for bar in range(new.bar_count):
        ticks = range(bar * meter.bar_ticks, (bar + 1) * meter.bar_ticks, pulse)
        if old.bar_palette(bar) is not new.bar_palette(bar) or any(
            abs(old.tempo_map.bpm_at(t) - new.tempo_map.bpm_at(t)) > 1e-9 for t in ticks
        ):
            changed.append(bar)
    spans: list[tuple[int, int]] = []
    for bar in changed:
        if spans and spans[-1][1] == bar - 1:
            spans[-1] = (spans[-1][0], bar)
        else:
            spans.append((bar, bar))
    return spans


def _overlaps(line: pb.LyricLine, first: int, last: int) -> bool:
    """Whether lyric ``line`` is sung over any of bars ``first`` .. ``last``."""
    return line.first_bar <= last and first <= line.first_bar + line.bar_count - 1


def _spans(harmony: pb.HarmonyBar) -> list[ChordSpan]:
    return [
        ChordSpan(s.onset_ticks, s.duration_ticks, ChordSymbol.parse(s.symbol), s.roman)
        for s in harmony.chords
    ]


def _plan(spec: pb.PieceSpec, key, energy: Energy) -> FormPlan:
    """The spec's plan; a piece from before plans is one through-composed section."""
    plan = spec_form(spec)
    if plan is None or plan.total_bars != spec.bars:
        plan = plan_form("through", bars=spec.bars, key=key, energy=energy)
    return plan


def _edit_dict(edit: Edit) -> dict[str, Any]:
    values = dataclasses.asdict(edit)
    for name in ("first", "last"):
        if name in values:
            values[name] += 1  # bars as the request numbers them
    return {k: getattr(v, "value", v) for k, v in values.items()}
