"""The realness classifiers (``cantus.eval.realness``): chance on one distribution, near
certainty on two clearly different ones; balanced and matched sets."""

from __future__ import annotations

import numpy as np
import pytest

from cantus.eval.realness import (
    balanced,
    cross_validated_accuracy,
    make_classifier,
    matched_by_group,
    split_halves,
    telltale_features,
)


def _sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    features = rng.normal(size=(n, 6))
    features[:, 2] += shift
    return features


@pytest.mark.parametrize("classifier", ["logistic", "boosting"])
def test_two_samples_of_one_distribution_score_about_chance(classifier: str) -> None:
    rng = np.random.default_rng(1)
    accuracy = cross_validated_accuracy(_sample(rng, 80), _sample(rng, 80), classifier)
    assert 0.35 <= accuracy.mean <= 0.65
    assert accuracy.per_class == 80
    assert accuracy.low <= accuracy.mean <= accuracy.high


@pytest.mark.parametrize("classifier", ["logistic", "boosting"])
def test_clearly_different_samples_are_told_apart(classifier: str) -> None:
    rng = np.random.default_rng(2)
    accuracy = cross_validated_accuracy(_sample(rng, 60), _sample(rng, 60, shift=5.0), classifier)
    assert accuracy.mean > 0.95


def test_classes_are_balanced_before_training() -> None:
    rng = np.random.default_rng(3)
    a, b = balanced(np.zeros((10, 2)), np.ones((40, 2)), rng)
    assert len(a) == len(b) == 10
    accuracy = cross_validated_accuracy(_sample(rng, 20), _sample(rng, 200), "logistic")
    assert accuracy.per_class == 20
    with pytest.raises(ValueError, match="too few"):
        cross_validated_accuracy(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="unknown classifier"):
        make_classifier("forest")


def test_halves_are_disjoint_and_split_each_group_evenly() -> None:
    groups = ["major"] * 10 + ["minor"] * 6
    first, second = split_halves(groups, np.random.default_rng(0))
    assert not set(first) & set(second)
    assert sorted(groups[i] for i in first) == ["major"] * 5 + ["minor"] * 3
    sized_first, sized_second = split_halves(
        groups, np.random.default_rng(0), sizes={"major": 2, "minor": 9}
    )
    assert sorted(groups[i] for i in sized_first) == ["major"] * 2 + ["minor"] * 3
    assert len(sized_second) == len(sized_first)


def test_matched_sets_have_equal_counts_per_group() -> None:
    a = ["major"] * 8 + ["minor"] * 8
    b = ["major"] * 20 + ["minor"] * 3
    in_a, in_b = matched_by_group(a, b, np.random.default_rng(0))
    assert sorted(a[i] for i in in_a) == sorted(b[i] for i in in_b)
    assert sorted(a[i] for i in in_a).count("minor") == 3


def test_telltale_features_name_what_differs() -> None:
    rng = np.random.default_rng(4)
    names = [f"f{i}" for i in range(6)]
    found = telltale_features(_sample(rng, 100), _sample(rng, 100, shift=1.5), names, top=2)
    assert found[0][0] == "f2" and found[0][1] > 0
