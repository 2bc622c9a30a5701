"""The continuous-batching engine and ``generate``, with a tiny random model."""

from __future__ import annotations

import threading

import pytest
import torch

from cantus.melody.checkpoint import load_melody_checkpoint, save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.engine import DecodeEngine, DecodeRequest, StepTiming, generate
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar, Key, Meter, Mode, MusicError, Note
from cantus.music.styles import Energy, Style

torch.set_num_threads(1)
TOKENIZER = MelodyTokenizer()


@pytest.fixture(scope="module")
def model() -> MelodyLM:
    torch.manual_seed(0)
    return MelodyLM(MelodyLMConfig.tiny(len(TOKENIZER.vocab))).eval()


COMMON_TIME, G_MAJOR = Meter(4, 4), Key(7)


def _controls(meter: Meter = COMMON_TIME, key: Key = G_MAJOR) -> Controls:
    return Controls(key, meter, 120.0, Style.CELTIC, Energy.HIGH)


def _prompt(meter: Meter = COMMON_TIME, given: int = 0) -> list[int]:
    tokens = TOKENIZER.controls_prefix(_controls(meter))
    for i in range(given):
        tokens += TOKENIZER.bar_to_tokens(Bar(meter, (Note(0, 60 + i, meter.bar_ticks),)))
    return tokens


def test_concurrent_requests_all_yield_valid_melodies(model: MelodyLM) -> None:
    timings: list[StepTiming] = []
    requests = [
        DecodeRequest(_prompt(Meter(4, 4)), n_bars=4, seed=1),
        DecodeRequest(
            _prompt(Meter(6, 8), given=2),
            n_bars=3,
            seed=2,
            sampling=SamplingParams(key_constraint=True),
        ),
        DecodeRequest(
            _prompt(Meter(3, 4), given=1),
            n_bars=2,
            seed=3,
            sampling=SamplingParams(temperature=0.7, top_k=10, pitch_range=(60, 72)),
        ),
        DecodeRequest(_prompt(Meter(2, 4)), n_bars=5, seed=4, sampling=SamplingParams(top_p=0.5)),
    ]
    results: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    all_done = threading.Event()

    with DecodeEngine(model, TOKENIZER, max_batch=3, step_hook=timings.append) as engine:
        for index, request in enumerate(requests):
            results[str(index)] = []

            def done(reason: str, index: int = index) -> None:
                reasons[str(index)] = reason
                if len(reasons) == len(requests):
                    all_done.set()

            engine.submit(request, results[str(index)].append, done, request_id=str(index))
        assert all_done.wait(60)
        assert engine.active_count == 0

    assert set(reasons.values()) == {"eos"}
    for index, request in enumerate(requests):
        tokens = list(request.prompt_tokens) + results[str(index)]
        _, melody = TOKENIZER.decode(tokens)
        given = (len(request.prompt_tokens) - 7) // 4  # one note (4 tokens) per given bar
        assert len(melody.bars) == given + request.n_bars
        low, high = request.sampling.pitch_range
        for bar in melody.bars[given:]:
            assert all(low <= n.pitch <= high for n in bar.notes)
    # several sequences shared forward steps (batch > 1), never more than max_batch
    assert max(t.batch for t in timings if t.kind == "decode") > 1
    assert all(t.batch <= 3 for t in timings)


def test_cancel_frees_the_slot_for_the_next_request(model: MelodyLM) -> None:
    first_token = threading.Event()
    reasons: list[str] = []
    cancelled = threading.Event()

    def on_done(reason: str) -> None:
        reasons.append(reason)
        cancelled.set()

    with DecodeEngine(model, TOKENIZER, max_batch=1) as engine:
        long = DecodeRequest(_prompt(), n_bars=30, seed=5)
        request_id = engine.submit(long, lambda _: first_token.set(), on_done)
        # queued behind the long one: it can only run once the single slot is freed
        waiting = DecodeRequest(_prompt(), n_bars=1, seed=6)
        second: dict[str, object] = {}
        second_done = threading.Event()
        engine.submit(
            waiting,
            lambda _: None,
            lambda reason: (second.update(reason=reason), second_done.set()),
        )
        assert first_token.wait(30)
        engine.cancel(request_id)
        assert cancelled.wait(30) and reasons == ["cancelled"]
        assert second_done.wait(30) and second["reason"] == "eos"
        assert engine.active_count == 0


def test_same_seed_gives_the_same_tokens_and_matches_generate(model: MelodyLM) -> None:
    request = DecodeRequest(_prompt(), n_bars=3, seed=42, sampling=SamplingParams(temperature=1.0))
    with DecodeEngine(model, TOKENIZER, max_batch=4) as engine:
        first, reason = engine.decode(request, timeout=60)
        second, _ = engine.decode(request, timeout=60)
        other, _ = engine.decode(DecodeRequest(_prompt(), n_bars=3, seed=43), timeout=60)
    assert reason == "eos" and first == second and first != other
    cached = generate(model, TOKENIZER, _controls(), 3, seed=42)
    uncached = generate(model, TOKENIZER, _controls(), 3, seed=42, use_cache=False)
    assert cached.tokens[7:] == first == uncached.tokens[7:]
    assert len(cached.melody.bars) == 3 and len(cached.token_seconds) == len(first)


