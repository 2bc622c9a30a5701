"""``cantus eval melody``: the melody transformer against an n-gram and an LSTM baseline.

1. Held-out negative log-likelihood on the TEST split (nats): per token over every token after
   the 7-token control prefix (BAR, POS, PITCH, DUR, EOS; the prefix conditions all three
   models and is never scored), per kind of token, and per note (POS + PITCH + DUR of one
   note). Models: the transformer checkpoint; ``KneserNeyLM`` (order and whether it counts all
   transpositions chosen on VALID); ``MelodyLSTM`` with about the transformer's parameter
   count, trained on the same sequences (trained first when its checkpoint is missing).
   Sequences longer than the transformer's context are scored with sliding windows that start
   at a bar, keep the control prefix and give every scored token at least half a context.
2. Generated pieces: ``pieces_per_setting`` melodies of ``n_bars`` bars per setting (key,
   mode, meter, style), sampled through the batched ``DecodeEngine`` (bf16 KV cache, as served)
   with and without the decoder's key constraint — *on* is what the melody service asks for:
   scale tones only, a tonic cadence in the last bar and tonal emphasis on the beats — and
   from the baselines (same grammar and sampling, no key constraint). Measured:
   music21's detected key equals the requested key; bars that exactly fill the meter; the
   last note on the tonic; KL divergence (nats) of the pitch-class-relative-to-tonic and
   melodic-interval histograms of the test tunes of the same mode and style from the
   generated ones;
   and the probability mass the transformer puts on tokens the grammar forbids.
3. Optionally (``extra_seed_sets``) the key-constrained transformer pieces again with other
   seeds: key agreement and tonic endings per seed set, to show how much one 100-piece run's
   share varies.

``run_melody_eval`` returns a ``MelodyEvalReport``; ``format_report`` renders it as Markdown.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cantus.melody.baselines import (
    KneserNeyLM,
    LSTMConfig,
    MelodyLSTM,
    NGramCounts,
    all_transpositions,
    load_lstm_checkpoint,
    lstm_token_nlls,
    train_lstm,
)
from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.controls import Controls
from cantus.melody.corpus import CorpusSplit, Tune, load_or_build_corpus
from cantus.melody.decoding import (
    DEFAULT_MAX_NOTES_PER_BAR,
    DEFAULT_PITCH_RANGE,
    TONAL_EMPHASIS_WEIGHTS,
    MelodyGrammar,
    SamplingParams,
    UniformDraws,
    sample_token,
)
from cantus.melody.engine import DecodeEngine, DecodeRequest
from cantus.melody.model import MelodyLM
from cantus.melody.tokenizer import (
    GRID_TICKS,
    PITCH_RANGE,
    PREFIX_LENGTH,
    MelodyTokenizer,
)
from cantus.melody.training import CORPUS_CACHE_DIR, TokenTransposer, encode_tunes
from cantus.music.notes import Key, Melody, Meter, MusicError
from cantus.music.styles import Energy, Style
from cantus.settings import REPO_ROOT, Settings

DEFAULT_LSTM_PATH = CORPUS_CACHE_DIR.parent / "baselines" / "lstm.pt"
"""Where the LSTM baseline is kept (``.cantus/baselines/lstm.pt`` in the repository, not
committed)."""
DEFAULT_LSTM_TOKEN_SHARE = 1.0
"""Training tokens of the LSTM baseline as a share of those the transformer's checkpoint saw:
the baseline trains until it has seen at least as many, so the comparison does not favour the
transformer by training budget."""
DEFAULT_LSTM_MINUTES = 90.0
"""Wall-clock cap on the LSTM's training (the token budget normally ends it first: about
9 M tokens at 3,000-5,000 tokens/s on this 2-core CPU; the transformer trained for 40 min)."""
SCORED_KINDS = ("BAR", "POS", "PITCH", "DUR", "EOS")
"""Token kinds after the control prefix, the ones the likelihood is measured on."""
INTERVAL_LIMIT = 12
"""Melodic intervals are histogrammed in -12..+12 semitones; larger leaps go to the ends."""
KL_SMOOTHING = 0.5
"""Pseudo-count added to every histogram bin before a KL divergence (no infinite values)."""
QUICK_TEST_TUNES = 60
QUICK_PIECES = 10
QUICK_LSTM_MINUTES = 1.0


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

SAMPLING = SamplingParams(temperature=1.0, top_k=0, top_p=0.95)
"""Sampling of every generated piece (the engine's defaults)."""
SERVED_TONAL_EMPHASIS = Settings.model_fields["melody_tonal_emphasis"].default
"""The melody service's tonal emphasis, used with the key constraint on."""
SERVED_BFLOAT16_FROM_BATCH = 16
"""``bfloat16_from_batch`` of ``triton_models/melody_lm/config.pbtxt``."""


# ============================================================================ likelihood


@dataclass
class NLLSummary:
    """Held-out likelihood of one model. ``per_token``: mean nats over the ``tokens`` scored
    tokens; ``per_note``: mean nats of POS + PITCH + DUR over ``notes`` notes; ``by_kind``:
    mean nats per token of each kind; ``kind_counts``: tokens of each kind."""

    model: str
    parameters: int
    tokens: int
    notes: int
    per_token: float
    per_note: float
    by_kind: dict[str, float]
    kind_counts: dict[str, int]

    @property
    def perplexity(self) -> float:
        return math.exp(self.per_token)

    @property
    def bits_per_token(self) -> float:
        return self.per_token / math.log(2)


def summarize_nll(
    model_name: str,
    parameters: int,
    tokenizer: MelodyTokenizer,
    sequences: Sequence[Sequence[int]],
    token_nlls: Sequence[np.ndarray],
) -> NLLSummary:
    """Aggregate per-target NLLs (``token_nlls[s][i]`` scores token i+1 of sequence s) over
    the tokens after the control prefix."""
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    kind_of = [token.partition("_")[0] for token in tokenizer.vocab.tokens]
    for sequence, nlls in zip(sequences, token_nlls, strict=True):
        if len(nlls) != len(sequence) - 1:
            raise ValueError(f"{len(nlls)} NLLs for a sequence of {len(sequence)} tokens")
        for position in range(PREFIX_LENGTH, len(sequence)):
            kind = kind_of[sequence[position]]
            sums[kind] += float(nlls[position - 1])
            counts[kind] += 1
    unexpected = set(counts) - set(SCORED_KINDS)
    if unexpected:
        raise ValueError(f"control tokens {sorted(unexpected)} after the prefix")
    tokens = sum(counts.values())
    notes = counts["DUR"]
    return NLLSummary(
        model=model_name,
        parameters=parameters,
        tokens=tokens,
        notes=notes,
        per_token=sum(sums.values()) / max(tokens, 1),
        per_note=(sums["POS"] + sums["PITCH"] + sums["DUR"]) / max(notes, 1),
        by_kind={k: sums[k] / counts[k] for k in SCORED_KINDS if counts[k]},
        kind_counts={k: counts[k] for k in SCORED_KINDS},
    )


def _gather_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]


