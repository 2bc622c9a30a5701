"""Render service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.compose.requested, cantus.melody.bar, cantus.harmony.bar, cantus.lyric.line
     (one merged stream: every event of a piece, in order, on one partition)
out: cantus.render.segment   (every ``segment_bars`` bars, as soon as their parts are in:
                              MIDI, and where the segment's mastered audio is, as Ogg
                              Opus or, where the piece asks, FLAC, in the segment store:
                              cantus.segment_store; the store is pruned to
                              ``render_segment_retention_s``, FLAC sooner)
     cantus.piece.completed  (after the piece's files are stored: piece.mid, piece.wav,
                              .flac, .mp3, .opus, piece.musicxml, .pdf, .png,
                              pianoroll.png, selfsim.png, piece.json)

The join lives in two Faust tables: ``pieces`` (piece id → which events it holds, the
segments published) and ``piece_events`` (one key per event, written once), so that the
changelogs grow with the piece's length, not with its square. Each handler stores what the
event brings (the first copy per (piece, kind, index) wins, so redeliveries change
nothing), then publishes whatever has become ready and is not yet recorded as published.
A crash between publishing and recording publishes again; the gateway drops such
duplicates. Decoded events are cached in this process (``held_events``) and read back from
the table after a restart or a rebalance.

Segment audio comes from one synthesizer and streaming master per piece
(``SegmentAudio``), kept in this process's memory only, never in the table. When it is
missing or not at the segment to render next (a restart, a rebalance, a crash between
publishing and recording, an eviction), it is rebuilt by replaying the segments recorded
as published from the table's events, discarding their audio; rendering is
deterministic, so a republished segment carries the same audio as the first copy. Audio
that cannot be rendered is logged and left out of the segment (the MIDI still goes);
files that cannot be rendered are named in piece.json's ``render_errors``. Synthesis,
mastering and engraving run in a worker thread, off the event loop; segments wait for one of
``render_concurrency`` slots, the most pressing piece's first (``PieceSpec.priority``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from google.protobuf.message import Message

from cantus.events.codec import EVENT_TYPES, kind_of, new_meta
from cantus.render.exports import encode_segment_audio, segment_codec
from cantus.render.piece import (
    PieceOutputs,
    PieceParts,
    SegmentAudio,
    render_piece_files,
    render_segment_midi,
    streamed_piece_render,
)
from cantus.scheduling import PriorityGate, priority_name
from cantus.segment_store import render_segment_store
from cantus.storage import media_type, piece_store
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import RenderEvent, RenderState, render_event_key
from cantus.v1 import events_pb2 as pb

service = StreamService("render")
settings = service.settings
piece_inputs = service.topic("compose_requested", "melody_bar", "harmony_bar", "lyric_line")
pieces = service.app.Table("render-pieces", default=None, partitions=settings.partitions)
"""piece_id → ``RenderState`` (``cantus.streaming.table_state``)."""
piece_events = service.app.Table("render-events", default=None, partitions=settings.partitions)
"""``render_event_key(piece_id, kind, index)`` → ``RenderEvent``: each input event, and the
log entry of each segment published. Written while handling the piece's own events, so
each key lands on its piece's partition, and deleted when the piece completes."""

MAX_HELD_PIECES = 256
"""Pieces whose decoded events stay cached; beyond this the least recently used is dropped
(and read back from ``piece_events`` should the piece go on)."""
held_events: OrderedDict[str, dict[str, dict[int, Message]]] = OrderedDict()
"""piece_id → kind → index → the decoded event, in this process only."""
store = piece_store(settings)
segment_audio_store = render_segment_store(settings)

MAX_LIVE_PIECES = 32
"""Pieces whose synthesizer stays in memory; the least recently used beyond this is closed
(and rebuilt by replay should the piece go on)."""
live_audio: OrderedDict[str, SegmentAudio] = OrderedDict()
"""piece_id → its segment audio renderer, in this process only."""
finished_audio: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
"""piece_id → the joined mastered segments of a piece whose last segment is out, and its
vocal stem (None without vocals)."""


final_render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="final-render")
"""Finished pieces are mastered and exported one at a time, on one thread, so that the
segments listeners are waiting for (rendered on the default pool) are not starved."""


def warm_up_final_render() -> None:
    """What a fresh process pays on its first finished piece, paid at start instead (#22):
    the final render's modules (audio exports, matplotlib for the pictures, music21) and the
    long-lived LilyPond (``cantus.render.lilypond_server``, started on first use), by
    engraving a one-bar lead sheet. In the kill -9 campaign the first piece a restarted
    render service finished took 52-68 s of final render against 20-26 s for the next ones
    at the same load, and that came on top of the restart."""
    import cantus.render.exports
    import cantus.render.pianoroll
    import cantus.render.selfsim  # noqa: F401 - imported for the warm-up

    if settings.leadsheet:
        from cantus.music.notes import Bar, Key, Meter, Note
        from cantus.render.leadsheet import engrave_leadsheet, leadsheet_musicxml

        meter = Meter(4, 4)
        bar = Bar(meter, (Note(0, 60, 480 * 4),))
        engrave_leadsheet(leadsheet_musicxml([bar], [[(0, "C")]], [], Key(0), meter, 120.0))


