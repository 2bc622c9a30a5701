"""Melody service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.compose.requested
out: cantus.melody.bar   (one event per bar, published the moment the bar is decoded)

The piece follows its form plan (``spec.form``, ``cantus.melody.composition``): new
sections are decoded phrase by phrase by the ``melody_lm`` model on Triton, streamed token
by token, each phrase ending in its cadence; repeated sections are copied, varied ones
copied with ornaments and a new ending. A phrase that leads into a return (the B of AABA)
is decoded as ``melody_return_candidates`` candidates at once, and the ``melody_score``
model keeps the one after which the return's first bars are likeliest; with
``melody_key_candidates`` > 1 (3 by default) each other new phrase is decoded as that
many candidates and the first that keeps its key area in the key is kept, and the return's
lead is the likeliest of the candidates in key (``cantus.melody.key_choice``: how the key
is held, without guidance). Several pieces are
decoded at once (``melody_concurrency``) and Triton batches them into one forward step;
requests beyond those wait in a ``PriorityGate``, the most pressing first (a station's
first piece before other stations' pieces for later: ``PieceSpec.priority``).

Restart safety: each bar is recorded in a Faust table (changelog-backed) before it is
published, and the request's offset is committed only when the whole piece is out. A
restarted service sees the request again, republishes the recorded bars (downstream keeps
the first copy per bar) and composes on from there (the same plan, bars and seed give the
same continuation).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import notes_to_pb, pb_to_bar, spec_form, spec_meter
from cantus.melody.client import MelodyLMClient
from cantus.melody.composition import FormComposer, PhraseRequest
from cantus.melody.infill import phrase_chooser
from cantus.melody.key_choice import candidates_in_key, key_chooser, key_floors
from cantus.melody.lead_in import lead_in_drawer
from cantus.melody.prompting import MelodyPrompter
from cantus.melody.sampling import served_sampling
from cantus.melody.suffix_scoring import MelodyScoreClient
from cantus.music.form import FormPlan, plan_form
from cantus.music.notes import Bar, MusicError
from cantus.music.styles import Energy
from cantus.scheduling import PriorityGate
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import MelodyProgress, bar_from_rows, note_rows
from cantus.v1 import events_pb2 as pb

service = StreamService("melody")
compose_requests = service.topic("compose_requested")
progress = service.app.Table(
    "melody-progress", default=None, partitions=service.settings.partitions
)
"""piece_id → ``MelodyProgress`` (``cantus.streaming.table_state``)."""
triton = MelodyLMClient(service.settings.triton_grpc, service.settings.melody_model_name)
scorer = MelodyScoreClient(service.settings.triton_grpc, service.settings.melody_score_model_name)
prompter = MelodyPrompter.from_checkpoint(service.settings.melody_checkpoint)
decoding = PriorityGate(service.settings.melody_concurrency)
"""The pieces decoded at once; the others wait here, not in the topic, so that a pressing
piece can pass them."""

WAITING_PER_SLOT = 4
"""Requests taken from the topic per decoding slot: those the gate can choose among."""


@service.app.agent(
    compose_requests, concurrency=service.settings.melody_concurrency * WAITING_PER_SLOT
)
async def compose_melody(stream):
    await service.process(stream, handle_compose_requested)


async def handle_compose_requested(request: pb.ComposeRequested, received: Received) -> None:
    if MelodyProgress.from_table(progress.get(request.meta.piece_id)).done:
        return
    async with decoding.slot(request.spec.priority):
        await compose_piece(request, received)


async def compose_piece(request: pb.ComposeRequested, received: Received) -> None:
    piece_id, spec = request.meta.piece_id, request.spec
    state = MelodyProgress.from_table(progress.get(piece_id))
    if state.done:
        return
    meter = spec_meter(spec)
    recorded = [bar_from_rows(rows, meter) for rows in state.bars]

    given = [_given_bar(bar_notes, meter, i) for i, bar_notes in enumerate(request.given_bars)]
    if spec.melody_source == pb.MELODY_SOURCE_HARMONIZE:
        given = given[: spec.bars]
    for index, bar in enumerate(given):
        if index >= len(recorded):
            recorded.append(bar)
            _record(piece_id, recorded, done=False)
        await _publish_bar(request, index, bar, received, given=True)

    for index in range(len(given), len(recorded)):  # bars decoded before a restart
        await _publish_bar(request, index, recorded[index], received, given=False)

    if len(recorded) < spec.bars:
        decode = functools.partial(_decode_phrase, request)
        candidates = service.settings.melody_return_candidates
        in_key = service.settings.melody_key_candidates
        floors = key_floors(service.settings.melody_corpus_key_clarity)
        lead_in = (
            lead_in_drawer(scorer.score, prompter.tokenizer)
            if service.settings.melody_lead_in
            else None
        )
        composer = FormComposer(
            _plan(spec),
            prompter.controls(spec),
            spec.seed,
            look_ahead=service.settings.melody_fill_in_middle,
            choose=(
                phrase_chooser(
                    decode,
                    scorer.score,
                    prompter.tokenizer,
                    candidates,
                    functools.partial(candidates_in_key, floors=floors) if in_key > 1 else None,
                    lead_in,
                )
                if candidates > 1
                else None
            ),
            choose_in_key=key_chooser(decode, in_key, floors=floors) if in_key > 1 else None,
            register_contrast=service.settings.melody_register_contrast,
            register_window=service.settings.melody_register_window,
            lead_in=lead_in,
        )

        async for index, bar in composer.compose(recorded, decode):
            _record(piece_id, recorded, done=False)
            await _publish_bar(request, index, bar, received, given=False)
    _record(piece_id, recorded, done=True)


def _plan(spec: pb.PieceSpec) -> FormPlan:
    """The spec's form plan; a spec from before forms existed is through-composed."""
    try:
        plan = spec_form(spec)
    except MusicError as error:
        raise InvalidEvent(f"spec.form: {error}") from None
    if plan is None:
        plan = plan_form(
            "through", bars=spec.bars, key=prompter.controls(spec).key, energy=Energy(spec.energy)
        )
    if plan.total_bars != spec.bars:
        raise InvalidEvent(f"spec.form covers {plan.total_bars} bars, spec.bars is {spec.bars}")
    return plan