@torch.no_grad()
def transformer_token_nlls(
    model: MelodyLM,
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    bar_id: int,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Per sequence, -ln p(token i+1 | tokens 0..i) for i = 0..len-2 (nats). Sequences longer
    than ``max_len`` continue in windows: the control prefix, then tokens from a ``BAR`` at
    most half a window before the first unscored token (as training windows start)."""
    from cantus.melody.training import pad_batch

    model.eval()
    max_len = model.config.max_len
    result: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    short = sorted(
        (i for i, s in enumerate(sequences) if len(s) <= max_len), key=lambda i: len(sequences[i])
    )
    for start in range(0, len(short), batch_size):
        indices = short[start : start + batch_size]
        batch = pad_batch([sequences[i] for i in indices], pad_id)
        nll = _gather_nll(model(batch[:, :-1]), batch[:, 1:])
        for row, index in enumerate(indices):
            result[index] = nll[row, : len(sequences[index]) - 1].double().numpy()
    for index, sequence in enumerate(sequences):
        if len(sequence) > max_len:
            result[index] = _windowed_nlls(model, list(sequence), bar_id)
    return result


def _windowed_nlls(model: MelodyLM, sequence: list[int], bar_id: int) -> np.ndarray:
    max_len = model.config.max_len
    body = max_len - PREFIX_LENGTH
    nlls = np.empty(len(sequence) - 1)
    first = torch.tensor([sequence[:max_len]])
    nlls[: max_len - 1] = _gather_nll(model(first[:, :-1]), first[:, 1:])[0].double().numpy()
    scored = max_len - 1  # index of the last scored target
    while scored < len(sequence) - 1:
        earliest = scored + 1 - body // 2
        bars = [i for i in range(earliest, scored + 1) if sequence[i] == bar_id]
        begin = bars[0] if bars else earliest
        window = sequence[:PREFIX_LENGTH] + sequence[begin : begin + body]
        tokens = torch.tensor([window])
        nll = _gather_nll(model(tokens[:, :-1]), tokens[:, 1:])[0].double().numpy()
        last = min(begin + body - 1, len(sequence) - 1)
        for target in range(scored + 1, last + 1):
            nlls[target - 1] = nll[PREFIX_LENGTH + target - begin - 1]
        scored = last
    return nlls


# ============================================================================ sampling


def sample_transformer(
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    jobs: Sequence[tuple[Controls, int, bool]],
    *,
    n_bars: int,
    max_batch: int = 50,
    timeout_s: float = 3600.0,
) -> list[list[int] | None]:
    """Sample one piece per job (controls, seed, key constraint) through one batched
    ``DecodeEngine``; the whole token sequence of each, or None where the engine failed."""
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
                n_bars=n_bars,
                seed=seed,
                temperature=SAMPLING.temperature,
                top_k=SAMPLING.top_k,
                top_p=SAMPLING.top_p,
                # "key constraint on" is what the melody service asks for: scale tones, a
                # tonic cadence in the last bar and tonal emphasis on the beats
                key_constraint=key_constraint,
                end_on_tonic=key_constraint,
                tonal_emphasis=SERVED_TONAL_EMPHASIS if key_constraint else 0.0,
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
        grammar = MelodyGrammar(
            tokenizer.vocab, n_bars=n_bars, pitch_range=DEFAULT_PITCH_RANGE, max_len=max_len
        )
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


# ============================================================================ piece metrics


def detect_key(melody: Melody) -> Key | None:
    """music21's ``analyze('key')`` (Krumhansl-Schmuckler) on the melody's notes; church
    modes read as major or minor (``music21_key_to_key``). None for a melody without notes."""
    from music21 import note, stream

    from cantus.music.music21_io import music21_key_to_key

    notes = melody.notes_absolute()
    if not notes:
        return None
    part = stream.Stream()
    for n in notes:
        part.insert(n.onset / 480, note.Note(n.pitch, quarterLength=n.duration / 480))
    return music21_key_to_key(part.analyze("key"))


def bar_validity(tokenizer: MelodyTokenizer, tokens: Sequence[int], meter: Meter) -> list[bool]:
    """For each bar after the control prefix: do its POS PITCH DUR triples place notes in
    order, without overlap, inside the bar, so that notes and rests fill ``meter`` exactly?"""
    vocab = tokenizer.vocab
    bar_steps = meter.bar_ticks // GRID_TICKS
    bars: list[list[str]] = []
    for token in tokens[PREFIX_LENGTH:]:
        name = vocab.token(token)
        if name == "BAR":
            bars.append([])
        elif name == "EOS":
            break
        elif bars:
            bars[-1].append(name)
        else:
            return [False]
    valid = []
    for names in bars:
        ok = len(names) % 3 == 0
        previous_end = 0
        for i in range(0, len(names) - len(names) % 3, 3):
            kinds = [n.partition("_")[0] for n in names[i : i + 3]]
            if kinds != ["POS", "PITCH", "DUR"]:
                ok = False
                break
            pos, dur = int(names[i].partition("_")[2]), int(names[i + 2].partition("_")[2])
            if pos < previous_end or pos + dur > bar_steps:
                ok = False
                break
            previous_end = pos + dur
        valid.append(ok)
    return valid


def pitch_class_counts(melodies: Sequence[Melody], tonics: Sequence[int]) -> np.ndarray:
    """Notes per pitch class relative to each melody's tonic: [12] (0 = tonic)."""
    counts = np.zeros(12)
    for melody, tonic in zip(melodies, tonics, strict=True):
        for bar in melody.bars:
            for n in bar.notes:
                counts[(n.pitch - tonic) % 12] += 1
    return counts


def interval_counts(melodies: Sequence[Melody]) -> np.ndarray:
    """Successive-note intervals in semitones, -12..+12 (wider leaps at the ends): [25]."""
    counts = np.zeros(2 * INTERVAL_LIMIT + 1)
    for melody in melodies:
        pitches = [n.pitch for n in melody.notes_absolute()]
        for a, b in itertools.pairwise(pitches):
            counts[max(-INTERVAL_LIMIT, min(INTERVAL_LIMIT, b - a)) + INTERVAL_LIMIT] += 1
    return counts


def kl_divergence(reference_counts: np.ndarray, model_counts: np.ndarray) -> float:
    """KL(reference ‖ model) in nats between two histograms, ``KL_SMOOTHING`` added per bin."""
    p = reference_counts + KL_SMOOTHING
    q = model_counts + KL_SMOOTHING
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


@dataclass
class PieceSetResult:
    """Statistics of the pieces one model generated for one setting. Shares are 0..1;
    ``key_match``: detected key == requested key; ``valid_bars``: share of bars that exactly
    fill the meter; ``complete``: pieces with exactly ``n_bars`` bars, all valid;
    ``tonic_ending``: last note's pitch class is the tonic; KLs in nats (test ‖ generated)."""

    setting: str
    model: str
    key_constraint: bool
    pieces: int
    failed: int
    key_match: float
    valid_bars: float
    complete: float
    tonic_ending: float
    kl_pitch_class: float
    kl_interval: float
    notes_per_bar: float
    detected_keys: dict[str, int] = field(default_factory=dict)


MIN_REFERENCE_TUNES = 5
"""Fewest tunes of a setting's mode and style a reference needs before it falls back to
all tunes of the mode."""


@dataclass(frozen=True)
class Reference:
    """Histograms of real tunes a setting is compared with (pitch classes relative to each
    tune's labelled tonic): ``tunes`` of ``matched`` ("mode and style" or "mode")."""

    pitch_classes: np.ndarray
    intervals: np.ndarray
    tunes: int
    matched: str


def build_reference(tunes: Sequence[Tune], controls: Controls) -> Reference:
    """The tunes in the setting's mode and style (in its mode alone when fewer than
    ``MIN_REFERENCE_TUNES``): style shapes intervals (chorales move by step) as much as mode
    shapes pitch classes."""
    mode = controls.key.mode
    style = Style(controls.style).value
    chosen = [t.melody for t in tunes if t.melody.key.mode is mode and t.style == style]
    matched = "mode and style"
    if len(chosen) < MIN_REFERENCE_TUNES:
        chosen = [t.melody for t in tunes if t.melody.key.mode is mode]
        matched = "mode"
    return Reference(
        pitch_class_counts(chosen, [m.key.tonic for m in chosen]),
        interval_counts(chosen),
        len(chosen),
        matched,
    )


def score_pieces(
    tokenizer: MelodyTokenizer,
    setting: EvalSetting,
    model_name: str,
    key_constraint: bool,
    sequences: Sequence[list[int] | None],
    n_bars: int,
    reference: Reference,
) -> PieceSetResult:
    """Statistics of one setting's generated token sequences (None: a failed piece)."""
    key = setting.controls.key
    melodies: list[Melody] = []
    bar_flags: list[bool] = []
    complete = 0
    for tokens in sequences:
        if tokens is None:
            continue
        flags = bar_validity(tokenizer, tokens, setting.controls.meter)
        bar_flags += flags
        try:
            _, melody = tokenizer.decode(tokens)
        except MusicError:
            continue
        complete += int(len(flags) == n_bars and all(flags))
        melodies.append(melody)
    detected = [detect_key(m) for m in melodies]
    endings = [m.notes_absolute()[-1].pitch % 12 if m.notes_absolute() else -1 for m in melodies]
    n = max(len(sequences), 1)
    return PieceSetResult(
        setting=setting.name,
        model=model_name,
        key_constraint=key_constraint,
        pieces=len(sequences),
        failed=sum(s is None for s in sequences),
        key_match=sum(d == key for d in detected) / n,
        valid_bars=sum(bar_flags) / max(len(bar_flags), 1),
        complete=complete / n,
        tonic_ending=sum(e == key.tonic for e in endings) / n,
        kl_pitch_class=kl_divergence(
            reference.pitch_classes, pitch_class_counts(melodies, [key.tonic] * len(melodies))
        ),
        kl_interval=kl_divergence(reference.intervals, interval_counts(melodies)),
        notes_per_bar=sum(len(b.notes) for m in melodies for b in m.bars)
        / max(sum(len(m.bars) for m in melodies), 1),
        detected_keys=dict(Counter(d.name if d else "none" for d in detected).most_common(4)),
    )


FORBIDDEN_GROUPS = {"metre": ("POS", "DUR"), "length": ("BAR", "EOS")}
"""How ``forbidden_mass`` groups forbidden tokens: a POS or DUR the grammar rejects would
overlap a note or cross the bar line; a BAR or EOS it rejects would end the piece before or
after ``n_bars``; everything else (pitches outside the range, broken syntax) is ``other``."""


@torch.no_grad()
def forbidden_mass(
    model: MelodyLM, tokenizer: MelodyTokenizer, sequences: Sequence[list[int]], n_bars: int
) -> dict[str, dict[str, float]]:
    """How much the transformer relies on the grammar: over the generated tokens of
    ``sequences`` (sampled without key constraint), the probability it gave to tokens the
    structural grammar forbids (full pitch range), per ``FORBIDDEN_GROUPS`` group and in
    total: ``per_token`` the mean per generated token, ``per_piece`` the mean per piece of
    its sum (about the expected number of grammar breaks in a piece sampled unmasked)."""
    groups = [*FORBIDDEN_GROUPS, "other"]
    group_of = torch.full((len(tokenizer.vocab),), len(groups) - 1, dtype=torch.long)
    for index, kinds in enumerate(FORBIDDEN_GROUPS.values()):
        for token_id, token in enumerate(tokenizer.vocab.tokens):
            if token.partition("_")[0] in kinds:
                group_of[token_id] = index
    totals = torch.zeros(len(groups), dtype=torch.float64)
    n_tokens = 0
    for tokens in sequences:
        probs = torch.softmax(model(torch.tensor([tokens[:-1]]))[0].double(), dim=-1)
        grammar = MelodyGrammar(
            tokenizer.vocab,
            n_bars=n_bars,
            pitch_range=PITCH_RANGE,
            max_notes_per_bar=DEFAULT_MAX_NOTES_PER_BAR,
            max_len=model.config.max_len,
        )
        grammar.feed_prompt(tokens[:PREFIX_LENGTH])
        for position in range(PREFIX_LENGTH, len(tokens)):
            forbidden = probs[position - 1].masked_fill(grammar.allowed_mask(), 0.0)
            totals += torch.bincount(group_of, weights=forbidden, minlength=len(groups))
            grammar.advance(tokens[position])
        n_tokens += len(tokens) - PREFIX_LENGTH
    values = dict(zip(groups, totals.tolist(), strict=True))
    values["total"] = sum(values.values())
    return {
        name: {
            "per_token": value / max(n_tokens, 1),
            "per_piece": value / max(len(sequences), 1),
        }
        for name, value in values.items()
    }


# ============================================================================ the run


@dataclass
class MelodyEvalReport:
    """Everything ``format_report`` prints; ``to_json`` for machines."""

    checkpoint: str
    quick: bool
    test_tunes: int
    n_bars: int
    pieces_per_setting: int
    nll: list[NLLSummary]
    ngram_candidates: list[dict[str, Any]]
    ngram_choice: dict[str, Any]
    lstm: dict[str, Any]
    transformer: dict[str, Any]
    generation: list[PieceSetResult]
    test_reference: dict[str, Any]
    forbidden_mass: dict[str, dict[str, float]]
    timings_s: dict[str, float]
    settings: list[dict[str, Any]]
    seed_sets: list[dict[str, Any]] = field(default_factory=list)
    """Key-constrained transformer runs with other seeds: setting, seed set, shares."""

    def to_json(self) -> str:
        data = asdict(self)
        data["nll"] = [dict(asdict(s), perplexity=s.perplexity) for s in self.nll]
        return json.dumps(data, indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> MelodyEvalReport:
        """Inverse of ``to_json`` (to render a stored report again)."""
        data = json.loads(text)
        data["nll"] = [
            NLLSummary(**{k: v for k, v in s.items() if k != "perplexity"}) for s in data["nll"]
        ]
        data["generation"] = [PieceSetResult(**r) for r in data["generation"]]
        return cls(**data)


def _choose_ngram(
    train, valid_sequences, transposer, vocab_size, pad_id, orders, augmentations, log
) -> tuple[KneserNeyLM, list[dict[str, Any]], dict[str, Any]]:
    """Fit every (order, augmentation) candidate on train; keep the best on VALID."""
    candidates: list[dict[str, Any]] = []
    best: tuple[float, KneserNeyLM | None, dict[str, Any]] = (math.inf, None, {})
    for augmented in augmentations:
        sequences = (
            all_transpositions(train, transposer) if augmented else [t.tokens for t in train]
        )
        counts = NGramCounts(sequences, max(orders), vocab_size, pad_id)
        for order in orders:
            model = KneserNeyLM(counts, order)
            nlls = model.token_nlls(valid_sequences)
            scored = np.concatenate([n[PREFIX_LENGTH - 1 :] for n in nlls])
            row = {"order": order, "augmented": augmented, "valid_nll": float(scored.mean())}
            candidates.append(row)
            log(f"n-gram order {order} augmented={augmented}: valid {row['valid_nll']:.4f} nats")
            if row["valid_nll"] < best[0]:
                best = (row["valid_nll"], model, dict(row, train_tokens=counts.n_tokens))
    assert best[1] is not None
    return best[1], candidates, best[2]


def _load_or_train_lstm(
    path: Path,
    minutes: float,
    transformer_parameters: int,
    train,
    valid_sequences,
    tokenizer: MelodyTokenizer,
    transposer: TokenTransposer,
    max_len: int,
    max_steps: int | None,
    log: Callable[[str], None],
    max_tokens: int | None = None,
) -> tuple[MelodyLSTM, dict[str, Any]]:
    trained_now = not path.exists()
    if trained_now:
        config = LSTMConfig.matching(len(tokenizer.vocab), transformer_parameters)
        tokens = f"{max_tokens / 1e6:.2f} M tokens or " if max_tokens is not None else ""
        log(f"no LSTM baseline at {path}: training one for {tokens}{minutes:g} min")
        train_lstm(
            train,
            valid_sequences,
            config,
            transposer,
            pad_id=tokenizer.vocab.pad,
            bar_id=tokenizer.vocab.bar,
            max_minutes=minutes,
            out_path=path,
            max_len=max_len,
            max_steps=max_steps,
            max_tokens=max_tokens,
            log=log,
        )
    model, metadata = load_lstm_checkpoint(path)
    info = dict(metadata, config=model.config.to_dict(), path=str(path), trained_now=trained_now)
    return model, info


def _setting_jobs(
    settings: Sequence[EvalSetting], pieces_per_setting: int, seed_set: int
) -> list[tuple[EvalSetting, int]]:
    """(setting, sampling seed) of every piece of one seed set: seeds never repeat across
    settings, pieces or seed sets."""
    return [
        (setting, s * 100_000 + seed_set * 1000 + i)
        for s, setting in enumerate(settings)
        for i in range(pieces_per_setting)
    ]


def run_melody_eval(
    checkpoint: Path,
    *,
    pieces_per_setting: int = 100,
    lstm_minutes: float = DEFAULT_LSTM_MINUTES,
    lstm_token_share: float | None = DEFAULT_LSTM_TOKEN_SHARE,
    out: Path | None = None,
    json_out: Path | None = None,
    samples_out: Path | None = None,
    quick: bool = False,
    command: str = "cantus eval melody",
    lstm_path: Path = DEFAULT_LSTM_PATH,
    split: CorpusSplit | None = None,
    settings: Sequence[EvalSetting] = DEFAULT_SETTINGS,
    n_bars: int = 16,
    ngram_orders: Sequence[int] = (3, 4, 5, 6, 7, 8),
    lstm_max_steps: int | None = None,
    max_batch: int = 50,
    seed: int = 0,
    extra_seed_sets: int = 0,
    log: Callable[[str], None] = print,
) -> MelodyEvalReport:
    """Run the whole evaluation (see the module docstring) and return the report; with
    ``out`` also write ``format_report(report, command=command)`` there, with ``json_out``
    the report's JSON, with ``samples_out`` every generated piece as a JSON line (setting,
    model, key constraint, seed, token ids). ``quick``: at most ``QUICK_PIECES`` pieces per setting,
    ``QUICK_TEST_TUNES`` test tunes (evenly spread), the n-gram without augmentation, and
    when the LSTM is missing a ``QUICK_LSTM_MINUTES`` one saved beside it as ``*-quick.pt``.
    A missing LSTM is trained on ``lstm_token_share`` times the training tokens the
    transformer's checkpoint saw (None: no token budget), for at most ``lstm_minutes``.
    ``extra_seed_sets``: sample the key-constrained transformer pieces that many more times,
    with seed sets ``seed + 1``, ``seed + 2``, … (key and tonic shares per set).
    ``split``: a corpus split to use instead of the cached corpus (tests)."""
    timings: dict[str, float] = {}
    started = clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 1)
        clock = now

    model, tokenizer, metadata = load_melody_checkpoint(Path(checkpoint))
    vocab = tokenizer.vocab
    split = split or load_or_build_corpus(CORPUS_CACHE_DIR)
    test_tunes = list(split.test)
    if quick:
        pieces_per_setting = min(pieces_per_setting, QUICK_PIECES)
        stride = max(1, len(test_tunes) // QUICK_TEST_TUNES)
        test_tunes = test_tunes[::stride][:QUICK_TEST_TUNES]
        lstm_minutes = min(lstm_minutes, QUICK_LSTM_MINUTES)
        if not lstm_path.exists():
            lstm_path = lstm_path.with_name(lstm_path.stem + "-quick.pt")
    thresholds = metadata["energy_thresholds"]
    train = encode_tunes(split.train, tokenizer, thresholds)
    valid = encode_tunes(split.valid, tokenizer, thresholds)
    test_sequences = [t.tokens for t in encode_tunes(test_tunes, tokenizer, thresholds)]
    valid_sequences = [t.tokens for t in valid]
    transposer = TokenTransposer(tokenizer)
    lap("load")

    # --- likelihood ---
    n_parameters = model.n_parameters()
    nll = [
        summarize_nll(
            "transformer",
            n_parameters,
            tokenizer,
            test_sequences,
            transformer_token_nlls(model, test_sequences, pad_id=vocab.pad, bar_id=vocab.bar),
        )
    ]
    lap("transformer NLL")
    log(f"transformer: {nll[0].per_token:.4f} nats/token")
    ngram, candidates, choice = _choose_ngram(
        train,
        valid_sequences,
        transposer,
        len(vocab),
        vocab.pad,
        tuple(ngram_orders),
        (False,) if quick else (False, True),
        log,
    )
    nll.append(
        summarize_nll(
            f"{ngram.order}-gram KN",
            sum(t.counts.size for t in ngram.tables),
            tokenizer,
            test_sequences,
            ngram.token_nlls(test_sequences),
        )
    )
    lap("n-gram fit and NLL")
    transformer_tokens = metadata.get("tokens_seen")
    lstm_tokens = (
        math.ceil(lstm_token_share * transformer_tokens)
        if lstm_token_share is not None and transformer_tokens
        else None
    )
    lstm, lstm_info = _load_or_train_lstm(
        lstm_path,
        lstm_minutes,
        n_parameters,
        train,
        valid_sequences,
        tokenizer,
        transposer,
        model.config.max_len,
        lstm_max_steps,
        log,
        max_tokens=lstm_tokens,
    )
    lap("LSTM training" if lstm_info["trained_now"] else "LSTM load")
    nll.append(
        summarize_nll(
            "LSTM",
            lstm.n_parameters(),
            tokenizer,
            test_sequences,
            lstm_token_nlls(lstm, test_sequences, vocab.pad),
        )
    )
    lap("LSTM NLL")
    for summary in nll:
        log(f"{summary.model}: {summary.per_token:.4f} nats/token, {summary.per_note:.3f}/note")

    # --- generation ---
    jobs = _setting_jobs(settings, pieces_per_setting, seed)
    sampled: dict[tuple[str, bool], list[list[int] | None]] = {}
    for constrained in (False, True):
        tokens = sample_transformer(
            model,
            tokenizer,
            [(st.controls, sd, constrained) for st, sd in jobs],
            n_bars=n_bars,
            max_batch=max_batch,
        )
        for setting in settings:
            sampled[(setting.name, constrained)] = [
                t for (st, _), t in zip(jobs, tokens, strict=True) if st is setting
            ]
    lap("transformer sampling")
    baseline_samples: dict[tuple[str, str], list[list[int]]] = {}
    for name, make_stepper in (
        (nll[1].model, lambda: NGramStepper(ngram)),
        ("LSTM", lambda: LSTMStepper(lstm)),
    ):
        for setting in settings:
            baseline_samples[(name, setting.name)] = sample_with_stepper(
                make_stepper(),
                tokenizer,
                [(setting.controls, sd) for st, sd in jobs if st is setting],
                n_bars=n_bars,
                max_len=model.config.max_len,
            )
    lap("baseline sampling")
    if samples_out is not None:
        _write_samples(Path(samples_out), jobs, settings, sampled, baseline_samples)

    references = {s.name: build_reference(test_tunes, s.controls) for s in settings}
    results = []
    for setting in settings:
        reference = references[setting.name]
        for constrained in (False, True):
            results.append(
                score_pieces(
                    tokenizer,
                    setting,
                    "transformer",
                    constrained,
                    sampled[(setting.name, constrained)],
                    n_bars,
                    reference,
                )
            )
        for name in (nll[1].model, "LSTM"):
            results.append(
                score_pieces(
                    tokenizer,
                    setting,
                    name,
                    False,
                    baseline_samples[(name, setting.name)],
                    n_bars,
                    reference,
                )
            )
    unconstrained = [t for s in settings for t in sampled[(s.name, False)] if t is not None]
    masses = forbidden_mass(model, tokenizer, unconstrained, n_bars)
    lap("piece statistics")
    seed_sets = [
        {
            "setting": r.setting,
            "seed_set": seed,
            "key_match": r.key_match,
            "tonic_ending": r.tonic_ending,
            "kl_pitch_class": r.kl_pitch_class,
        }
        for r in results
        if r.model == "transformer" and r.key_constraint
    ]
    for seed_set in range(seed + 1, seed + 1 + extra_seed_sets):
        extra_jobs = _setting_jobs(settings, pieces_per_setting, seed_set)
        tokens = sample_transformer(
            model,
            tokenizer,
            [(st.controls, sd, True) for st, sd in extra_jobs],
            n_bars=n_bars,
            max_batch=max_batch,
        )
        for setting in settings:
            pieces = [t for (st, _), t in zip(extra_jobs, tokens, strict=True) if st is setting]
            r = score_pieces(
                tokenizer, setting, "transformer", True, pieces, n_bars, references[setting.name]
            )
            seed_sets.append(
                {
                    "setting": setting.name,
                    "seed_set": seed_set,
                    "key_match": r.key_match,
                    "tonic_ending": r.tonic_ending,
                    "kl_pitch_class": r.kl_pitch_class,
                }
            )
        latest = seed_sets[-len(settings) :]
        log(f"seed set {seed_set}: key " + ", ".join(_pct(row["key_match"]) for row in latest))
    if extra_seed_sets:
        lap("extra seed sets")
    test_reference = _test_reference(test_tunes, split, settings, references, n_bars)
    lap("test-set reference")
    timings["total"] = round(time.monotonic() - started, 1)

    report = MelodyEvalReport(
        checkpoint=str(checkpoint),
        quick=quick,
        test_tunes=len(test_sequences),
        n_bars=n_bars,
        pieces_per_setting=pieces_per_setting,
        nll=nll,
        ngram_candidates=candidates,
        ngram_choice=choice,
        lstm=lstm_info,
        transformer={
            k: metadata.get(k) for k in ("steps", "epochs", "minutes", "valid_loss", "tokens_seen")
        }
        | {"config": metadata["config"].to_dict(), "n_parameters": n_parameters},
        generation=results,
        test_reference=test_reference,
        forbidden_mass=masses,
        timings_s=timings,
        seed_sets=seed_sets if extra_seed_sets else [],
        settings=[
            {"name": s.name, "tempo_bpm": s.controls.tempo_bpm, "energy": s.controls.energy.value}
            for s in settings
        ],
    )
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(format_report(report, command=command))
    if json_out is not None:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(report.to_json() + "\n")
    return report


def _write_samples(
    path: Path,
    jobs: Sequence[tuple[EvalSetting, int]],
    settings: Sequence[EvalSetting],
    transformer: dict[tuple[str, bool], list[list[int] | None]],
    baselines: dict[tuple[str, str], list[list[int]]],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        for setting in settings:
            seeds = [seed for s, seed in jobs if s is setting]
            groups = [("transformer", c, transformer[(setting.name, c)]) for c in (False, True)]
            groups += [(m, False, t) for (m, name), t in baselines.items() if name == setting.name]
            for model_name, constrained, sequences in groups:
                for seed, tokens in zip(seeds, sequences, strict=True):
                    record = {
                        "setting": setting.name,
                        "model": model_name,
                        "key_constraint": constrained,
                        "seed": seed,
                        "tokens": tokens,
                    }
                    stream.write(json.dumps(record) + "\n")


def _test_reference(
    tunes: Sequence[Tune],
    split: CorpusSplit,
    settings: Sequence[EvalSetting],
    references: dict[str, Reference],
    n_bars: int,
) -> dict[str, Any]:
    """The same statistics on real tunes: how often music21's key agrees with the corpus
    label, how often a tune ends on its tonic, how often a tune longer than ``n_bars`` has
    the tonic as the last note of its first ``n_bars`` bars (what a piece cut off there would
    end on), and per setting its reference and the KL(test ‖ valid) of the same selection
    (a floor for the generated pieces' KL: two samples of one distribution)."""
    agree = sum(detect_key(t.melody) == t.melody.key for t in tunes)
    endings = sum(
        bool(t.melody.notes_absolute())
        and t.melody.notes_absolute()[-1].pitch % 12 == t.melody.key.tonic
        for t in tunes
    )
    longer = [t for t in tunes if len(t.melody.bars) > n_bars]
    cut_on_tonic = 0
    for tune in longer:
        cut = Melody(tune.melody.key, tune.melody.tempo_bpm, tune.melody.bars[:n_bars])
        notes = cut.notes_absolute()
        cut_on_tonic += bool(notes) and notes[-1].pitch % 12 == tune.melody.key.tonic
    per_setting = {}
    for setting in settings:
        test_ref = references[setting.name]
        valid_ref = build_reference(split.valid, setting.controls)
        per_setting[setting.name] = {
            "tunes": test_ref.tunes,
            "matched": test_ref.matched,
            "valid_tunes": valid_ref.tunes,
            "floor_pitch_class": kl_divergence(test_ref.pitch_classes, valid_ref.pitch_classes),
            "floor_interval": kl_divergence(test_ref.intervals, valid_ref.intervals),
        }
    modes = Counter(t.melody.key.mode.value for t in tunes)
    return {
        "tunes": len(tunes),
        "tunes_by_mode": dict(modes),
        "key_agreement": agree / max(len(tunes), 1),
        "tonic_ending": endings / max(len(tunes), 1),
        "longer_tunes": len(longer),
        "tonic_at_cut": cut_on_tonic / max(len(longer), 1),
        "settings": per_setting,
    }


# ============================================================================ report


FORBIDDEN_LABELS = {
    "metre": "metre: POS/DUR overlapping a note or crossing the bar line",
    "length": "length: BAR/EOS ending the piece before or after the requested bars",
    "other": "other: pitch outside 36..96, broken syntax",
    "total": "total",
}


def _pct(share: float) -> str:
    return f"{100 * share:.0f} %"


def _training_balance_lines(report: MelodyEvalReport) -> list[str]:
    """How the LSTM's training tokens compare with the transformer's; a caveat when it saw
    far fewer."""
    lstm_tokens = report.lstm.get("tokens_seen") or 0
    transformer_tokens = report.transformer.get("tokens_seen") or 0
    if not transformer_tokens:
        return []
    if lstm_tokens >= 0.75 * transformer_tokens:
        history = report.lstm.get("history") or []
        first, last = (history[0], history[-1]) if history else ([0, 0, math.nan],) * 2
        return [
            f"Training budget: the LSTM saw {lstm_tokens / 1e6:.1f} M training tokens, "
            f"{_pct(lstm_tokens / transformer_tokens)} of the transformer's "
            f"{transformer_tokens / 1e6:.1f} M, with the same learning-rate schedule shape "
            "(warmup, cosine decay to 10 % over its budget); its validation loss went from "
            f"{first[2]:.4f} (step {first[0]}) to {last[2]:.4f} (step {last[0]}).",
            "",
        ]
    history = report.lstm.get("history") or []
    trend = ""
    if len(history) >= 2:
        (step_a, seconds_a, loss_a), (step_b, seconds_b, loss_b) = history[-2], history[-1]
        trend = (
            f" Its validation loss still fell from {loss_a:.4f} to {loss_b:.4f} between steps "
            f"{step_a} and {step_b} ({(seconds_b - seconds_a) / 60:.1f} min) before the best "
            "checkpoint."
        )
    return [
        f"**Caveat:** the LSTM saw {lstm_tokens / 1e6:.1f} M training tokens, "
        f"{_pct(lstm_tokens / transformer_tokens)} of the transformer's "
        f"{transformer_tokens / 1e6:.1f} M: it is under-trained relative to the transformer, "
        "so its numbers are a weak upper bound on what an LSTM of this size reaches."
        + trend
        + " Delete its checkpoint and give it a larger `--lstm-token-share` (and "
        "`--lstm-minutes`, the wall-clock cap) for a stronger baseline.",
        "",
    ]


def _lstm_budget_text(lstm: dict[str, Any]) -> str:
    """The LSTM's training budget: tokens (with the wall-clock cap) or minutes alone."""
    if lstm.get("budget_tokens"):
        return (
            f"a budget of {lstm['budget_tokens'] / 1e6:.2f} M training tokens (wall-clock cap "
            f"{lstm.get('budget_minutes')} min)"
        )
    return f"a {lstm.get('budget_minutes')} min budget"


def _seed_set_means(report: MelodyEvalReport) -> dict[str, float]:
    """Mean key agreement per setting over the report's seed sets."""
    shares: dict[str, list[float]] = {}
    for row in report.seed_sets:
        shares.setdefault(row["setting"], []).append(row["key_match"])
    return {setting: float(np.mean(values)) for setting, values in shares.items()}


def _seed_set_lines(report: MelodyEvalReport) -> list[str]:
    """Key agreement of the key-constrained transformer per setting and seed set."""
    if not report.seed_sets:
        return []
    seed_sets = sorted({r["seed_set"] for r in report.seed_sets})
    settings = list(dict.fromkeys(r["setting"] for r in report.seed_sets))
    key = {(r["setting"], r["seed_set"]): r for r in report.seed_sets}
    means = _seed_set_means(report)
    lines = [
        "",
        f"Key agreement with the key constraint on, per seed set of {report.pieces_per_setting}"
        f" pieces (seed set {seed_sets[0]} is the run above; a share from 100 pieces has a "
        "standard error of about 3 points at 90 %):",
        "",
        "| setting | " + " | ".join(f"set {s}" for s in seed_sets) + " | mean | worst |",
        "|---|" + "---:|" * (len(seed_sets) + 2),
    ]
    for setting in settings:
        shares = [key[(setting, s)]["key_match"] for s in seed_sets if (setting, s) in key]
        lines.append(
            f"| {setting} | "
            + " | ".join(_pct(share) for share in shares)
            + f" | {_pct(means[setting])} | {_pct(min(shares))} |"
        )
    return lines


def _emphasis_text() -> str:
    """``TONAL_EMPHASIS_WEIGHTS`` in words, for the report."""
    names = ("tonic", "♭2nd", "2nd", "♭3rd", "3rd", "4th", "♯4th", "5th", "♭6th", "6th")
    names += ("♭7th", "7th")
    return "; ".join(
        f"{mode.value}: "
        + ", ".join(f"{names[step]} {weight:g}" for step, weight in sorted(weights.items()))
        for mode, weights in TONAL_EMPHASIS_WEIGHTS.items()
    )


def _target_lines(report: MelodyEvalReport) -> list[str]:
    """The brief's targets and whether this run meets them (transformer only)."""
    ours = {
        c: [r for r in report.generation if r.model == "transformer" and r.key_constraint == c]
        for c in (False, True)
    }

    def span(rows: list[PieceSetResult], attribute: str) -> str:
        values = [getattr(r, attribute) for r in rows]
        if not values:
            return "n/a"
        return f"mean {_pct(float(np.mean(values)))}, worst setting {_pct(min(values))}"

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    transformer, *baselines = report.nll
    beats = all(transformer.per_token < b.per_token for b in baselines)
    lines = ["## Targets", "", "| target | measured (transformer) | |", "|---|---|---|"]
    lines.append(
        f"| lower test NLL/token than both baselines | {transformer.per_token:.4f} vs "
        + ", ".join(f"{b.per_token:.4f} ({b.model})" for b in baselines)
        + f" | {met(beats)} |"
    )
    ref = report.test_reference
    for constrained, label in ((False, "off"), (True, "on")):
        rows = ours[constrained]
        spread = ""
        if constrained and report.seed_sets:
            means = _seed_set_means(report)
            spread = (
                f"; over {len({r['seed_set'] for r in report.seed_sets})} seed sets: worst "
                f"setting mean {_pct(min(means.values()))}, worst single set "
                f"{_pct(min(r['key_match'] for r in report.seed_sets))}"
            )
        lines.append(
            f"| detected key = requested ≥ 90 %, key constraint {label} | "
            f"{span(rows, 'key_match')}{spread} (music21 agrees with "
            f"{_pct(ref['key_agreement'])} of the test tunes' labels) | "
            f"{met(bool(rows) and min(r.key_match for r in rows) >= 0.9)} |"
        )
    every = ours[False] + ours[True]
    lines.append(
        f"| metrically valid bars 100 % | {span(every, 'valid_bars')} (by construction: "
        "the grammar masks every other token) | "
        f"{met(bool(every) and all(r.valid_bars == 1.0 for r in every))} |"
    )
    for constrained, label in ((False, "off"), (True, "on")):
        rows = ours[constrained]
        lines.append(
            f"| last note on the tonic ≥ 80 %, key constraint {label} | "
            f"{span(rows, 'tonic_ending')} (test tunes: {_pct(ref['tonic_ending'])} at their "
            f"end, {_pct(ref['tonic_at_cut'])} at bar {report.n_bars}) | "
            f"{met(bool(rows) and min(r.tonic_ending for r in rows) >= 0.8)} |"
        )
    return [*lines, ""]


def _shown_path(path: object) -> str:
    """A path as the report shows it: relative to the repository when inside it, so the
    results file reads the same on every machine."""
    try:
        return str(Path(str(path)).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def format_report(report: MelodyEvalReport, *, command: str) -> str:
    """The report as Markdown, starting with the command that produced it."""
    t = report.transformer
    lines = [
        "# Melody model evaluation",
        "",
        f"Command: `{command}`"
        + (" (quick mode: a subset, not the reported numbers)" if report.quick else ""),
        "",
        f"Checkpoint `{_shown_path(report.checkpoint)}`: "
        f"{t['n_parameters'] / 1e6:.2f} M parameters, "
        f"{t.get('steps')} steps, {t.get('minutes')} min of training, "
        f"{(t.get('tokens_seen') or 0) / 1e6:.1f} M training tokens seen, best valid loss "
        f"{t.get('valid_loss') or float('nan'):.4f} nats/token (all tokens).",
        "",
        *_target_lines(report),
        "## Held-out likelihood (TEST split)",
        "",
        f"{report.test_tunes} test tunes, {report.nll[0].tokens} scored tokens, "
        f"{report.nll[0].notes} notes. Every sequence starts with its 7-token control prefix "
        "(key, mode, meter, tempo, style, energy), which conditions all three models and is "
        "not scored. NLL in nats (lower is better); a note is its POS + PITCH + DUR tokens.",
        "",
        "| model | parameters | NLL/token | perplexity | NLL/note | BAR | POS | PITCH | DUR "
        "| EOS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.nll:
        kinds = " | ".join(f"{s.by_kind.get(k, float('nan')):.3f}" for k in SCORED_KINDS)
        lines.append(
            f"| {s.model} | {s.parameters / 1e6:.2f} M | {s.per_token:.4f} | "
            f"{s.perplexity:.3f} | {s.per_note:.3f} | {kinds} |"
        )
    best = min(report.nll, key=lambda s: s.per_token)
    lines += [
        "",
        f"Lowest NLL per token: **{best.model}**"
        + (
            " — the transformer beats both baselines."
            if best.model == "transformer"
            else " — the transformer does NOT beat every baseline."
        ),
        "",
        f"N-gram: interpolated modified Kneser-Ney over token ids; parameters = stored n-gram "
        f"counts. Chosen on VALID: order {report.ngram_choice['order']}, "
        f"{'all legal transpositions of every train tune' if report.ngram_choice['augmented'] else 'train tunes as they are'} "  # noqa: E501
        f"({report.ngram_choice['train_tokens']} training tokens).",
        "",
        "| order | transposed train set | VALID NLL/token |",
        "|---:|---|---:|",
        *[
            f"| {c['order']} | {'yes' if c['augmented'] else 'no'} | {c['valid_nll']:.4f} |"
            for c in report.ngram_candidates
        ],
        "",
    ]
    lstm = report.lstm
    config = lstm.get("config", {})
    lines += [
        f"LSTM (folk-rnn kind: embedding → {config.get('n_layers')} × {config.get('hidden_size')}"
        f" LSTM → softmax, dropout {config.get('dropout')}): trained on the same train "
        f"sequences with the same random transposition per draw and the same windows, "
        f"{_lstm_budget_text(lstm)} on this 2-core CPU, best VALID checkpoint at "
        f"step {lstm.get('steps')} ({lstm.get('minutes')} min, {lstm.get('epochs')} epochs, "
        f"valid {lstm.get('valid_loss', float('nan')):.4f} nats/token incl. prefix, "
        f"{lstm.get('tokens_seen', 0) / 1e6:.1f} M training tokens seen, "
        f"{lstm.get('tokens_seen', 0) / max(60 * (lstm.get('minutes') or 0), 1e-9):.0f} "
        f"tokens/s; `{_shown_path(lstm.get('path'))}`).",
        "",
        *_training_balance_lines(report),
        "## Generated pieces",
        "",
        f"{report.pieces_per_setting} pieces per setting, {report.n_bars} bars each, sampled "
        f"with temperature {SAMPLING.temperature:g}, top-p {SAMPLING.top_p:g}, pitch range "
        f"{DEFAULT_PITCH_RANGE[0]}..{DEFAULT_PITCH_RANGE[1]} (MIDI), through the batched "
        "`DecodeEngine` (transformer) or a lockstep sampler (baselines) under the same "
        "grammar. *key constraint on* is what the melody service asks for: scale tones only "
        "(minor: also the raised 6th and 7th), a tonic cadence in the last bar (`end_on_tonic`) "
        f"and a logit bonus of {SERVED_TONAL_EMPHASIS:g} nats times a share per scale step "
        f"for notes on the beats (`tonal_emphasis`; {_emphasis_text()}); *off*: the "
        "grammar's metre and range only. *key*: music21 `analyze('key')` equals the "
        "requested key (target ≥ 90 %); "
        "*bars*: bars whose notes and rests fill the meter exactly (target 100 %); "
        "*complete*: pieces with all bars valid and exactly the requested number; *tonic*: "
        "last note on the tonic (target ≥ 80 %); KL(test ‖ generated) in nats of the "
        "pitch-class-relative-to-tonic (12 bins) and melodic-interval (25 bins, ±12 "
        "semitones) histograms, against the test tunes of the setting's mode and style "
        f"(table below), {KL_SMOOTHING} pseudo-count per bin.",
        "",
        "| setting | model | key constraint | key | bars | complete | tonic | KL pitch class "
        "| KL interval | notes/bar | failed | most detected keys |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.generation:
        keys = ", ".join(f"{k} {n}" for k, n in r.detected_keys.items())
        lines.append(
            f"| {r.setting} | {r.model} | {'on' if r.key_constraint else 'off'} | "
            f"{_pct(r.key_match)} | {_pct(r.valid_bars)} | {_pct(r.complete)} | "
            f"{_pct(r.tonic_ending)} | {r.kl_pitch_class:.4f} | {r.kl_interval:.4f} | "
            f"{r.notes_per_bar:.2f} | {r.failed} | {keys} |"
        )
    lines += [
        "",
        "Means over the settings:",
        "",
        "| model | key constraint | key | bars | tonic | KL pitch class | KL interval |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, bool], list[PieceSetResult]] = {}
    for r in report.generation:
        groups.setdefault((r.model, r.key_constraint), []).append(r)
    for (model, constrained), rows in groups.items():
        lines.append(
            f"| {model} | {'on' if constrained else 'off'} | "
            f"{_pct(float(np.mean([r.key_match for r in rows])))} | "
            f"{_pct(float(np.mean([r.valid_bars for r in rows])))} | "
            f"{_pct(float(np.mean([r.tonic_ending for r in rows])))} | "
            f"{np.mean([r.kl_pitch_class for r in rows]):.4f} | "
            f"{np.mean([r.kl_interval for r in rows]):.4f} |"
        )
    lines += _seed_set_lines(report)
    ref = report.test_reference
    settings = "; ".join(
        f"{s['name']} at {s['tempo_bpm']:g} bpm, energy {s['energy']}" for s in report.settings
    )
    lines += [
        "",
        f"Settings: {settings}.",
        "",
        "Reference on real tunes (TEST split, "
        f"{ref['tunes']} tunes: {', '.join(f'{n} {m}' for m, n in ref['tunes_by_mode'].items())}"
        f"): music21's key agrees with the corpus label for {_pct(ref['key_agreement'])}; "
        f"{_pct(ref['tonic_ending'])} end on the tonic.",
        "",
        "KL references per setting (test tunes of the setting's mode and style, or of its "
        f"mode alone below {MIN_REFERENCE_TUNES} tunes) and the KL(test ‖ valid) of the same "
        "selection, the floor two samples of one distribution reach:",
        "",
        "| setting | reference | test tunes | valid tunes | floor KL pitch class "
        "| floor KL interval |",
        "|---|---|---:|---:|---:|---:|",
        *[
            f"| {name} | {v['matched']} | {v['tunes']} | {v['valid_tunes']} | "
            f"{v['floor_pitch_class']:.4f} | {v['floor_interval']:.4f} |"
            for name, v in ref["settings"].items()
        ],
        "",
        f"Of the {ref['longer_tunes']} test tunes longer than {report.n_bars} bars, "
        f"{_pct(ref['tonic_at_cut'])} have the tonic as the last note of bar {report.n_bars}: "
        "the tonic rate of a real tune cut where the generated pieces are cut. The decoder "
        f"ends every piece after exactly {report.n_bars} bars and the model is not told the "
        "length, so it cannot plan the cadence there.",
        "",
        "Metric validity is guaranteed by the decoder's grammar (every bar is closed by "
        "construction), so *bars* at 100 % shows that the masking works, not that the model "
        "learned metre. What the model learned shows in the probability it gives to tokens "
        "the grammar forbids, measured on its unconstrained pieces (the sum over a piece is "
        "about the expected number of grammar breaks had it been sampled without the mask):",
        "",
        "| forbidden tokens | mean per generated token | sum per piece |",
        "|---|---:|---:|",
        *[
            f"| {FORBIDDEN_LABELS.get(name, name)} | {v['per_token']:.2e} | {v['per_piece']:.3f} |"
            for name, v in report.forbidden_mass.items()
        ],
        "",
        "## Time",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {stage} | {seconds:.1f} |" for stage, seconds in report.timings_s.items()],
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "DEFAULT_LSTM_PATH",
    "DEFAULT_SETTINGS",
    "EvalSetting",
    "MelodyEvalReport",
    "NLLSummary",
    "PieceSetResult",
    "format_report",
    "run_melody_eval",
]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m cantus.eval.melody``: the same run as ``cantus eval melody``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="melody checkpoint")
    parser.add_argument("--pieces", type=int, default=100, help="pieces per setting")
    parser.add_argument(
        "--lstm-minutes",
        type=float,
        default=DEFAULT_LSTM_MINUTES,
        help="wall-clock cap on training a missing LSTM baseline",
    )
    parser.add_argument(
        "--lstm-token-share",
        type=float,
        default=DEFAULT_LSTM_TOKEN_SHARE,
        help="train a missing LSTM on this many times the transformer's training tokens",
    )
    parser.add_argument("--lstm-path", type=Path, default=DEFAULT_LSTM_PATH)
    parser.add_argument(
        "--extra-seed-sets",
        type=int,
        default=0,
        help="sample the key-constrained transformer pieces again with this many other seeds",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json-out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--samples-out", type=Path, default=None, help="write the pieces here")
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        from cantus.settings import load_settings

        args.checkpoint = load_settings().melody_checkpoint
    torch.set_num_threads(2)
    command = " ".join(["python -m cantus.eval.melody", *(sys.argv[1:] if argv is None else argv)])
    report = run_melody_eval(
        args.checkpoint,
        pieces_per_setting=args.pieces,
        lstm_minutes=args.lstm_minutes,
        lstm_token_share=args.lstm_token_share,
        out=args.out,
        json_out=args.json_out,
        samples_out=args.samples_out,
        quick=args.quick,
        command=command,
        lstm_path=args.lstm_path,
        extra_seed_sets=args.extra_seed_sets,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_report(report, command=command))


if __name__ == "__main__":
    main()
