"""Station service: keeps every running station composing ahead of playback and streams
its pieces, crossfaded, as HLS segments.

in:  cantus.station.command   (start / stop, from the gateway's Station service)
     cantus.station.feedback  (like / skip per piece)
     cantus.station.signal    (listener signals of sessions: heart rate, cadence, reports)
     cantus.melody.bar, cantus.render.segment, cantus.piece.completed, cantus.dead-letter
                              (the station's own pieces, as the normal pipeline makes them)
out: cantus.compose.requested (the next pieces, through the normal pipeline)
     cantus.station.segment   (HLS media segments, MPEG-TS with AAC: each written to the
                              segment store, cantus.segment_store, and its place
                              published; the store is pruned to the topic's retention)
     cantus.station.state     (a snapshot of the station after each change)
     cantus.station.outcome   (sessions' outcome logs: plan, signals, pieces, adjustments)

An aiokafka loop rather than a Faust app: each station needs its own timer (real-time
playback, the buffer) and its own long-lived encoder, and the state of one station is one
record, so a Faust table adds nothing. State survives a restart: on start the service reads
the last snapshot of every station from ``cantus.station.state`` and resumes; the audio of a
piece it was streaming is then read back from the piece store (the segments it saw before
are gone with the process), and the stream gets an HLS discontinuity. A snapshot keeps a
bounded window of the program (``cantus.stations.program``, ``Settings.station_*``), so it
fits one Kafka record however long the station runs.

One replica serves every station (the command topic is read by one consumer group member);
spreading stations over replicas would partition them by station name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import signal
import time
import uuid

import numpy as np
import soundfile
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

from cantus.events.codec import InvalidEvent, decode_event, encode_event, new_meta, topic_kind
from cantus.kafka_clients import unmanaged_consumer
from cantus.requests import RequestError, validate_compose_request
from cantus.scheduling import priority_name
from cantus.security import kafka_client_options
from cantus.segment_store import render_segment_store, station_segment_store
from cantus.settings import Settings, load_settings
from cantus.stations.config import StationConfigError, check_station_name, parse_station_config
from cantus.stations.encoding import MEDIA_TYPE, HlsSegmenter
from cantus.stations.feeds import playback_seconds
from cantus.stations.intensity import IntensityStage, intensity_adjustment, release_horizon
from cantus.stations.measure import energy_problem, measure_midi, midi_energy, step_problems
from cantus.stations.mixing import StationMixer, fade_out, resample
from cantus.stations.outcomes import outcome
from cantus.stations.program import ENERGY_TRIES, Program, SnapshotLimits, new_status
from cantus.stations.records import (
    decode_station_record,
    encode_station_record,
    fingerprints_key,
    fingerprints_record,
    fingerprints_signature,
    merge_fingerprints,
    snapshot_without_fingerprints,
)
from cantus.stations.sessions import reference_plan
from cantus.stations.signals import SignalError, check_signal
from cantus.storage import StorageError, piece_store
from cantus.streaming import configure_logging
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st

log = logging.getLogger("cantus.station")

SAMPLE_RATE = 48000
"""The stream's sample rate: Ogg Opus segment audio decodes at 48 kHz."""
JOIN_FADE_IN_SECONDS = 0.05
"""How fast a session's next piece comes in on the beat (a click-free onset)."""
TICK_SECONDS = 0.25
PIECES_REQUESTED = Counter("cantus_station_pieces_requested_total", "Pieces asked for", ["station"])
PIECES_REJECTED = Counter(
    "cantus_station_pieces_rejected_total", "Pieces rejected (near-duplicates)", ["station"]
)
AHEAD_SECONDS = Gauge(
    "cantus_station_ahead_seconds", "Stream audio ahead of real-time playback", ["station"]
)
UNDERRUNS = Gauge("cantus_station_underruns", "Times playback would have run dry", ["station"])
PRUNE_EVERY_S = 60.0
"""How often the segment store is pruned to the segment topic's retention."""
PRUNE_GRACE_S = 60.0
"""Kept past the retention: a player that fetched the playlist just before its segment left
the window still gets the segment."""


def _decode_segment_audio(audio: bytes) -> np.ndarray:
    """A render segment's encoded audio as float32 frames at the stations' sample rate."""
    frames, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    return resample(frames, rate, SAMPLE_RATE)


