"""The form composer (``cantus.melody.composition``) on a local ``DecodeEngine`` instead of
Triton: for the evaluation, the CI quality gates and tools that compose whole pieces in
process with the melody service's own decoding settings. (Kept apart from the composer so
that the service, which talks to Triton, does not import torch.)"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence

import torch

from cantus.melody.composition import DecodePhrase, FormComposer, PhraseRequest, collect
from cantus.melody.controls import Controls
from cantus.melody.engine import DecodeEngine, DecodeRequest
from cantus.melody.infill import phrase_chooser
from cantus.melody.key_choice import candidates_in_key, key_chooser, key_floors
from cantus.melody.lead_in import lead_in_drawer
from cantus.melody.model import MelodyLM
from cantus.melody.openings import draw_opening
from cantus.melody.phrase_patterns import draw_form
from cantus.melody.sampling import SamplingParams, served_sampling
from cantus.melody.suffix_scoring import suffix_logprobs
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import AUTO, FormPlan
from cantus.music.notes import Bar, Melody, Meter, MusicError
from cantus.settings import Settings


def default_sampling() -> SamplingParams:
    """What the melody service asks of the model with the default settings (not this
    machine's environment): the base of every phrase request, its cadence aside."""
    return served_sampling(Settings.model_construct())


def engine_phrase_decoder(
    engine: DecodeEngine, tokenizer: MelodyTokenizer, meter: Meter, sampling: SamplingParams
) -> DecodePhrase:
    """A ``DecodePhrase`` that runs each request on ``engine`` (its thread) and streams the
    bars back to the asyncio loop of the caller, so many pieces composed concurrently share
    the engine's batched steps as they would share Triton's."""

    async def decode(phrase: PhraseRequest) -> AsyncIterator[Bar]:
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | str] = asyncio.Queue()
        request = DecodeRequest(
            phrase.prompt(tokenizer),
            n_bars=phrase.n_bars,
            seed=phrase.seed,
            sampling=phrase.sampling(sampling),
        )

        def on_token(token: int) -> None:
            loop.call_soon_threadsafe(tokens.put_nowait, token)

        def on_done(reason: str) -> None:
            loop.call_soon_threadsafe(tokens.put_nowait, reason)

        engine.submit(request, on_token, on_done)
        assembler = tokenizer.bar_assembler(meter)
        while True:
            item = await tokens.get()
            if isinstance(item, str):
                if item != "eos":
                    raise RuntimeError(f"the phrase at bar {phrase.first_bar} ended: {item}")
                break
            bar = assembler.push(item)
            if bar is not None:
                yield bar
        for bar in assembler.finish():
            yield bar

    return decode


def piece_plan(
    form: str,
    controls: Controls,
    *,
    bars: int,
    seed: int,
    window: int | None,
    drawn: bool,
) -> FormPlan:
    """The plan ``compose_pieces`` composes one piece of ``bars`` bars along, before its
    opening (``draw_form`` in the controls' key, energy, style and meter): the realness eval
    reads a generated piece's returns from the same plan."""
    return draw_form(
        form,
        bars=bars,
        key=controls.key,
        energy=controls.energy,
        style=controls.style.value,
        meter=controls.meter,
        seed=seed,
        window=window,
        drawn=drawn,
    )


