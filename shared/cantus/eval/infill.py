"""``cantus eval infill``: filling a gap in held-out real tunes, with the right side of the
gap against left-context-only decoding (issue #18).

Each tune gives a window: ``LEFT_BARS`` bars of left context, a gap of ``gap_bars`` bars,
``RIGHT_BARS`` bars after it. Two measures:

* **NLL of the real middle** per token, nats. Left only: -log P(middle | left), what the
  left-to-right model gives. With both sides: -log P(middle | left, right), estimated from
  the same model by Bayes, P(m | l, r) = P(m | l) P(r | l, m) / P(r | l), with P(r | l)
  the mean of P(r | l, m_k) over the K middles decoded for the gap (an importance estimate
  with the decoder as the proposal; the decoder samples the model's whole distribution
  under the grammar, so it is close to the model's own).
* With a checkpoint trained to fill in the middle (the FIM markers in its vocabulary), the
  same model reads both sides directly: -log P(middle | left, ``FIM_SUF`` right ``FIM_MID``).
* **Smooth joins**: the interval from the last note before each edge to the first note
  after it, left edge (context → middle) and right edge (middle → the bars after), for the
  real middle, the middle decoded from the left only (candidate 0), and the middle chosen
  among the K candidates by the likelihood of the bars after it (``cantus.melody.infill``,
  as edits choose); with a FIM checkpoint also the middle decoded fill-in-the-middle
  (candidate 0) and the best of K such middles by the bars after it, which is what edits
  do with it. Smooth: within the corpus's distribution of intervals across bar lines
  (held-out tunes), i.e. no larger than its 90th percentile; the histograms' total
  variation distance to the corpus's is given too.

The gap's phrase is decoded without a cadence target (a real tune's phrase end is unknown
here), with the melody service's sampling settings, on one in-process engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cantus.melody.composition import PhraseRequest
from cantus.melody.controls import Controls
from cantus.melody.infill import best_of_candidates, logmeanexp, suffix_sequences
from cantus.melody.local_composition import default_sampling, engine_phrase_decoder
from cantus.melody.suffix_scoring import suffix_logprobs
from cantus.melody.tokenizer import FIM_MIDDLE, FIM_SUFFIX
from cantus.music.notes import Bar, MusicError
from cantus.music.styles import SUPPORTED_METERS, Style

LEFT_BARS = 4
RIGHT_BARS = 2
SMOOTH_PERCENTILE = 90
MAX_INTERVAL = 24
"""Histogram range of join intervals, semitones either way (larger ones are clipped)."""


@dataclass
class JoinStats:
    """Intervals (semitones, signed) at one edge for one kind of middle."""

    intervals: list[int] = field(default_factory=list)

    def smooth_rate(self, limit: int) -> float:
        return float(np.mean([abs(i) <= limit for i in self.intervals])) if self.intervals else 0.0

    def mean_abs(self) -> float:
        return float(np.mean(np.abs(self.intervals))) if self.intervals else 0.0

    def tv_distance(self, reference: np.ndarray) -> float:
        return 0.5 * float(np.abs(_histogram(self.intervals) - reference).sum())


@dataclass
class InfillResult:
    tunes: int
    gap_bars: int
    candidates: int
    middle_tokens: int
    nll_left: float
    nll_both: float
    nll_left_per_tune: list[float]
    nll_both_per_tune: list[float]
    nll_fim: float | None  # None: the checkpoint has no FIM markers
    # the same, read as the decoder reads a gap of known length (EOS, FIM markers excluded)
    nll_left_known: float
    nll_fim_known: float | None
    smooth_limit: int
    corpus_bar_line_intervals: int
    corpus_smooth_rate: float
    corpus_histogram: np.ndarray
    joins: dict[tuple[str, str], JoinStats]
    seconds: dict[str, float]


def _histogram(intervals: Sequence[int]) -> np.ndarray:
    clipped = np.clip(np.asarray(intervals, dtype=int), -MAX_INTERVAL, MAX_INTERVAL)
    counts = np.bincount(clipped + MAX_INTERVAL, minlength=2 * MAX_INTERVAL + 1).astype(float)
    return counts / max(counts.sum(), 1.0)


def join_interval(before: Sequence[Bar], after: Sequence[Bar]) -> int | None:
    """Semitones from the last note of ``before`` to the first note of ``after``."""
    last = next((bar.notes[-1] for bar in reversed(before) if bar.notes), None)
    first = next((bar.notes[0] for bar in after if bar.notes), None)
    if last is None or first is None:
        return None
    return first.pitch - last.pitch


def bar_line_intervals(bars_of_tunes: Sequence[Sequence[Bar]]) -> list[int]:
    """The interval across every bar line between two bars with notes."""
    out = []
    for bars in bars_of_tunes:
        for a, b in itertools.pairwise(bars):
            if a.notes and b.notes:
                out.append(b.notes[0].pitch - a.notes[-1].pitch)
    return out


def run_infill_eval(
    checkpoint: Path,
    *,
    tunes: int = 60,
    gap_bars: int = 4,
    candidates: int = 8,
    seed: int = 0,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> InfillResult:
    from cantus.eval.realness_run import held_out_tunes
    from cantus.melody.checkpoint import load_melody_checkpoint
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.engine import DecodeEngine
    from cantus.melody.training import CORPUS_CACHE_DIR

    seconds: dict[str, float] = {}
    clock = time.monotonic()
    cache_dir = cache_dir or CORPUS_CACHE_DIR
    split = load_or_build_corpus(cache_dir)
    held = held_out_tunes(split, cache_dir)
    model, tokenizer, metadata = load_melody_checkpoint(Path(checkpoint))
    thresholds = metadata["energy_thresholds"]
    seconds["corpus and model"] = round(time.monotonic() - clock, 1)

    window = LEFT_BARS + gap_bars + RIGHT_BARS
    usable = []
    for tune in held:
        bars = tune.melody.bars
        if len(bars) < window or tune.melody.meter not in SUPPORTED_METERS:
            continue
        if not all(b.notes for b in bars[LEFT_BARS - 1 : window]):
            continue
        try:
            for bar in bars[:window]:
                tokenizer.bar_to_tokens(bar)
        except MusicError:
            continue
        usable.append(tune)
    rng = np.random.default_rng(seed)
    chosen = [
        usable[int(i)] for i in rng.choice(len(usable), size=min(tunes, len(usable)), replace=False)
    ]
    reference = bar_line_intervals([t.melody.bars for t in held])
    limit = int(np.percentile(np.abs(reference), SMOOTH_PERCENTILE))
    log(
        f"{len(chosen)} of {len(usable)} usable held-out tunes; smooth joins: |interval| <= {limit}"
    )

    jobs = []
    for index, tune in enumerate(chosen):
        window_bars = list(tune.melody.bars[:window])
        controls = Controls(
            key=tune.melody.key,
            meter=tune.melody.meter,
            tempo_bpm=tune.melody.tempo_bpm,
            style=Style(tune.style),
            energy=thresholds.energy(tune.melody),
        )
        request = PhraseRequest(
            first_bar=LEFT_BARS,
            n_bars=gap_bars,
            controls=controls,
            context=tuple(window_bars[:LEFT_BARS]),
            cadence_steps=(),
            seed=seed * 1_000_000 + index,
            phrase_continues=True,  # bars follow the gap, as the editor's Infiller says
        )
        jobs.append((window_bars, request))

    fim = tokenizer.has_infill
    fim_jobs = [
        (bars, dataclasses.replace(request, after=tuple(bars[LEFT_BARS + gap_bars :])))
        for bars, request in (jobs if fim else [])
    ]

    def score_now(sequences, starts):
        async def scored() -> list[float]:
            return suffix_logprobs(model, sequences, starts)

        return scored()

    async def fill_all():
        with DecodeEngine(model, tokenizer, max_batch=32, kv_dtype=torch.bfloat16) as engine:

            async def one(bars: list[Bar], request: PhraseRequest):
                decode = engine_phrase_decoder(
                    engine, tokenizer, request.controls.meter, default_sampling()
                )
                right = bars[LEFT_BARS + gap_bars :]
                return await best_of_candidates(
                    request, right, decode, score_now, tokenizer, candidates
                )

            return await asyncio.gather(*(one(b, r) for b, r in jobs + fim_jobs))

    clock = time.monotonic()
    filled_all = asyncio.run(fill_all())
    filled, filled_fim = filled_all[: len(jobs)], filled_all[len(jobs) :]
    seconds["decoding and scoring"] = round(time.monotonic() - clock, 1)

    clock = time.monotonic()
    joins = {
        (kind, edge): JoinStats()
        for kind in ("real", "left", "infill", *(("fim", "fim_best") if fim else ()))
        for edge in ("left", "right")
    }
    nll_left, nll_both, nll_fim, tokens_total = [], [], [], 0
    nll_left_known: list[float] = []
    nll_fim_known: list[float] = []
    vocab = tokenizer.vocab
    never_in_a_gap = [vocab.eos] + (
        [vocab.id(FIM_SUFFIX), vocab.id(FIM_MIDDLE)] if tokenizer.has_infill else []
    )
    for index, ((window_bars, request), (best, report)) in enumerate(
        zip(jobs, filled, strict=True)
    ):
        left = window_bars[:LEFT_BARS]
        real_middle = window_bars[LEFT_BARS : LEFT_BARS + gap_bars]
        right = window_bars[LEFT_BARS + gap_bars :]
        middles = {
            "real": real_middle,
            "left": report.candidates[0] if report.candidates else best,
            "infill": best,
        }
        if fim:
            fim_best, fim_report = filled_fim[index]
            middles["fim"] = fim_report.candidates[0] if fim_report.candidates else fim_best
            middles["fim_best"] = fim_best
        for kind, middle in middles.items():
            for edge, (before, after) in (("left", (left, middle)), ("right", (middle, right))):
                interval = join_interval(before, after)
                if interval is not None:
                    joins[(kind, edge)].intervals.append(interval)
        # NLL of the real middle: P(m | l) and P(r | l, m); P(r | l) from the candidates
        prefix = tokenizer.prompt(request.controls, left)
        middle_tokens = [t for bar in real_middle for t in tokenizer.bar_to_tokens(bar)]
        with_middle = prefix + middle_tokens
        [log_middle] = suffix_logprobs(model, [with_middle], [len(prefix)])
        [log_middle_known] = suffix_logprobs(
            model, [with_middle], [len(prefix)], excluded=never_in_a_gap
        )
        sequences, starts = suffix_sequences(tokenizer, request, [real_middle], right)
        [log_right_real] = suffix_logprobs(model, sequences, starts)
        log_right = logmeanexp(report.suffix_logprobs) if report.suffix_logprobs else log_right_real
        n = len(middle_tokens)
        tokens_total += n
        nll_left.append(-log_middle)
        nll_left_known.append(-log_middle_known)
        nll_both.append(-(log_middle + log_right_real - log_right))
        if fim:
            fim_prompt = tokenizer.infill_prompt(request.controls, left, right)
            [log_middle_fim] = suffix_logprobs(
                model, [fim_prompt + middle_tokens], [len(fim_prompt)]
            )
            nll_fim.append(-log_middle_fim)
            [log_middle_fim_known] = suffix_logprobs(
                model, [fim_prompt + middle_tokens], [len(fim_prompt)], excluded=never_in_a_gap
            )
            nll_fim_known.append(-log_middle_fim_known)
    seconds["likelihoods"] = round(time.monotonic() - clock, 1)
    return InfillResult(
        tunes=len(chosen),
        gap_bars=gap_bars,
        candidates=candidates,
        middle_tokens=tokens_total,
        nll_left=sum(nll_left) / tokens_total,
        nll_both=sum(nll_both) / tokens_total,
        nll_left_per_tune=nll_left,
        nll_both_per_tune=nll_both,
        nll_fim=sum(nll_fim) / tokens_total if fim else None,
        nll_left_known=sum(nll_left_known) / tokens_total,
        nll_fim_known=sum(nll_fim_known) / tokens_total if fim else None,
        smooth_limit=limit,
        corpus_bar_line_intervals=len(reference),
        corpus_smooth_rate=float(np.mean(np.abs(reference) <= limit)),
        corpus_histogram=_histogram(reference),
        joins=joins,
        seconds=seconds,
    )


def format_infill(result: InfillResult, *, command: str) -> str:
    r = result
    better = sum(b < a for a, b in zip(r.nll_left_per_tune, r.nll_both_per_tune, strict=True))
    lines = [
        "# Infilling: the right side of a gap against left-context-only decoding",
        "",
        "```",
        command,
        "```",
        "",
        f"{r.tunes} held-out tunes (valid and test splits, never trained on); in each, "
        f"{LEFT_BARS} bars of left context, a gap of {r.gap_bars} bars, {RIGHT_BARS} bars "
        f"after it; {r.candidates} candidates per gap (`cantus.eval.infill` says how each "
        "number is made).",
        "",
        "## NLL of the real middles (nats per token)",
        "",
        "| decoding | NLL / token |",
        "|---|---|",
        f"| left context only: -log P(middle \\| left) | {r.nll_left:.3f} |",
        f"| both sides: -log P(middle \\| left, right), estimated | {r.nll_both:.3f} |",
        *(
            [f"| fill-in-the-middle: -log P(middle \\| left, right), read | {r.nll_fim:.3f} |"]
            if r.nll_fim is not None
            else []
        ),
        f"| left context only, the gap's length known | {r.nll_left_known:.3f} |",
        *(
            [f"| fill-in-the-middle, the gap's length known | {r.nll_fim_known:.3f} |"]
            if r.nll_fim_known is not None
            else []
        ),
        "",
        f"{r.middle_tokens} middle tokens; the right side lowers the NLL in {better} of "
        f'{r.tunes} tunes. "the gap\'s length known": read as the decoder reads a gap of a '
        "given number of bars, whose grammar allows no `EOS` (nor a FIM marker) inside it; "
        "the model renormalised without them. A fill-in-the-middle prompt does not say how "
        "many bars the gap has (training draws gaps of 1 to 8), so its raw reading pays at "
        "every bar line inside the gap for the chance that the gap ends there.",
        "",
        "## Smooth joins",
        "",
        f"Smooth: |interval| <= {r.smooth_limit} semitones, the {SMOOTH_PERCENTILE}th "
        f"percentile of the {r.corpus_bar_line_intervals} intervals across bar lines in the "
        f"held-out tunes ({100 * r.corpus_smooth_rate:.1f} % of them are that small). TV: "
        "total variation distance of the joins' interval histogram to the corpus's.",
        "",
        "| middle | left edge smooth | right edge smooth | right edge mean abs interval | "
        "right edge TV |",
        "|---|---|---|---|---|",
    ]
    names = {
        "real": "the real middle",
        "left": "decoded, left context only",
        "infill": f"decoded, best of {r.candidates} by the bars after it",
        "fim": "decoded fill-in-the-middle (bars after it in the prompt)",
        "fim_best": f"decoded fill-in-the-middle, best of {r.candidates} by the bars after it",
    }
    for kind, name in names.items():
        if (kind, "left") not in r.joins:
            continue
        left, right = r.joins[(kind, "left")], r.joins[(kind, "right")]
        lines.append(
            f"| {name} | {100 * left.smooth_rate(r.smooth_limit):.1f} % | "
            f"{100 * right.smooth_rate(r.smooth_limit):.1f} % | {right.mean_abs():.2f} | "
            f"{right.tv_distance(r.corpus_histogram):.3f} |"
        )
    lines += [
        "",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in r.seconds.items()) + ".",
        "",
    ]
    return "\n".join(lines)
