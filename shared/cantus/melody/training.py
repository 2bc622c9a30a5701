"""Training the melody model on the corpus, on CPU, within a wall-clock budget.

Each tune becomes one token sequence (controls prefix, bars, ``EOS``): key, meter, tempo
and style from the tune, energy from its note-density tertile on the train split. Train
sequences are transposed at random every time they are drawn (-5..+6 semitones, done on the
tokens: PITCH ids shift, the KEY token rotates); sequences longer than the model's context
are cut into a window that starts at a bar (with the controls prefix kept in front). Batches
group sequences of similar length so little compute goes to padding. AdamW, linear warmup,
then a cosine decay over the budget; the checkpoint with the best validation loss is kept.

The budget is a number of minutes or of steps. The shipped checkpoint was trained for 40
minutes; the schedule and validation points then follow the clock, so a rerun gives a model
of the same recipe and about the same quality, not the same bytes (a 3,400-step run: best
valid loss 0.7283 against the shipped 0.7298, A minor key agreement 91 % against 94 % over
400 pieces). A step budget makes a run reproducible: schedule and validation follow the step
count, so the same command on the same machine writes the same weights.

Minor tunes are drawn ``minor_draws`` times per epoch (each time with its own transposition):
they are a minority of the corpus, and with one draw each the model learned the MODE control
too weakly to keep a requested minor key (a third of unconstrained A minor pieces read as A
minor; a one-kv-head model played A major as often as A minor).

Key labels (``key_labels``): ``"heard"`` (the default since the form issue, #14) trains on
the key music21's analysis hears in each tune (``cantus.music.key_analysis``), ``"score"``
on the key the source file writes. The written key disagreed with the heard one for 22 % of
test tunes, and the model learned that blur: with no decoding-time pitch bonus only 55-72 %
of its pieces were heard in the asked key. ``control_dropout``: the share of draws whose KEY
and MODE tokens are replaced by ``NOKEY NOMODE``, so that one model also knows melodies
without a given key, which classifier-free guidance contrasts with the keyed ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cantus.melody.checkpoint import load_melody_checkpoint, save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import (
    FIM_MIDDLE,
    FIM_SUFFIX,
    NO_KEY,
    NO_MODE,
    PITCH_RANGE,
    PREFIX_LENGTH,
    MelodyTokenizer,
    snap_to_grid,
)
from cantus.music.notes import Mode, MusicError
from cantus.music.styles import TEMPO_RANGE_BPM, Style

__all__ = ["load_melody_checkpoint", "train_melody", "train_melody_command"]

CORPUS_CACHE_DIR = Path(__file__).resolve().parents[3] / ".cantus" / "corpus"
"""Where ``load_or_build_corpus`` keeps the built corpus (``/work/main/.cantus/corpus``)."""
TRANSPOSITIONS = range(-5, 7)
"""Semitone shifts of the train-time augmentation."""
MINOR_DRAWS = 2
"""How many times each minor train tune is drawn per epoch (major tunes: once): with heard
key labels 1,865 of 8,467 train tunes are minor, so two draws make 36 % of the draws minor."""
SHIPPED_MINUTES = 40.0
"""Wall-clock budget the shipped checkpoint was trained with (3,409 steps on the 2 cores)."""
MODE_POSITION = 2
"""Index of the MODE token in an encoded tune (BOS KEY MODE ...)."""
KEY_LABELS = ("heard", "score")
CONTROL_DROPOUT = 0.1
"""Share of draws trained without their key and mode (``NOKEY NOMODE``)."""
FIM_RATE = 0.25
"""Share of draws written fill-in-the-middle (``fim_order``) instead of left to right. Code
LMs trained on half FIM lose nothing left to right (Bavarian et al. 2022); a quarter keeps
most of this small model's steps on the order it composes in."""
FIM_MAX_GAP_BARS = 8
"""Longest gap of a FIM draw: an edit regenerates a phrase or two."""
FIM_MAX_SUFFIX_BARS = 4
"""Most bars after the gap a FIM draw keeps (infilling reads a couple of bars after it)."""


