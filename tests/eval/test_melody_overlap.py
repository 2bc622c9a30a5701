"""MGEval-style overlap (``cantus.eval.melody_overlap``): high for sets from one
distribution, low for shifted ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cantus.eval.melody_features import feature_names
from cantus.eval.melody_overlap import (
    density_overlap,
    feature_overlap,
    feature_summaries,
    inter_set_distances,
    intra_set_distances,
    overlap_report,
)

from .melodies import hammered_melody, stepwise_melody


def test_intra_set_distances_cover_every_distinct_pair() -> None:
    values = np.array([[0.0], [1.0], [3.0]])
    assert sorted(intra_set_distances(values)) == [1.0, 2.0, 3.0]
    assert len(inter_set_distances(values, values[:2])) == 6
    assert len(intra_set_distances(np.zeros((100, 2)), max_pairs=50)) == 50


def test_sets_from_one_distribution_overlap_and_shifted_sets_do_not() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(150, 1))
    same = feature_overlap("x", rng.normal(size=(150, 1)), real)
    shifted = feature_overlap("x", rng.normal(loc=4.0, size=(150, 1)), real)
    assert same.overlap_area > 0.85
    assert same.kl_divergence < 0.05
    assert shifted.overlap_area < 0.3
    assert shifted.kl_divergence > 10 * same.kl_divergence
    assert shifted.inter_mean > 2 * shifted.intra_real_mean


def test_a_sample_of_one_value_still_has_a_density() -> None:
    overlap, kl = density_overlap(np.zeros(20), np.zeros(30))
    assert overlap == pytest.approx(1.0, abs=0.01)
    assert kl == pytest.approx(0.0, abs=1e-6)
    overlap, _ = density_overlap(np.zeros(20), np.ones(30))
    assert overlap < 0.01


def test_summaries_give_means_and_the_real_band() -> None:
    names = feature_names()
    real = np.tile(np.linspace(0.0, 1.0, 101)[:, None], (1, len(names)))
    generated = np.full((4, len(names)), 0.5)
    generated[:, 0] = [0.0, 0.0, 2.0, 2.0]  # mean 1.0 is outside the 0.05-0.95 band
    summaries = feature_summaries(generated, real)
    assert [s.name for s in summaries] == names
    assert summaries[1].real_low == pytest.approx(0.05)
    assert summaries[1].real_high == pytest.approx(0.95)
    assert summaries[1].mean_inside and summaries[1].generated_inside == 1.0
    assert not summaries[0].mean_inside and summaries[0].generated_inside == 0.0


def test_overlap_report_tells_hammered_notes_from_steps() -> None:
    rng = random.Random(3)
    real = [stepwise_melody(rng) for _ in range(30)]
    alike = [stepwise_melody(rng) for _ in range(30)]
    hammered = [hammered_melody(rng) for _ in range(30)]
    good = overlap_report(alike, real)
    bad = overlap_report(hammered, real)
    assert good["pieces"] == {"generated": 30, "real": 30}

    def overlap(report, name):
        return next(o for o in report["overlap"] if o["name"] == name)["overlap_area"]

    for name in ("repeated_note_rate", "stepwise_rate", "top_pitch_class_share", "interval"):
        assert overlap(good, name) > 0.7, name
        assert overlap(bad, name) < 0.2, name
    repeated = next(s for s in bad["summaries"] if s["name"] == "repeated_note_rate")
    assert repeated["generated_mean"] > 0.4 and not repeated["mean_inside"]
    with pytest.raises(ValueError, match="at least two"):
        overlap_report(alike[:1], real)
