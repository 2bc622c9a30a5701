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

This module runs the evaluation and holds its command line; the parts live beside it:
``melody_likelihood`` (NLL bookkeeping), ``melody_sampling`` (settings and samplers),
``melody_scoring`` (piece statistics) and ``melody_report`` (the report and its Markdown).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cantus.eval.melody_likelihood import NLLSummary, summarize_nll, transformer_token_nlls
from cantus.eval.melody_report import MelodyEvalReport, _pct, format_report
from cantus.eval.melody_sampling import (
    DEFAULT_SETTINGS,
    EvalSetting,
    LSTMStepper,
    NGramStepper,
    sample_transformer,
    sample_with_stepper,
    served_guidance,
)
from cantus.eval.melody_scoring import (
    PieceSetResult,
    Reference,
    build_reference,
    detect_key,
    forbidden_mass,
    kl_divergence,
    score_pieces,
)
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
from cantus.melody.corpus import CorpusSplit, Tune, load_or_build_corpus
from cantus.melody.model import MelodyLM
from cantus.melody.tokenizer import PREFIX_LENGTH, MelodyTokenizer
from cantus.melody.training import (
    CORPUS_CACHE_DIR,
    TokenTransposer,
    encode_tunes,
    relabel_heard_keys,
)
from cantus.music.notes import Melody

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
QUICK_TEST_TUNES = 60
QUICK_PIECES = 10
QUICK_LSTM_MINUTES = 1.0


# ============================================================================ the run


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


def _sample_seed_set(
    model: MelodyLM,
    tokenizer: MelodyTokenizer,
    settings: Sequence[EvalSetting],
    pieces_per_setting: int,
    seed_set: int,
    key_constraint: bool,
    n_bars: int,
    max_batch: int,
) -> dict[str, list[list[int] | None]]:
    """The transformer's pieces of one seed set, sampled in one batched run, by setting name
    (each piece's tokens, or None where the engine failed)."""
    jobs = _setting_jobs(settings, pieces_per_setting, seed_set)
    tokens = sample_transformer(
        model,
        tokenizer,
        [(setting.controls, seed, key_constraint) for setting, seed in jobs],
        n_bars=n_bars,
        max_batch=max_batch,
        # with the key constraint on, the service's key controls: guidance too
        guidance=served_guidance(tokenizer) if key_constraint else 1.0,
    )
    return {
        setting.name: [t for (st, _), t in zip(jobs, tokens, strict=True) if st is setting]
        for setting in settings
    }


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
    if metadata.get("key_labels") == "heard":
        # every model is trained and scored on the labels the checkpoint was trained on
        train, valid, test = (
            relabel_heard_keys(list(part), CORPUS_CACHE_DIR)[0] for part in split.splits().values()
        )
        split = CorpusSplit(train, valid, test, manifest=split.manifest)
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
    jobs = _setting_jobs(settings, pieces_per_setting, seed)  # also the baselines' jobs
    sampled: dict[tuple[str, bool], list[list[int] | None]] = {}
    for constrained in (False, True):
        pieces_by_setting = _sample_seed_set(
            model, tokenizer, settings, pieces_per_setting, seed, constrained, n_bars, max_batch
        )
        for setting in settings:
            sampled[(setting.name, constrained)] = pieces_by_setting[setting.name]
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
    seed_sets: list[dict[str, Any]] = [  # MelodyEvalReport.seed_sets: JSON rows
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
        pieces_by_setting = _sample_seed_set(
            model, tokenizer, settings, pieces_per_setting, seed_set, True, n_bars, max_batch
        )
        for setting in settings:
            pieces = pieces_by_setting[setting.name]
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
        guidance=served_guidance(tokenizer),
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
            groups: list[tuple[str, bool, Sequence[list[int] | None]]] = [
                ("transformer", c, transformer[(setting.name, c)]) for c in (False, True)
            ]
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