def test_bad_requests_are_refused_at_submit(model: MelodyLM) -> None:
    with DecodeEngine(model, TOKENIZER, max_batch=1) as engine:
        with pytest.raises(MusicError):
            engine.submit(DecodeRequest([1, 2, 3], n_bars=2, seed=0), print, print)
        with pytest.raises(MusicError, match="no room"):
            engine.submit(DecodeRequest(_prompt(), n_bars=500, seed=0), print, print)
        with pytest.raises(ValueError):
            engine.submit(
                DecodeRequest(_prompt(), n_bars=2, seed=0, sampling=SamplingParams(top_p=0)),
                print,
                print,
            )


def test_generate_with_given_bars_and_key_constraint(model: MelodyLM) -> None:
    meter = Meter(3, 4)
    given = [Bar(meter, (Note(0, 62, 480), Note(480, 64, 960)))]
    key = Key(2, Mode.MINOR)
    result = generate(
        model,
        TOKENIZER,
        _controls(meter, key),
        4,
        seed=1,
        given_bars=given,
        sampling=SamplingParams(key_constraint=True),
    )
    assert result.melody.bars[0] == given[0] and len(result.melody.bars) == 5
    scale = set(key.scale_pitch_classes) | {(key.tonic + 9) % 12, (key.tonic + 11) % 12}
    assert all(n.pitch % 12 in scale for bar in result.melody.bars[1:] for n in bar.notes)


def test_checkpoint_round_trip(model: MelodyLM, tmp_path) -> None:
    path = tmp_path / "melody_lm.pt"
    save_melody_checkpoint(path, model, TOKENIZER, EnergyThresholds(1.0, 2.0), {"steps": 3})
    loaded, tokenizer, metadata = load_melody_checkpoint(path)
    assert (tmp_path / "melody_lm.vocab.json").exists()
    assert tokenizer.vocab == TOKENIZER.vocab and metadata["steps"] == 3
    assert metadata["energy_thresholds"] == EnergyThresholds(1.0, 2.0)
    tokens = torch.tensor([_prompt()])
    torch.testing.assert_close(loaded(tokens), model(tokens))


def test_step_timing_helper_reports_the_median_repeat(model: MelodyLM) -> None:
    from cantus.melody.engine import time_decode_step

    for use_cache in (True, False):
        # a clock whose repeats last 1, 3 and 2 s: the median is 2 s whatever the machine
        clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0]).__next__
        step = time_decode_step(model, 64, batch=2, use_cache=use_cache, repeats=3, clock=clock)
        assert step == 2.0
    with pytest.raises(ValueError, match="context must be"):
        time_decode_step(model, model.config.max_len)


def test_a_failing_token_receiver_ends_only_its_request(model: MelodyLM) -> None:
    """A client that went away (its sender raises) must not stop the engine thread."""
    reasons: dict[str, str] = {}
    done = threading.Event()

    def broken(token: int) -> None:
        raise RuntimeError("stream closed")

    with DecodeEngine(model, TOKENIZER, max_batch=2) as engine:
        engine.submit(
            DecodeRequest(_prompt(), n_bars=2, seed=1),
            broken,
            lambda reason: reasons.setdefault("broken", reason),
        )
        tokens, reason = engine.decode(DecodeRequest(_prompt(), n_bars=2, seed=2), timeout=30)
        done.set()
    assert reasons["broken"].startswith("error: delivering a token failed")
    assert reason == "eos" and tokens


def test_sequences_decode_the_same_alone_or_batched_while_others_come_and_go(
    model: MelodyLM,
) -> None:
    # Short requests finish first; the engine moves the remaining sequences down into the
    # freed slots. Each request must still sample exactly what it samples alone.
    requests = [DecodeRequest(_prompt(), n_bars=1 + i % 4, seed=100 + i) for i in range(7)]
    with DecodeEngine(model, TOKENIZER, max_batch=4) as engine:
        alone = [engine.decode(request, timeout=60)[0] for request in requests]
        batched: dict[int, list[int]] = {i: [] for i in range(len(requests))}
        finished = threading.Semaphore(0)
        for i, request in enumerate(requests):
            engine.submit(request, batched[i].append, lambda _reason: finished.release())
        for _ in requests:
            assert finished.acquire(timeout=60)
        assert engine.active_count == 0
    assert [batched[i] for i in range(len(requests))] == alone


def test_a_bfloat16_cache_decodes_valid_melodies(model: MelodyLM) -> None:
    request = DecodeRequest(
        _prompt(Meter(3, 4)), n_bars=3, seed=5, sampling=SamplingParams(end_on_tonic=True)
    )
    with DecodeEngine(model, TOKENIZER, max_batch=2, kv_dtype=torch.bfloat16) as engine:
        assert engine.cache.data.dtype == torch.bfloat16
        tokens, reason = engine.decode(request, timeout=60)
    _, melody = TOKENIZER.decode(_prompt(Meter(3, 4)) + tokens)
    assert reason == "eos" and len(melody.bars) == 3
    assert melody.bars[-1].notes[-1].pitch % 12 == G_MAJOR.tonic


