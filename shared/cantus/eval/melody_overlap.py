"""How far generated melodies lie from real ones, feature by feature, in the manner of Yang &
Lerch's MGEval ("On the evaluation of generative models in music", 2018).

For each feature of ``cantus.eval.melody_features`` (a scalar or a whole histogram):

* intra-set distances of the real set: |a - b| (Euclidean for histograms) between every two
  distinct real melodies;
* inter-set distances: between every generated and every real melody;
* each set of distances is smoothed into a probability density by a Gaussian KDE
  (``scipy.stats.gaussian_kde``, Scott's bandwidth), and the two densities compared on one
  grid: the overlapping area ``OA`` = ∫ min(p_intra, p_inter) (1: generated melodies are as
  far from the real ones as real ones are from each other) and ``KL`` (p_intra ‖ p_inter) in
  nats (0 is best).

Unlike MGEval's reference code, both densities are evaluated on the same grid for the KL.
Where there are more pairs than ``max_pairs``, a seeded random subset of pairs is used (the
KDE's cost grows with pairs × grid points).

Beside the overlap, simpler summaries per scalar and per histogram bin: the generated and
the real mean, the real set's 5th-95th percentile band, whether the generated mean lies in
that band, and the share of generated melodies that do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.integrate import trapezoid

from cantus.eval.melody_features import (
    HISTOGRAMS,
    SCALARS,
    MelodyFeatures,
    feature_names,
    feature_vector,
    melody_features,
)
from cantus.music.notes import Key, Melody

BAND_PERCENTILES = (5.0, 95.0)
"""The real set's band: its 5th and 95th percentile per feature."""
DEFAULT_MAX_PAIRS = 20_000
"""Most distances fed to one KDE (a seeded random subset beyond that)."""
GRID_POINTS = 512
"""Points of the grid the two densities are evaluated and integrated on."""
DENSITY_FLOOR = 1e-12
"""Added to both densities before the KL, so an empty region of the inter-set density gives
a large but finite divergence."""


@dataclass(frozen=True)
class FeatureSummary:
    """One scalar feature or histogram bin: generated and real means, the real band
    (``BAND_PERCENTILES``), whether the generated mean lies in it, and the share of generated
    melodies whose value lies in it."""

    name: str
    generated_mean: float
    real_mean: float
    real_low: float
    real_high: float
    mean_inside: bool
    generated_inside: float


@dataclass(frozen=True)
class FeatureOverlap:
    """MGEval overlap of one feature: ``overlap_area`` (0..1, higher is closer) and
    ``kl_divergence`` (nats, intra-real ‖ inter-set, lower is closer), with the mean
    intra-real and inter-set distances they come from."""

    name: str
    overlap_area: float
    kl_divergence: float
    intra_real_mean: float
    inter_mean: float


def _feature_values(features: Sequence[MelodyFeatures], name: str) -> np.ndarray:
    """[melodies, dims] values of one feature (dims 1 for a scalar)."""
    return np.array([np.atleast_1d(getattr(f, name)) for f in features], dtype=float)