class StationWorker:
    """One running station: its program, mixer and encoder."""

    def __init__(self, service: StationService, status: st.StationStatus) -> None:
        self.service = service
        self.program = Program(status, SnapshotLimits.from_settings(service.settings))
        self.name = status.name
        self.mixer = StationMixer(SAMPLE_RATE, self.program.config.crossfade_seconds)
        session = status.session if status.HasField("session") else None
        self.stage = IntensityStage(SAMPLE_RATE, session.intensity if session else 0.5)
        """A session's mixed audio, released as playback nears it at the asked intensity."""
        self.segmenter: HlsSegmenter | None = None
        self.base_seconds = 0.0
        self.requested_bars: dict[str, int] = {}
        self.melodies: dict[str, dict[int, list[int]]] = {}
        self.audio: dict[str, dict[int, tuple[np.ndarray, int]]] = {}
        """piece_id → segment index → (frames, the bar after the segment's last, 0-based)."""
        self.fed: dict[str, int] = {}
        """piece_id → next segment index to feed (pieces fed from live segments)."""
        self.fed_bars: dict[str, int] = {}
        """piece_id → bars fed so far (pieces fed from live segments)."""
        self.dirty = True
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()
        self._discontinuity = True
        self._closed = False

    @property
    def status(self) -> st.StationStatus:
        return self.program.status

    @property
    def held_seconds(self) -> float:
        """Mixed audio not yet published (sessions), seconds: what the intensity stage holds
        back and what it released that the encoder has not cut into a segment yet."""
        mixed = self.base_seconds + (self.stage.released_frames + self.stage.pending_frames) / (
            SAMPLE_RATE
        )
        return max(mixed - self.status.stream_seconds, 0.0)

    async def start(self) -> None:
        self.segmenter = HlsSegmenter(
            self.service.settings.state_dir / "stations" / self.name,
            sample_rate=SAMPLE_RATE,
            segment_seconds=self.program.config.segment_seconds,
            first_sequence=self.status.next_segment,
        )
        await self.segmenter.start()
        # Stream positions go on from what was published before this process took over.
        self.base_seconds = self.status.stream_seconds
        if self.program.session is not None:
            # what the last process held back from the stream is fed again
            taken = self.program.resume_at(self.base_seconds)
            if taken:
                log.info("station %s: %d pieces fed again from the stream's end", self.name,
                         len(taken))  # fmt: skip
        await self._catch_up_from_store()
        self._tasks = [
            asyncio.create_task(self._publish_segments(), name=f"{self.name}-segments"),
            asyncio.create_task(self._run(), name=f"{self.name}-tick"),
        ]

    async def _catch_up_from_store(self) -> None:
        """Pieces that finished while no station process was watching: completed from the
        piece store (piece.json, piece.mid) as if their events had been seen."""
        for entry in list(self.status.program):
            if entry.status not in ("requested", "composing"):
                continue
            files = await asyncio.to_thread(self.service.stored_files, entry.piece_id)
            if "piece.json" not in files:
                continue
            summary = json.loads(files["piece.json"])
            done = pb.PieceCompleted(
                meta=new_meta(entry.piece_id, int(summary.get("bars", 0)), "station"),
                duration_seconds=float(summary.get("duration_seconds", 0.0)),
                integrated_lufs=float((summary.get("loudness") or {}).get("integrated_lufs", 0.0)),
            )
            await self.on_event(done)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.segmenter is not None:
            await self.segmenter.close()

    # --- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("station %s: tick failed; retrying", self.name)
            await asyncio.sleep(TICK_SECONDS)

    def clock(self) -> None:
        """The playback clock: started once the prebuffer is in hand, then the stream's lead
        over it and its underruns (``cantus bench therapy`` runs this on a real encoder)."""
        self.program.start_playback(self.held_seconds)
        self.program.tick()
        AHEAD_SECONDS.labels(self.name).set(self.status.ahead_seconds)
        UNDERRUNS.labels(self.name).set(self.status.underruns)

    async def _tick(self) -> None:
        program = self.program
        self.clock()
        while program.wants_piece():
            await self._request_piece()
        await self._feed()
        await self._release()
        if (
            self.status.running
            and program.plan_finished()
            and program.next_to_stream() is None
            and not self._closed
        ):
            await self._end_stream()
        if self.dirty:
            await self.service.publish_state(self.status)
            self.dirty = False

    async def _request_piece(self) -> None:
        piece_id = uuid.uuid4().hex
        entry, request = self.program.next_request(piece_id)  # trims the window
        self.forget_pieces_out_of_window()
        if not self.service.settings.station_priorities:
            request.priority = pb.PRIORITY_NORMAL
        validate = functools.partial(
            validate_compose_request, max_bars=self.service.settings.max_bars, urgent_allowed=True
        )
        try:
            validated = validate(request)
        except RequestError as error:
            if error.field != "lyrics_theme":
                self.program.reject(piece_id, str(error))
                self.dirty = True
                return
            # This server refuses the theme (e.g. too long for it): the piece goes without lyrics.
            log.warning("station %s: %s; composing without lyrics", self.name, error)
            request.lyrics_theme = request.lyrics_register = ""
            validated = validate(request)
        self.requested_bars[piece_id] = validated.spec.bars
        self.program.accepted(piece_id, validated.spec)
        self.service.owners[piece_id] = self.name
        message = pb.ComposeRequested(
            meta=new_meta(piece_id, 0, "station"),
            spec=validated.spec,
            given_bars=validated.given_bars,
        )
        await self.service.publish_event(message)
        if self.program.adjustment is not None:
            await self.publish_outcome(adjustment=self.program.adjustment)
            self.program.adjustment = None
        PIECES_REQUESTED.labels(self.name).inc()
        log.info(
            "station %s: requested %s (%s, %s)",
            self.name,
            piece_id,
            entry.title,
            priority_name(validated.spec.priority),
        )
        self.dirty = True

    def forget_pieces_out_of_window(self) -> None:
        """Drop the per-piece state of pieces that left the program window, and their routing
        entries: the window bounds the snapshot, and this keeps memory bounded with it (a
        late event of such a piece is ignored, as for any piece the station does not know)."""
        in_window = {entry.piece_id for entry in self.program.status.program}
        for per_piece in (self.requested_bars, self.melodies, self.audio, self.fed, self.fed_bars):
            for piece_id in [p for p in per_piece if p not in in_window]:
                del per_piece[piece_id]
        owners = self.service.owners
        for piece_id in [p for p, name in owners.items() if name == self.name]:
            if piece_id not in in_window:
                del owners[piece_id]

    # --- what the pipeline delivers ---------------------------------------------------------
    def _segment_samples(self, segment: pb.RenderSegment) -> np.ndarray | None:
        """The segment's audio at the stream's rate: inline (records from before the segment
        store) or read from the store; None, logged, when the store no longer has it."""
        audio = segment.audio
        if not audio:
            try:
                audio = self.service.render_segments.read_uri(
                    segment.meta.piece_id, segment.audio_uri
                )
            except StorageError as error:
                log.warning(
                    "station %s: piece %s segment %d has no audio: %s",
                    self.name,
                    segment.meta.piece_id,
                    segment.meta.index,
                    error,
                )
                return None
        return _decode_segment_audio(audio)

    async def on_event(self, message) -> None:
        async with self._lock:
            piece_id = message.meta.piece_id
            entry = self.program.entry(piece_id)
            if entry is None:
                return
            if isinstance(message, pb.MelodyBar):
                bars = self.melodies.setdefault(piece_id, {})
                bars[message.meta.index] = [n.pitch for n in message.notes]
                # a piece requested before a restart: its bar count, as its request said
                total = self.requested_bars.get(piece_id) or message.spec.bars
                self.requested_bars[piece_id] = total
                if len(bars) >= total and entry.status == "requested":
                    pitches = [p for i in sorted(bars) for p in bars[i]]
                    del self.melodies[piece_id]  # checked once: its notes are not needed again
                    self._check_melody(piece_id, pitches)
            elif isinstance(message, pb.RenderSegment):
                if not (message.audio or message.audio_uri):
                    return
                # reading, decoding Opus and resampling take milliseconds: off the event
                # loop, which every station's clock and the Kafka consumers share
                samples = await asyncio.to_thread(self._segment_samples, message)
                if samples is None:
                    return
                end_bar = message.first_bar + message.bar_count
                self.audio.setdefault(piece_id, {})[message.meta.index] = (samples, end_bar)
            elif isinstance(message, pb.PieceCompleted):
                # Its bar count (meta.index), for a piece requested before a restart whose
                # melody bars went by: without it, its live-fed audio would never end (#22).
                if not self.requested_bars.get(piece_id):
                    self.requested_bars[piece_id] = message.meta.index
                if entry.status == "requested":  # its melody bars were missed (a restart)
                    pitches = await asyncio.to_thread(self.service.stored_melody, piece_id)
                    self._check_melody(piece_id, pitches)
                self.program.completed(piece_id, message)
                preset = self.program.config.loudness_preset
                if message.loudness_preset and message.loudness_preset != preset:
                    # Mastering is the render service's setting (CANTUS_LOUDNESS_PRESET).
                    log.warning(
                        "station %s wants %s loudness; piece %s was mastered for %s",
                        self.name,
                        preset,
                        piece_id,
                        message.loudness_preset,
                    )
                step = self.program.plan_step(entry)
                if step is not None and entry.status == "ready":
                    await self._hold_to_step(entry, step)
                self.dirty = True
            elif isinstance(message, pb.DeadLetter):
                self.program.failed(piece_id, message.reason)
                self.dirty = True

    async def _hold_to_step(self, entry: st.ProgramEntry, step: st.PlanStep) -> None:
        """A plan piece streams only once its measured tempo and key fit its step, and a
        session piece its energy level (``energy_problem``) for the step's first
        ``ENERGY_TRIES`` pieces; after that it is kept, its miss noted in ``reason``."""
        midi = (await asyncio.to_thread(self.service.stored_files, entry.piece_id)).get("piece.mid")
        kept = ""
        if midi is None:
            problems = ["piece.mid is missing from the piece store"]
        else:
            problems = step_problems(await asyncio.to_thread(measure_midi, midi), step)
            if self.program.session is not None:
                entry.energy_measured = await asyncio.to_thread(midi_energy, midi)
                missed = entry.energy and energy_problem(
                    entry.energy_measured, entry.energy, entry.palette
                )
                if missed and self.program.holds_energy(entry):
                    problems.append(missed)
                elif missed:
                    kept = f"kept after {ENERGY_TRIES} pieces rejected: {missed}"
        if problems:
            self.program.reject(
                entry.piece_id, f"outside plan step {step.index}: " + "; ".join(problems)
            )
            self.audio.pop(entry.piece_id, None)
            log.info("station %s: %s", self.name, entry.reason)
        else:
            entry.reason = kept
            if kept:
                log.info("station %s: %s %s", self.name, entry.piece_id, kept)

    def _check_melody(self, piece_id: str, pitches: list[int]) -> None:
        if not self.program.melody_done(piece_id, pitches):
            PIECES_REJECTED.labels(self.name).inc()
            entry = self.program.entry(piece_id)
            log.info("station %s: rejected %s: %s", self.name, piece_id, entry and entry.reason)
            self.audio.pop(piece_id, None)
        self.dirty = True

    async def on_feedback(self, feedback: st.StationFeedback) -> None:
        async with self._lock:
            try:
                self.program.feedback(feedback.piece_id, feedback.kind)
            except (KeyError, ValueError) as error:
                log.warning("station %s: feedback ignored: %s", self.name, error)
                return
            self.dirty = True

    async def on_signal(self, signal: st.ListenerSignal) -> None:
        adjustment = None
        async with self._lock:
            before = self.status.session.intensity
            try:
                rejection = self.program.signal(signal)
            except KeyError as error:
                log.warning("station %s: signal ignored: %s", self.name, error)
                return
            after = self.status.session.intensity
            if after != before:  # heard in the audio not yet streamed, the playing piece's too
                starts = self.base_seconds + self.stage.set_intensity(after)
                playing = playback_seconds(self.status) if self.status.stream_started_unix_ns else 0
                adjustment = intensity_adjustment(
                    before, after, starts_at_seconds=starts, playback_seconds=playing
                )
            self.dirty = True
        await self.publish_outcome(
            signal=st.SignalOutcome(signal=signal, rejected=rejection.value if rejection else "")
        )
        if adjustment is not None:
            await self.publish_outcome(adjustment=adjustment)

    async def publish_outcome(self, **what) -> None:
        """One record of a session's outcome log (stations without a session keep none)."""
        if self.program.session is None:
            return
        position = self.status.stream_seconds - self.status.ahead_seconds
        record = outcome(self.name, position if self.status.stream_started_unix_ns else -1, **what)
        record.session_id = self.status.session.session_id
        await self.service.publish_station("station_outcome", record, self.name)

    # --- feeding the stream -----------------------------------------------------------------
    async def _feed(self) -> None:
        while True:
            entry = self.program.next_to_stream()
            if entry is None or entry.status not in ("composing", "ready"):
                return
            if entry.plan_step >= 0 and entry.status != "ready":
                return  # a plan piece waits for its measurement (``_hold_to_step``)
            piece_id = entry.piece_id
            segments = self.audio.get(piece_id, {})
            live = piece_id in self.fed or (0 in segments and entry.fed_seconds == 0)
            step = self.program.plan_step(entry)
            fade = self.program.session is not None and step is not None and step.last
            if (
                step is not None
                and self.program.closed_loop
                and not step.last
                and ((live and entry.fed_seconds == 0) or (not live and entry.status == "ready"))
            ):
                # a ready piece is fed whole at once, from the start or (resumed after a
                # restart) from where the published stream ends
                await self._hold_release(entry, step, segments)
            if fade and entry.fed_seconds == 0 and (live or entry.status == "ready"):
                # The session's last piece (held until ready, so all of it is here): fed
                # whole, its end faded out.
                if not await self._write_faded(entry, segments):
                    continue
            elif live:
                index = self.fed.setdefault(piece_id, 0)
                while index in segments:
                    frames, end_bar = segments.pop(index)
                    await self._write(entry, frames)
                    index += 1
                    self.fed[piece_id] = index
                    self.fed_bars[piece_id] = max(self.fed_bars.get(piece_id, 0), end_bar)
                # The piece's length is known from its request, or (requested before a
                # restart) from its melody bars or its completion, which may come after
                # its last segment was fed.
                total = self.requested_bars.get(piece_id, 0)
                if not total or self.fed_bars.get(piece_id, 0) < total:
                    return
            elif entry.status == "ready":
                # Its segments went by before this process saw them: read the stored audio.
                stored = await asyncio.to_thread(self.service.stored_audio, piece_id)
                if stored is None:
                    self.program.reject(piece_id, "its audio is missing from the piece store")
                    self.dirty = True
                    continue
                skip = int(entry.fed_seconds * SAMPLE_RATE)
                rest = stored[skip:]
                if fade and self.program.session is not None:  # the last piece, resumed
                    rest = fade_out(rest, SAMPLE_RATE, self.program.session.fade_seconds)
                await self._write(entry, rest)
            else:
                return
            entry.status = "streamed"
            self.audio.pop(piece_id, None)
            self.fed.pop(piece_id, None)
            self.fed_bars.pop(piece_id, None)
            self.mixer.start_piece()
            self.dirty = True
            await self.publish_outcome(played=entry)

    async def _hold_release(
        self,
        entry: st.ProgramEntry,
        step: st.PlanStep,
        segments: dict[int, tuple[np.ndarray, int]],
    ) -> None:
        """A session piece's release (everything after its last barline, at the step's
        length) overlaps the next piece, which comes in on the next downbeat. A piece resumed
        after a restart overlaps what is left of its release: without it the next piece came
        in a whole release late, and every later piece with it (the session ended 6 s late)."""
        if segments and all(i in segments for i in range(max(segments) + 1)):
            total = sum(len(frames) for frames, _ in segments.values())
        else:
            stored = await asyncio.to_thread(self.service.stored_audio, entry.piece_id)
            total = 0 if stored is None else len(stored)
        release = total - round(step.duration_seconds * SAMPLE_RATE)
        left = total - round(entry.fed_seconds * SAMPLE_RATE)
        if 0 < release < total // 2 and left > 0:
            self.mixer.hold(min(release, left), round(JOIN_FADE_IN_SECONDS * SAMPLE_RATE))

    async def _write_faded(
        self, entry: st.ProgramEntry, segments: dict[int, tuple[np.ndarray, int]]
    ) -> bool:
        """Write the whole of a session's last piece with its last ``fade_seconds`` faded;
        False if its audio is gone (the piece is rejected)."""
        assert self.program.session is not None
        if segments and all(i in segments for i in range(max(segments) + 1)):
            frames = np.concatenate([segments[i][0] for i in sorted(segments)])
        else:
            stored = await asyncio.to_thread(self.service.stored_audio, entry.piece_id)
            if stored is None:
                self.program.reject(entry.piece_id, "its audio is missing from the piece store")
                self.dirty = True
                return False
            frames = stored
        faded = fade_out(frames, SAMPLE_RATE, self.program.session.fade_seconds)
        await self._write(entry, faded)
        return True

    async def _write(self, entry: st.ProgramEntry, frames: np.ndarray) -> None:
        if entry.stream_start_seconds < 0:
            entry.stream_start_seconds = self.base_seconds + self.mixer.frames_out / SAMPLE_RATE
        entry.fed_seconds += len(frames) / SAMPLE_RATE
        await self._stream(self.mixer.feed(frames))
        self.dirty = True

    async def _stream(self, frames: np.ndarray) -> None:
        """Mixed audio to the encoder: at once for a station, through the intensity stage
        (released as playback nears it) for a session."""
        assert self.segmenter is not None
        if self.program.session is None:
            await self.segmenter.write(frames)
            return
        self.stage.push(frames)
        await self._release()

    async def _release(self, *, everything: bool = False) -> None:
        if self.program.session is None or not self.stage.pending_frames:
            return
        assert self.segmenter is not None
        until = None
        if not everything:
            horizon = release_horizon(self.status, self.program.config, self.program.session)
            until = round((horizon - self.base_seconds) * SAMPLE_RATE)
        frames = self.stage.release(until)
        if len(frames):
            await self.segmenter.write(frames)

    async def _end_stream(self) -> None:
        """The plan is played out: flush the last crossfade, close the encoder."""
        assert self.segmenter is not None
        await self._stream(self.mixer.flush())
        await self._release(everything=True)
        await self.segmenter.close()
        self._closed = True
        if self.program.session is not None:
            await self.publish_outcome(ended=self.status.session)

    async def _publish_segments(self) -> None:
        assert self.segmenter is not None
        async for segment in self.segmenter.segments():
            start = self.status.stream_seconds
            end = start + segment.duration_seconds
            heard = [
                e.piece_id
                for e in self.status.program
                if 0 <= e.stream_start_seconds < end
                and e.stream_start_seconds + e.duration_seconds > start
            ]
            message = st.StationSegment(
                station=self.name,
                sequence=segment.sequence,
                duration_seconds=segment.duration_seconds,
                media_type=MEDIA_TYPE,
                discontinuity=self._discontinuity,
                piece_ids=heard,
            )
            try:
                message.uri = await asyncio.to_thread(
                    self.service.segments.write, self.name, segment.sequence, segment.data
                )
            except Exception as error:  # a full or unreachable store: sent in the record
                log.error("station %s: segment %d not stored (%s); sent inline",
                          self.name, segment.sequence, error)  # fmt: skip
                message.data = segment.data
            self._discontinuity = False
            await self.service.publish_station("station_segment", message, self.name)
            async with self._lock:
                self.program.segment_published(
                    segment.duration_seconds, held_seconds=self.held_seconds
                )
                self.status.next_segment = segment.sequence + 1
                if self._closed and self.program.next_to_stream() is None:
                    self.status.running = False
                self.dirty = True
        async with self._lock:
            if self._closed:
                self.status.running = False
                await self.service.publish_state(self.status)


