"""``cantus eval melody`` on tiny models and a tiny synthetic corpus: the NLL bookkeeping,
the windowed scoring of long sequences, the piece statistics and one quick end-to-end run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cantus.eval.melody import EvalSetting, MelodyEvalReport, format_report, run_melody_eval
from cantus.eval.melody_likelihood import summarize_nll, transformer_token_nlls
from cantus.eval.melody_scoring import (
    bar_validity,
    detect_key,
    interval_counts,
    kl_divergence,
    pitch_class_counts,
)
from cantus.melody.checkpoint import save_melody_checkpoint
from cantus.melody.controls import Controls, EnergyThresholds
from cantus.melody.corpus import Tune, split_corpus
from cantus.melody.model import MelodyLM, MelodyLMConfig
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import Energy, Style

torch.set_num_threads(1)
TOKENIZER = MelodyTokenizer()
VOCAB = TOKENIZER.vocab
QUARTER = 480
COMMON = Meter(4, 4)


C_MAJOR = Key(0)


def _melody(pitches: list[int], key: Key = C_MAJOR, meter: Meter = COMMON) -> Melody:
    """Quarter notes, four to a 4/4 bar."""
    bars = []
    for start in range(0, len(pitches), 4):
        notes = tuple(
            Note(i * QUARTER, p, QUARTER) for i, p in enumerate(pitches[start : start + 4])
        )
        bars.append(Bar(meter, notes))
    return Melody(key, 100.0, tuple(bars))


def _controls(key: Key = C_MAJOR) -> Controls:
    return Controls(key, COMMON, 100.0, Style.FOLK, Energy.MID)


def test_summarize_nll_scores_only_after_the_prefix_and_sums_notes() -> None:
    melody = _melody([60, 62, 64, 65])
    tokens = TOKENIZER.encode(melody, _controls())  # prefix, BAR, 4 notes, EOS
    nlls = np.arange(len(tokens) - 1, dtype=float)  # target i+1 costs i nats
    summary = summarize_nll("m", 1, TOKENIZER, [tokens], [nlls])
    assert summary.tokens == len(tokens) - 7 == 14
    assert summary.notes == 4
    assert summary.kind_counts == {"BAR": 1, "POS": 4, "PITCH": 4, "DUR": 4, "EOS": 1}
    assert summary.per_token == pytest.approx(np.mean(nlls[6:]))
    # note k (0..3) sits at targets 8+3k, 9+3k, 10+3k -> NLLs 7+3k, 8+3k, 9+3k
    assert summary.per_note == pytest.approx(np.mean([24 + 9 * k for k in range(4)]))
    assert summary.by_kind["BAR"] == 6 and summary.by_kind["EOS"] == len(tokens) - 2


@pytest.fixture(scope="module")
def tiny_model() -> MelodyLM:
    torch.manual_seed(0)
    return MelodyLM(MelodyLMConfig.tiny(len(VOCAB))).eval()


def test_transformer_nlls_match_a_plain_forward_and_cover_long_sequences(
    tiny_model: MelodyLM,
) -> None:
    rng = random.Random(0)
    long = _melody([rng.randint(55, 75) for _ in range(4 * 30)])  # 30 bars: > 256 tokens
    short = _melody([60, 62, 64, 65, 67, 65, 64, 62])
    sequences = [TOKENIZER.encode(m, _controls()) for m in (long, short)]
    assert len(sequences[0]) > tiny_model.config.max_len
    nlls = transformer_token_nlls(tiny_model, sequences, pad_id=VOCAB.pad, bar_id=VOCAB.bar)
    with torch.no_grad():
        for sequence, scored in zip(sequences, nlls, strict=True):
            window = torch.tensor([sequence[: tiny_model.config.max_len]])
            logits = tiny_model(window[:, :-1])[0]
            direct = -torch.log_softmax(logits, -1).gather(-1, window[0, 1:, None])[:, 0]
            assert len(scored) == len(sequence) - 1
            np.testing.assert_allclose(scored[: len(direct)], direct.numpy(), rtol=1e-4, atol=1e-5)
    assert np.isfinite(nlls[0]).all() and (nlls[0] > 0).all()


def test_bar_validity_flags_overlaps_and_overfull_bars() -> None:
    prefix = TOKENIZER.controls_prefix(_controls())
    good = [VOCAB.bar, VOCAB.pos(0), VOCAB.pitch(60), VOCAB.dur(16)]
    overlap = [
        VOCAB.bar,
        VOCAB.pos(0),
        VOCAB.pitch(60),
        VOCAB.dur(8),
        VOCAB.pos(4),
        VOCAB.pitch(62),
        VOCAB.dur(4),
    ]
    overfull = [VOCAB.bar, VOCAB.pos(8), VOCAB.pitch(60), VOCAB.dur(12)]
    rest = [VOCAB.bar]
    tokens = prefix + good + overlap + overfull + rest + [VOCAB.eos]
    assert bar_validity(TOKENIZER, tokens, COMMON) == [True, False, False, True]


def test_histograms_and_kl() -> None:
    melody = _melody([62, 64, 66, 67, 69, 81, 62, 62], key=Key(2))
    assert pitch_class_counts([melody], [2]).tolist() == [3, 0, 1, 0, 1, 1, 0, 2, 0, 0, 0, 0]
    intervals = interval_counts([melody])
    assert intervals[12 + 2] == 3 and intervals[24] == 1 and intervals[0] == 1  # ±12 clipped
    assert intervals[12] == 1 and intervals.sum() == 7
    counts = np.array([10.0, 5.0, 1.0])
    assert kl_divergence(counts, counts) == pytest.approx(0.0)
    assert kl_divergence(counts, np.array([1.0, 5.0, 10.0])) > 0.5


def test_detect_key_reads_a_scale_and_a_minor_tune() -> None:
    c_major = _melody([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 62, 60])
    assert detect_key(c_major) == Key(0, Mode.MAJOR)
    a_minor = _melody([69, 71, 72, 74, 76, 72, 71, 69, 64, 68, 69, 69], key=Key(9, Mode.MINOR))
    assert detect_key(a_minor) == Key(9, Mode.MINOR)


def _tiny_split() -> object:
    rng = random.Random(1)
    tunes = []
    for index in range(48):
        key = Key(rng.choice([0, 7, 9]), Mode.MINOR if index % 4 == 0 else Mode.MAJOR)
        scale = key.scale_pitch_classes
        pitches, pitch = [], 60 + key.tonic % 12
        for _ in range(4 * 6):
            pitch = min(76, max(55, pitch + rng.choice([-2, -1, 1, 2])))
            while pitch % 12 not in scale:
                pitch += 1
            pitches.append(pitch)
        pitches[-1] = 60 + key.tonic
        tunes.append(Tune(f"synthetic/{index}", "essen", "folk", _melody(pitches, key)))
    return split_corpus(tunes, valid_fraction=0.15, test_fraction=0.15)


def test_quick_run_end_to_end(tmp_path: Path, tiny_model: MelodyLM) -> None:
    split = _tiny_split()
    checkpoint = tmp_path / "melody_lm.pt"
    thresholds = EnergyThresholds.from_melodies([t.melody for t in split.train])
    save_melody_checkpoint(
        checkpoint,
        tiny_model,
        TOKENIZER,
        thresholds,
        {"steps": 0, "minutes": 0.0, "valid_loss": 5.0, "tokens_seen": 40},
    )
    settings = (
        EvalSetting("C major 4/4 folk", _controls(Key(0))),
        EvalSetting("A minor 4/4 folk", _controls(Key(9, Mode.MINOR))),
    )
    out = tmp_path / "report.md"
    report = run_melody_eval(
        checkpoint,
        pieces_per_setting=3,
        quick=True,
        out=out,
        json_out=tmp_path / "report.json",
        samples_out=tmp_path / "samples.jsonl",
        command="cantus eval melody --quick",
        lstm_path=tmp_path / "lstm.pt",
        split=split,
        settings=settings,
        n_bars=2,
        ngram_orders=(2, 3),
        lstm_max_steps=2,
        max_batch=4,
        extra_seed_sets=1,
        log=lambda _: None,
    )
    assert [s.model for s in report.nll] == [
        "transformer",
        f"{report.ngram_choice['order']}-gram KN",
        "LSTM",
    ]
    assert all(s.tokens == report.nll[0].tokens > 0 for s in report.nll)
    assert (tmp_path / "lstm-quick.pt").exists() and report.lstm["trained_now"]
    # the LSTM's token budget is the transformer's training tokens (DEFAULT_LSTM_TOKEN_SHARE 1)
    assert report.lstm["budget_tokens"] == 40
    # the main run is seed set 0; one more set of key-constrained transformer pieces
    assert sorted((r["seed_set"], r["setting"]) for r in report.seed_sets) == [
        (0, "A minor 4/4 folk"),
        (0, "C major 4/4 folk"),
        (1, "A minor 4/4 folk"),
        (1, "C major 4/4 folk"),
    ]
    assert len(report.generation) == 2 * 4  # per setting: transformer ±constraint, 2 baselines
    for result in report.generation:
        assert result.pieces == 3 and result.failed == 0
        assert result.valid_bars == 1.0 and result.complete == 1.0
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 4 * 3 and all(len(s["tokens"]) > 7 for s in samples)
    assert set(report.forbidden_mass) == {"metre", "length", "other", "total"}
    text = out.read_text()
    assert text.startswith("# Melody model evaluation")
    assert "`cantus eval melody --quick`" in text and "| LSTM |" in text
    assert text == format_report(report, command="cantus eval melody --quick")
    assert "## Targets" in text
    assert "| setting | set 0 | set 1 | mean | worst |" in text
    assert "a budget of 0.00 M training tokens (wall-clock cap 1.0 min)" in text
    stored = MelodyEvalReport.from_json((tmp_path / "report.json").read_text())
    assert format_report(stored, command="cantus eval melody --quick") == text
    assert json.loads((tmp_path / "report.json").read_text())["test_tunes"] == report.test_tunes


def test_eval_samples_with_the_served_precision_setting():
    import re
    from pathlib import Path

    from cantus.eval.melody_sampling import SERVED_BFLOAT16_FROM_BATCH

    config = (Path(__file__).parents[2] / "triton_models/melody_lm/config.pbtxt").read_text()
    served = re.search(r'key: "bfloat16_from_batch" value: \{ string_value: "(\d+)" \}', config)
    assert served and int(served.group(1)) == SERVED_BFLOAT16_FROM_BATCH


def _report_with_lstm(lstm: dict, transformer_tokens: int) -> MelodyEvalReport:
    return MelodyEvalReport(
        checkpoint="c.pt",
        quick=False,
        test_tunes=0,
        n_bars=16,
        pieces_per_setting=100,
        nll=[],
        ngram_candidates=[],
        ngram_choice={},
        lstm=lstm,
        transformer={"tokens_seen": transformer_tokens},
        generation=[],
        test_reference={},
        forbidden_mass={},
        timings_s={},
        settings=[],
    )


def test_training_balance_warns_only_when_the_lstm_saw_far_fewer_tokens() -> None:
    from cantus.eval.melody_report import _training_balance_lines

    history = [[100, 240.0, 1.30], [900, 2400.0, 1.10]]
    balanced = _training_balance_lines(
        _report_with_lstm({"tokens_seen": 9_100_000, "history": history}, 9_000_000)
    )
    assert "Caveat" not in "".join(balanced)
    assert "9.1 M training tokens, 101 % of the transformer's 9.0 M" in balanced[0]
    assert "1.3000 (step 100) to 1.1000 (step 900)" in balanced[0]
    short = _training_balance_lines(
        _report_with_lstm({"tokens_seen": 4_000_000, "history": history}, 9_000_000)
    )
    assert short[0].startswith("**Caveat:** the LSTM saw 4.0 M training tokens, 44 %")
    assert "--lstm-token-share" in short[0]
    assert _training_balance_lines(_report_with_lstm({"tokens_seen": 1}, 0)) == []


def test_lstm_budget_text_names_the_token_budget_and_its_cap() -> None:
    from cantus.eval.melody_report import _lstm_budget_text

    assert _lstm_budget_text({"budget_tokens": 9_058_446, "budget_minutes": 90.0}) == (
        "a budget of 9.06 M training tokens (wall-clock cap 90.0 min)"
    )
    assert _lstm_budget_text({"budget_minutes": 20.0}) == "a 20.0 min budget"


def test_seed_set_table_reports_mean_and_worst_per_setting() -> None:
    from cantus.eval.melody_report import _seed_set_lines

    report = _report_with_lstm({}, 1)
    assert _seed_set_lines(report) == []
    report.seed_sets = [
        {"setting": "A minor", "seed_set": s, "key_match": k, "tonic_ending": 1.0}
        for s, k in ((0, 0.96), (1, 0.86), (2, 0.95))
    ]
    lines = _seed_set_lines(report)
    assert "| setting | set 0 | set 1 | set 2 | mean | worst |" in lines
    assert "| A minor | 96 % | 86 % | 95 % | 92 % | 86 % |" in lines