def _pair_indices(
    n_a: int, n_b: int, *, same_set: bool, max_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i into A, j into B): every distinct pair (i < j) of one set, or every
    pair across two; a random ``max_pairs`` of them when there are more."""
    if same_set:
        first, second = np.triu_indices(n_a, k=1)
    else:
        first, second = (g.ravel() for g in np.meshgrid(np.arange(n_a), np.arange(n_b)))
    if len(first) > max_pairs:
        chosen = rng.choice(len(first), size=max_pairs, replace=False)
        first, second = first[chosen], second[chosen]
    return first, second


def intra_set_distances(
    values: np.ndarray, *, max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0
) -> np.ndarray:
    """Euclidean distances between distinct members of one set ([members, dims] values)."""
    rng = np.random.default_rng(seed)
    i, j = _pair_indices(len(values), len(values), same_set=True, max_pairs=max_pairs, rng=rng)
    return np.linalg.norm(values[i] - values[j], axis=1)


def inter_set_distances(
    values_a: np.ndarray, values_b: np.ndarray, *, max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0
) -> np.ndarray:
    """Euclidean distances between members of two sets."""
    rng = np.random.default_rng(seed)
    i, j = _pair_indices(len(values_a), len(values_b), same_set=False, max_pairs=max_pairs, rng=rng)
    return np.linalg.norm(values_a[i] - values_b[j], axis=1)


def _density(sample: np.ndarray, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """A Gaussian KDE of ``sample``; a sample of one repeated value (a KDE cannot fit it) is a
    narrow normal at that value, 1/1000 of ``scale`` wide."""
    if len(sample) > 1 and np.ptp(sample) > 0:
        return stats.gaussian_kde(sample)
    width = max(scale, 1e-9) * 1e-3
    return stats.norm(loc=float(sample[0]), scale=width).pdf


def density_overlap(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(overlapping area, KL(reference ‖ other) in nats) of the KDE-smoothed densities of two
    samples of distances, on one grid spanning both with three bandwidths' margin."""
    everything = np.concatenate([reference, other])
    scale = float(np.ptp(everything)) or float(abs(everything).max()) or 1.0
    densities = [_density(reference, scale), _density(other, scale)]
    margin = max(
        (3 * float(np.sqrt(d.covariance[0, 0])) for d in densities if hasattr(d, "covariance")),
        default=scale * 3e-3,
    )
    grid = np.linspace(everything.min() - margin, everything.max() + margin, GRID_POINTS)
    p, q = (np.asarray(d(grid), dtype=float) for d in densities)
    overlap = float(np.clip(trapezoid(np.minimum(p, q), grid), 0.0, 1.0))
    kl = float(stats.entropy(p + DENSITY_FLOOR, q + DENSITY_FLOOR))
    return overlap, kl


def feature_overlap(
    name: str,
    generated: np.ndarray,
    real: np.ndarray,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
) -> FeatureOverlap:
    """MGEval overlap of one feature from its [melodies, dims] values in both sets."""
    intra = intra_set_distances(real, max_pairs=max_pairs, seed=seed)
    inter = inter_set_distances(generated, real, max_pairs=max_pairs, seed=seed + 1)
    overlap, kl = density_overlap(intra, inter)
    return FeatureOverlap(name, overlap, kl, float(intra.mean()), float(inter.mean()))


def feature_summaries(generated: np.ndarray, real: np.ndarray) -> list[FeatureSummary]:
    """``FeatureSummary`` of every ``feature_names`` entry from the two sets' feature matrices
    ([melodies, features])."""
    low, high = np.percentile(real, BAND_PERCENTILES, axis=0)
    generated_mean = generated.mean(axis=0)
    inside = ((generated >= low) & (generated <= high)).mean(axis=0)
    return [
        FeatureSummary(
            name=name,
            generated_mean=float(generated_mean[i]),
            real_mean=float(real[:, i].mean()),
            real_low=float(low[i]),
            real_high=float(high[i]),
            mean_inside=bool(low[i] <= generated_mean[i] <= high[i]),
            generated_inside=float(inside[i]),
        )
        for i, name in enumerate(feature_names())
    ]


def overlap_report(
    generated: Sequence[Melody],
    real: Sequence[Melody],
    key_of: Callable[[Melody], Key] = lambda melody: melody.key,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
) -> dict[str, Any]:
    """Generated melodies against real ones, feature by feature (pitch classes relative to
    ``key_of(melody)``'s tonic: by default the melody's own key). Returns a JSON-friendly dict:
    ``pieces`` (both set sizes), ``summaries`` (``FeatureSummary`` fields per scalar and
    histogram bin, in ``feature_names`` order) and ``overlap`` (``FeatureOverlap`` fields per
    feature: histograms first, then scalars)."""
    if len(generated) < 2 or len(real) < 2:
        raise ValueError("overlap_report needs at least two generated and two real melodies")
    generated_features = [melody_features(m, key_of(m)) for m in generated]
    real_features = [melody_features(m, key_of(m)) for m in real]
    overlaps = [
        feature_overlap(
            name,
            _feature_values(generated_features, name),
            _feature_values(real_features, name),
            max_pairs=max_pairs,
            seed=seed,
        )
        for name in (*HISTOGRAMS, *SCALARS)
    ]
    summaries = feature_summaries(
        np.array([feature_vector(f) for f in generated_features]),
        np.array([feature_vector(f) for f in real_features]),
    )
    return {
        "pieces": {"generated": len(generated), "real": len(real)},
        "summaries": [asdict(s) for s in summaries],
        "overlap": [asdict(o) for o in overlaps],
    }
