"""Constrained sampling: which tokens may come next (``MelodyGrammar``) and how one is drawn.

The grammar masks the model's logits every step so that every sampled sequence decodes to a
valid melody: a well-formed control prefix, bars whose notes neither overlap nor cross the bar
line (rests are the gaps, so every bar is exactly full), pitches inside a range (optionally
only the key's scale), at most ``max_notes_per_bar`` notes a bar, exactly ``n_bars`` new bars
and then ``EOS`` — always within the model's context length. ``cadence_steps`` adds a cadence:
the last bar's cadence beat (``cadence_beat``; by default its last but one, in a bar of two
beats or more) sounds one of
those scale steps (semitones above the tonic) alone, and the cadence tone is held to the
bar line, or, where the tune goes on after the request (``phrase_continues``), the last beat
is free for a breath or an upbeat into the next phrase (``upbeat``: one must follow, none
may, or the model's choice), and how long the cadence tone lasts (``cadence_hold``: through
its beat by default; asked, from its beat for under half of it, half of it or more, a beat or
more, or two beats or more, as a reel's phrase runs on through its cadence and a waltz's
holds it):
``AUTHENTIC_CADENCE_STEPS`` (the tonic; ``end_on_tonic`` is its shorthand) closes a piece,
``HALF_CADENCE_STEPS`` (a tone of the dominant chord) a phrase inside a section (the form
composer asks for these or others: ``composition.cadence_steps``). ``tonal_emphasis``
is a soft constraint, off in the served configuration since the form issue (#14): a
logit bonus on the beats, where a listener (and a key finder) hears the key, for the pitches
that establish it (``TONAL_EMPHASIS_WEIGHTS``): the tonic triad in major; in minor the tonic,
the fifth weighted above the third and a little for the 2nd, and a small penalty for the
minor 6th, which tell the key from the keys that share its tonic and third.

Sampling (temperature, top-k, top-p) is batched: ``sample_tokens`` draws one token for every
row of a [batch, vocab] logits matrix in a handful of tensor operations, because per-sequence
Python work, not the model, limited a 32-sequence decode step. Each sequence draws its uniform
numbers from its own ``UniformDraws`` (a ``torch.Generator`` seeded from the request's seed,
read in blocks), so a request samples the same tokens whatever else shares its batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from cantus.melody.phrase_endings import HOLD_BEAT, HOLD_LONG, HOLD_PART, HOLD_SHORT
from cantus.melody.sampling import DEFAULT_SAMPLING, SamplingParams
from cantus.melody.tokenizer import (
    FIM_MIDDLE,
    FIM_SUFFIX,
    GRID_TICKS,
    MAX_BAR_STEPS,
    PITCH_RANGE,
    PREFIX_LENGTH,
    Vocabulary,
)
from cantus.music.notes import Meter, Mode, MusicError

_PREFIX_KINDS = ("BOS", "KEY_", "MODE_", "METER_", "TEMPO_", "STYLE_", "ENERGY_")
AUTHENTIC_CADENCE_STEPS = (0,)
"""A phrase that closes on the tonic."""
HALF_CADENCE_STEPS = (7, 2, 11)
"""A phrase that stops on the dominant chord: its root, fifth (the 2nd) or third (the
leading tone; in the folk minor the model learned it is rare, so root and fifth carry it)."""
_MINOR_EXTRA_STEPS = (9, 11)  # raised 6th and 7th of melodic/harmonic minor
_SEED_MASK = (1 << 64) - 1
_MASKS: dict[tuple[int, tuple[tuple[int, int], ...]], torch.Tensor] = {}
"""Allowed-token masks by (vocabulary size, allowed ranges): a grammar has a few hundred
distinct states, so masks are built once and shared (read-only) by every sequence."""
_BIASES: dict[tuple[int, int, Mode, float], torch.Tensor] = {}
TONAL_EMPHASIS_WEIGHTS: dict[Mode, dict[int, float]] = {
    Mode.MAJOR: {0: 1.0, 4: 1.0, 7: 1.0},
    Mode.MINOR: {0: 1.0, 2: 0.5, 3: 0.75, 7: 1.25, 8: -0.5},
}
"""Share of ``tonal_emphasis`` each scale step (semitones above the tonic) gets on a beat;
steps not listed get nothing.

