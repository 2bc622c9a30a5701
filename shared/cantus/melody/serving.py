"""The melody model as Triton serves it, without Triton: input checks, the decode engine,
and delivery of each request's tokens through callbacks.

``triton_models/melody_lm/1/model.py`` only converts between Triton tensors and these
calls, so everything here is unit-tested without a server.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cantus.checkpoint_io import checkpoint_version
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.engine import DecodeEngine, DecodeRequest
from cantus.melody.sampling import WIRE_TENSORS, SamplingError, SamplingParams

REQUIRED_INPUTS = ("PROMPT", "N_BARS", "SEED")
EXPECTED_INPUTS = (*REQUIRED_INPUTS, *(tensor.name for tensor in WIRE_TENSORS.values()))
EXPECTED_OUTPUTS = ("TOKENS", "FINISHED")
MAX_BARS_PER_REQUEST = 64
MAX_TOKENS_PER_RESPONSE = 64
"""Tokens are sent when a bar closes, or at the latest after this many."""


class RequestInputError(ValueError):
    """A request's input tensor is missing or out of range; the message names it."""


def _scalar(inputs: Mapping[str, np.ndarray], name: str, default=None):
    array = inputs.get(name)
    if array is None:
        if default is None:
            raise RequestInputError(f"input {name} is required")
        return default
    if array.size != 1:
        raise RequestInputError(f"input {name} must hold one value, got shape {array.shape}")
    return array.reshape(-1)[0].item()


def parse_decode_request(
    inputs: Mapping[str, np.ndarray], vocab_size: int, max_len: int
) -> DecodeRequest:
    """A ``DecodeRequest`` from the request's tensors; ``RequestInputError`` names a bad one."""
    for name in REQUIRED_INPUTS:
        if name not in inputs:
            raise RequestInputError(f"input {name} is required")
    prompt = inputs["PROMPT"].reshape(-1).astype(np.int64).tolist()
    if not prompt:
        raise RequestInputError("input PROMPT is empty: it needs at least the control tokens")
    if len(prompt) >= max_len:
        raise RequestInputError(
            f"input PROMPT has {len(prompt)} tokens; the model's context is {max_len}"
        )
    bad = [t for t in prompt if not 0 <= t < vocab_size]
    if bad:
        raise RequestInputError(
            f"input PROMPT has token ids outside 0..{vocab_size - 1}: {bad[:5]}"
        )
    n_bars = int(_scalar(inputs, "N_BARS"))
    if not 1 <= n_bars <= MAX_BARS_PER_REQUEST:
        raise RequestInputError(f"input N_BARS {n_bars} is outside 1..{MAX_BARS_PER_REQUEST}")
    return DecodeRequest(
        prompt_tokens=prompt,
        n_bars=n_bars,
        seed=int(_scalar(inputs, "SEED")),
        sampling=parse_sampling(inputs),
    )


def parse_sampling(inputs: Mapping[str, np.ndarray]) -> SamplingParams:
    """The request's ``SamplingParams`` from its tensors (``WIRE_TENSORS``; a missing one
    takes the field's default); ``RequestInputError`` names a bad tensor."""
    values: dict[str, object] = {}
    for field_name, tensor in WIRE_TENSORS.items():
        if tensor.name not in inputs:
            continue
        if tensor.is_list:
            values[field_name] = tuple(int(v) for v in inputs[tensor.name].reshape(-1).tolist())
        else:
            value = _scalar(inputs, tensor.name)
            values[field_name] = {"FP32": float, "INT32": int, "BOOL": bool}[tensor.datatype](value)
    try:
        # values: dict[str, object] built from WIRE_TENSORS; SamplingParams checks them
        return SamplingParams(**values)  # type: ignore[arg-type]
    except SamplingError as error:
        raise RequestInputError(f"input {WIRE_TENSORS[error.field].name} {error.problem}") from None


TokensCallback = Callable[[list[int], bool], None]
ErrorCallback = Callable[[str], None]


