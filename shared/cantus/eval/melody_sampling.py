"""Generated pieces for ``cantus eval melody``: the evaluation's settings (``EvalSetting``,
``DEFAULT_SETTINGS``) and sampling parameters, and the samplers — the transformer through the
batched ``DecodeEngine`` as served, the baselines through a lockstep ``TokenStepper`` under the
same grammar."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from cantus.melody.baselines import KneserNeyLM, MelodyLSTM
from cantus.melody.controls import Controls
from cantus.melody.decoding import MelodyGrammar, UniformDraws, sample_token
from cantus.melody.engine import DecodeEngine, DecodeRequest
from cantus.melody.model import MelodyLM
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy, Style
from cantus.settings import Settings


@dataclass(frozen=True)
class EvalSetting:
    """One generation setting: a name for tables and the controls every piece gets."""

    name: str
    controls: Controls


def _setting(
    tonic: str, mode: str, meter: str, style: Style, tempo: float, energy: Energy
) -> EvalSetting:
    key = Key.parse(tonic, mode)
    return EvalSetting(
        f"{tonic} {mode} {meter} {style.value}",
        Controls(key, Meter.parse(meter), tempo, style, energy),
    )


DEFAULT_SETTINGS = (
    _setting("C", "major", "4/4", Style.FOLK, 100.0, Energy.MID),
    _setting("G", "major", "6/8", Style.CELTIC, 120.0, Energy.MID),
    _setting("A", "minor", "3/4", Style.FOLK, 100.0, Energy.MID),
    _setting("D", "major", "4/4", Style.CHORALE, 80.0, Energy.LOW),
)
"""The four settings of the report (tempo in quarter-note bpm)."""

SAMPLING = SamplingParams()
"""Sampling of every generated piece: the engine's defaults (temperature 1, no top-k, top-p 1
since session 19; 0.95 before)."""
SERVED_TONAL_EMPHASIS = Settings.model_fields["melody_tonal_emphasis"].default
"""The melody service's tonal emphasis, used with the key constraint on."""
SERVED_GUIDANCE = Settings.model_fields["melody_guidance"].default
"""The melody service's classifier-free guidance on the key (``settings.melody_guidance``)."""


def served_guidance(tokenizer: MelodyTokenizer) -> float:
    """``SERVED_GUIDANCE`` for a checkpoint trained with control dropout (its vocabulary has
    ``NOKEY``), 1 (none) for an older one, which cannot be guided."""
    from cantus.melody.tokenizer import NO_KEY

    return SERVED_GUIDANCE if NO_KEY in tokenizer.vocab.tokens else 1.0


SERVED_BFLOAT16_FROM_BATCH = 16
"""``bfloat16_from_batch`` of ``triton_models/melody_lm/config.pbtxt``."""


def sample_transformer(
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    jobs: Sequence[tuple[Controls, int, bool]],
    *,
    n_bars: int,
    max_batch: int = 50,
    timeout_s: float = 3600.0,
    tonal_emphasis: float = SERVED_TONAL_EMPHASIS,
    guidance: float = 1.0,
    bars: Sequence[int] | None = None,
) -> list[list[int] | None]:
    """Sample one piece per job (controls, seed, key constraint) through one batched
    ``DecodeEngine``; the whole token sequence of each, or None where the engine failed.
    ``tonal_emphasis`` applies with the key constraint on (default: the service's);
    ``guidance``: classifier-free guidance on the key (1: none); ``bars``: each piece's
    length (default ``n_bars``)."""
    results: list[list[int] | None] = [None] * len(jobs)
    remaining = [len(jobs)]
    finished = threading.Condition()

    model.keep_bfloat16_copies(SERVED_BFLOAT16_FROM_BATCH)  # as the Triton model serves it
    with DecodeEngine(model, tokenizer, max_batch=max_batch, kv_dtype=torch.bfloat16) as engine:
        for index, (controls, seed, key_constraint) in enumerate(jobs):
            prompt = tokenizer.controls_prefix(controls)
            tokens = list(prompt)

            def done(reason: str, index: int = index, tokens: list[int] = tokens) -> None:
                with finished:
                    if reason == "eos":
                        results[index] = tokens
                    remaining[0] -= 1
                    finished.notify_all()

            request = DecodeRequest(
                prompt,
                n_bars=n_bars if bars is None else bars[index],
                seed=seed,
                # "key constraint on" is what the melody service asks for: scale tones, a
                # tonic cadence in the last bar and tonal emphasis on the beats
                sampling=dataclasses.replace(
                    SAMPLING,
                    key_constraint=key_constraint,
                    end_on_tonic=key_constraint,
                    tonal_emphasis=tonal_emphasis if key_constraint else 0.0,
                    guidance=guidance,
                ),
            )
            engine.submit(request, tokens.append, done)
        with finished:
            if not finished.wait_for(lambda: remaining[0] == 0, timeout_s):
                raise TimeoutError(f"{remaining[0]} pieces unfinished after {timeout_s} s")
    return results