def relabel_heard_keys(tunes: Sequence[Any], cache_dir: Path | None) -> tuple[list[Any], int]:
    """The tunes with each melody's key replaced by the key music21 hears in it, and how
    many labels changed (tunes the analysis cannot read keep their key)."""
    from cantus.music.key_analysis import heard_keys

    heard = heard_keys(tunes, cache_dir)
    relabelled, changed = [], 0
    for tune in tunes:
        key = heard.get(tune.tune_id, tune.melody.key)
        if key != tune.melody.key:
            changed += 1
            tune = dataclasses.replace(tune, melody=dataclasses.replace(tune.melody, key=key))
        relabelled.append(tune)
    return relabelled, changed


def drop_key(tokens: list[int], no_key_id: int, no_mode_id: int) -> list[int]:
    """The sequence with its KEY and MODE tokens replaced by ``NOKEY NOMODE``."""
    return [tokens[0], no_key_id, no_mode_id, *tokens[MODE_POSITION + 1 :]]


@dataclass(frozen=True)
class EncodedTune:
    """One tune as token ids, with the id's pitch span (for legal transpositions)."""

    tune_id: str
    tokens: list[int]
    lowest_pitch: int
    highest_pitch: int


def fim_order(
    tokens: list[int],
    bar_id: int,
    eos_id: int,
    suffix_id: int,
    middle_id: int,
    rng: random.Random,
) -> list[int] | None:
    """A tune (controls, bars, ``EOS``) rewritten fill-in-the-middle, suffix first:
    controls, ``FIM_SUF``, 1..``FIM_MAX_SUFFIX_BARS`` bars after a random gap of
    1..``FIM_MAX_GAP_BARS`` bars (the rest dropped), ``FIM_MID``, the bars before the gap,
    the gap's bars, ``EOS``. None when the tune has fewer than two bars or does not end in
    ``EOS`` (a window cut from a long tune).

    Suffix first (Bavarian et al.'s SPM) because the gap then continues the bars before it
    directly, as in every left-to-right draw; prefix first (PSM) put the bars after the gap
    between them, and the model trained so lost its place at the gap's left edge (62 % of
    joins smooth against 92 % left to right, ``docs/results/infill.md``)."""
    if not tokens or tokens[-1] != eos_id:
        return None
    starts = [i for i in range(PREFIX_LENGTH, len(tokens)) if tokens[i] == bar_id]
    if len(starts) < 2:
        return None
    bounds = [*starts, len(tokens) - 1]  # bar b spans bounds[b]:bounds[b + 1]
    n_bars = len(starts)
    gap_bars = rng.randint(1, min(FIM_MAX_GAP_BARS, n_bars - 1))
    first = rng.randint(0, n_bars - gap_bars - 1)  # at least one bar after the gap
    after = first + gap_bars
    suffix_bars = rng.randint(1, min(FIM_MAX_SUFFIX_BARS, n_bars - after))
    return [
        *tokens[:PREFIX_LENGTH],
        suffix_id,
        *tokens[bounds[after] : bounds[after + suffix_bars]],
        middle_id,
        *tokens[PREFIX_LENGTH : bounds[after]],
        eos_id,
    ]


def legal_transpositions(tune: EncodedTune) -> list[int]:
    """Shifts of ``TRANSPOSITIONS`` (semitones) that keep the tune inside ``PITCH_RANGE``."""
    return [
        s
        for s in TRANSPOSITIONS
        if PITCH_RANGE[0] <= tune.lowest_pitch + s and tune.highest_pitch + s <= PITCH_RANGE[1]
    ] or [0]


def tune_controls(tune: Any, thresholds: EnergyThresholds) -> Controls:
    """The controls a corpus ``Tune`` was written with (tempo clamped to the request range)."""
    melody = tune.melody
    low, high = TEMPO_RANGE_BPM
    return Controls(
        key=melody.key,
        meter=melody.meter,
        tempo_bpm=min(max(float(melody.tempo_bpm), low), high),
        style=Style(tune.style),
        energy=thresholds.energy(melody),
    )


def encode_tunes(
    tunes: Sequence[Any], tokenizer: MelodyTokenizer, thresholds: EnergyThresholds
) -> list[EncodedTune]:
    """Token sequences of the tunes; tunes the tokenizer cannot write are skipped."""
    encoded = []
    for tune in tunes:
        try:
            melody = snap_to_grid(tune.melody)
            tokens = tokenizer.encode(melody, tune_controls(tune, thresholds))
        except MusicError:
            continue
        pitches = [n.pitch for bar in melody.bars for n in bar.notes] or [60]
        encoded.append(EncodedTune(tune.tune_id, tokens, min(pitches), max(pitches)))
    return encoded


