"""Render service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.compose.requested, cantus.melody.bar, cantus.harmony.bar, cantus.lyric.line
     (one merged stream: every event of a piece, in order, on one partition)
out: cantus.render.segment   (every ``segment_bars`` bars, as soon as their parts are in)
     cantus.piece.completed  (after piece.mid and piece.json are stored)

The join lives in a Faust table keyed by piece id. Each handler stores what the event
brings (the first copy per (piece, kind, index) wins, so redeliveries change nothing),
then publishes whatever has become ready and is not yet recorded as published. A crash
between publishing and recording publishes again; the gateway drops such duplicates.
"""

from __future__ import annotations

import base64

from google.protobuf.message import Message

from cantus.events.codec import kind_of, new_meta
from cantus.render.piece import PieceParts, render_piece_files, render_segment_midi
from cantus.storage import LocalPieceStore, media_type
from cantus.streaming import Received, StreamService
from cantus.v1 import events_pb2 as pb

service = StreamService("render")
piece_inputs = service.topic("compose_requested", "melody_bar", "harmony_bar", "lyric_line")
pieces = service.app.Table("render-pieces", default=None, partitions=service.settings.partitions)
"""piece_id → {"events": {kind: {index: base64 protobuf}}, "log": [...], "segments": n,
"completed": bool}."""
store = LocalPieceStore(service.settings.data_dir)


@service.app.agent(piece_inputs)
async def render(stream):  # type: ignore[no-untyped-def]
    await service.process(stream, handle_piece_event)


async def handle_piece_event(message: Message, received: Received) -> None:
    piece_id = message.meta.piece_id  # type: ignore[attr-defined]
    state = pieces.get(piece_id) or {"events": {}, "log": [], "segments": 0, "completed": False}
    if state["completed"]:
        return
    kind, index = kind_of(message), str(message.meta.index)  # type: ignore[attr-defined]
    stored = state["events"].setdefault(kind, {})
    if index not in stored:
        stored[index] = base64.b64encode(message.SerializeToString()).decode()
        state["log"].append(log_entry(message, kind))
    pieces[piece_id] = state  # reassign: in-place changes do not reach the changelog

    parts = PieceParts.from_state(state["events"])
    if parts is None:
        return  # no bar yet says how long the piece is
    while state["segments"] < parts.segment_count(service.settings.segment_bars):
        first, count = parts.segment_bars(state["segments"], service.settings.segment_bars)
        if not parts.bars_ready(first, count):
            break
        segment = pb.RenderSegment(
            meta=new_meta(
                piece_id,
                state["segments"],
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
        await service.publish(segment, received=received)
        service.log.info(
            "piece %s segment %d: bars %d-%d",
            piece_id,
            segment.meta.index,
            first,
            first + count - 1,
        )
        state["log"].append(log_entry(segment, "render_segment"))
        state["segments"] += 1
        pieces[piece_id] = state

    if parts.all_bars_ready():
        await complete_piece(piece_id, parts, state, received)


async def complete_piece(piece_id: str, parts: PieceParts, state: dict, received: Received) -> None:
    completed = pb.PieceCompleted(
        meta=new_meta(
            piece_id, parts.bar_count, service.name, received_at_unix_ns=received.received_at_ns
        ),
        duration_seconds=parts.seconds_before_bar(parts.bar_count),
        chords_per_bar=[" ".join(span.symbol for span in bar.chords) for bar in parts.harmony],
    )
    event_log = [*state["log"], log_entry(completed, "piece_completed")]
    for name, content in render_piece_files(parts, piece_id=piece_id, event_log=event_log).items():
        uri = store.write(piece_id, name, content)
        completed.files.append(
            pb.StoredFile(name=name, media_type=media_type(name), size_bytes=len(content), uri=uri)
        )
    await service.publish(completed, received=received)
    service.log.info("piece %s completed: %d bars", piece_id, parts.bar_count)
    # Keep a tombstone, not the parts: late duplicates of this piece are ignored.
    pieces[piece_id] = {"events": {}, "log": [], "segments": state["segments"], "completed": True}


def log_entry(message: Message, kind: str) -> dict:
    meta = message.meta  # type: ignore[attr-defined]
    return {
        "kind": kind,
        "index": meta.index,
        "producer": meta.producer,
        "received_at_unix_ns": meta.received_at_unix_ns,
        "produced_at_unix_ns": meta.produced_at_unix_ns,
    }