def start_warm_up() -> None:
    """Submit ``warm_up_final_render`` to the final render's own thread before the worker
    starts (``python -m services.render``), so that it runs while Faust joins its group and
    recovers its table; a piece that finishes first waits for it on that thread."""

    def warm_up() -> None:
        started = time.perf_counter()
        try:
            warm_up_final_render()
        except Exception as error:  # the first piece pays it instead, and says why if it fails
            service.log.warning("warming up the final render failed: %s", error)
            return
        service.log.info("final render warmed up in %.1f s", time.perf_counter() - started)

    final_render_pool.submit(warm_up)


synthesis = PriorityGate(settings.render_concurrency)
"""Segments synthesised, mastered and encoded at once; the others wait here, the most
pressing first (``PieceSpec.priority``: a station's first piece before pieces for later)."""


piece_locks: dict[str, asyncio.Lock] = {}
"""One lock per piece in flight: pieces render side by side (agent concurrency), while the
events of one piece are handled one at a time, in the order they arrived."""


ACTORS_PER_PIECE = 64
"""Agent actors for each piece the service works on at once (``render_concurrency``). While
a piece's segment or files render, its next events wait for its lock, each holding an
actor; with one actor per piece, a piece whose bars came in faster than its segments
rendered took every actor, the other pieces' events found none free, and pieces were
rendered one after another instead of side by side."""


@service.app.agent(piece_inputs, concurrency=settings.render_concurrency * ACTORS_PER_PIECE)
async def render(stream):
    await service.process(stream, handle_piece_event)


async def handle_piece_event(message: Message, received: Received) -> None:
    piece_id = message.meta.piece_id
    # Taken before any suspension, so a piece's events queue on it in arrival order.
    lock = piece_locks.setdefault(piece_id, asyncio.Lock())
    try:
        async with lock:
            await render_piece_event(message, received)
    finally:
        if not lock.locked() and RenderState.from_table(pieces.get(piece_id)).completed:
            piece_locks.pop(piece_id, None)


async def render_piece_event(message: Message, received: Received) -> None:
    piece_id = message.meta.piece_id
    state = RenderState.from_table(pieces.get(piece_id))
    if state.completed:
        return
    events = events_held(piece_id, state)
    kind, index = kind_of(message), message.meta.index
    if index not in events.get(kind, {}):
        # The two tables' changelogs are separate records, so a crash may keep either one
        # of an event's writes: the event stored, its piece's record not (then the stored
        # copy wins), or the record and not the event (then this redelivered copy is the
        # first that counts). Faust commits the event's offset only after both are sent.
        key = render_event_key(piece_id, kind, index)
        stored = piece_events.get(key)
        if stored is None:
            encoded = base64.b64encode(message.SerializeToString()).decode()
            piece_events[key] = RenderEvent(event=encoded, log=log_entry(message, kind)).to_table()
        else:
            message = decode_event(kind, RenderEvent.from_table(stored))
        if not state.holds(kind, index):
            state.add(kind, index)
            pieces[piece_id] = state.to_table()  # the changelog sees only assignments
        events.setdefault(kind, {})[index] = message

    parts = PieceParts.from_events(events, humanise=settings.humanise)
    if parts is None:
        return  # no bar yet says how long the piece is
    while state.segments < parts.segment_count(settings.segment_bars):
        first, count = parts.segment_bars(state.segments, settings.segment_bars)
        if not parts.segment_ready(state.segments, settings.segment_bars):
            break
        segment = pb.RenderSegment(
            meta=new_meta(
                piece_id,
                state.segments,
                service.name,
                received_at_unix_ns=received.received_at_ns,
            ),
            first_bar=first,
            bar_count=count,
            start_seconds=parts.seconds_before_bar(first),
            duration_seconds=parts.seconds_before_bar(first + count)
            - parts.seconds_before_bar(first),
            midi=render_segment_midi(parts, first, count),
        )
        if settings.segment_audio:
            async with synthesis.slot(parts.spec.priority):
                await asyncio.to_thread(add_segment_audio, segment, piece_id, parts)
        await service.publish(segment, received=received)
        service.log.info(
            "piece %s segment %d: bars %d-%d, audio %s, %s; its last input reached "
            "this service %.1f s after it was published, and the segment was out %.1f s later",
            piece_id,
            segment.meta.index,
            first,
            first + count - 1,
            segment.audio_uri or "none",
            priority_name(parts.spec.priority),
            (received.received_at_ns - message.meta.produced_at_unix_ns) / 1e9,
            (time.time_ns() - received.received_at_ns) / 1e9,
        )
        segment_key = render_event_key(piece_id, "render_segment", segment.meta.index)
        piece_events[segment_key] = RenderEvent(log=log_entry(segment, "render_segment")).to_table()
        state.segments += 1
        pieces[piece_id] = state.to_table()

    if parts.all_bars_ready():
        await complete_piece(piece_id, parts, state, received)