class TokenTransposer:
    """Transposes token sequences: PITCH ids shift by the interval, KEY ids rotate."""

    def __init__(self, tokenizer: MelodyTokenizer) -> None:
        vocab = tokenizer.vocab
        self.key0 = vocab.id("KEY_0")
        self.pitch_low = vocab.pitch(PITCH_RANGE[0])
        self.pitch_high = vocab.pitch(PITCH_RANGE[1])

    def __call__(self, tokens: Sequence[int], semitones: int) -> list[int]:
        out = list(tokens)
        out[1] = self.key0 + (out[1] - self.key0 + semitones) % 12
        if semitones:
            for i in range(PREFIX_LENGTH, len(out)):
                if self.pitch_low <= out[i] <= self.pitch_high:
                    out[i] += semitones
        return out


def epoch_draws(
    tunes: Sequence[EncodedTune], minor_draws: int, minor_mode_id: int
) -> list[EncodedTune]:
    """The tunes one epoch draws: each minor tune (MODE token ``minor_mode_id``)
    ``minor_draws`` times, each major tune once, in corpus order."""
    if minor_draws < 1:
        raise ValueError(f"minor_draws must be at least 1, got {minor_draws}")
    return [
        tune
        for tune in tunes
        for _ in range(minor_draws if tune.tokens[MODE_POSITION] == minor_mode_id else 1)
    ]


def window(tokens: list[int], max_len: int, bar_id: int, rng: random.Random) -> list[int]:
    """The whole sequence if it fits, else the controls prefix plus ``max_len - 7`` tokens
    starting at a random ``BAR``."""
    if len(tokens) <= max_len:
        return tokens
    body_len = max_len - PREFIX_LENGTH
    starts = [i for i in range(PREFIX_LENGTH, len(tokens) - body_len + 1) if tokens[i] == bar_id]
    start = rng.choice(starts) if starts else PREFIX_LENGTH
    return tokens[:PREFIX_LENGTH] + tokens[start : start + body_len]


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Indices grouped into batches of similar length, batches in random order. Sorting
    within shuffled pools of 50 batches keeps some randomness in which tunes meet."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    longest = max(len(s) for s in sequences)
    batch = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return batch


def sequence_loss(model: MelodyLM, batch: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy (nats) over non-padding targets, and their count."""
    return next_token_loss(model(batch[:, :-1]), batch[:, 1:], pad_id)


def next_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy (nats) of ``logits`` [B, T, V] against ``targets`` [B, T], padding
    ignored, and the number of targets counted (shared by every model trained here)."""
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=pad_id,
        reduction="sum",
    )
    n_targets = int((targets != pad_id).sum())
    return loss / max(n_targets, 1), n_targets


@torch.no_grad()
def evaluate(
    model: MelodyLM, sequences: Sequence[list[int]], pad_id: int, batch_size: int = 16
) -> float:
    """Mean per-token loss (nats) over the sequences (cut to the model's context)."""
    model.eval()
    max_len = model.config.max_len
    ordered = sorted((s[:max_len] for s in sequences), key=len)
    total, count = 0.0, 0
    for start in range(0, len(ordered), batch_size):
        loss, n = sequence_loss(
            model, pad_batch(ordered[start : start + batch_size], pad_id), pad_id
        )
        total += float(loss) * n
        count += n
    model.train()
    return total / max(count, 1)


