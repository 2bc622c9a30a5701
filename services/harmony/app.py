"""Harmony service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.melody.bar    (bars of a piece arrive in order on one partition)
out: cantus.harmony.bar   (chords, voicing and bass for one bar)

Chords come from the ``harmony`` model on Triton, which reads one bar of lookahead: bar i
is harmonised when bar i+1 arrives (at most one bar of delay), the final bar at once. A
bar of rests holds the chord before it (nothing to harmonise), and the rule-based
harmoniser stands in only where the model answers with an error or out of the bar's plan;
the event's ``harmonizer`` says which one made the bar and why. A Triton that cannot be
reached (restarting) is waited for with back-off, as melody and lyric do
(``unavailable_wait_s``), not replaced by the rules.

A piece whose spec carries a form plan is harmonised section by section
(``cantus.harmony.cadence``): each bar in its section's key area with its section's energy,
and the bars that end a phrase cadence as the plan says (half: on V; authentic: V–I; the
last bar on I of the home key), the cadence chords given to the model as allowed chord
classes on the bar's last beats and to the rules as constraints. Chords and Roman numerals
stay in the piece's key (a dominant-key section's V is ``V/V``).

Per-piece state (the next bar expected, the bar waiting for its lookahead, the last bars
with their chords, the voicing) lives in a Faust table backed by a changelog topic, so a
restarted service continues a piece where it stopped: the model is stateless and gets
the history with every request. A bar already seen (index below the next expected) is
skipped; one published but not yet recorded before a crash is published again, and
render keeps the first copy per (piece_id, bar).
"""

from __future__ import annotations

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import (
    pb_to_bar,
    spec_energy,
    spec_form,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.bar_harmony import HarmonyContext, harmonize_piece_bar
from cantus.harmony.client import HarmonyClient
from cantus.harmony.context import HarmonizedBar, checkpoint_version
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key, MusicError
from cantus.music.styles import Energy, Style
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import HarmonyState, bar_from_rows, note_rows
from cantus.v1 import events_pb2 as pb

service = StreamService("harmony")
melody_bars = service.topic("melody_bar")
piece_state = service.app.Table(
    "harmony-piece-state", default=None, partitions=service.settings.partitions
)
"""piece_id → ``HarmonyState`` (``cantus.streaming.table_state``)."""
triton = HarmonyClient(
    service.settings.triton_grpc,
    service.settings.harmony_model_name,
    timeout_s=service.settings.harmony_timeout_s,
    wait_when_unavailable=True,  # a Triton restart is waited for, not harmonised by rules
)
model_version = checkpoint_version(service.settings.harmony_checkpoint)


@service.app.agent(melody_bars)
async def harmonize(stream):
    await service.process(stream, handle_melody_bar)


async def handle_melody_bar(bar: pb.MelodyBar, received: Received) -> None:
    piece_id, index, spec = bar.meta.piece_id, bar.meta.index, bar.spec
    state = HarmonyState.from_table(piece_state.get(piece_id))
    if index < state.next_index:
        service.log.info("piece %s bar %d: already harmonised, skipped", piece_id, index)
        return  # a redelivery after a restart
    try:
        meter = spec_meter(spec)
        key, style, energy = spec_key(spec), spec_style(spec), spec_energy(spec)
        plan = spec_form(spec)
        melody_bar = pb_to_bar(bar.notes, meter)
    except (MusicError, ValueError, KeyError) as error:
        raise InvalidEvent(f"melody bar {index}: {error}") from None

    if state.pending is not None:
        pending_index, pending_notes = state.pending
        lookahead = melody_bar if pending_index == index - 1 else None
        await _harmonize_and_publish(
            bar,
            received,
            state,
            pending_index,
            bar_from_rows(pending_notes, meter),
            lookahead,
            key=key,
            style=style,
            energy=energy,
            plan=plan,
        )
        state.pending = None
    if index >= spec.bars - 1:
        await _harmonize_and_publish(
            bar,
            received,
            state,
            index,
            melody_bar,
            None,
            key=key,
            style=style,
            energy=energy,
            plan=plan,
        )
    else:
        state.pending = (index, note_rows(melody_bar.notes))
    state.next_index = index + 1
    piece_state[piece_id] = state.to_table()


async def _harmonize_and_publish(
    event: pb.MelodyBar,
    received: Received,
    state: HarmonyState,
    index: int,
    bar: Bar,
    next_bar: Bar | None,
    *,
    key: Key,
    style: Style,
    energy: Energy,
    plan: FormPlan | None,
) -> None:
    """Harmonise bar ``index`` (``cantus.harmony.bar_harmony``), publish its HarmonyBar and
    update ``state`` in place. ``history`` chords are kept relative to the piece's ``key``;
    ``plan`` (None for a spec without one) sets the bar's key area, energy and cadence."""
    piece_id, spec = event.meta.piece_id, event.spec
    context = HarmonyContext(
        history=[
            HarmonizedBar(
                bar_from_rows(notes, bar.meter),
                tuple((chord, inversion) for chord, inversion in beats),
            )
            for notes, beats in state.history
        ],
        complete=state.history_complete,
        voicing=tuple(state.voicing) if state.voicing else None,
        melody_before=tuple(state.melody_before),
    )
    made = await harmonize_piece_bar(
        index,
        bar,
        next_bar,
        context,
        triton.harmonize,
        bars=spec.bars,
        key=key,
        style=style,
        energy=energy,
        plan=plan,
        model_version=model_version,
    )
    if made.model_error is not None:
        service.log.warning(
            "piece %s bar %d: model failed (%s), rules used", piece_id, index, made.model_error
        )
    meta = new_meta(piece_id, index, service.name, received_at_unix_ns=received.received_at_ns)
    await service.publish(made.to_pb(meta, spec), received=received)
    service.log.info(
        "piece %s bar %d: %s (%s)%s",
        piece_id,
        index,
        " ".join(str(s.symbol) for s in made.spans),
        made.harmonizer,
        f", {made.cadence} cadence in {made.key_area.name}" if made.cadence else "",
    )

    context.advance(bar, made.spans, made.voicing, key)
    state.history = [
        (note_rows(harmonized.bar.notes), list(harmonized.beats)) for harmonized in context.history
    ]
    state.history_complete = context.complete
    state.voicing = list(context.voicing) if context.voicing else state.voicing
    state.melody_before = list(context.melody_before)
