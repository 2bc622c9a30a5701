"""Lyric service. Reads top to bottom as data flows: topics, agent, handler.

in:  cantus.melody.bar   (one event per melody bar)
out: cantus.lyric.line   (one line per bar: the render service joins on it)

Until the lyric model lands (its own issue), pieces carry no lyrics: each bar passes through
as an empty line so that render knows the bar's lyrics are settled.
"""

from __future__ import annotations

from cantus.events.codec import new_meta
from cantus.streaming import Received, StreamService
from cantus.v1 import events_pb2 as pb

service = StreamService("lyric")
melody_bars = service.topic("melody_bar")


@service.app.agent(melody_bars)
async def write_lyrics(stream):  # type: ignore[no-untyped-def]
    await service.process(stream, handle_melody_bar)


async def handle_melody_bar(bar: pb.MelodyBar, received: Received) -> None:
    """Publish the lyric line for ``bar``; republishing after a restart is harmless because
    render keeps the first line per (piece_id, bar)."""
    line = pb.LyricLine(
        meta=new_meta(
            bar.meta.piece_id,
            bar.meta.index,
            service.name,
            received_at_unix_ns=received.received_at_ns,
        ),
        spec=bar.spec,
        first_bar=bar.meta.index,
        bar_count=1,
    )
    await service.publish(line, received=received)
