"""Can a classifier tell generated melodies from real ones? If it cannot do better than chance
(50 %), the generated melodies are, on these features, as real as the corpus's.

The features are ``cantus.eval.melody_features``'s (what a listener hears: pitch, interval
and note-length histograms, repeated notes, steps, contour, rhythm). Two detectors are
trained, and both are reported, because either can be the stronger:

* ``logistic``: logistic regression on standardised features (linear: a shifted mean);
* ``boosting``: histogram gradient boosting (non-linear: thresholds and interactions).

Accuracy is cross-validated (stratified 5-fold, repeated with reshuffles) on balanced
classes: the larger set is subsampled to the size of the smaller, so always answering
"generated" scores 50 %. The control trains the same detectors on two disjoint random
halves of the real melodies; it should score about 50 %, and its spread shows how far
chance alone moves the figure at that sample size.

Callers decide what is compared: both sets should cover the same number of bars (see
``melody_features.first_bars``) and the same mix of modes and styles, or the classifier
learns the difference in mix rather than in music.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CLASSIFIERS = ("logistic", "boosting")
"""The detectors trained on every comparison (``make_classifier``)."""
FOLDS = 5
REPEATS = 3
"""Cross-validation: ``FOLDS``-fold, repeated ``REPEATS`` times with different shuffles."""


def make_classifier(name: str, seed: int = 0):
    """A fresh scikit-learn classifier: ``logistic`` (standardised features, L2, C = 1) or
    ``boosting`` (``HistGradientBoostingClassifier``, 200 shallow trees, no early stop)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if name == "boosting":
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=8, random_state=seed
        )
    raise ValueError(f"unknown classifier {name!r}: expected one of {CLASSIFIERS}")


@dataclass(frozen=True)
class Accuracy:
    """Cross-validated accuracy of one detector: ``mean`` and ``std`` over all folds, the
    lowest and highest mean of one repeat (``low``, ``high``), and the melodies per class."""

    classifier: str
    mean: float
    std: float
    low: float
    high: float
    per_class: int


def balanced(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets cut (random rows) to the size of the smaller."""
    size = min(len(a), len(b))
    return (
        a[rng.choice(len(a), size, replace=False)],
        b[rng.choice(len(b), size, replace=False)],
    )


def cross_validated_accuracy(
    a: np.ndarray,
    b: np.ndarray,
    classifier: str = "logistic",
    *,
    folds: int = FOLDS,
    repeats: int = REPEATS,
    seed: int = 0,
) -> Accuracy:
    """How well ``classifier`` tells rows of ``a`` from rows of ``b`` (feature matrices),
    balanced and cross-validated (module docstring)."""
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    a, b = balanced(np.asarray(a, float), np.asarray(b, float), np.random.default_rng(seed))
    if len(a) < folds:
        raise ValueError(f"{len(a)} melodies per class: too few for {folds}-fold validation")
    features = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(len(a), int), np.ones(len(b), int)])
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    # One thread: on a few hundred rows the boosting's OpenMP synchronisation costs more than
    # it saves (30 s -> 2 s for 15 fits on a busy 2-core machine).
    with threadpool_limits(limits=1):
        scores = cross_val_score(
            make_classifier(classifier, seed), features, labels, cv=splitter, scoring="accuracy"
        )
    per_repeat = scores.reshape(repeats, folds).mean(axis=1)
    return Accuracy(
        classifier=classifier,
        mean=float(scores.mean()),
        std=float(scores.std()),
        low=float(per_repeat.min()),
        high=float(per_repeat.max()),
        per_class=len(a),
    )


def split_halves(
    groups: Sequence[Hashable], rng: np.random.Generator, sizes: dict[Any, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint random halves of a set, each group (e.g. mode) split evenly
    between them; with ``sizes``, each half takes that many members of a group (half the
    group when it is smaller than twice that) and none of a group not in ``sizes``."""
    first: list[int] = []
    second: list[int] = []
    for group in sorted(set(groups), key=str):
        members = rng.permutation([i for i, g in enumerate(groups) if g == group])
        size = len(members) // 2
        if sizes is not None:
            size = min(size, sizes.get(group, 0))
        first += members[:size].tolist()
        second += members[size : 2 * size].tolist()
    return np.array(first, int), np.array(second, int)


def matched_by_group(
    groups_a: Sequence[Hashable], groups_b: Sequence[Hashable], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into two sets such that each group (e.g. mode) has as many members from one
    set as from the other: the smaller count per group, drawn at random."""
    chosen_a: list[int] = []
    chosen_b: list[int] = []
    for group in sorted(set(groups_a) & set(groups_b), key=str):
        in_a = [i for i, g in enumerate(groups_a) if g == group]
        in_b = [i for i, g in enumerate(groups_b) if g == group]
        size = min(len(in_a), len(in_b))
        chosen_a += rng.choice(in_a, size, replace=False).tolist()
        chosen_b += rng.choice(in_b, size, replace=False).tolist()
    return np.array(chosen_a, int), np.array(chosen_b, int)


def telltale_features(
    a: np.ndarray, b: np.ndarray, names: Sequence[str], *, top: int = 6, seed: int = 0
) -> list[tuple[str, float]]:
    """The features that most separate ``b`` from ``a``: the standardised logistic
    regression's largest coefficients (positive: higher in ``b``), fitted on all rows."""
    a, b = balanced(np.asarray(a, float), np.asarray(b, float), np.random.default_rng(seed))
    model = make_classifier("logistic", seed)
    model.fit(np.concatenate([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))])
    coefficients = model[-1].coef_[0]
    order = np.argsort(-np.abs(coefficients))[:top]
    return [(names[i], float(coefficients[i])) for i in order]
