"""Harmony service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.melody.bar    (bars of a piece arrive in order on one partition)
out: cantus.harmony.bar   (chords, voicing and bass for one bar)

Chords come from the ``harmony`` model on Triton, which reads one bar of lookahead: bar i
is harmonised when bar i+1 arrives (at most one bar of delay), the final bar at once. A
bar of rests holds the chord before it (nothing to harmonise), and the rule-based
harmoniser stands in only where the model cannot answer (Triton down, an error); the
event's ``harmonizer`` says which one made the bar and why.

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
    notes_to_pb,
    pb_to_bar,
    spec_energy,
    spec_form,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.cadence import bar_harmony_plan
from cantus.harmony.client import HarmonyClient, HarmonyModelError
from cantus.harmony.context import (
    HarmonizedBar,
    beats_to_spans,
    checkpoint_version,
    planned_window,
)
from cantus.harmony.features import beat_spans
from cantus.harmony.rules import ChordSpan, harmonize_bar
from cantus.harmony.serving import HISTORY_BARS
from cantus.harmony.vocabulary import (
    CHORD_CLASSES,
    chord_inversion,
    chord_to_class,
    class_to_chord,
)
from cantus.harmony.voicing import bass_line, tune_before, voice_chords
from cantus.music.chords import ChordQuality, ChordSymbol, roman_numeral
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key, MusicError
from cantus.music.styles import Energy, Style
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import HarmonyState, bar_from_rows, note_rows
from cantus.v1 import events_pb2 as pb

RULES = "rules-v1"

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
    """Harmonise bar ``index``, publish its HarmonyBar and update ``state`` in place.
    ``history`` chords are kept relative to the piece's ``key``; ``plan`` (None for a spec
    without one) sets the bar's key area, energy and cadence."""
    piece_id, spec = event.meta.piece_id, event.spec
    history = [
        HarmonizedBar(
            bar_from_rows(notes, bar.meter),
            tuple((chord, inversion) for chord, inversion in beats),
        )
        for notes, beats in state.history
    ]
    is_final = index == spec.bars - 1
    previous = _last_chord(history, key)
    bar_plan = bar_harmony_plan(plan, index, bar, home_key=key, energy=energy, next_bar=next_bar)
    if bar.is_rest:
        spans = harmonize_bar(
            bar,
            bar_plan.key,
            previous=previous,
            style=style,
            is_final=is_final,
            constraints=bar_plan.constraints,
        )
        harmonizer = f"{RULES} (bar of rests: the chord before is held)"
    else:
        window = planned_window(
            history,
            bar,
            next_bar=next_bar,
            plan=bar_plan,
            home_key=key,
            style=style,
            is_final=is_final,
            history_is_complete=state.history_complete,
        )
        try:
            beats = await triton.harmonize(window)
            if any(not 0 <= chord < CHORD_CLASSES for chord, _ in beats):
                raise HarmonyModelError(f"chord classes out of range: {beats}")
            if bar_plan.violations(beats, bar.meter):
                raise HarmonyModelError(f"the answer {beats} breaks the bar's cadence")
            beats = bar_plan.root_position(beats, bar.meter)
            spans = beats_to_spans(bar, beats, bar_plan.key)
            harmonizer = model_version
        except HarmonyModelError as error:
            service.log.warning(
                "piece %s bar %d: model failed (%s), rules used", piece_id, index, error
            )
            spans = harmonize_bar(
                bar,
                bar_plan.key,
                previous=previous,
                style=style,
                next_bar=next_bar,
                is_final=is_final,
                constraints=bar_plan.constraints,
            )
            harmonizer = f"{RULES} (fallback: the harmony model did not answer)"
    if bar_plan.key != key:  # Roman numerals in the piece's key
        spans = [
            ChordSpan(s.onset, s.duration, s.symbol, roman_numeral(s.symbol, key)) for s in spans
        ]

    previous_voicing = tuple(state.voicing) if state.voicing else None
    voicing = voice_chords(
        spans,
        style=style,
        previous_voicing=previous_voicing,
        melody=bar,
        melody_before=tuple(state.melody_before),
    )
    bass = bass_line(spans, bar.meter, style=style, energy=bar_plan.energy)
    harmony = pb.HarmonyBar(
        meta=new_meta(piece_id, index, service.name, received_at_unix_ns=received.received_at_ns),
        spec=spec,
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
        harmonizer=harmonizer,
    )
    await service.publish(harmony, received=received)
    service.log.info(
        "piece %s bar %d: %s (%s)%s",
        piece_id,
        index,
        " ".join(str(s.symbol) for s in spans),
        harmonizer,
        f", {bar_plan.cadence.value} cadence in {bar_plan.key.name}" if bar_plan.cadence else "",
    )

    state.history = [*state.history, (note_rows(bar.notes), _span_beats(bar, spans, key))]
    if len(state.history) > HISTORY_BARS:
        state.history = state.history[-HISTORY_BARS:]
        state.history_complete = False
    last_onset = max((n.onset for n in voicing), default=None)
    state.voicing = sorted(n.pitch for n in voicing if n.onset == last_onset) or state.voicing
    state.melody_before = list(tune_before(bar, bar.meter.bar_ticks))


def _span_beats(bar: Bar, spans: list[ChordSpan], key: Key) -> list[tuple[int, int]]:
    """(chord class, inversion) of each beat under ``spans``, for the model's history; a
    chord outside the model's vocabulary is read as its nearest triad."""
    beats = []
    for onset, _ in beat_spans(bar.meter):
        chord = next(s.symbol for s in spans if s.onset <= onset < s.onset + s.duration)
        try:
            beats.append((chord_to_class(chord, key), chord_inversion(chord)))
        except ValueError:
            beats.append((chord_to_class(ChordSymbol(chord.root, _triad_of(chord)), key), 0))
    return beats


def _triad_of(chord: ChordSymbol) -> ChordQuality:
    return ChordQuality.MINOR if 3 in chord.quality.intervals else ChordQuality.MAJOR


def _last_chord(history: list[HarmonizedBar], key: Key) -> ChordSymbol | None:
    if not history or not history[-1].beats:
        return None
    chord_class, inversion = history[-1].beats[-1]
    return class_to_chord(chord_class, key, inversion) if chord_class >= 0 else None