def learning_rate(step: int, progress: float, peak: float, warmup_steps: int) -> float:
    """Linear warmup over ``warmup_steps``, then cosine from ``peak`` to 10 % of it as
    ``progress`` (0..1) through the step or time budget runs out."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def continue_from(model: MelodyLM, checkpoint: Path, tokenizer: MelodyTokenizer) -> dict[str, Any]:
    """Load ``checkpoint``'s weights into ``model`` (``tokenizer``'s vocabulary may extend the
    checkpoint's: new tokens appended at the end get the mean of the old embedding rows; a
    model with a contour or a scale-degree embedding may continue a checkpoint without one:
    the embedding starts at zero) and return the checkpoint's training metadata.
    ``ValueError`` if the sizes or the shared tokens differ."""
    old_model, old_tokenizer, metadata = load_melody_checkpoint(checkpoint)
    old_tokens = old_tokenizer.vocab.tokens
    if tokenizer.vocab.tokens[: len(old_tokens)] != old_tokens:
        raise ValueError(f"{checkpoint}'s vocabulary is not a prefix of the current one")
    old_config = dataclasses.replace(old_model.config, vocab_size=model.config.vocab_size)
    if old_config.contour is None:
        old_config = dataclasses.replace(old_config, contour=model.config.contour)
    if old_config.tonality is None:
        old_config = dataclasses.replace(old_config, tonality=model.config.tonality)
    if old_config != model.config:
        raise ValueError(f"{checkpoint} is a {old_model.config}, not a {model.config}")
    state = old_model.state_dict()
    old_rows = state["token_embedding.weight"]
    new_rows = old_rows.mean(dim=0, keepdim=True).expand(len(tokenizer.vocab) - len(old_rows), -1)
    state["token_embedding.weight"] = torch.cat([old_rows, new_rows])
    if model.contour_embedding is not None and old_model.contour_embedding is None:
        state["contour_embedding.weight"] = model.contour_embedding.weight.detach().clone()
    if model.degree_embedding is not None and old_model.degree_embedding is None:
        state["degree_embedding.weight"] = model.degree_embedding.weight.detach().clone()
    model.load_state_dict(state)
    return metadata


def manifest_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()


def train_melody(
    split: Any,
    config: MelodyLMConfig,
    *,
    max_minutes: float | None = None,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    out_path: Path,
    log: Callable[[str], None] = print,
    max_steps: int | None = None,
    warmup_steps: int = 200,
    log_every: int = 50,
    eval_every_minutes: float = 4.0,
    eval_every_steps: int = 400,
    weight_decay: float = 0.1,
    minor_draws: int = MINOR_DRAWS,
    key_labels: str = "heard",
    control_dropout: float = CONTROL_DROPOUT,
    labels_cache_dir: Path | None = None,
    fim_rate: float = FIM_RATE,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Train on ``split`` (a ``CorpusSplit``: ``train``/``valid`` lists of tunes and a
    ``manifest``) for ``max_steps`` steps (reproducible: schedule and validation every
    ``eval_every_steps`` follow the step count) or else ``max_minutes`` of wall time
    (validation every ``eval_every_minutes``); save the best-valid checkpoint to
    ``out_path``. Returns the training metadata saved with it."""
    if max_steps is None and max_minutes is None:
        raise ValueError("give a budget: max_steps or max_minutes")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if key_labels not in KEY_LABELS:
        raise ValueError(f"key_labels must be one of {KEY_LABELS}, got {key_labels!r}")
    if not 0.0 <= control_dropout < 1.0:
        raise ValueError(f"control_dropout must be in [0, 1), got {control_dropout}")
    if not 0.0 <= fim_rate < 1.0:
        raise ValueError(f"fim_rate must be in [0, 1), got {fim_rate}")
    train_tunes, valid_tunes = list(split.train), list(split.valid)
    if key_labels == "heard":
        train_tunes, changed = relabel_heard_keys(train_tunes, labels_cache_dir)
        valid_tunes, changed_valid = relabel_heard_keys(valid_tunes, labels_cache_dir)
        log(
            f"key labels: heard (music21), {changed} of {len(train_tunes)} train and "
            f"{changed_valid} of {len(valid_tunes)} valid labels changed"
        )
    started = time.monotonic()
    budget_s = math.inf if max_minutes is None else max_minutes * 60.0

    def progress(step: int, elapsed: float) -> float:
        return step / max_steps if max_steps is not None else elapsed / budget_s

    def validation_due(step: int) -> bool:
        if max_steps is not None:
            return step % eval_every_steps == 0
        return time.monotonic() - last_eval >= eval_every_minutes * 60

    rng = random.Random(seed)
    torch.manual_seed(seed)
    tokenizer = MelodyTokenizer()
    vocab = tokenizer.vocab
    if config.vocab_size != len(vocab):
        raise ValueError(f"config vocab_size {config.vocab_size} != vocabulary {len(vocab)}")
    thresholds = EnergyThresholds.from_melodies([t.melody for t in train_tunes])
    train = encode_tunes(train_tunes, tokenizer, thresholds)
    valid = [t.tokens for t in encode_tunes(valid_tunes, tokenizer, thresholds)]
    if not train or not valid:
        raise ValueError("training needs at least one encodable train and valid tune")
    transpose = TokenTransposer(tokenizer)
    no_key_id, no_mode_id = vocab.id(NO_KEY), vocab.id(NO_MODE)
    suffix_id, middle_id = vocab.id(FIM_SUFFIX), vocab.id(FIM_MIDDLE)
    # FIM draws are scored apart: their loss is not comparable with the left-to-right one
    valid_rng = random.Random(seed + 1)
    valid_fim = [
        fim
        for tokens in valid
        if (fim := fim_order(tokens, vocab.bar, vocab.eos, suffix_id, middle_id, valid_rng))
    ]
    draws = epoch_draws(train, minor_draws, vocab.id(f"MODE_{Mode.MINOR.value}"))
    log(
        f"mode balance: {len(draws) - len(train)} extra draws of minor tunes per epoch "
        f"({minor_draws}x each; {len(draws)} draws of {len(train)} tunes)"
    )
    log(
        f"train {len(train)} tunes ({sum(len(t.tokens) for t in train)} tokens), valid "
        f"{len(valid)} tunes ({sum(len(t) for t in valid)} tokens); energy thresholds "
        f"{thresholds.low_below:.3f} / {thresholds.high_from:.3f} notes per quarter"
    )

    model = MelodyLM(config)
    if init_from is not None:
        inherited = continue_from(model, Path(init_from), tokenizer)
        log(f"weights from {init_from} ({inherited['steps']} steps before)")
    model.train()
    log(f"model: {model.n_parameters() / 1e6:.2f}M parameters {config}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
        betas=(0.9, 0.98),
    )

    history: dict[str, list[Any]] = {"train": [], "valid": [], "valid_fim": []}
    metadata: dict[str, Any] = {}
    best_valid = math.inf
    step, tokens_seen, epoch = 0, 0, 0
    running, running_n = 0.0, 0
    last_eval = time.monotonic()

    def checkpoint_if_best(train_loss: float) -> None:
        nonlocal best_valid, last_eval
        valid_loss = evaluate(model, valid, vocab.pad)
        valid_fim_loss = evaluate(model, valid_fim, vocab.pad) if fim_rate else math.nan
        last_eval = time.monotonic()
        elapsed = last_eval - started
        history["valid"].append([step, round(elapsed, 1), valid_loss])
        history["valid_fim"].append([step, round(elapsed, 1), valid_fim_loss])
        # the left-to-right loss picks the checkpoint: composing is what it mostly does
        improved = valid_loss < best_valid
        log(
            f"step {step} valid loss {valid_loss:.4f}{' (best)' if improved else ''} "
            f"fim {valid_fim_loss:.4f} [{elapsed / 60:.1f} min]"
        )
        if improved:
            best_valid = valid_loss
            metadata.update(
                {
                    "steps": step,
                    "epochs": epoch,
                    "tokens_seen": tokens_seen,
                    "train_loss": train_loss,
                    "valid_loss": valid_loss,
                    "valid_fim_loss": valid_fim_loss,
                    "best_valid_loss": valid_loss,
                    "minutes": round(elapsed / 60, 2),
                    "seed": seed,
                    "minor_draws": minor_draws,
                    "key_labels": key_labels,
                    "control_dropout": control_dropout,
                    "fim_rate": fim_rate,
                    "init_from": None if init_from is None else str(init_from),
                    "max_steps": max_steps,
                    "batch_size": batch_size,
                    "lr": lr,
                    "n_parameters": model.n_parameters(),
                    "corpus_manifest_sha256": manifest_hash(getattr(split, "manifest", {})),
                    "train_tunes": len(train),
                    "valid_tunes": len(valid),
                    "history": {k: list(v) for k, v in history.items()},
                }
            )
            save_melody_checkpoint(out_path, model, tokenizer, thresholds, metadata)

    last_train_loss = math.nan
    done = False
    while not done:
        epoch += 1
        drawn = []
        for tune in draws:
            tokens = transpose(tune.tokens, rng.choice(legal_transpositions(tune)))
            if control_dropout and rng.random() < control_dropout:
                tokens = drop_key(tokens, no_key_id, no_mode_id)
            tokens = window(tokens, config.max_len + 1, vocab.bar, rng)
            if fim_rate and rng.random() < fim_rate:
                # two markers longer, less the bars after the kept suffix: may not fit
                fim = fim_order(tokens, vocab.bar, vocab.eos, suffix_id, middle_id, rng)
                if fim is not None and len(fim) <= config.max_len + 1:
                    tokens = fim
            drawn.append(tokens)
        for batch_indices in length_bucketed_batches([len(s) for s in drawn], batch_size, rng):
            elapsed = time.monotonic() - started
            if elapsed >= budget_s or (max_steps is not None and step >= max_steps):
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, progress(step, elapsed), lr, warmup_steps)
            batch = pad_batch([drawn[i] for i in batch_indices], vocab.pad)
            loss, n_targets = sequence_loss(model, batch, vocab.pad)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            tokens_seen += n_targets
            running += float(loss.detach()) * n_targets
            running_n += n_targets
            if step % log_every == 0:
                last_train_loss = running / running_n
                history["train"].append([step, round(elapsed, 1), last_train_loss])
                log(
                    f"step {step} epoch {epoch} train loss {last_train_loss:.4f} "
                    f"lr {optimizer.param_groups[0]['lr']:.2e} "
                    f"{tokens_seen / max(elapsed, 1e-9):.0f} tok/s [{elapsed / 60:.1f} min]"
                )
                running, running_n = 0.0, 0
            if validation_due(step):
                checkpoint_if_best(last_train_loss)
    if running_n:
        last_train_loss = running / running_n
    if not history["valid"] or history["valid"][-1][0] != step:
        checkpoint_if_best(last_train_loss)
    metadata["final"] = {
        "steps": step,
        "train_loss": last_train_loss,
        "valid_loss": history["valid"][-1][2],
        "minutes": round((time.monotonic() - started) / 60, 2),
    }
    log(f"done: {step} steps, best valid loss {best_valid:.4f}, checkpoint {out_path}")
    return metadata