class TokenStepper(Protocol):
    """A baseline that continues a batch of sequences one token at a time."""

    def start(self, prompts: list[list[int]]) -> torch.Tensor:
        """Next-token logits [batch, vocab] after the prompts (all of equal length)."""
        ...

    def step(self, tokens: list[int]) -> torch.Tensor:
        """Append one token per sequence; next-token logits [batch, vocab]."""
        ...


class NGramStepper:
    """``TokenStepper`` over a ``KneserNeyLM`` (log-probabilities serve as logits)."""

    def __init__(self, model: KneserNeyLM) -> None:
        self.model = model
        self.histories: list[list[int]] = []

    def start(self, prompts: list[list[int]]) -> torch.Tensor:
        self.histories = [list(p) for p in prompts]
        return torch.from_numpy(self.model.next_log_probs(self.histories)).float()

    def step(self, tokens: list[int]) -> torch.Tensor:
        for history, token in zip(self.histories, tokens, strict=True):
            history.append(token)
        return torch.from_numpy(self.model.next_log_probs(self.histories)).float()


class LSTMStepper:
    """``TokenStepper`` over a ``MelodyLSTM``, carrying its recurrent state."""

    def __init__(self, model: MelodyLSTM) -> None:
        self.model = model.eval()
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def start(self, prompts: list[list[int]]) -> torch.Tensor:
        logits, self.state = self.model(torch.tensor(prompts))
        return logits[:, -1]

    @torch.no_grad()
    def step(self, tokens: list[int]) -> torch.Tensor:
        logits, self.state = self.model(torch.tensor(tokens)[:, None], self.state)
        return logits[:, -1]


def sample_with_stepper(
    stepper: TokenStepper,
    tokenizer: MelodyTokenizer,
    jobs: Sequence[tuple[Controls, int]],
    *,
    n_bars: int,
    max_len: int = 1024,
) -> list[list[int]]:
    """Sample one piece per job (controls, seed) from a baseline under the same grammar and
    sampling as the transformer (no key constraint); sequences in lockstep, finished ones
    are fed ``EOS`` until all are done."""
    prompts = [tokenizer.controls_prefix(controls) for controls, _ in jobs]
    if len({len(p) for p in prompts}) > 1:
        raise ValueError("prompts must have equal length")
    grammars = []
    for prompt in prompts:
        grammar = MelodyGrammar(tokenizer.vocab, n_bars=n_bars, max_len=max_len)
        grammar.feed_prompt(prompt)
        grammars.append(grammar)
    generators = [UniformDraws(seed) for _, seed in jobs]
    sequences = [list(p) for p in prompts]
    logits = stepper.start(prompts)
    while not all(g.done for g in grammars):
        chosen = []
        for row, grammar in enumerate(grammars):
            if grammar.done:
                chosen.append(tokenizer.vocab.eos)
                continue
            token = sample_token(logits[row], grammar.allowed_mask(), SAMPLING, generators[row])
            grammar.advance(token)
            sequences[row].append(token)
            chosen.append(token)
        logits = stepper.step(chosen)
    return sequences