class StationService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = piece_store(settings)
        self.segments = station_segment_store(settings)
        self.render_segments = render_segment_store(settings)
        self.workers: dict[str, StationWorker] = {}
        self.owners: dict[str, str] = {}
        """piece_id → station name."""
        self.producer: AIOKafkaProducer | None = None
        self.ready = False
        self.snapshots: dict[str, st.StationStatus] = {}
        """Every station's last snapshot, stopped ones included (a restart resumes them)."""
        self.fingerprints_published: dict[str, tuple[str, ...]] = {}
        """Station → the fingerprints it last published (``fingerprints_signature``)."""

    # --- publishing -------------------------------------------------------------------------
    async def publish_event(self, message) -> None:
        assert self.producer is not None
        key, value, headers = encode_event(message, source="station")
        await self.producer.send_and_wait(
            self.settings.topics.compose_requested, value, key=key, headers=headers
        )

    async def publish_station(
        self, kind: str, message, station: str, *, key: str | None = None
    ) -> None:
        assert self.producer is not None
        key_bytes, value, headers = encode_station_record(
            kind, message, station, source="station", key=key
        )
        await self.producer.send_and_wait(
            getattr(self.settings.topics, kind), value, key=key_bytes, headers=headers
        )

    async def dead_letter(self, record, reason: str) -> None:
        """A station record no one can act on goes to the dead-letter topic, as the stream
        services' invalid events do: kept, with the reason, never silently dropped."""
        assert self.producer is not None
        letter = pb.DeadLetter(
            meta=new_meta("unknown", 0, "station"),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_key=record.key if isinstance(record.key, bytes) else b"",
            source_value=record.value if isinstance(record.value, bytes) else b"",
            reason=reason,
            kind="invalid_event",
            service="station",
        )
        key, value, headers = encode_event(letter, source="station")
        await self.producer.send_and_wait(
            self.settings.topics.dead_letter, value, key=key, headers=headers
        )

    async def publish_state(self, status: st.StationStatus) -> None:
        """Publish the station's snapshot, without its fingerprints; those go in a record of
        their own when they changed (``cantus.stations.records.fingerprints_record``)."""
        status.updated_unix_ns = time.time_ns()
        self.snapshots[status.name] = status
        signature = fingerprints_signature(status)
        if self.fingerprints_published.get(status.name) != signature:
            record = fingerprints_record(status)
            key = fingerprints_key(status.name)
            await self.publish_station("station_state", record, status.name, key=key)
            self.fingerprints_published[status.name] = signature
        snapshot = snapshot_without_fingerprints(status)
        await self.publish_station("station_state", snapshot, status.name)

    # --- the piece store (after a restart) --------------------------------------------------
    def stored_files(self, piece_id: str) -> dict[str, bytes]:
        try:
            return self.store.read_all(piece_id)
        except StorageError:
            return {}

    def stored_audio(self, piece_id: str) -> np.ndarray | None:
        files = self.stored_files(piece_id)
        for name in ("piece.opus", "piece.flac", "piece.wav"):
            if name in files:
                frames, rate = soundfile.read(io.BytesIO(files[name]), dtype="float32")
                return resample(frames, rate, SAMPLE_RATE)
        return None

    def stored_melody(self, piece_id: str) -> list[int]:
        from cantus.music.midi_io import midi_bytes_to_melody

        data = self.stored_files(piece_id).get("piece.mid")
        if data is None:
            return []
        melody = midi_bytes_to_melody(data)
        return [note.pitch for bar in melody.bars for note in bar.notes]

    # --- commands -------------------------------------------------------------------------
    async def on_command(self, command: st.StationCommand) -> None:
        worker = self.workers.get(command.name)
        if command.action == "stop":
            if worker is not None:
                worker.status.running = False
                await worker.stop()
                await self.publish_state(worker.status)
                del self.workers[command.name]
            return
        if command.action != "start":
            raise InvalidEvent(f"action: {command.action[:40]!r} is not start or stop")
        try:
            check_station_name(command.name)
            parse_station_config(command.config_yaml)
            if worker is not None:
                await worker.stop()
            known = worker.status if worker is not None else self.snapshots.get(command.name)
            if known is not None:  # reconfigure or restart: the program and its history stay
                status = known
                status.config_yaml = command.config_yaml
                status.running = True
                if command.plan:
                    status.plan[:] = list(command.plan)
            else:
                session = command.session if command.HasField("session") else None
                status = new_status(command.name, command.config_yaml, list(command.plan), session)
        except StationConfigError as error:
            field = "name" if error.field == "name" else f"config_yaml.{error.field}"
            raise InvalidEvent(f"{field}: {error.problem}") from None
        await self.start_worker(status)
        started = self.workers.get(command.name)
        if started is not None and known is None and started.program.session is not None:
            # the open-loop plan: played as it is (open), or the reference of the adjustments
            plan = reference_plan(started.program.session)
            await started.publish_outcome(
                started=st.SessionStarted(plan=plan, session=command.session)
            )

    async def start_worker(self, status: st.StationStatus) -> None:
        """Start one station; one that cannot start (a config that no longer parses, an
        encoder that will not run) is logged and left out, and the others keep running."""
        worker: StationWorker | None = None
        try:
            worker = StationWorker(self, status)
            await worker.start()
        except Exception:
            log.exception("station %s could not start; the others carry on", status.name)
            if worker is not None:
                with contextlib.suppress(Exception):
                    await worker.stop()  # its encoder may already be running
            return
        for entry in status.program:
            self.owners[entry.piece_id] = status.name
        self.workers[status.name] = worker
        log.info("station %s running (%d pieces so far)", status.name, len(status.program))

    async def prune_segments(self) -> None:
        """Delete stored segments past the segment topic's retention, every station's (a
        stopped station's too), every ``PRUNE_EVERY_S``."""
        keep_s = self.settings.station_segment_retention_s + PRUNE_GRACE_S
        while True:
            try:
                deleted = await asyncio.to_thread(self.segments.delete_older_than, keep_s)
                if deleted:
                    log.info("pruned %d stored segments older than %.0f s", deleted, keep_s)
            except Exception:
                log.exception("pruning the stored segments failed; trying again later")
            await asyncio.sleep(PRUNE_EVERY_S)

    # --- consuming --------------------------------------------------------------------------
    async def restore(self) -> None:
        """Resume every station that was running, from its last snapshot."""
        topic = self.settings.topics.station_state
        consumer = unmanaged_consumer(self.settings)
        await consumer.start()
        latest: dict[str, st.StationStatus] = {}
        fingerprints: dict[str, st.StationStatus] = {}
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batch = await consumer.getmany(*partitions, timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        try:
                            status = decode_station_record(
                                "station_state", record.value, record.headers
                            )
                        except InvalidEvent as error:
                            log.warning("skipping a bad station snapshot: %s", error)
                            continue
                        if status.fingerprints_only:
                            fingerprints[status.name] = status
                        else:
                            latest[status.name] = status
        finally:
            await consumer.stop()
        for name, status in latest.items():
            # (the first snapshot published after this writes the fingerprints' record again)
            latest[name] = merge_fingerprints(status, fingerprints.get(name))
        self.snapshots.update(latest)
        for status in latest.values():
            if status.running:
                await self.start_worker(status)

    async def consume_commands(self) -> None:
        topics = self.settings.topics
        consumer = AIOKafkaConsumer(
            topics.station_command,
            topics.station_feedback,
            topics.station_signal,
            bootstrap_servers=self.settings.broker,
            group_id="cantus-station",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            **kafka_client_options(self.settings),
        )
        await consumer.start()
        try:
            async for record in consumer:
                kind = {
                    topics.station_command: "station_command",
                    topics.station_feedback: "station_feedback",
                    topics.station_signal: "station_signal",
                }[record.topic]
                try:
                    message = decode_station_record(kind, record.value, record.headers)
                    if kind == "station_command":
                        await self.on_command(message)
                    elif kind == "station_signal":
                        # the topic is open to devices: checked here as at the gateway
                        signal = check_signal(message)
                        worker = self.workers.get(signal.station)
                        if worker is not None:
                            await worker.on_signal(signal)
                    else:
                        worker = self.workers.get(message.station)
                        if worker is not None:
                            await worker.on_feedback(message)
                except (InvalidEvent, SignalError) as error:
                    log.warning("dead-lettering a bad %s record: %s", kind, error)
                    await self.dead_letter(record, str(error))
                except Exception:
                    log.exception("handling %s failed; going on", kind)
                await consumer.commit()
        finally:
            await consumer.stop()

    async def consume_pieces(self, started: asyncio.Event) -> None:
        topics = self.settings.topics
        names = [
            topics.melody_bar,
            topics.render_segment,
            topics.piece_completed,
            topics.dead_letter,
        ]
        consumer = unmanaged_consumer(
            self.settings,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        started.set()
        try:
            async for record in consumer:
                piece_id = (record.key or b"").decode("utf-8", "replace")
                station = self.owners.get(piece_id)
                if station is None or station not in self.workers:
                    continue
                try:
                    message = decode_event(
                        topic_kind(self.settings.topics, record.topic), record.value, record.headers
                    )
                    await self.workers[station].on_event(message)
                except InvalidEvent:
                    continue  # the service that owns the topic dead-letters it
                except Exception:
                    log.exception("station %s: handling %s failed", station, record.topic)
        finally:
            await consumer.stop()

    async def serve(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.broker,
            acks="all",
            max_request_size=4 * 1024 * 1024,
            **kafka_client_options(self.settings),
        )
        await self.producer.start()
        pieces_started = asyncio.Event()
        tasks = [asyncio.create_task(self.consume_pieces(pieces_started), name="pieces")]
        await pieces_started.wait()
        await self.restore()
        tasks.append(asyncio.create_task(self.consume_commands(), name="commands"))
        tasks.append(asyncio.create_task(self.prune_segments(), name="prune"))
        runner = await self._start_web()
        self.ready = True
        log.info("station service ready (%d stations resumed)", len(self.workers))

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.ready = False
        for worker in list(self.workers.values()):
            await worker.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        await self.producer.stop()

    async def _start_web(self) -> web.AppRunner:
        async def health(request: web.Request) -> web.Response:
            return web.json_response(
                {"service": "station", "ready": self.ready, "stations": len(self.workers)},
                status=200 if self.ready else 503,
            )

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0]
            )

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, self.settings.host, self.settings.web_port("station")).start()
        return runner


def main() -> None:
    configure_logging()
    asyncio.run(StationService(load_settings()).serve())