def train_melody_command(
    out: Path,
    *,
    steps: int | None = None,
    minutes: float | None = SHIPPED_MINUTES,
    config_name: str = "default",
    seed: int = 0,
    kv_heads: int | None = None,
    minor_draws: int = MINOR_DRAWS,
    key_labels: str = "heard",
    control_dropout: float = CONTROL_DROPOUT,
    threads: int = 2,
    fim_rate: float = FIM_RATE,
    init_from: Path | None = None,
    lr: float = 1e-3,
    contour: bool = True,
    tonality: bool = False,
) -> None:
    """``cantus train melody``: load the cached corpus (building it if needed), train on
    ``threads`` threads (2) for ``minutes`` of wall time (the default: as the shipped
    checkpoint was trained) or, reproducibly, for ``steps`` steps, and write the checkpoint
    to ``out``.
    ``kv_heads``: key/value heads of the attention (None: the named config's).
    ``init_from``: continue from a checkpoint (``train_melody``), at peak rate ``lr``.
    ``contour``: give the model the contour embedding (``MelodyLMConfig.contour``);
    ``tonality``: and the scale-degree embedding (``MelodyLMConfig.tonality``)."""
    from cantus.melody.corpus import load_or_build_corpus

    # 1 thread on a machine whose other core is busy: two OpenMP threads then wait for each
    # other at every barrier, and a step took twice as long as on one thread
    torch.set_num_threads(threads)
    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    vocab = MelodyTokenizer().vocab
    config = MelodyLMConfig.named(config_name, len(vocab))
    if contour:
        config = dataclasses.replace(config, contour=vocab.contour())
    if tonality:
        config = dataclasses.replace(config, tonality=vocab.tonality())
    if kv_heads is not None:
        config = dataclasses.replace(config, n_kv_heads=kv_heads)
    train_melody(
        split,
        config,
        max_steps=steps,
        max_minutes=minutes,
        seed=seed,
        minor_draws=minor_draws,
        key_labels=key_labels,
        control_dropout=control_dropout,
        labels_cache_dir=CORPUS_CACHE_DIR,
        fim_rate=fim_rate,
        init_from=init_from,
        lr=lr,
        out_path=Path(out),
        log=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":  # python -m cantus.melody.training OUT [MINUTES]
    import sys

    train_melody_command(
        Path(sys.argv[1]), minutes=float(sys.argv[2]) if len(sys.argv) > 2 else SHIPPED_MINUTES
    )
