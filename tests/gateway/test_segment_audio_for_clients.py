"""Clients get render segments with their audio, read back from the segment store: the
records on the topic carry only where it is."""

from __future__ import annotations

import asyncio

from cantus.events.codec import new_meta
from cantus.segment_store import render_segment_store
from cantus.settings import Settings
from cantus.v1 import events_pb2 as pb
from services.gateway.events import PieceEventRouter

PIECE = "0123456789abcdef0123456789abcdef"


def test_a_segment_is_sent_with_its_audio_and_without_the_stores_place(tmp_path):
    settings = Settings(data_dir=tmp_path)
    router = PieceEventRouter(settings, producer=None)  # type: ignore[arg-type]
    uri = render_segment_store(settings).write(PIECE, 0, b"OggS audio")
    on_topic = pb.RenderSegment(
        meta=new_meta(PIECE, 0, "render"), bar_count=4, audio_uri=uri, audio_media_type="x"
    )
    pruned = pb.RenderSegment(
        meta=new_meta(PIECE, 1, "render"), audio_uri=uri.replace("seg0", "seg1")
    )
    bar = pb.MelodyBar(meta=new_meta(PIECE, 0, "melody"))

    async def main():
        return [await router.for_client(m) for m in (on_topic, pruned, bar)]

    sent, without, same = asyncio.run(main())
    assert sent.audio == b"OggS audio" and not sent.audio_uri and sent.bar_count == 4
    assert on_topic.audio_uri == uri and not on_topic.audio  # the router's copy untouched
    assert not without.audio and not without.audio_uri  # gone from the store: no audio
    assert same is bar