def compose_pieces(
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    jobs: Sequence[tuple[Controls, int]],
    *,
    n_bars: int,
    bars: Sequence[int] | None = None,
    sampling: SamplingParams | None = None,
    form: str = AUTO,
    max_batch: int = 32,
    return_candidates: int | None = None,
    lead_on: bool = True,
    key_candidates: int | None = None,
    register_contrast: bool | None = None,
    corpus_key_clarity: bool | None = None,
    register_window: bool | None = None,
    pickups: bool | None = None,
    corpus_forms: bool | None = None,
    pattern_window: int | None = None,
) -> list[Melody | None]:
    """One piece per job (controls, seed) of ``n_bars`` bars (or of ``bars``, one length per
    job) composed along ``draw_form(form, …)`` in the controls' key and
    energy, all at once on one engine (as concurrent pieces share Triton's steps), sampled with
    ``sampling`` (default: ``default_sampling``) and each phrase's cadence; a phrase that leads
    into a return chosen among ``return_candidates`` (None:
    ``settings.melody_return_candidates``) by the model's own scoring, as the service chooses
    with ``melody_score`` (and, where the key is held by choosing, among those in key);
    ``lead_on``: as ``FormComposer``'s; each other new phrase chosen in key among
    ``key_candidates`` (None: ``settings.melody_key_candidates``); ``register_contrast``: as
    ``FormComposer``'s (None: ``settings.melody_register_contrast``); ``corpus_key_clarity``:
    the key areas as clear as real tunes' (``key_choice.KEY_CLARITY_FLOORS``) or reading in the
    asked key (None: ``settings.melody_corpus_key_clarity``); ``register_window``: as
    ``FormComposer``'s (None: ``settings.melody_register_window``); ``pickups``: a piece opens
    with a pickup bar before its plan's bars as often as the corpus's tunes of its style and
    meter do (``cantus.melody.openings``; None: ``settings.melody_pickups``; off: on the
    downbeat); ``corpus_forms``: with ``form`` ``auto``, a piece of a length the corpus's phrase
    patterns cover draws its form from them (``cantus.melody.phrase_patterns``; None:
    ``settings.melody_corpus_forms``; off: ``auto`` picks by length; ``pattern_window``:
    ``draw_form``'s ``window``); None where a piece failed."""
    base = sampling or default_sampling()
    served = Settings.model_construct()  # as the service composes, by default
    look_ahead = served.melody_fill_in_middle
    candidates = served.melody_return_candidates if return_candidates is None else return_candidates
    in_key = served.melody_key_candidates if key_candidates is None else key_candidates
    floors = key_floors(
        served.melody_corpus_key_clarity if corpus_key_clarity is None else corpus_key_clarity
    )
    in_key_filter = functools.partial(candidates_in_key, floors=floors) if in_key > 1 else None
    contrast = served.melody_register_contrast if register_contrast is None else register_contrast
    window = served.melody_register_window if register_window is None else register_window
    opening = served.melody_pickups if pickups is None else pickups
    drawn = served.melody_corpus_forms if corpus_forms is None else corpus_forms

    async def score(sequences: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        return suffix_logprobs(model, sequences, starts)

    lead_in = lead_in_drawer(score, tokenizer) if served.melody_lead_in else None

    async def compose_all() -> list[Melody | None]:
        with DecodeEngine(model, tokenizer, max_batch=max_batch, kv_dtype=torch.bfloat16) as engine:

            async def one(controls: Controls, seed: int, length: int) -> Melody | None:
                plan = piece_plan(
                    form, controls, bars=length, seed=seed, window=pattern_window, drawn=drawn
                )
                if opening:
                    plan = draw_opening(plan, controls.style.value, controls.meter, seed)
                decode = engine_phrase_decoder(engine, tokenizer, controls.meter, base)
                try:
                    choose = (
                        phrase_chooser(decode, score, tokenizer, candidates, in_key_filter, lead_in)
                        if candidates > 1
                        else None
                    )
                    composer = FormComposer(
                        plan,
                        controls,
                        seed,
                        look_ahead=look_ahead,
                        choose=choose,
                        lead_on=lead_on,
                        choose_in_key=(
                            key_chooser(decode, in_key, floors=floors) if in_key > 1 else None
                        ),
                        register_contrast=contrast,
                        register_window=window,
                        lead_in=lead_in,
                    )
                    bars = await collect(composer, [], decode)
                except (RuntimeError, MusicError):
                    return None
                return Melody(controls.key, controls.tempo_bpm, tuple(bars))

            lengths = list(bars) if bars is not None else [n_bars] * len(jobs)
            pieces = (one(c, s, n) for (c, s), n in zip(jobs, lengths, strict=True))
            return list(await asyncio.gather(*pieces))

    return asyncio.run(compose_all())
