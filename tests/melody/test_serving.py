"""The Triton-free half of the melody_lm model: input checks and streamed delivery."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from cantus.melody.checkpoint import save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.sampling import SamplingParams
from cantus.melody.serving import (
    EXPECTED_INPUTS,
    EXPECTED_OUTPUTS,
    MelodyServing,
    RequestInputError,
    parse_decode_request,
)
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.model_config import check_model_config
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy, Style

torch.set_num_threads(1)
TOKENIZER = MelodyTokenizer()
PROMPT = TOKENIZER.controls_prefix(Controls(Key(0), Meter(4, 4), 100.0, Style.FOLK, Energy.LOW))


def inputs(**overrides) -> dict[str, np.ndarray]:
    tensors = {
        "PROMPT": np.array(PROMPT, dtype=np.int32),
        "N_BARS": np.array([2], dtype=np.int32),
        "SEED": np.array([7], dtype=np.int64),
    }
    tensors.update(overrides)
    return {name: value for name, value in tensors.items() if value is not None}


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> MelodyServing:
    torch.manual_seed(0)
    model = MelodyLM(MelodyLMConfig.tiny(len(TOKENIZER.vocab))).eval()
    path = tmp_path_factory.mktemp("ckpt") / "melody_lm.pt"
    save_melody_checkpoint(path, model, TOKENIZER, EnergyThresholds(1.0, 2.0), {"steps": 0})
    loaded = MelodyServing.load(path, max_batch=4, torch_threads=1)
    yield loaded
    loaded.close()


def test_parse_fills_defaults():
    request = parse_decode_request(inputs(), vocab_size=len(TOKENIZER.vocab), max_len=1024)
    assert (request.n_bars, request.seed) == (2, 7)
    assert request.sampling == SamplingParams()  # a tensor left out: the field's default
    assert list(request.prompt_tokens) == PROMPT


def test_parse_reads_cadence_and_guidance():
    request = parse_decode_request(
        inputs(CADENCE_STEPS=np.array([7, 2], np.int32), GUIDANCE=np.array([2.0], np.float32)),
        vocab_size=len(TOKENIZER.vocab),
        max_len=1024,
    )
    assert (request.sampling.cadence_steps, request.sampling.guidance) == ((7, 2), 2.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"N_BARS": None}, "N_BARS is required"),
        ({"N_BARS": np.array([0], np.int32)}, "N_BARS 0"),
        ({"N_BARS": np.array([1, 2], np.int32)}, "one value"),
        ({"PROMPT": np.array([], np.int32)}, "PROMPT is empty"),
        ({"PROMPT": np.array([9999], np.int32)}, "outside"),
        ({"TOP_P": np.array([0.0], np.float32)}, "TOP_P"),
        ({"TEMPERATURE": np.array([-1.0], np.float32)}, "TEMPERATURE"),
        ({"GUIDANCE": np.array([0.5], np.float32)}, "GUIDANCE 0.5"),
        ({"CADENCE_STEPS": np.array([7, 12], np.int32)}, "CADENCE_STEPS"),
    ],
)
def test_bad_inputs_are_named(overrides, message):
    with pytest.raises(RequestInputError, match=message):
        parse_decode_request(inputs(**overrides), vocab_size=len(TOKENIZER.vocab), max_len=1024)


def test_config_check_names_the_mismatch():
    config = {"input": [{"name": n} for n in EXPECTED_INPUTS], "output": [{"name": "TOKENS"}]}
    with pytest.raises(ValueError, match="output FINISHED is missing"):
        check_model_config(config, EXPECTED_INPUTS, EXPECTED_OUTPUTS)


def stream(serving: MelodyServing, tensors, cancel_after: int | None = None):
    tokens: list[int] = []
    finals: list[bool] = []
    done = threading.Event()

    def on_tokens(batch, finished):
        tokens.extend(batch)
        if finished:
            finals.append(True)
            done.set()

    serving.submit(
        tensors,
        on_tokens=on_tokens,
        on_error=lambda message: done.set(),
        is_cancelled=lambda: cancel_after is not None and len(tokens) >= cancel_after,
    )
    assert done.wait(30)
    return tokens, finals


def test_tokens_arrive_a_bar_at_a_time(serving):
    chunks: list[list[int]] = []
    done = threading.Event()

    def on_tokens(batch, finished):
        chunks.append(list(batch))
        if finished:
            done.set()

    serving.submit(
        inputs(N_BARS=np.array([3], np.int32)),
        on_tokens=on_tokens,
        on_error=print,
        is_cancelled=lambda: False,
    )
    assert done.wait(30)
    bar = TOKENIZER.vocab.bar
    # Every response but the last ends with the BAR that closes the bar before it.
    assert all(chunk[-1] == bar for chunk in chunks[:-1])
    assert chunks[-1][-1] == TOKENIZER.vocab.eos


def test_stream_ends_with_one_final_response_and_decodes(serving):
    tokens, finals = stream(serving, inputs())
    assert finals == [True]
    assert tokens[-1] == TOKENIZER.vocab.eos
    _, melody = TOKENIZER.decode(PROMPT + tokens)
    assert len(melody.bars) == 2


def test_cancelled_stream_still_gets_its_final_response(serving):
    full, _ = stream(serving, inputs(N_BARS=np.array([8], np.int32)))
    tokens, finals = stream(serving, inputs(N_BARS=np.array([8], np.int32)), cancel_after=3)
    assert finals == [True]
    assert 3 <= len(tokens) < len(full)
    assert TOKENIZER.vocab.eos not in tokens
    # The slot is free again: a new request completes.
    assert stream(serving, inputs())[1] == [True]


def test_prompt_the_grammar_refuses_is_an_input_error(serving):
    with pytest.raises(RequestInputError):
        serving.submit(
            inputs(PROMPT=np.array(PROMPT[:3], np.int32)),
            on_tokens=print,
            on_error=print,
            is_cancelled=lambda: False,
        )


def test_a_failing_send_ends_only_its_own_request(serving):
    """Responses go out on the delivery thread: a send that raises (the client went away)
    cancels that request in the engine, and the next request is served as usual."""
    calls: list[bool] = []
    done = threading.Event()

    def broken(batch, finished):
        calls.append(finished)
        if finished:
            done.set()
        raise ConnectionError("client went away")

    serving.submit(
        inputs(N_BARS=np.array([8], np.int32)),
        on_tokens=broken,
        on_error=print,
        is_cancelled=lambda: False,
    )
    assert done.wait(30)
    assert calls[0] is False and calls[-1] is True
    assert len(calls) < 8  # cancelled after its first response, not all 8 bars sent
    assert stream(serving, inputs())[1] == [True]