PRUNE_EVERY_S = 60.0
"""How often the segment store is pruned of segment audio past its retention."""


@service.app.timer(interval=PRUNE_EVERY_S)
async def prune_segment_audio() -> None:
    try:
        deleted = await asyncio.to_thread(delete_expired_segment_audio)
    except Exception as error:  # tried again at the next tick
        service.log.warning("pruning segment audio failed: %s: %s", type(error).__name__, error)
        return
    if deleted:
        service.log.info("pruned the audio of %d segments", deleted)


def delete_expired_segment_audio() -> int:
    """Delete segment audio older than ``render_segment_retention_s`` (lossless segments:
    ``render_lossless_segment_retention_s``): by then the segment's listeners have it, and a
    finished piece's audio is in its own files. The count deleted."""
    deleted = segment_audio_store.delete_older_than(settings.render_segment_retention_s)
    return deleted + segment_audio_store.delete_older_than(
        settings.render_lossless_segment_retention_s, extension=segment_codec("flac").extension
    )


def add_segment_audio(segment: pb.RenderSegment, piece_id: str, parts: PieceParts) -> None:
    """Render, master and encode the segment's audio into ``segment`` (worker thread; the
    agent handles one event at a time, so ``live_audio`` is never used concurrently)."""
    index = segment.meta.index
    started = time.perf_counter()
    try:
        codec = segment_codec(parts.spec.segment_audio)
    except ValueError as error:  # a request the gateway did not check: the MIDI still goes
        service.log.warning("piece %s segment %d: no audio (%s)", piece_id, index, error)
        return
    try:
        audio = live_audio.pop(piece_id, None)
        if audio is not None and (audio.next_segment != index or audio.finished):
            audio.close()
            audio = None
        if audio is None:
            audio = SegmentAudio(parts.tempo_map, preset=_preset(parts))
            audio.catch_up(parts, index, settings.segment_bars)
            if index:
                service.log.info(
                    "piece %s: rebuilt its audio by replaying segments 0-%d", piece_id, index - 1
                )
        rendered = audio.render(parts, index, settings.segment_bars)
        encoded = encode_segment_audio(
            rendered.audio,
            rendered.sample_rate,
            codec=codec.name,
            kbps=settings.segment_audio_kbps,
            serial=index + 1,  # same audio, same bytes; each segment its own stream
        )
    except Exception as error:  # bad data or no synth: the segment goes out without audio
        service.log.warning(
            "piece %s segment %d: no audio (%s: %s)", piece_id, index, type(error).__name__, error
        )
        if audio is not None:
            audio.close()
        return
    if audio.finished:
        # The piece's final audio files are exactly the segments listeners heard.
        finished_audio[piece_id] = (audio.piece_audio(), audio.piece_vocals())
    else:
        live_audio[piece_id] = audio
        while len(live_audio) > MAX_LIVE_PIECES:
            _, evicted = live_audio.popitem(last=False)
            evicted.close()
    try:
        segment.audio_uri = segment_audio_store.write(
            piece_id, index, encoded, extension=codec.extension
        )
    except Exception as error:  # a store that cannot be written: the MIDI still goes
        service.log.warning(
            "piece %s segment %d: audio not stored (%s: %s)",
            piece_id,
            index,
            type(error).__name__,
            error,
        )
        return
    segment.audio_media_type = codec.media_type
    segment.audio_start_seconds = rendered.start_seconds
    segment.audio_duration_seconds = rendered.duration_seconds
    segment.audio_sample_rate = rendered.sample_rate
    service.log.debug(
        "piece %s segment %d audio in %.2f s", piece_id, index, time.perf_counter() - started
    )


