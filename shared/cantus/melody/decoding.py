"""Constrained sampling: which tokens may come next (``MelodyGrammar``) and how one is drawn.

The grammar masks the model's logits every step so that every sampled sequence decodes to a
valid melody: a well-formed control prefix, bars whose notes neither overlap nor cross the bar
line (rests are the gaps, so every bar is exactly full), pitches inside a range (optionally
only the key's scale), at most ``max_notes_per_bar`` notes a bar, exactly ``n_bars`` new bars
and then ``EOS`` — always within the model's context length.

Sampling (temperature, top-k, top-p) draws with a ``torch.Generator`` per sequence, seeded
from the request's seed, so the same request samples the same tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from cantus.melody.tokenizer import GRID_TICKS, PITCH_RANGE, PREFIX_LENGTH, Vocabulary
from cantus.music.notes import Meter, Mode, MusicError

DEFAULT_PITCH_RANGE = (48, 88)
"""Pitches generated melodies may use unless a request says otherwise (MIDI, inclusive)."""
DEFAULT_MAX_NOTES_PER_BAR = 16

_PREFIX_KINDS = ("BOS", "KEY_", "MODE_", "METER_", "TEMPO_", "STYLE_", "ENERGY_")
_MINOR_EXTRA_STEPS = (9, 11)  # raised 6th and 7th of melodic/harmonic minor
_SEED_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class SamplingParams:
    """``temperature`` > 0 (0 means greedy); ``top_k`` 0 = no cut; ``top_p`` in (0, 1]."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded from any integer (negative or above 2**64 are folded in)."""
    return torch.Generator().manual_seed(seed & _SEED_MASK)


def sample_token(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator,
) -> int:
    """Draw one token id from ``logits`` [vocab] restricted to ``allowed`` [vocab] (bool)."""
    if not bool(allowed.any()):
        raise MusicError("no token is allowed here: the grammar is finished or stuck")
    logits = logits.detach().float().cpu().masked_fill(~allowed.cpu(), float("-inf"))
    if params.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if params.top_k > 0 and params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        # keep the smallest head of the distribution whose mass reaches top_p (never empty)
        sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