@dataclass
class MelodyServing:
    """Responses go out on a delivery thread of their own, in order: in Triton's Python
    backend a response send and a cancellation check are round trips to the server, and a
    slow server or client must not delay the batch's next decode step
    (docs/results/design_measurements.md)."""

    engine: DecodeEngine
    model_version: str
    max_batch: int
    vocab_size: int
    max_len: int
    flush_tokens: frozenset[int] = frozenset()
    _deliveries: queue.SimpleQueue = field(default_factory=queue.SimpleQueue, repr=False)
    _delivery_thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._delivery_thread = threading.Thread(
            target=self._deliver, name="melody-delivery", daemon=True
        )
        self._delivery_thread.start()

    def _deliver(self) -> None:
        while (delivery := self._deliveries.get()) is not None:
            with contextlib.suppress(Exception):  # a failed send ends nothing but itself
                delivery()

    @classmethod
    def load(
        cls,
        checkpoint: Path,
        *,
        max_batch: int,
        torch_threads: int,
        device: str = "cpu",
        kv_cache_dtype: str = "bfloat16",
        bfloat16_from_batch: int = 0,
    ) -> MelodyServing:
        """``kv_cache_dtype``: float32 or bfloat16 (the default: a 32-sequence step reads half
        the memory, which sets its attention time). ``bfloat16_from_batch`` > 0: steps of that
        many sequences or more multiply in bfloat16 (twice as fast at 32 on AMX CPUs; a single
        sequence stays faster in fp32); 0 keeps every step in fp32."""
        if kv_cache_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"kv_cache_dtype must be float32 or bfloat16, not {kv_cache_dtype!r}")
        # The loading thread stays single-threaded: only the engine thread, which runs every
        # forward, gets ``torch_threads`` (see DecodeEngine._run).
        torch.set_num_threads(1)
        model, tokenizer, metadata = load_melody_checkpoint(checkpoint, device=device)
        if bfloat16_from_batch > 0:
            model.keep_bfloat16_copies(bfloat16_from_batch)
        engine = DecodeEngine(
            model,
            tokenizer,
            max_batch=max_batch,
            device=device,
            kv_dtype=getattr(torch, kv_cache_dtype),
            torch_threads=torch_threads,
        )
        return cls(
            engine,
            checkpoint_version(checkpoint),
            max_batch,
            len(tokenizer.vocab),
            metadata["config"].max_len,
            frozenset({tokenizer.vocab.bar}),  # EOS goes out with the final response
        )

    def submit(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        on_tokens: TokensCallback,
        on_error: ErrorCallback,
        is_cancelled: Callable[[], bool],
    ) -> str:
        """Admit one request; its tokens arrive through ``on_tokens(tokens, finished)``, the
        last call with ``finished=True`` (also when the client cancelled), or an error through
        ``on_error``. Raises ``RequestInputError`` for bad inputs. Returns the request id."""
        request = parse_decode_request(inputs, self.vocab_size, self.max_len)
        request_id = uuid.uuid4().hex
        pending: list[int] = []

        def send(tokens: list[int]) -> None:
            # A closed client stream shows up as cancellation (asked once per response, not
            # per token: it is a round trip), a broken one as a failing send: either way the
            # engine frees the slot at its next step and the other requests go on.
            try:
                if not is_cancelled():
                    on_tokens(tokens, False)
                    return
            except Exception:  # the request ends below, like a cancelled one
                pass
            self.engine.cancel(request_id)

        def on_token(token: int) -> None:
            # One response per bar (the BAR that closes it), not per token: a response costs
            # more than a decode step, and clients act on whole bars.
            pending.append(token)
            if token in self.flush_tokens or len(pending) >= MAX_TOKENS_PER_RESPONSE:
                self._deliveries.put(functools.partial(send, pending.copy()))
                pending.clear()

        def on_done(reason: str) -> None:
            if reason.startswith("error"):
                self._deliveries.put(functools.partial(on_error, f"melody_lm: {reason}"))
            else:
                self._deliveries.put(functools.partial(on_tokens, pending.copy(), True))
                pending.clear()

        try:
            return self.engine.submit(request, on_token, on_done, request_id=request_id)
        except ValueError as error:  # a prompt the grammar refuses, bad sampling settings
            raise RequestInputError(str(error)) from None

    def close(self) -> None:
        self.engine.close()  # its last callbacks queue their final responses first
        self._deliveries.put(None)
        if self._delivery_thread is not None:
            self._delivery_thread.join(timeout=10)