async def complete_piece(
    piece_id: str, parts: PieceParts, state: RenderState, received: Received
) -> None:
    completed = pb.PieceCompleted(
        meta=new_meta(
            piece_id, parts.bar_count, service.name, received_at_unix_ns=received.received_at_ns
        ),
        duration_seconds=parts.seconds_before_bar(parts.bar_count),
        chords_per_bar=[" ".join(span.symbol for span in bar.chords) for bar in parts.harmony],
    )
    event_log = [*piece_log(piece_id, state), log_entry(completed, "piece_completed")]
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    streamed: tuple[np.ndarray, np.ndarray | None] | None = finished_audio.pop(piece_id, None)
    if streamed is None and settings.segment_audio:
        # Lost with a restart: replay the segments (deterministic) rather than master anew,
        # so the files still match what was streamed.
        streamed = await loop.run_in_executor(
            final_render_pool,
            functools.partial(
                streamed_piece_render,
                parts,
                settings.segment_bars,
                preset=_preset(parts),
            ),
        )
    outputs = PieceOutputs.asked(
        parts.spec, audio_formats=settings.audio_formats, leadsheet=settings.leadsheet
    )
    rendered = await loop.run_in_executor(
        final_render_pool,
        functools.partial(
            render_piece_files,
            parts,
            piece_id=piece_id,
            event_log=event_log,
            preset=_preset(parts),
            audio_formats=outputs.audio_formats,
            leadsheet=outputs.leadsheet,
            pictures=outputs.pictures,
            streamed_audio=None if streamed is None else streamed[0],
            streamed_vocals=None if streamed is None else streamed[1],
        ),
    )
    render_seconds = time.perf_counter() - started
    for name, content in rendered.files.items():
        uri = await asyncio.to_thread(store.write, piece_id, name, content)
        completed.files.append(
            pb.StoredFile(name=name, media_type=media_type(name), size_bytes=len(content), uri=uri)
        )
    if rendered.loudness is not None:
        # loudness is a dict[str, object]: floats, and the preset's name
        completed.integrated_lufs = rendered.loudness["integrated_lufs"]  # type: ignore[assignment]
        completed.true_peak_dbtp = rendered.loudness["true_peak_dbtp"]  # type: ignore[assignment]
        completed.loudness_preset = rendered.loudness["preset"]  # type: ignore[assignment]
        completed.target_lufs = rendered.loudness["target_lufs"]  # type: ignore[assignment]
    await service.publish(completed, received=received)
    service.log.info(
        "piece %s completed: %d bars, %d files rendered in %.2f s (%s)%s",
        piece_id,
        parts.bar_count,
        len(rendered.files),
        render_seconds,
        ", ".join(f"{step} {seconds:.2f} s" for step, seconds in rendered.timings.items()),
        f"; not rendered: {rendered.errors}" if rendered.errors else "",
    )
    stale = live_audio.pop(piece_id, None)
    if stale is not None:
        stale.close()
    # Keep a tombstone, not the parts: late duplicates of this piece are ignored.
    for key in piece_event_keys(piece_id, state):
        piece_events.pop(key, None)
    pieces[piece_id] = RenderState(segments=state.segments, completed=True).to_table()
    held_events.pop(piece_id, None)


def _preset(parts: PieceParts) -> str:
    """The piece's mastering preset (a station asks for its own), else the service's."""
    return parts.spec.loudness_preset or settings.loudness_preset


def events_held(piece_id: str, state: RenderState) -> dict[str, dict[int, Message]]:
    """The piece's decoded events: from this process's cache while it holds every event the
    piece's record names, else read back from ``piece_events`` (a restart, a rebalance, an
    eviction from the cache)."""
    events = held_events.get(piece_id)
    if events is None or sum(map(len, events.values())) != state.event_count():
        events = {}
        for kind in state.received:
            for index in state.indices(kind):
                stored = piece_events.get(render_event_key(piece_id, kind, index))
                if stored is not None:
                    events.setdefault(kind, {})[index] = decode_event(
                        kind, RenderEvent.from_table(stored)
                    )
        held_events[piece_id] = events
    held_events.move_to_end(piece_id)
    while len(held_events) > MAX_HELD_PIECES:
        held_events.popitem(last=False)
    return events


def decode_event(kind: str, stored: RenderEvent) -> Message:
    return EVENT_TYPES[kind].message.FromString(base64.b64decode(stored.event))


def piece_event_keys(piece_id: str, state: RenderState) -> list[str]:
    """Every key the piece has in ``piece_events``: its events and its segments' entries."""
    keys = [
        render_event_key(piece_id, kind, index)
        for kind in state.received
        for index in state.indices(kind)
    ]
    keys += [render_event_key(piece_id, "render_segment", i) for i in range(state.segments)]
    return keys


def piece_log(piece_id: str, state: RenderState) -> list[dict]:
    """The piece's event log so far (piece.json orders it by production time)."""
    stored = (piece_events.get(key) for key in piece_event_keys(piece_id, state))
    return [RenderEvent.from_table(value).log for value in stored if value is not None]


def log_entry(message: Message, kind: str) -> dict:
    meta = message.meta
    return {
        "kind": kind,
        "index": meta.index,
        "producer": meta.producer,
        "received_at_unix_ns": meta.received_at_unix_ns,
        "produced_at_unix_ns": meta.produced_at_unix_ns,
    }