class MelodyGrammar:
    """State machine over token ids: ``allowed_ranges()`` / ``allowed_mask()`` name the tokens
    that may come next, ``advance(token)`` takes one.

    First ``feed_prompt`` (a control prefix and zero or more complete bars, no ``EOS``) — those
    tokens are checked only for structure, since given bars may break the generation limits.
    The prompt's last bar counts as finished: generation starts with ``BAR``. Then exactly
    ``n_bars`` bars are generated and ``EOS``; ``done`` turns true after ``EOS``.

    ``pitch_range``: inclusive MIDI range of generated pitches. ``key_constraint``: only the
    key's scale pitch classes (for minor keys also the raised 6th and 7th). ``max_len``: the
    model's context; the grammar keeps room for the remaining bars and ``EOS`` so that the
    whole sequence (prompt included) never exceeds it.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        n_bars: int,
        pitch_range: tuple[int, int] = DEFAULT_PITCH_RANGE,
        key_constraint: bool = False,
        max_notes_per_bar: int = DEFAULT_MAX_NOTES_PER_BAR,
        max_len: int = 1024,
    ) -> None:
        low, high = pitch_range
        if not PITCH_RANGE[0] <= low <= high <= PITCH_RANGE[1]:
            raise MusicError(
                f"pitch range {low}..{high} must lie within {PITCH_RANGE[0]}.."
                f"{PITCH_RANGE[1]} and not be empty"
            )
        if n_bars < 0:
            raise MusicError(f"n_bars must be >= 0, got {n_bars}")
        if max_notes_per_bar < 1:
            raise MusicError(f"max_notes_per_bar must be >= 1, got {max_notes_per_bar}")
        self.vocab = vocab
        self.n_bars = n_bars
        self.pitch_range = (low, high)
        self.key_constraint = key_constraint
        self.max_notes_per_bar = max_notes_per_bar
        self.max_len = max_len
        self._groups = {kind: vocab.group(kind) for kind in _PREFIX_KINDS[1:]}
        self._bos, self._eos, self._bar = vocab.bos, vocab.eos, vocab.bar
        self._pos0, self._pitch0, self._dur1 = (
            vocab.pos(0),
            vocab.pitch(PITCH_RANGE[0]),
            vocab.dur(1),
        )
        self.length = 0  # tokens taken so far, prompt included
        self.generating = False  # False while the prompt is being fed
        self.bars_generated = 0
        self.done = False
        self._prefix_index = 0  # next control token expected, 0..7 (7: prefix complete)
        self._tonic = 0
        self._mode = Mode.MAJOR
        self._bar_steps = 0
        self._in_bar = False
        self._expect = "next"  # "next" (POS/BAR/EOS), "pitch" or "dur"
        self._previous_end = 0  # grid steps
        self._notes_in_bar = 0
        self._pos = 0

    # --- feeding ------------------------------------------------------------------------------

    def feed_prompt(self, tokens: Iterable[int]) -> None:
        """Take the prompt (structure-checked only; ``MusicError`` if malformed), then switch
        to generation. ``MusicError`` too if the prompt leaves no room for ``n_bars``."""
        for token in tokens:
            if token == self._eos:
                raise MusicError("the prompt must not contain EOS")
            self.advance(token)
        if self._prefix_index < PREFIX_LENGTH:
            raise MusicError("the prompt must start with a complete control prefix")
        if self._expect != "next":
            raise MusicError("the prompt ends in the middle of a note")
        self.generating = True
        self._in_bar = False  # the prompt's bars are final
        if self.length + self.n_bars + 1 > self.max_len:
            raise MusicError(
                f"a {self.length}-token prompt leaves no room for {self.n_bars} "
                f"bars within {self.max_len} tokens"
            )

    def advance(self, token: int) -> None:
        """Take one token; ``MusicError`` if it is not allowed here."""
        if not self._allows(token):
            name = self.vocab.token(token) if 0 <= token < len(self.vocab) else str(token)
            raise MusicError(f"token {name} is not allowed at position {self.length}")
        self.length += 1
        if self._prefix_index < PREFIX_LENGTH:
            self._take_control(token)
            return
        if token == self._eos:
            self.done = True
        elif token == self._bar:
            self._in_bar, self._previous_end, self._notes_in_bar = True, 0, 0
            if self.generating:
                self.bars_generated += 1
        elif self._expect == "next":
            self._pos = token - self._pos0
            self._expect = "pitch"
        elif self._expect == "pitch":
            self._expect = "dur"
        else:
            self._previous_end = self._pos + token - self._dur1 + 1
            self._notes_in_bar += 1
            self._expect = "next"

    def _take_control(self, token: int) -> None:
        name = self.vocab.token(token)
        value = name.partition("_")[2]
        if name.startswith("KEY_"):
            self._tonic = int(value)
        elif name.startswith("MODE_"):
            self._mode = Mode(value)
        elif name.startswith("METER_"):
            self._bar_steps = Meter.parse(value).bar_ticks // GRID_TICKS
        self._prefix_index += 1

    # --- what may come next -------------------------------------------------------------------

    def _allows(self, token: int) -> bool:
        return any(start <= token < stop for start, stop in self.allowed_ranges())

    def allowed_ranges(self) -> list[tuple[int, int]]:
        """Half-open id ranges ``[start, stop)`` of the tokens allowed next (empty when done)."""
        if self.done:
            return []
        if self._prefix_index < PREFIX_LENGTH:
            if self._prefix_index == 0:
                return [(self._bos, self._bos + 1)]
            ids = self._groups[_PREFIX_KINDS[self._prefix_index]]
            return [(ids[0], ids[-1] + 1)]
        if self._expect == "pitch":
            return self._pitch_ranges()
        if self._expect == "dur":
            return [(self._dur1, self._dur1 + self._bar_steps - self._pos)]
        return self._next_ranges()

    def _next_ranges(self) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        if not self.generating:  # prompt: structure only
            if self._in_bar and self._previous_end < self._bar_steps:
                ranges.append((self._pos0 + self._previous_end, self._pos0 + self._bar_steps))
            ranges.append((self._bar, self._bar + 1))
            return ranges
        bars_left = self.n_bars - self.bars_generated
        note_fits = self.length + 3 + bars_left + 1 <= self.max_len
        if (
            self._in_bar
            and self._previous_end < self._bar_steps
            and note_fits
            and self._notes_in_bar < self.max_notes_per_bar
        ):
            ranges.append((self._pos0 + self._previous_end, self._pos0 + self._bar_steps))
        if bars_left > 0:
            ranges.append((self._bar, self._bar + 1))
        else:
            ranges.append((self._eos, self._eos + 1))
        return sorted(ranges)

    def _pitch_ranges(self) -> list[tuple[int, int]]:
        low, high = self.pitch_range if self.generating else PITCH_RANGE
        if not (self.generating and self.key_constraint):
            return [(self._pitch0 + low - PITCH_RANGE[0], self._pitch0 + high - PITCH_RANGE[0] + 1)]
        steps = {0, 2, 4, 5, 7, 9, 11} if self._mode is Mode.MAJOR else {0, 2, 3, 5, 7, 8, 10}
        if self._mode is Mode.MINOR:
            steps |= set(_MINOR_EXTRA_STEPS)
        classes = {(self._tonic + step) % 12 for step in steps}
        pitches = [m for m in range(low, high + 1) if m % 12 in classes]
        if not pitches:  # a range narrower than a scale step: fall back to all its pitches
            pitches = list(range(low, high + 1))
        return [
            (self._pitch0 + m - PITCH_RANGE[0], self._pitch0 + m - PITCH_RANGE[0] + 1)
            for m in pitches
        ]

    def allowed_ids(self) -> list[int]:
        return [i for start, stop in self.allowed_ranges() for i in range(start, stop)]

    def allowed_mask(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """Bool mask [vocab] of the allowed tokens (written into ``out`` when given)."""
        mask = out if out is not None else torch.zeros(len(self.vocab), dtype=torch.bool)
        mask.zero_()
        for start, stop in self.allowed_ranges():
            mask[start:stop] = True
        return mask
