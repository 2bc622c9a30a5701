"""The realness report (``cantus.eval.realness_report``) on hand-built sets, and one
``cantus eval realness`` run end to end on a tiny random model and a tiny corpus."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from cantus.eval.realness_report import (
    PhraseEnds,
    format_report,
    key_relation,
    percentile_rank,
    phrase_ends_leading_on,
    realness_report,
)
from cantus.eval.realness_run import (
    ENDING_CLEARANCE_BARS,
    KEY_CYCLE,
    BarLineJoins,
    ContrastLifts,
    VariedReturns,
    bar_line_joins,
    contrast_lifts,
    format_contrast_lifts,
    format_run,
    format_varied_returns,
    realness_jobs,
    run_realness_eval,
)
from cantus.melody.checkpoint import save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.corpus import Tune, split_corpus
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import Energy, Style

from .melodies import hammered_melody, stepwise_melody


def _keyed(melody: Melody, key: Key) -> Melody:
    return Melody(key, melody.tempo_bpm, melody.bars)


def test_report_tells_hammered_melodies_from_stepwise_ones() -> None:
    rng = random.Random(0)
    minor = Key(0, Mode.MINOR)
    real = [stepwise_melody(rng, bars=10) for _ in range(40)]
    real += [_keyed(stepwise_melody(rng, bars=10), minor) for _ in range(10)]
    generated = [hammered_melody(rng, bars=8) for _ in range(24)]  # 8 bars: left out
    generated += [hammered_melody(rng, bars=10) for _ in range(20)]
    generated += [_keyed(hammered_melody(rng, bars=10), minor) for _ in range(4)]

    report = realness_report(generated, real, n_bars=10)
    assert (report.generated, report.dropped_generated) == (24, 24)
    assert (report.real, report.dropped_real) == (50, 0)
    assert report.matched == {"major": 20, "minor": 4}
    assert report.strongest.mean > 0.9
    assert all(a.per_class == 24 for a in report.classifier)
    assert all(a.per_class <= 24 for a in report.control)
    assert report.telltale[0][0] in {
        "pitch_class[7]",  # the hammered G
        "repeated_note_rate",
        "interval[+0]",
        "top_pitch_class_share",
        "stepwise_rate",
        "interval[-2]",
        "interval[+2]",
    }
    assert {k.key for k in report.key_agreement} == {"C major", "C minor"}
    assert sum(k.pieces for k in report.key_agreement) == 24
    for k in report.key_agreement:
        assert k.heard_as_asked + sum(k.heard_instead.values()) == k.pieces
    major, minor = report.pitch_profiles
    assert (major.mode, major.n_generated, major.n_real) == ("major", 20, 40)
    assert (minor.mode, minor.n_generated, minor.n_real) == ("minor", 4, 10)
    assert major.generated[7] > major.real[7]  # the hammered G
    assert sum(major.real) == pytest.approx(1.0)
    assert [row.measure for row in report.structure] == ["returning", "exact", "si", "phrase_ends"]
    assert all(0.0 <= row.median_rank <= 1.0 for row in report.structure)

    assert report.phrase_ends and all(e.generated and e.real for e in report.phrase_ends)

    text = "\n".join(format_report(report))
    for heading in (
        "## Realness",
        "## Features",
        "## Key agreement",
        "## Structure",
        "## Phrase ends that lead on",
        "## Pitch classes by mode",
    ):
        assert heading in text
    assert "repeated-note intervals" in text and "pitch_class[0]" in text


def test_phrase_ends_lead_on_where_a_note_follows_the_cadence_tone() -> None:
    meter = Meter(3, 4)
    q = 480

    def bar(*notes: tuple[int, int]) -> Bar:
        return Bar(meter, tuple(Note(onset, 60, length) for onset, length in notes))

    moving = bar((0, q), (q, q), (2 * q, q))
    leading = bar((0, 2 * q), (2 * q, q))  # a half note, then an upbeat
    breathing = bar((0, q), (2 * q, q))  # a quarter, a rest, then an upbeat
    held = bar((0, 3 * q))
    pickup = bar((2 * q, q))
    # phrase ends at bars 4 (leads on after a breath) and 8 (the last: left out)
    generated = [Melody(Key(0), 100.0, (moving,) * 3 + (breathing,) + (moving,) * 3 + (held,))]
    # a pickup, then phrase ends at bars 4 (leads on), 8 (held) and 12 (the last: left out)
    tune = (pickup,) + (moving,) * 3 + (leading,) + (moving,) * 3 + (held,) + (moving,) * 3
    real = [Melody(Key(0), 100.0, (*tune, held))]
    # the generated cadence tone lasts a beat (HOLD_BEAT) and breathes; the real tune's is a
    # half note (HOLD_LONG) and leads on at once
    ends = PhraseEnds(
        "3/4",
        1,
        1,
        1,
        2,
        generated_holds=(0, 0, 1, 0),
        real_holds=(0, 0, 0, 1),
        generated_breaths=(1, 1),
        real_breaths=(0, 1),
    )
    assert phrase_ends_leading_on(generated, real, n_bars=16) == [ends]
    # the window leaves out the real tune's second phrase end
    assert phrase_ends_leading_on(generated, real, n_bars=8) == [dataclasses.replace(ends, real=1)]


def test_percentile_rank_counts_ties_half() -> None:
    assert percentile_rank(2.0, [1.0, 2.0, 3.0, 4.0]) == 0.375
    assert percentile_rank(0.0, [0.0, 0.0]) == 0.5
    assert percentile_rank(9.0, [1.0, 2.0]) == 1.0


def test_jobs_cycle_every_key_and_borrow_the_rest_from_a_tune_of_the_mode() -> None:
    rng = random.Random(1)
    tunes = [
        Tune(f"t{i}", "essen", Style.FOLK.value, stepwise_melody(rng, bars=16)) for i in range(6)
    ]
    tunes.append(
        Tune(
            "minor", "oneill", Style.CELTIC.value, _keyed(stepwise_melody(rng), Key(9, Mode.MINOR))
        )
    )
    thresholds = EnergyThresholds.from_melodies([t.melody for t in tunes])
    jobs = realness_jobs(tunes, 48, 16, thresholds, seed=3)
    assert [job.controls.key for job in jobs] == list(KEY_CYCLE) * 2
    assert len({job.seed for job in jobs}) == 48
    # the one minor tune has 8 bars: minor pieces fall back to any tune that is long enough
    assert Counter(job.controls.style for job in jobs) == {Style.FOLK: 48}
    # every borrowed tune ends at bar 16, so every piece ends inside the window
    assert {job.bars for job in jobs} == {16}
    longer = [
        Tune(f"l{i}", "essen", Style.FOLK.value, stepwise_melody(rng, bars=24)) for i in range(3)
    ]
    mixed = realness_jobs(tunes[:3] + longer, 200, 16, thresholds, seed=4)
    # a piece goes on past the window as often as its borrowed tune does
    assert {job.bars for job in mixed} == {16, 16 + ENDING_CLEARANCE_BARS}
    assert 0.35 < sum(job.bars == 16 for job in mixed) / 200 < 0.65


def _tiny_split():  # type: ignore[no-untyped-def]
    rng = random.Random(2)
    tunes = []
    for index in range(40):
        key = Key(rng.choice([0, 7, 9]), Mode.MINOR if index % 3 == 0 else Mode.MAJOR)
        melody = _keyed(stepwise_melody(rng, bars=6), key)
        tunes.append(Tune(f"essen/tiny.abc#{index}", "essen", Style.FOLK.value, melody))
    return split_corpus(tunes, valid_fraction=0.3, test_fraction=0.3)


def test_bar_line_joins_sort_the_join_into_a_return_after_a_contrast() -> None:
    meter = Meter(4, 4)
    controls = Controls(Key(0), meter, 100.0, Style.FOLK, Energy.MID)
    # 16 bars, AABA: bar 12 returns after B; bar 4 follows its source directly
    pitches = [60 + (i % 3) for i in range(16)]
    pitches[11], pitches[12] = 79, 60  # a leap of 19 into the return
    melody = Melody(Key(0), 100.0, tuple(Bar(meter, (Note(0, p, 1920),)) for p in pitches))
    jobs = [(controls, 0), (controls, 1)]
    joins = bar_line_joins([melody, None], jobs, [melody], 16, corpus_forms=False)
    assert joins.into_returns == [19]
    assert len(joins.elsewhere) == 14 and len(joins.real) == 15
    assert BarLineJoins.smooth(joins.into_returns) == 0.0


def test_run_end_to_end_on_a_tiny_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tokenizer = MelodyTokenizer()
    model = MelodyLM(MelodyLMConfig.tiny(len(tokenizer.vocab))).eval()
    split = _tiny_split()
    checkpoint = tmp_path / "melody_lm.pt"
    thresholds = EnergyThresholds.from_melodies([t.melody for t in split.train])
    save_melody_checkpoint(checkpoint, model, tokenizer, thresholds, {"steps": 0})

    run = run_realness_eval(
        checkpoint,
        pieces=24,
        n_bars=4,
        expand_repeats=False,
        split=split,
        cache_dir=tmp_path,
        log=lambda line: None,
    )
    assert run.pieces == 24 and run.failed == 0
    assert run.report.generated == 24
    assert {band.n_bars for band in run.bands} == {16, 32} or run.bands == []
    text = format_run(run, command="cantus eval realness --pieces 24")
    assert text.startswith("# Melody realness")
    assert "Command: `cantus eval realness --pieces 24`" in text
    assert "tonal emphasis **0** nats" in text
    # 4-bar pieces are AA': no return follows a contrast, every bar line counted elsewhere
    assert run.joins is not None and run.joins.into_returns == []
    assert len(run.joins.elsewhere) > 0 and len(run.joins.real) > 0
    assert "## Joins across bar lines" in text
    assert run.calibration is not None and run.calibration_tunes > 0
    assert "## Where the model thinks the tune goes next" in text
    assert "left to the model" not in text  # upbeats drawn from the corpus, as served
    # `--no-upbeats` (the pieces as before session 16) says so in the report
    before = format_run(dataclasses.replace(run, lead_on=False), command="cantus eval realness")
    assert "upbeats after them left to the model" in before
    # 4-bar pieces have no second strain; the held-out tunes of 16 bars and more do
    assert run.contrast_lifts is not None and run.contrast_lifts.generated == []
    assert "## Register of the contrasting section" in text
    off = format_run(
        dataclasses.replace(run, register_contrast=False), command="cantus eval realness"
    )
    assert "kept without regard to register (`--no-register-contrast`)" in off
    assert "## Varied returns, bar by bar" in text


def test_varied_returns_print_each_bar_s_likeness_and_the_shares_new_and_kept() -> None:
    varied = VariedReturns([(1.0, 0.6, 0.8, 0.2), (1.0, 1.0, 0.4, 0.0)], [])
    lines = format_varied_returns(varied)
    generated = next(line for line in lines if line.startswith("| generated"))
    assert generated == "| generated | 2 | 1.00 | 0.80 | 0.60 | 0.10 | 0.62 | 38 % | 38 % |"
    assert "| real tunes | 0 |" in "\n".join(lines)


def test_contrast_lifts_compare_the_b_with_the_a_and_print_their_spread() -> None:
    meter = Meter(4, 4)

    def tune(a_pitch: int, b_pitch: int) -> Melody:
        bar = lambda pitch: Bar(meter, (Note(0, pitch, 1920, 90),))  # noqa: E731
        bars = [bar(a_pitch)] * 8 + [bar(b_pitch)] * 4 + [bar(a_pitch)] * 4
        return Melody(Key(0, Mode.MAJOR), 100.0, tuple(bars))

    lifts = contrast_lifts([tune(60, 60), tune(60, 57)], [tune(60, 65), tune(60, 63)])
    assert lifts == ContrastLifts(generated=[0.0, -3.0], real=[5.0, 3.0])
    run_text = "\n".join(format_contrast_lifts(lifts, True))
    assert "| generated | 2 | -1.50 |" in run_text and "| real tunes | 2 | +4.00 |" in run_text
    assert "| 0 % | 50 % |" in run_text  # generated: none over +2, one of two under -1
    assert "decoded inside a window of pitches" in run_text
    assert "window" not in "\n".join(format_contrast_lifts(lifts, True, False))


@pytest.mark.parametrize(
    ("asked", "heard", "relation"),
    [
        (Key(9, Mode.MINOR), Key(0, Mode.MAJOR), "relative"),  # A minor heard as C major
        (Key(0, Mode.MAJOR), Key(9, Mode.MINOR), "relative"),
        (Key(2, Mode.MINOR), Key(2, Mode.MAJOR), "parallel"),
        (Key(0, Mode.MAJOR), Key(7, Mode.MAJOR), "dominant"),
        (Key(9, Mode.MINOR), Key(2, Mode.MINOR), "subdominant"),
        (Key(9, Mode.MINOR), Key(5, Mode.MAJOR), "other"),  # the VI
        (Key(0, Mode.MAJOR), None, "other"),
    ],
)
def test_key_relation_names_what_was_heard_instead(
    asked: Key, heard: Key | None, relation: str
) -> None:
    assert key_relation(asked, heard) == relation