Major: the tonic triad. Minor: tonic and minor third alone are also the third and fifth of
the major key a major third below (A, C: F major) and belong to the subdominant minor (D
minor); with the whole triad and the leading tone equally favoured, A minor pieces came out
as A/C drones that music21 read as F major (81 % key agreement). So the fifth (E, only the
leading tone of F major) weighs more than the third, the 2nd (B, which F major and D minor
flatten) gets a little, and the minor 6th (F: the tonic of that major key, the third of that
minor one) a small penalty. The leading tone gets nothing: the folk minor the model learned
hardly uses it (0.8 % of the notes of minor test tunes; music21's Aarden-Essen profile weighs
it low in minor), and favouring it lowered the key agreement. Chosen on seed sets 0-3 of the
evaluation's A minor pieces and checked on sets 4-6 (docs/results/melody_eval.md)."""


UPBEAT_STEPS = 2
"""Grid steps (an eighth) a cadence on the last beat leaves for an ``upbeat``."""


class UniformDraws:
    """One sequence's uniform numbers in [0, 1): a CPU generator seeded from any integer
    (negative or above 2**64 are folded in), read ``block`` numbers at a time because one
    ``torch.rand`` call per token and sequence cost ~3 us of a 32-sequence step's sampling."""

    def __init__(self, seed: int, block: int = 256) -> None:
        self._generator = torch.Generator().manual_seed(seed & _SEED_MASK)
        self._block = block
        self._numbers: list[float] = []
        self._next = 0

    def next(self) -> float:
        if self._next == len(self._numbers):
            self._numbers = torch.rand(self._block, generator=self._generator).tolist()
            self._next = 0
        self._next += 1
        return self._numbers[self._next - 1]


def sample_token(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    params: SamplingParams,
    generator: UniformDraws,
) -> int:
    """Draw one token id from ``logits`` [vocab] restricted to ``allowed`` [vocab] (bool)."""
    return sample_tokens(logits[None], allowed[None], [params], [generator])[0]


def sample_tokens(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    params: Sequence[SamplingParams],
    generators: Sequence[UniformDraws],
) -> list[int]:
    """Draw one token id per row of ``logits`` [batch, vocab], restricted to ``allowed``
    [batch, vocab] (bool), with each row's own sampling settings and generator.

    Top-k keeps the k most likely allowed tokens, then top-p the smallest head of what is left
    whose mass reaches p (never empty); the draw inverts the cumulative distribution at one
    uniform number from the row's generator."""
    # numpy, not torch: on a [batch, ~200] matrix each torch call costs more in dispatch than
    # in arithmetic, and this runs once per decode step
    rows, vocab_size = logits.shape
    allowed_rows = allowed.cpu().numpy()
    if not allowed_rows.any(axis=1).all():
        raise MusicError("no token is allowed here: the grammar is finished or stuck")
    masked = np.where(allowed_rows, logits.detach().float().cpu().numpy(), -np.inf)
    temperatures = np.array([p.temperature for p in params], dtype=np.float32)
    greedy = temperatures == 0
    scaled = masked / np.where(greedy, 1.0, temperatures)[:, None]
    order = np.argsort(-scaled, axis=1, kind="stable")
    row_index = np.arange(rows)[:, None]
    sorted_logits = scaled[row_index, order]
    top_k = np.array([p.top_k if 0 < p.top_k < vocab_size else vocab_size for p in params])
    if (top_k < vocab_size).any():
        sorted_logits[np.arange(vocab_size)[None, :] >= top_k[:, None]] = -np.inf
    probs = np.exp(sorted_logits - sorted_logits[:, :1])  # sorted: column 0 is the maximum
    cumulative = np.cumsum(probs, axis=1)
    top_p = np.array([p.top_p for p in params], dtype=np.float32)
    if (top_p < 1).any():
        # mass before each token, as a share of the row's: cut where it reaches p
        cut = cumulative - probs >= top_p[:, None] * cumulative[:, -1:]
        probs[cut] = 0.0
        cumulative = np.cumsum(probs, axis=1)
    uniforms = np.array([g.next() for g in generators])
    picks = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    # kept tokens are a prefix of the sorted row; rounding must not step past the last one
    picks = np.minimum(picks, (probs > 0).sum(axis=1) - 1)
    tokens = order[np.arange(rows), picks]
    if greedy.any():
        tokens = np.where(greedy, masked.argmax(axis=1), tokens)
    return tokens.tolist()


