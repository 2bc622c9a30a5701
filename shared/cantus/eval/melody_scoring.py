"""Piece statistics for ``cantus eval melody``: music21's key of a melody, metrically valid
bars, pitch-class and interval histograms and their KL divergence from real tunes
(``Reference``), one setting's pieces scored as a ``PieceSetResult``, and the probability mass
the transformer puts on tokens the grammar forbids."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cantus.eval.melody_sampling import EvalSetting
from cantus.melody.controls import Controls
from cantus.melody.corpus import Tune
from cantus.melody.decoding import MelodyGrammar
from cantus.melody.model import MelodyLM
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import GRID_TICKS, PITCH_RANGE, PREFIX_LENGTH, MelodyTokenizer
from cantus.music.key_analysis import heard_key
from cantus.music.notes import Melody, Meter, MusicError
from cantus.music.styles import Style

INTERVAL_LIMIT = 12
"""Melodic intervals are histogrammed in -12..+12 semitones; larger leaps go to the ends."""
KL_SMOOTHING = 0.5
"""Pseudo-count added to every histogram bin before a KL divergence (no infinite values)."""


detect_key = heard_key
"""music21's key of a melody (``cantus.music.key_analysis.heard_key``): the key agreement of
``cantus eval`` and the key label the melody model trains on are one definition."""


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
            sampling=SamplingParams(pitch_range=PITCH_RANGE),
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
