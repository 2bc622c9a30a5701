"""Harmony service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.melody.bar    (bars of a piece arrive in order on one partition)
out: cantus.harmony.bar   (chords, voicing and bass for the same bar, published at once)

Per-piece state (the next bar expected, the previous chord and voicing) lives in a Faust
table backed by a changelog topic, so a restarted service continues a piece where it
stopped. A bar already harmonised (index below the next expected) is skipped; one
published but not yet recorded before a crash is published again, and render keeps the
first copy per (piece_id, bar).
"""

from __future__ import annotations

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import (
    notes_to_pb,
    pb_to_bar,
    spec_energy,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.rules import harmonize_bar
from cantus.harmony.voicing import bass_line, voice_chords
from cantus.music.chords import ChordSymbol
from cantus.music.notes import MusicError
from cantus.streaming import Received, StreamService
from cantus.v1 import events_pb2 as pb

HARMONIZER = "rules-v1"

service = StreamService("harmony")
melody_bars = service.topic("melody_bar")
piece_state = service.app.Table(
    "harmony-piece-state", default=None, partitions=service.settings.partitions
)
"""piece_id → {"next_index": int, "previous_chord": str | None, "voicing": [pitches]}."""


@service.app.agent(melody_bars)
async def harmonize(stream):  # type: ignore[no-untyped-def]
    await service.process(stream, handle_melody_bar)


async def handle_melody_bar(bar: pb.MelodyBar, received: Received) -> None:
    piece_id, index = bar.meta.piece_id, bar.meta.index
    state = piece_state.get(piece_id) or {"next_index": 0, "previous_chord": None, "voicing": None}
    if index < state["next_index"]:
        service.log.info("piece %s bar %d: already harmonised, skipped", piece_id, index)
        return  # a redelivery after a restart
    try:
        melody_bar = pb_to_bar(bar.notes, spec_meter(bar.spec))
    except MusicError as error:
        raise InvalidEvent(f"melody bar {index}: {error}") from None

    previous = ChordSymbol.parse(state["previous_chord"]) if state["previous_chord"] else None
    style, key = spec_style(bar.spec), spec_key(bar.spec)
    spans = harmonize_bar(
        melody_bar, key, previous=previous, style=style, is_final=index == bar.spec.bars - 1
    )
    previous_voicing = tuple(state["voicing"]) if state["voicing"] else None
    voicing = voice_chords(spans, style=style, previous_voicing=previous_voicing)
    bass = bass_line(spans, melody_bar.meter, style=style, energy=spec_energy(bar.spec))

    harmony = pb.HarmonyBar(
        meta=new_meta(piece_id, index, service.name, received_at_unix_ns=received.received_at_ns),
        spec=bar.spec,
        chords=[
            pb.ChordSpan(
                onset_ticks=span.onset,
                duration_ticks=span.duration,
                symbol=str(span.symbol),
                roman=span.roman,
                pitch_classes=sorted(span.symbol.pitch_classes),
            )
            for span in spans
        ],
        voicing=notes_to_pb(voicing),
        bass=notes_to_pb(bass),
        harmonizer=HARMONIZER,
    )
    await service.publish(harmony, received=received)
    service.log.info("piece %s bar %d: %s", piece_id, index, " ".join(str(s.symbol) for s in spans))

    last_onset = max((n.onset for n in voicing), default=None)
    piece_state[piece_id] = {
        "next_index": index + 1,
        "previous_chord": str(spans[-1].symbol) if spans else state["previous_chord"],
        "voicing": sorted(n.pitch for n in voicing if n.onset == last_onset) or state["voicing"],
    }