def score_phrase_ends(logits: torch.Tensor, grammars: Sequence[MelodyGrammar]) -> torch.Tensor:
    """``logits`` (a row per grammar) with ``EOS`` scored as ``BAR`` in the rows whose
    grammar ``ends_as_bar``: a request that ends mid-tune ends where the model would draw
    the next bar line, not where it would end the tune."""
    rows = [i for i, grammar in enumerate(grammars) if grammar.ends_as_bar]
    if not rows:
        return logits
    logits = logits.clone()
    vocab = grammars[rows[0]].vocab
    logits[rows, vocab.eos] = logits[rows, vocab.bar]
    return logits


class MelodyGrammar:
    """State machine over token ids: ``allowed_ranges()`` / ``allowed_mask()`` name the tokens
    that may come next, ``advance(token)`` takes one.

    First ``feed_prompt`` (a control prefix and zero or more complete bars, no ``EOS``) — those
    tokens are checked only for structure, since given bars may break the generation limits.
    The prompt's last bar counts as finished: generation starts with ``BAR``. Then exactly
    ``n_bars`` bars are generated and ``EOS``; ``done`` turns true after ``EOS``. A
    fill-in-the-middle prompt (``FIM_SUF``, the bars after a gap, ``FIM_MID``, the bars
    before it: see the tokenizer) is taken too; the generated bars are then the gap's.

    What it enforces comes from the request's ``SamplingParams``: ``pitch_range`` (inclusive
    MIDI range of generated pitches), ``key_constraint`` (only the key's scale pitch classes;
    for minor keys also the raised 6th and 7th), ``max_notes_per_bar``, ``first_onset`` (the
    first generated bar opens with a note at that grid step: 0 on the downbeat, later a
    pickup; ``MusicError`` from ``feed_prompt`` if the meter's bar is shorter), and ``end_on_tonic``
    or ``cadence_steps`` (the last generated bar ends on the tonic or a cadence step, the
    module docstring says how; ignored if the pitch range holds none). ``max_len``: the
    model's context; the grammar keeps room for the remaining bars and ``EOS`` so that the
    whole sequence (prompt included) never exceeds it.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        n_bars: int,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        max_len: int = 1024,
    ) -> None:
        low, high = sampling.pitch_range
        if not PITCH_RANGE[0] <= low <= high <= PITCH_RANGE[1]:
            raise MusicError(
                f"pitch range {low}..{high} must lie within {PITCH_RANGE[0]}.."
                f"{PITCH_RANGE[1]} and not be empty"
            )
        if n_bars < 0:
            raise MusicError(f"n_bars must be >= 0, got {n_bars}")
        self.vocab = vocab
        self.n_bars = n_bars
        self.pitch_range = (low, high)
        self.key_constraint = sampling.key_constraint
        self.cadence_steps = frozenset(sampling.cadence_steps) or (
            frozenset(AUTHENTIC_CADENCE_STEPS) if sampling.end_on_tonic else frozenset()
        )
        self.end_on_tonic = self.cadence_steps == frozenset(AUTHENTIC_CADENCE_STEPS)
        self.tonal_emphasis = sampling.tonal_emphasis
        self.max_notes_per_bar = sampling.max_notes_per_bar
        self.first_onset = sampling.first_onset
        self.cadence_beat = sampling.cadence_beat
        self.phrase_continues = sampling.phrase_continues
        self.upbeat = sampling.upbeat if sampling.phrase_continues else -1
        self.cadence_hold = sampling.cadence_hold if sampling.phrase_continues else -1
        self.breath = sampling.breath if sampling.phrase_continues else -1
        self.max_len = max_len
        self._groups = {kind: vocab.group(kind) for kind in _PREFIX_KINDS[1:]}
        self._bos, self._eos, self._bar = vocab.bos, vocab.eos, vocab.bar
        # fill-in-the-middle markers, where the vocabulary has them (FIM_SUF, FIM_MID)
        self._fim_ids = (
            (vocab.id(FIM_SUFFIX), vocab.id(FIM_MIDDLE)) if FIM_MIDDLE in vocab.tokens else None
        )
        self._fim_stage = 0  # 0: no marker yet, 1: after FIM_SUF, 2: after FIM_MID
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
        self._beat_steps = 1
        self._in_bar = False
        self._expect = "next"  # "next" (POS/BAR/EOS), "pitch" or "dur"
        self._previous_end = 0  # grid steps
        self._notes_in_bar = 0
        self._pos = 0
        self._pitch = 0  # MIDI pitch of the note being written
        self._ends_on_cadence = False  # the bar's last note so far is a cadence tone
        # phrase_continues: the cadence tone has sounded through the cadence beat, so the
        # rest of the bar is free (a breath, an upbeat into the next phrase)
        self._cadence_held = False
        self._led_on = False  # a note followed the held cadence tone (``upbeat``)
        self._cadence_length = 0  # grid steps of the cadence tone, once held
        self._pitch_ranges_cache: dict[bool, list[tuple[int, int]]] = {}
        # allowed_ranges() of the current state: the engine asks twice per token (to mask
        # the logits, then to check the sampled token), for 32 sequences a step
        self._ranges: list[tuple[int, int]] | None = None

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
        if self._fim_stage == 1:
            raise MusicError("a prompt with FIM_SUF must end with FIM_MID")
        if self.first_onset >= self._bar_steps:
            raise MusicError(
                f"first_onset {self.first_onset} lies beyond the bar ({self._bar_steps} grid steps)"
            )
        self.generating = True
        self._in_bar = False  # the prompt's bars are final
        self._ranges = None
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
        self._ranges = None
        if self._prefix_index < PREFIX_LENGTH:
            self._take_control(token)
            return
        if token == self._eos:
            self.done = True
        elif self._fim_ids is not None and token in self._fim_ids:
            # the bars after the gap follow (FIM_SUF), or the gap's own bars (FIM_MID)
            self._fim_stage += 1
            self._in_bar = False
        elif token == self._bar:
            self._in_bar, self._previous_end, self._notes_in_bar = True, 0, 0
            self._ends_on_cadence = self._cadence_held = self._led_on = False
            if self.generating:
                self.bars_generated += 1
        elif self._expect == "next":
            self._pos = token - self._pos0
            self._expect = "pitch"
        elif self._expect == "pitch":
            self._pitch = token - self._pitch0 + PITCH_RANGE[0]
            self._expect = "dur"
        else:
            self._previous_end = self._pos + token - self._dur1 + 1
            self._notes_in_bar += 1
            self._led_on = self._led_on or self._cadence_held
            self._ends_on_cadence = self._is_cadence_tone(self._pitch)
            if (
                self.phrase_continues
                and self._ends_on_cadence
                and self._previous_end > self._cadence_beat_start()
                and self._in_cadence_bar()
            ):
                if not self._cadence_held:
                    self._cadence_length = token - self._dur1 + 1
                self._cadence_held = True
            self._expect = "next"

    def _take_control(self, token: int) -> None:
        name = self.vocab.token(token)
        value = name.partition("_")[2]
        if name.startswith("KEY_"):
            self._tonic = int(value)
        elif name.startswith("MODE_"):
            self._mode = Mode(value)
        elif name.startswith("METER_"):
            meter = Meter.parse(value)
            self._bar_steps = meter.bar_ticks // GRID_TICKS
            self._beat_steps = max(1, meter.beat_ticks // GRID_TICKS)
        self._prefix_index += 1

    # --- what may come next -------------------------------------------------------------------

    def _allows(self, token: int) -> bool:
        return any(start <= token < stop for start, stop in self.allowed_ranges())

    def allowed_ranges(self) -> list[tuple[int, int]]:
        """Half-open id ranges ``[start, stop)`` of the tokens allowed next (empty when done).
        Read the list, never write to it: it is kept until the next ``advance``."""
        if self._ranges is None:
            self._ranges = self._current_ranges()
        return self._ranges

    def _current_ranges(self) -> list[tuple[int, int]]:
        if self.done:
            return []
        if self._prefix_index < PREFIX_LENGTH:
            if self._prefix_index == 0:
                return [(self._bos, self._bos + 1)]
            ids = self._groups[_PREFIX_KINDS[self._prefix_index]]
            return [(ids[0], ids[-1] + 1)]
        cadence = self._in_cadence_bar() and not self._cadence_held
        if self._expect == "pitch":
            # the bar's last possible note must be a cadence tone, and so must a note that
            # starts in the cadence beat or later (held, below)
            last = self._notes_in_bar + 1 >= self.max_notes_per_bar
            last = last or self._pos >= self._cadence_beat_start() or self.length + 6 > self.max_len
            return self._pitch_ranges(cadence_only=cadence and last)
        if self._expect == "dur":
            longest = self._bar_steps - self._pos
            if not cadence:
                if self._runs_on():
                    longest = min(longest, self._cadence_length)
                return [(self._dur1, self._dur1 + longest)]
            return self._cadence_durations(longest)
        ranges = self._next_ranges()
        # a continuing phrase ends only once its cadence tone held the cadence beat (a
        # cadence tone that stopped before it would leave that beat silent)
        unfinished = not self._ends_on_cadence or self.phrase_continues
        if cadence and unfinished and len(ranges) > 1:
            ranges = [r for r in ranges if r[0] != self._eos]
        if cadence:
            # the cadence beat is not left silent: a note starts by its end at the latest,
            # and on it where an upbeat must follow in the bar
            latest = self._pos0 + self._cadence_beat_start() + self._beat_steps
            if self.upbeat == 1 or self._hold_steps() is not None:
                latest = self._pos0 + self._cadence_beat_start() + 1
            onsets = range(self._pos0, self._pos0 + MAX_BAR_STEPS)
            clipped = [(a, min(b, latest)) if a in onsets else (a, b) for a, b in ranges]
            ranges = [(a, b) for a, b in clipped if a < b]
        if cadence and self._previous_end > self._cadence_beat_start():
            ranges = [r for r in ranges if r[0] in (self._bar, self._eos)]  # the bar is closed
        if self._upbeat_owed():
            notes = [r for r in ranges if r[0] not in (self._bar, self._eos)]
            ranges = notes or ranges
            ranges = self._breathe(ranges)
        elif self.upbeat == 0 and self._cadence_held:
            ranges = [r for r in ranges if r[0] in (self._bar, self._eos)]  # no upbeat
        return ranges

    def _upbeat_owed(self) -> bool:
        """An ``upbeat`` phrase whose cadence tone is held and not yet followed by a note,
        in a bar with room left: the bar may not close yet."""
        return (
            self.upbeat == 1
            and self._cadence_held
            and not self._led_on
            and self._previous_end < self._bar_steps
            and self._in_cadence_bar()
        )

    @property
    def ends_as_bar(self) -> bool:
        """True where ``EOS`` would close a phrase the tune goes on after
        (``phrase_continues``): ``score_phrase_ends`` gives it the model's score for
        ``BAR``. Not after a fill-in-the-middle prompt: there the model learned ``EOS`` as
        the end of the gap, which it is."""
        return (
            self.phrase_continues
            and self._fim_stage == 0
            and self.generating
            and not self.done
            and self.bars_generated == self.n_bars
            and self._expect == "next"
        )

    def _cadence_beat_start(self) -> int:
        """Grid step where the cadence beat starts, the beat the cadence tone sounds
        through: ``cadence_beat`` where it is asked (the last beat if the bar is shorter),
        by default the bar's last but one where it has two beats or more (the cadence arrives
        by then and is held; left to choose, the model played the last note of 99 % of
        pieces on the last beat alone, real tunes hold it over two beats or more in 70 %),
        else the last. A one-beat bar has none (the bar's last step instead). After the
        cadence tone the bar is held to its end, or where the tune goes on
        (``phrase_continues``) free: a breath, an upbeat into the next phrase."""
        beats_in_bar = self._bar_steps // self._beat_steps
        if self.cadence_beat >= 0 and beats_in_bar >= 2:
            return min(self.cadence_beat, beats_in_bar - 1) * self._beat_steps
        beats = 2 if self._bar_steps >= 2 * self._beat_steps else 1
        start = self._bar_steps - beats * self._beat_steps
        return start if start > 0 or beats == 2 else self._bar_steps - 1

    def _cadence_durations(self, longest: int) -> list[tuple[int, int]]:
        """Durations of a note in the cadence bar. A cadence on a sixteenth snatched before
        the bar line is no cadence (constrained decoding left 28-39 % sixteenths in cadence
        bars, against 15 % elsewhere): other notes end by the cadence beat, and a cadence
        tone either ends by then too or is held: to the bar line at the piece's end, or where
        the tune goes on, at least through the cadence beat (half of it, from before it)."""
        room = self._cadence_beat_start() - self._pos
        if not self._is_cadence_tone(self._pitch):
            return [(self._dur1, self._dur1 + max(1, min(room, longest - 1)))]
        hold = self._hold_steps()
        if hold is not None and room > 0:
            # a drawn hold starts on the cadence beat: a cadence tone before it ends by then
            return [(self._dur1, self._dur1 + min(room, longest))]
        if hold is not None and room == 0:
            return [(self._dur1 + hold[0] - 1, self._dur1 + hold[1])]
        if not self.phrase_continues:
            # the piece's last tone: one that reaches the cadence beat holds to the bar line
            to_the_end = (self._dur1 + longest - 1, self._dur1 + longest)
            return [to_the_end] if room <= 0 else [(self._dur1, self._dur1 + room), to_the_end]
        last_beat = self._bar_steps - self._beat_steps
        if self._cadence_beat_start() < last_beat and self._pos < last_beat and self.upbeat != 0:
            # an earlier cadence leaves the last beat to a breath or an upbeat into the next
            # phrase: held through it, 37 % of 2/4 phrase-end bars were one tone (19 % with
            # this, nearly all the piece's last bar), against 7 % of the corpus's
            longest = last_beat - self._pos
        elif self.upbeat == 1 and longest > UPBEAT_STEPS:
            # a cadence on the last beat still leaves an eighth for the upbeat (a jig's
            # quarter and eighth)
            longest -= UPBEAT_STEPS
        # held: through at least half the cadence beat
        shortest_held = max(1, min(longest, room + (self._beat_steps + 1) // 2))
        if -self._beat_steps < room <= 0:
            # one that starts in the cadence beat sounds to its end, then the bar is free
            shortest_held = min(longest, room + self._beat_steps)
        elif room <= 0:  # a cadence tone that starts late holds to the bar line
            shortest_held = longest
        held = (self._dur1 + shortest_held - 1, self._dur1 + longest)
        if room <= 0:
            return [held]
        if room + 1 >= shortest_held:
            return [(self._dur1, self._dur1 + longest)]
        return [(self._dur1, self._dur1 + room), held]

    def _breathe(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The onsets of an owed upbeat after a drawn cadence hold (``cadence_hold``): after a
        rest where ``breath`` asks for one, at once where it asks for none; as they were where
        the bar has no room for the rest or the breath is the model's."""
        if self.breath < 0 or self._hold_steps() is None:
            return ranges
        onset = self._pos0 + self._previous_end  # the token of a note starting at once
        if self.breath == 1:
            if self._previous_end + 1 >= self._bar_steps:
                return ranges
            clipped = [(max(a, onset + 1), b) if a <= onset < b else (a, b) for a, b in ranges]
        else:
            clipped = [(a, min(b, onset + 1)) if a <= onset < b else (a, b) for a, b in ranges]
        return [(a, b) for a, b in clipped if a < b] or ranges

    def _runs_on(self) -> bool:
        """A note on a beat after a drawn cadence tone (``cadence_hold``) in its bar: it
        lasts no longer than the cadence tone, as in the corpus's phrase-end bars (whose
        cadence tone is their longest note on a beat); a half note after a reel's cadence
        eighth would be heard as the arrival instead."""
        return (
            self._cadence_held
            and self._hold_steps() is not None
            and self._in_cadence_bar()
            and self._pos % self._beat_steps == 0
        )

    def _hold_steps(self) -> tuple[int, int] | None:
        """Shortest and longest grid steps of a cadence tone on the cadence beat under
        ``cadence_hold`` (``phrase_endings.hold_of``: under half the beat, half of it or
        more, the beat or more, two beats or more), within the bar and leaving an eighth
        for an ``upbeat``; None for the default (held through the beat, the rest the
        model's) and where the bar has no room for the hold asked (a 3/8 eighth cannot
        sound under half of itself, a 2/4 bar has no two beats before an upbeat)."""
        if self.cadence_hold < 0:  # every step of a cadence bar asks: the default first
            return None
        beat = self._beat_steps
        room = self._bar_steps - self._cadence_beat_start()
        if self.upbeat == 1:
            room -= min(UPBEAT_STEPS, beat) + (1 if self.breath == 1 else 0)
        shortest, longest = {
            HOLD_SHORT: (1, (beat - 1) // 2),
            HOLD_PART: ((beat + 1) // 2, beat - 1),
            HOLD_BEAT: (beat, 2 * beat - 1),
            HOLD_LONG: (2 * beat, room),
        }[self.cadence_hold]
        longest = min(longest, room)
        return (shortest, longest) if 1 <= shortest <= longest else None

    def _is_cadence_tone(self, pitch: int) -> bool:
        return (pitch - self._tonic) % 12 in self.cadence_steps

    def _in_cadence_bar(self) -> bool:
        return (
            bool(self.cadence_steps)
            and self.generating
            and self._in_bar
            and self.bars_generated == self.n_bars
            and bool(self._pitch_ranges(cadence_only=True))
        )

    def _next_ranges(self) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        if not self.generating:  # prompt: structure only
            if self._in_bar and self._previous_end < self._bar_steps:
                ranges.append((self._pos0 + self._previous_end, self._pos0 + self._bar_steps))
            ranges.append((self._bar, self._bar + 1))
            # suffix first: FIM_SUF right after the controls, FIM_MID after the bars after
            # the gap; the bars before the gap follow it
            if self._fim_ids is not None and (
                (self._fim_stage == 0 and self.length == PREFIX_LENGTH) or self._fim_stage == 1
            ):
                marker = self._fim_ids[self._fim_stage]
                ranges.append((marker, marker + 1))
            return ranges
        bars_left = self.n_bars - self.bars_generated
        note_fits = self.length + 3 + bars_left + 1 <= self.max_len
        opening = self.first_onset >= 0 and self.bars_generated == 1 and self._notes_in_bar == 0
        if opening and note_fits:  # the opening the plan chose: the first bar's first note
            return [(self._pos0 + self.first_onset, self._pos0 + self.first_onset + 1)]
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

    def _pitch_ranges(self, *, cadence_only: bool = False) -> list[tuple[int, int]]:
        if not self.generating:
            return [(self._pitch0, self._pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1)]
        cached = self._pitch_ranges_cache.get(cadence_only)
        if cached is None:
            cached = self._generated_pitch_ranges(cadence_only)
            self._pitch_ranges_cache[cadence_only] = cached
        return cached

    def _generated_pitch_ranges(self, cadence_only: bool) -> list[tuple[int, int]]:
        low, high = self.pitch_range
        if cadence_only:
            pitches = [m for m in range(low, high + 1) if self._is_cadence_tone(m)]
        elif self.key_constraint:
            steps = {0, 2, 4, 5, 7, 9, 11} if self._mode is Mode.MAJOR else {0, 2, 3, 5, 7, 8, 10}
            if self._mode is Mode.MINOR:
                steps |= set(_MINOR_EXTRA_STEPS)
            classes = {(self._tonic + step) % 12 for step in steps}
            pitches = [m for m in range(low, high + 1) if m % 12 in classes]
            if not pitches:  # a range narrower than a scale step: fall back to all its pitches
                pitches = list(range(low, high + 1))
        else:
            return [(self._pitch0 + low - PITCH_RANGE[0], self._pitch0 + high - PITCH_RANGE[0] + 1)]
        return [
            (self._pitch0 + m - PITCH_RANGE[0], self._pitch0 + m - PITCH_RANGE[0] + 1)
            for m in pitches
        ]

    @property
    def expects_pitch(self) -> bool:
        """The next token is a generated note's pitch."""
        return self.generating and self._expect == "pitch"

    def allowed_ids(self) -> list[int]:
        return [i for start, stop in self.allowed_ranges() for i in range(start, stop)]

    def logit_bias(self) -> torch.Tensor | None:
        """Additive logits [vocab] for the next token, or None for none: with
        ``tonal_emphasis``, the ``TONAL_EMPHASIS_WEIGHTS`` pitches get their share of that bonus
        when a note starts on a beat. Shared between grammars: read it, never write to it."""
        if not (
            self.tonal_emphasis
            and self.generating
            and self._expect == "pitch"
            and self._pos % self._beat_steps == 0
        ):
            return None
        key = (len(self.vocab), self._tonic, self._mode, self.tonal_emphasis)
        bias = _BIASES.get(key)
        if bias is None:
            bias = torch.zeros(len(self.vocab))
            weights = TONAL_EMPHASIS_WEIGHTS[self._mode]
            for pitch in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1):
                weight = weights.get((pitch - self._tonic) % 12, 0.0)
                bias[self._pitch0 + pitch - PITCH_RANGE[0]] = weight * self.tonal_emphasis
            _BIASES[key] = bias
        return bias

    def allowed_mask(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """Bool mask [vocab] of the allowed tokens. Without ``out`` the mask is shared with
        other grammars in the same state: read it, never write to it."""
        key = (len(self.vocab), tuple(self.allowed_ranges()))
        mask = _MASKS.get(key)
        if mask is None:
            mask = torch.zeros(len(self.vocab), dtype=torch.bool)
            for start, stop in key[1]:
                mask[start:stop] = True
            _MASKS[key] = mask
        if out is None:
            return mask
        return out.copy_(mask)
