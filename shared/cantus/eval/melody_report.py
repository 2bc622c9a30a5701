"""The ``cantus eval melody`` report: ``MelodyEvalReport`` (everything a run measured, with
its JSON form) and ``format_report``, which renders it as Markdown, with the helpers that
write its tables and caveats."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cantus.eval.melody_likelihood import SCORED_KINDS, NLLSummary
from cantus.eval.melody_sampling import SAMPLING, SERVED_TONAL_EMPHASIS
from cantus.eval.melody_scoring import KL_SMOOTHING, MIN_REFERENCE_TUNES, PieceSetResult
from cantus.melody.decoding import TONAL_EMPHASIS_WEIGHTS
from cantus.melody.sampling import DEFAULT_PITCH_RANGE
from cantus.settings import REPO_ROOT


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
    guidance: float = 1.0
    """Classifier-free guidance on the key with the key constraint on (1: none)."""

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
    names = (
        *("tonic", "♭2nd", "2nd", "♭3rd", "3rd", "4th", "♯4th", "5th", "♭6th", "6th"),
        *("♭7th", "7th"),
    )
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
        "(minor: also the raised 6th and 7th), a tonic cadence in the last bar (`end_on_tonic`), "
        f"classifier-free guidance {report.guidance:g} on the key for pitches (1: none; a "
        "checkpoint trained without key dropout cannot be guided) and a logit bonus of "
        f"{SERVED_TONAL_EMPHASIS:g} nats times a share per scale step "
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