async def _decode_phrase(request: pb.ComposeRequested, phrase: PhraseRequest) -> AsyncIterator[Bar]:
    """The phrase's bars, each as soon as the model closes it."""
    assembler = prompter.bar_assembler(request.spec)
    async for token in triton.stream_tokens(
        phrase.prompt(prompter.tokenizer),
        n_bars=phrase.n_bars,
        seed=phrase.seed,
        sampling=phrase.sampling(served_sampling(service.settings)),
        request_id=f"{request.meta.piece_id}:{phrase.first_bar}:{phrase.seed}",
    ):
        bar = assembler.push(token)
        if bar is not None:
            yield bar
    for bar in assembler.finish():
        yield bar


async def _publish_bar(
    request: pb.ComposeRequested, index: int, bar: Bar, received: Received, *, given: bool
) -> None:
    event = pb.MelodyBar(
        meta=new_meta(
            request.meta.piece_id, index, service.name, received_at_unix_ns=received.received_at_ns
        ),
        spec=request.spec,
        notes=notes_to_pb(bar.notes),
        given=given,
        model="user" if given else prompter.model_version,
    )
    await service.publish(event, received=received)


def _record(piece_id: str, bars: list[Bar], *, done: bool) -> None:
    state = MelodyProgress(bars=[note_rows(bar.notes) for bar in bars], done=done)
    progress[piece_id] = state.to_table()


def _given_bar(bar_notes: pb.BarNotes, meter, index: int) -> Bar:
    try:
        return pb_to_bar(bar_notes.notes, meter)
    except MusicError as error:
        raise InvalidEvent(f"given_bars[{index}]: {error}") from None
