"""Continuous-batching decoding of many melody requests at once, and a one-shot ``generate``.

``DecodeEngine`` owns a model, a ``KVCache`` with ``max_batch`` slots and a background
thread. ``submit`` checks a request and queues it; the thread admits queued requests into
free slots (prefill of the prompt, then the first token is sampled), and every step runs ONE
batched forward that advances every active sequence by one token. Each sampled token goes
to the request's ``on_token(token_id)``; the end goes to ``on_done(reason)`` with reason
``"eos"``, ``"cancelled"`` or ``"error: ..."``. ``cancel`` frees the slot before the next
step. Callbacks run on the engine thread, so they must be quick and must not block.

Classifier-free guidance (``SamplingParams.guidance`` > 1): the request also takes a second
slot for a twin whose prompt has no key (``NOKEY NOMODE``, which the model learned by
control dropout) and which is fed the same tokens. Where the grammar expects a pitch, the
request samples from ``twin + guidance * (keyed - twin)`` logits: pitches that the asked key
makes likelier than no key at all gain, the rest lose, and rhythm is left to the model.

Nothing here knows about Triton: the ``melody_lm`` Triton model wraps this engine.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from cantus.melody.controls import Controls
from cantus.melody.decoding import MelodyGrammar, UniformDraws, sample_tokens, score_phrase_ends
from cantus.melody.model import KVCache, MelodyLM
from cantus.melody.sampling import DEFAULT_SAMPLING, SamplingParams
from cantus.melody.tokenizer import NO_KEY, NO_MODE, MelodyTokenizer
from cantus.music.notes import Bar, Melody, MusicError

TokenCallback = Callable[[int], None]
DoneCallback = Callable[[str], None]


@dataclass(frozen=True)
class DecodeRequest:
    """One melody to continue: ``prompt_tokens`` (control prefix and any given bars, no
    ``EOS``), ``n_bars`` new bars to generate, the sampling ``seed``, and how to sample
    (``SamplingParams``, checked when it is made)."""

    prompt_tokens: Sequence[int]
    n_bars: int
    seed: int
    sampling: SamplingParams = DEFAULT_SAMPLING


@dataclass(frozen=True)
class StepTiming:
    """One engine step, for benchmarks: ``kind`` "prefill" or "decode", sequences in the
    step, the longest context in tokens, and the seconds the forward and sampling took."""

    kind: str
    batch: int
    context: int
    seconds: float


@dataclass
class _Active:
    request_id: str
    request: DecodeRequest
    grammar: MelodyGrammar
    generator: UniformDraws
    on_token: TokenCallback
    on_done: DoneCallback
    slot: int = -1
    last_token: int = -1  # sampled, not yet in the cache
    tokens: list[int] = field(default_factory=list)
    twin: _Active | None = None  # the key-free twin of a guided request
    is_twin: bool = False

    @property
    def slots_needed(self) -> int:
        return 1 if self.twin is None else 2


def _ignore(*_: object) -> None:
    """Callbacks of a guidance twin: it samples nothing and reports nothing."""


class DecodeEngine:
    """Batched incremental decoding on a background thread (started on construction)."""

    def __init__(
        self,
        model: MelodyLM,
        tokenizer: MelodyTokenizer,
        max_batch: int = 32,
        device: str | torch.device = "cpu",
        *,
        kv_dtype: torch.dtype | None = None,
        step_hook: Callable[[StepTiming], None] | None = None,
        torch_threads: int | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        # torch_threads: the engine thread's intra-op threads (None: leave torch's setting)
        self.torch_threads = torch_threads
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_batch = max_batch
        self.step_hook = step_hook
        # kv_dtype: the cache's dtype (default: the model's); bfloat16 halves what a batched
        # step reads from memory, at a small cost in precision
        self.cache = KVCache(
            model.config,
            max_batch,
            device=self.device,
            dtype=kv_dtype or next(model.parameters()).dtype,
        )
        self._lock = threading.Condition()
        self._queue: collections.deque[_Active] = collections.deque()
        self._active: dict[int, _Active] = {}  # slot -> sequence (engine thread only)
        self._cancelled: set[str] = set()
        self._ids = itertools.count(1)
        self._closing = False
        self.steps = 0
        self.tokens_generated = 0
        self._thread = threading.Thread(target=self._run, name="melody-decode-engine", daemon=True)
        self._thread.start()

    # --- public API (any thread) ------------------------------------------------------------

    def submit(
        self,
        request: DecodeRequest,
        on_token: TokenCallback,
        on_done: DoneCallback,
        *,
        request_id: str | None = None,
    ) -> str:
        """Queue a request; returns its id. Raises ``MusicError`` (a ``ValueError``) at once
        if the prompt is malformed or leaves no room for ``n_bars`` bars, ``ValueError`` for
        bad sampling settings, ``RuntimeError`` after ``close``."""
        grammar = MelodyGrammar(
            self.tokenizer.vocab,
            n_bars=request.n_bars,
            sampling=request.sampling,
            max_len=self.model.config.max_len,
        )
        grammar.feed_prompt(request.prompt_tokens)
        twin = self._twin(request) if request.sampling.guidance > 1.0 else None
        with self._lock:
            if self._closing:
                raise RuntimeError("the decode engine is closed")
            request_id = request_id or f"req-{next(self._ids)}"
            sequence = _Active(
                request_id, request, grammar, UniformDraws(request.seed), on_token, on_done
            )
            sequence.twin = twin
            self._queue.append(sequence)
            self._lock.notify_all()
        return request_id

    def _twin(self, request: DecodeRequest) -> _Active:
        """The key-free twin of a guided request (its prompt with ``NOKEY NOMODE``)."""
        vocab = self.tokenizer.vocab
        try:
            no_key, no_mode = vocab.id(NO_KEY), vocab.id(NO_MODE)
        except MusicError:
            raise MusicError(
                "guidance needs a model trained with control dropout (NOKEY, NOMODE tokens)"
            ) from None
        prompt = list(request.prompt_tokens)
        prompt[1:3] = [no_key, no_mode]
        twin_request = dataclasses.replace(
            request,
            prompt_tokens=prompt,
            sampling=dataclasses.replace(request.sampling, guidance=1.0),
        )
        # a twin has no grammar or draws of its own: it takes its guided request's tokens
        return _Active("twin", twin_request, None, None, _ignore, _ignore, is_twin=True)  # type: ignore[arg-type]

    def cancel(self, request_id: str) -> None:
        """Stop a request: its ``on_done("cancelled")`` runs and its slot is freed before the
        next step. Unknown or finished ids are ignored."""
        with self._lock:
            self._cancelled.add(request_id)
            self._lock.notify_all()

    def decode(self, request: DecodeRequest, timeout: float | None = None) -> tuple[list[int], str]:
        """Submit and wait: the sampled tokens and the end reason (for tests and tools)."""
        tokens: list[int] = []
        finished = threading.Event()
        reasons: list[str] = []

        def done(reason: str) -> None:
            reasons.append(reason)
            finished.set()

        self.submit(request, tokens.append, done)
        if not finished.wait(timeout):
            raise TimeoutError("the decode engine did not finish the request in time")
        return tokens, reasons[0]

    @property
    def active_count(self) -> int:
        """Requests in slots now (approximate when read from another thread)."""
        return len(self._active)

    @property
    def queued_count(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; queued and active requests end with ``on_done("cancelled")``."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> DecodeEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- engine thread ------------------------------------------------------------------------

    def _run(self) -> None:
        if self.torch_threads is not None:
            # Every forward runs on this thread, so it alone owns an OpenMP team. Once a
            # second thread (say, the one that loaded the model) has run a parallel region
            # too, libgomp counts more threads than cores and stops spin-waiting between
            # regions, and a step pays for it in futex wake-ups
            # (docs/results/design_measurements.md).
            torch.set_num_threads(self.torch_threads)
        while True:
            with self._lock:
                while not self._closing and not self._queue and not self._active:
                    self._lock.wait()
                if self._closing:
                    break
                cancelled, self._cancelled = self._cancelled, set()
                admitted, dropped = [], []
                free_slots = [s for s in range(self.max_batch) if s not in self._active]
                kept: collections.deque[_Active] = collections.deque()
                for sequence in self._queue:
                    if sequence.request_id in cancelled:
                        dropped.append(sequence)
                    elif sequence.slots_needed <= len(free_slots):
                        admitted.append(sequence)
                        sequence.slot = free_slots.pop(0)
                        if sequence.twin is not None:
                            sequence.twin.slot = free_slots.pop(0)
                    else:
                        kept.append(sequence)
                self._queue = kept
            for sequence in dropped:  # callbacks run outside the lock
                self._finish(sequence, "cancelled")
            for sequence in [
                s for s in self._active.values() if s.request_id in cancelled and not s.is_twin
            ]:
                self._release(sequence, "cancelled")
            try:
                for sequence in admitted:
                    self._prefill(sequence)
                if self._active:
                    self._decode_step()
            except Exception as error:  # the thread must outlive any one step
                # A failed step leaves the batch's caches in an unknown state: end those
                # requests with the error and keep serving new ones.
                for sequence in [s for s in self._active.values() if not s.is_twin]:
                    self._release(sequence, f"error: {type(error).__name__}: {error}")
        with self._lock:
            leftovers = list(self._queue) + [s for s in self._active.values() if not s.is_twin]
            self._queue.clear()
        for sequence in leftovers:
            self._release(sequence, "cancelled")

    def _prefill(self, sequence: _Active) -> None:
        self._active[sequence.slot] = sequence
        if sequence.twin is not None:
            self._active[sequence.twin.slot] = sequence.twin
        try:
            started = time.perf_counter()
            prompt = torch.tensor(
                list(sequence.request.prompt_tokens), dtype=torch.long, device=self.device
            )
            logits = self.model.prefill(prompt, self.cache, sequence.slot)[None]
            if sequence.twin is not None:
                twin_prompt = torch.tensor(
                    list(sequence.twin.request.prompt_tokens), dtype=torch.long, device=self.device
                )
                twin_logits = self.model.prefill(twin_prompt, self.cache, sequence.twin.slot)
                logits = torch.cat([logits, twin_logits[None]])
                self._sample_and_deliver([sequence, sequence.twin], logits.float().cpu())
                return
            self._sample_and_deliver([sequence], logits.float().cpu())
            if self.step_hook is not None:
                self.step_hook(StepTiming("prefill", 1, len(prompt), time.perf_counter() - started))
        except Exception as error:  # a bad request must not stop the other sequences
            self._release(sequence, f"error: {error}")

    def _decode_step(self) -> None:
        # in slot order: consecutive slots let the model read the cache without copying
        sequences = sorted(self._active.values(), key=lambda s: s.slot)
        started = time.perf_counter()
        tokens = torch.tensor(
            [s.last_token for s in sequences], dtype=torch.long, device=self.device
        )
        slots = torch.tensor([s.slot for s in sequences], dtype=torch.long, device=self.device)
        context = int(self.cache.lengths[slots].max()) + 1
        try:
            logits = self.model.decode_step(tokens, self.cache, slots).float().cpu()
        except Exception as error:
            for sequence in sequences:
                self._release(sequence, f"error: {error}")
            return
        self._sample_and_deliver(sequences, logits)
        self.steps += 1
        if self.step_hook is not None:
            self.step_hook(
                StepTiming("decode", len(sequences), context, time.perf_counter() - started)
            )

    def _sample_and_deliver(self, sequences: list[_Active], logits: torch.Tensor) -> None:
        """Sample the next token of every sequence at once (row i of ``logits`` is
        ``sequences[i]``'s), then advance each grammar and hand each token over. Twins sample
        nothing: their rows guide their request's, and they take its token."""
        if any(s.twin is not None or s.is_twin for s in sequences):
            logits, sequences = self._guided(sequences, logits)
        try:
            biases = [s.grammar.logit_bias() for s in sequences]
            if any(bias is not None for bias in biases):
                no_bias = torch.zeros(logits.shape[1])
                logits = logits + torch.stack([no_bias if b is None else b for b in biases])
            logits = score_phrase_ends(logits, [s.grammar for s in sequences])
            sampled = sample_tokens(
                logits,
                torch.stack([s.grammar.allowed_mask() for s in sequences]),
                [s.request.sampling for s in sequences],
                [s.generator for s in sequences],
            )
        except Exception as error:
            for sequence in sequences:
                self._release(sequence, f"error: {error}")
            return
        for sequence, token in zip(sequences, sampled, strict=True):
            try:
                sequence.grammar.advance(token)
            except Exception as error:
                self._release(sequence, f"error: {error}")
                continue
            sequence.last_token = token
            sequence.tokens.append(token)
            if sequence.twin is not None:
                sequence.twin.last_token = token
            self.tokens_generated += 1
            try:
                sequence.on_token(token)
            except Exception as error:  # a broken receiver ends its own request only
                self._release(sequence, f"error: delivering a token failed: {error}")
                continue
            if sequence.grammar.done:
                self._release(sequence, "eos")

    def _guided(
        self, sequences: list[_Active], logits: torch.Tensor
    ) -> tuple[torch.Tensor, list[_Active]]:
        """The rows of the sequences that sample (twins dropped), each guided request's row
        replaced, where its grammar expects a pitch, by ``twin + w * (keyed - twin)``."""
        row_of = {id(s): i for i, s in enumerate(sequences)}
        rows, kept = [], []
        for i, sequence in enumerate(sequences):
            if sequence.is_twin:
                continue
            row = logits[i]
            twin = sequence.twin
            if twin is not None and id(twin) in row_of and sequence.grammar.expects_pitch:
                twin_row = logits[row_of[id(twin)]]
                row = twin_row + sequence.request.sampling.guidance * (row - twin_row)
            rows.append(row)
            kept.append(sequence)
        return torch.stack(rows), kept

    def _release(self, sequence: _Active, reason: str) -> None:
        if sequence.twin is not None:
            self._release(sequence.twin, reason)
        if self._active.get(sequence.slot) is sequence:
            del self._active[sequence.slot]
            self.cache.reset(sequence.slot)
            self._compact(sequence.slot)
        self._finish(sequence, reason)

    def _compact(self, hole: int) -> None:
        """Move the highest active sequence into a freed slot below it, so that the active
        slots stay 0..n-1: the model then reads the batch's keys and values as one slice of
        the cache instead of gathering (copying) every sequence's cache each step."""
        if not self._active:
            return
        highest = max(self._active)
        if highest < hole:
            return
        moved = self._active.pop(highest)
        self.cache.move(highest, hole)
        moved.slot = hole
        self._active[hole] = moved

    @staticmethod
    def _finish(sequence: _Active, reason: str) -> None:
        with contextlib.suppress(Exception):  # a failing callback must not stop the engine
            sequence.on_done(reason)


# --- one sequence, no thread: for tests, evaluation and benchmarks ----------------------------


@dataclass(frozen=True)
class Generation:
    """A generated melody: all tokens (prompt included), the decoded controls and melody,
    and the seconds each generated token took (forward plus sampling)."""

    tokens: list[int]
    controls: Controls
    melody: Melody
    token_seconds: list[float]


@torch.no_grad()
def generate(
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    controls: Controls,
    n_bars: int,
    seed: int,
    *,
    sampling: SamplingParams = DEFAULT_SAMPLING,
    given_bars: Sequence[Bar] = (),
    use_cache: bool = True,
    on_token: Callable[[int, float], None] | None = None,
) -> Generation:
    """Generate ``n_bars`` bars after the controls (and ``given_bars``), one sequence.

    ``use_cache=False`` recomputes the whole sequence every token (the baseline the KV cache
    is measured against). ``on_token(token_id, seconds)`` is called after every token.
    The melody returned holds the given bars followed by the generated ones."""
    if sampling.guidance > 1.0:
        raise ValueError("generate samples one sequence: guidance needs the DecodeEngine's twin")
    model.eval()
    device = next(model.parameters()).device
    prompt = tokenizer.prompt(controls, given_bars)
    grammar = MelodyGrammar(
        tokenizer.vocab, n_bars=n_bars, sampling=sampling, max_len=model.config.max_len
    )
    grammar.feed_prompt(prompt)
    generator = UniformDraws(seed)
    tokens = list(prompt)
    seconds: list[float] = []
    cache = KVCache(model.config, 1, device=device) if use_cache else None
    slot = torch.zeros(1, dtype=torch.long, device=device)
    while not grammar.done:
        started = time.perf_counter()
        if cache is None:
            logits = model(torch.tensor([tokens], device=device))[0, -1]
        elif len(tokens) == len(prompt):
            logits = model.prefill(torch.tensor(tokens, device=device), cache, 0)
        else:
            logits = model.decode_step(torch.tensor(tokens[-1:], device=device), cache, slot)[0]
        bias = grammar.logit_bias()
        if bias is not None:
            logits = logits + bias
        row = score_phrase_ends(logits[None], [grammar])
        token = sample_tokens(row, grammar.allowed_mask()[None], [sampling], [generator])[0]
        grammar.advance(token)
        tokens.append(token)
        seconds.append(time.perf_counter() - started)
        if on_token is not None:
            on_token(token, seconds[-1])
    decoded_controls, melody = tokenizer.decode(tokens)
    return Generation(tokens, decoded_controls, melody, seconds)


@torch.no_grad()
def time_decode_step(
    model: MelodyLM,
    context: int,
    *,
    batch: int = 1,
    use_cache: bool = True,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds (by ``clock``) to produce the next token of ``batch`` sequences that
    already hold ``context`` tokens (random ids): one cached ``decode_step``, or with
    ``use_cache=False`` a full forward over ``context + 1`` tokens. ``context`` in
    1..max_len-1."""
    if not 1 <= context < model.config.max_len:
        raise ValueError(f"context must be 1..{model.config.max_len - 1}, got {context}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, model.config.vocab_size, (batch, context + 1), generator=generator)
    tokens = tokens.to(device)
    cache = KVCache(model.config, batch, device=device)
    slots = torch.arange(batch, device=device)
    for slot in range(batch):
        model.prefill(tokens[slot, :context], cache, slot)
    durations = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = clock()
        if use_cache:
            cache.lengths[slots] = context  # re-run the same step each repeat
            model.decode_step(tokens[:, context], cache, slots)
        else:
            model(tokens)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        durations.append(clock() - started)
    return sorted(durations)[len(durations) // 2]
