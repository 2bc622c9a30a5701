"""Melody service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.compose.requested
out: cantus.melody.bar   (one event per bar, published the moment the bar is decoded)

Bars come from the ``melody_lm`` model on Triton, streamed token by token; several pieces
are decoded at once (agent concurrency) and Triton batches them into one forward step.

Restart safety: each bar is recorded in a Faust table (changelog-backed) before it is
published, and the request's offset is committed only when the whole piece is out. A
restarted service sees the request again, republishes the recorded bars (downstream keeps
the first copy per bar) and asks the model to continue after them.
"""

from __future__ import annotations

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import notes_to_pb, pb_to_bar, spec_meter
from cantus.melody.client import MelodyLMClient, SamplingOptions
from cantus.melody.prompting import MelodyPrompter
from cantus.music.notes import Bar, MusicError
from cantus.streaming import Received, StreamService
from cantus.v1 import events_pb2 as pb

BARS_PER_REQUEST = 12
"""Bars decoded per model request: with ``CONTEXT_BARS`` of prompt, a worst-case request
(16 notes a bar, 49 tokens) still fits the model's 1,024-token context."""
CONTEXT_BARS = 6

service = StreamService("melody")
compose_requests = service.topic("compose_requested")
progress = service.app.Table(
    "melody-progress", default=None, partitions=service.settings.partitions
)
"""piece_id → {"bars": [[[onset, pitch, duration, velocity], …] per bar], "done": bool}."""
triton = MelodyLMClient(service.settings.triton_grpc, service.settings.melody_model_name)
prompter = MelodyPrompter.from_checkpoint(service.settings.melody_checkpoint)


@service.app.agent(compose_requests, concurrency=service.settings.melody_concurrency)
async def compose_melody(stream):  # type: ignore[no-untyped-def]
    await service.process(stream, handle_compose_requested)


async def handle_compose_requested(request: pb.ComposeRequested, received: Received) -> None:
    piece_id, spec = request.meta.piece_id, request.spec
    state = progress.get(piece_id) or {"bars": [], "done": False}
    if state["done"]:
        return
    meter = spec_meter(spec)
    recorded = [_bar_from_state(notes, meter) for notes in state["bars"]]

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

    while len(recorded) < spec.bars:
        await _continue_melody(request, recorded, received)
    _record(piece_id, recorded, done=True)


async def _continue_melody(
    request: pb.ComposeRequested, recorded: list[Bar], received: Received
) -> None:
    """Decode up to ``BARS_PER_REQUEST`` more bars after ``recorded`` (appended in place),
    publishing each as it closes. Long pieces take several requests, each prompted with the
    last ``CONTEXT_BARS`` bars, so prompt and answer stay within the model's context."""
    piece_id, spec = request.meta.piece_id, request.spec
    n_bars = min(BARS_PER_REQUEST, spec.bars - len(recorded))
    prompt = prompter.prompt(spec, recorded[-CONTEXT_BARS:])
    assembler = prompter.bar_assembler(spec)
    target = len(recorded) + n_bars
    # Resuming after k bars samples with seed + k: the same restart point gives the same piece.
    async for token in triton.stream_tokens(
        prompt,
        n_bars=n_bars,
        seed=spec.seed + len(recorded),
        # the request that reaches the last bar closes the piece with a cadence on the tonic
        options=SamplingOptions(
            key_constraint=True,
            end_on_tonic=target == spec.bars,
            tonal_emphasis=service.settings.melody_tonal_emphasis,
        ),
        request_id=f"{piece_id}:{len(recorded)}",
    ):
        bar = assembler.push(token)
        if bar is not None:
            await _accept_bar(request, recorded, bar, received)
            if len(recorded) == target:
                return
    for bar in assembler.finish():
        await _accept_bar(request, recorded, bar, received)
    if len(recorded) < target:
        raise RuntimeError(f"the model stopped after {len(recorded)} of {spec.bars} bars")


async def _accept_bar(
    request: pb.ComposeRequested, recorded: list[Bar], bar: Bar, received: Received
) -> None:
    recorded.append(bar)
    _record(request.meta.piece_id, recorded, done=False)
    await _publish_bar(request, len(recorded) - 1, bar, received, given=False)


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
    progress[piece_id] = {
        "bars": [[[n.onset, n.pitch, n.duration, n.velocity] for n in bar.notes] for bar in bars],
        "done": done,
    }


def _bar_from_state(notes: list[list[int]], meter) -> Bar:  # type: ignore[no-untyped-def]
    from cantus.music.notes import Note

    return Bar(meter, tuple(Note(*note) for note in notes))


def _given_bar(bar_notes: pb.BarNotes, meter, index: int) -> Bar:  # type: ignore[no-untyped-def]
    try:
        return pb_to_bar(bar_notes.notes, meter)
    except MusicError as error:
        raise InvalidEvent(f"given_bars[{index}]: {error}") from None
