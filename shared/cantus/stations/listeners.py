"""Simulated listeners for ``cantus bench therapy``: a heart rate or step cadence that
responds to the music's tempo with lag and noise, read by a sensor that glitches and drops
out. A control-engineering test bench, not physiology: it has the properties the closed
loop must cope with, with their sizes as parameters.

The model (one state, the listener's rate ``r`` in beats or steps per minute, integrated in
steps of ``dt`` seconds):

* **Entrainment basin.** While the music's tempo ``T`` is within ``basin`` (a fraction) of
  ``r``, the listener follows it with first-order lag: ``dr/dt = (T - r) / follow_seconds``.
  Music further away does not pull (a walker does not fall into step with a beat 20 %
  off; van Dyck et al. 2017 found heart rate moved only with a matched tempo): the rate
  relaxes towards the listener's own ``natural_bpm`` with ``dr/dt = (natural - r) /
  relax_seconds``. So does a stretch with no beat.
* **A floor.** ``r`` never falls below ``floor_bpm`` (a resting heart rate, the slowest
  comfortable cadence).
* **The sensor.** A reading every ``reading_seconds``: ``r`` plus Gaussian noise of
  ``noise_bpm``; with probability ``outlier_probability`` an outlier of ±``outlier_bpm``
  instead (a strap losing contact, a stumble); nothing during the dropout
  ``dropout_at_s`` .. ``dropout_at_s + dropout_seconds`` (a phone in a pocket).

``population`` draws listeners around a preset's assumed start: their real start rate is
off by up to ``start_spread`` (what a clinician's entered start gets wrong), the basin and
the lag vary per listener.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ListenerModel:
    """One simulated listener (rates in beats or steps per minute, times in seconds)."""

    start_bpm: float
    natural_bpm: float
    floor_bpm: float
    basin: float = 0.08
    follow_seconds: float = 30.0
    relax_seconds: float = 120.0
    noise_bpm: float = 1.5
    reading_seconds: float = 5.0
    outlier_probability: float = 0.03
    outlier_bpm: float = 35.0
    dropout_at_s: float = 300.0
    dropout_seconds: float = 90.0


class SimulatedListener:
    """A listener's rate over time, and what its sensor reads."""

    def __init__(self, model: ListenerModel, rng: random.Random) -> None:
        self.model = model
        self.rate_bpm = model.start_bpm
        self.rng = rng

    def advance(self, tempo_bpm: float | None, dt: float) -> None:
        """Hear ``tempo_bpm`` for ``dt`` seconds (None: no beat, e.g. a held chord)."""
        model = self.model
        if tempo_bpm is not None and abs(tempo_bpm - self.rate_bpm) <= model.basin * self.rate_bpm:
            goal, tau = tempo_bpm, model.follow_seconds
        else:
            goal, tau = model.natural_bpm, model.relax_seconds
        self.rate_bpm += (goal - self.rate_bpm) * min(dt / tau, 1.0)
        self.rate_bpm = max(self.rate_bpm, model.floor_bpm)

    def reading(self, at_s: float) -> float | None:
        """The sensor's reading at ``at_s`` seconds into the session (None: dropout)."""
        model = self.model
        if model.dropout_at_s <= at_s < model.dropout_at_s + model.dropout_seconds:
            return None
        if self.rng.random() < model.outlier_probability:
            return self.rate_bpm + self.rng.choice((-1, 1)) * model.outlier_bpm
        return self.rate_bpm + self.rng.gauss(0.0, model.noise_bpm)


def population(
    assumed_start_bpm: float,
    *,
    count: int,
    seed: int,
    floor_bpm: float,
    follow_seconds: tuple[float, float],
    reading_seconds: float,
    start_spread: float = 0.12,
    basin: tuple[float, float] = (0.06, 0.12),
) -> list[ListenerModel]:
    """``count`` listeners around an assumed start rate, reproducible from ``seed``."""
    rng = random.Random(seed)
    listeners = []
    for _ in range(count):
        start = assumed_start_bpm * (1 + rng.uniform(-start_spread, start_spread))
        listeners.append(
            ListenerModel(
                start_bpm=round(start, 1),
                natural_bpm=round(start, 1),
                floor_bpm=floor_bpm,
                basin=rng.uniform(*basin),
                follow_seconds=rng.uniform(*follow_seconds),
                reading_seconds=reading_seconds,
                dropout_at_s=rng.uniform(120.0, 600.0),
            )
        )
    return listeners