def test_bfloat16_copies_serve_large_steps_close_to_fp32(model: MelodyLM) -> None:
    from cantus.melody.model import KVCache

    cache = KVCache(model.config, 4)
    tokens = torch.tensor(TOKENIZER.controls_prefix(_controls()))
    for slot in range(4):
        model.prefill(tokens, cache, slot)
    slots, step_tokens = torch.arange(4), torch.full((4,), TOKENIZER.vocab.bar)
    exact = model.decode_step(step_tokens, cache, slots)
    cache.lengths[:] = len(tokens)
    low_precision = MelodyLM(model.config).eval()
    low_precision.load_state_dict(model.state_dict())
    low_precision.keep_bfloat16_copies(from_batch=2)
    approximate = low_precision.decode_step(step_tokens, cache, slots)
    assert not torch.equal(exact, approximate)  # the bf16 path really ran
    assert torch.allclose(exact, approximate, atol=0.05)
    # a single sequence stays in fp32
    cache.lengths[:] = len(tokens)
    single = low_precision.decode_step(step_tokens[:1], cache, slots[:1])
    assert torch.allclose(single[0], exact[0], atol=1e-5)


def test_guided_requests_take_a_twin_slot_and_match_their_solo_decode(model: MelodyLM) -> None:
    # A guided request decodes a key-free twin beside it; alone or batched with others that
    # come and go (slots compacted under it), it must sample the same melody.
    requests = [
        DecodeRequest(
            _prompt(),
            n_bars=1 + i % 3,
            seed=300 + i,
            sampling=SamplingParams(guidance=1.0 + (i % 2)),
        )
        for i in range(6)
    ]
    with DecodeEngine(model, TOKENIZER, max_batch=5) as engine:
        alone = [engine.decode(request, timeout=60) for request in requests]
        assert all(reason == "eos" for _, reason in alone)
        batched: dict[int, list[int]] = {i: [] for i in range(len(requests))}
        finished = threading.Semaphore(0)
        for i, request in enumerate(requests):
            engine.submit(request, batched[i].append, lambda _reason: finished.release())
        for _ in requests:
            assert finished.acquire(timeout=60)
        assert engine.active_count == 0
    assert [batched[i] for i in range(len(requests))] == [tokens for tokens, _ in alone]
    for tokens, _ in alone:
        TOKENIZER.decode(_prompt() + tokens)  # a valid melody


def test_guidance_changes_only_pitches_and_one_means_none(model: MelodyLM) -> None:
    with DecodeEngine(model, TOKENIZER, max_batch=4) as engine:
        plain, _ = engine.decode(DecodeRequest(_prompt(), n_bars=3, seed=9), timeout=60)
        one, _ = engine.decode(
            DecodeRequest(_prompt(), n_bars=3, seed=9, sampling=SamplingParams(guidance=1.0)), 60
        )
        guided, _ = engine.decode(
            DecodeRequest(_prompt(), n_bars=3, seed=9, sampling=SamplingParams(guidance=3.0)), 60
        )
    assert one == plain
    assert guided != plain
    with pytest.raises(ValueError, match="guidance"):
        DecodeRequest(_prompt(), n_bars=1, seed=1, sampling=SamplingParams(guidance=0.5))


def test_a_model_without_key_free_tokens_refuses_guidance() -> None:
    from cantus.melody.tokenizer import Vocabulary

    old = Vocabulary(tuple(t for t in TOKENIZER.vocab.tokens if t not in ("NOKEY", "NOMODE")))
    tokenizer = MelodyTokenizer(old)
    tiny = MelodyLM(MelodyLMConfig.tiny(len(old))).eval()
    prompt = tokenizer.controls_prefix(_controls())
    with (
        DecodeEngine(tiny, tokenizer, max_batch=2) as engine,
        pytest.raises(MusicError, match="control dropout"),
    ):
        engine.submit(
            DecodeRequest(prompt, n_bars=1, seed=1, sampling=SamplingParams(guidance=2.0)),
            print,
            print,
        )


def test_a_half_cadence_ends_on_a_dominant_chord_tone(model: MelodyLM) -> None:
    from cantus.melody.decoding import HALF_CADENCE_STEPS

    with DecodeEngine(model, TOKENIZER, max_batch=4) as engine:
        for seed in range(8):
            request = DecodeRequest(
                _prompt(),
                n_bars=2,
                seed=seed,
                sampling=SamplingParams(cadence_steps=HALF_CADENCE_STEPS),
            )
            tokens, reason = engine.decode(request, timeout=60)
            assert reason == "eos"
            _, melody = TOKENIZER.decode(_prompt() + tokens)
            last = melody.notes_absolute()[-1].pitch
            assert (last - G_MAJOR.tonic) % 12 in HALF_CADENCE_STEPS
