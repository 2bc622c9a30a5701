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


@dataclass(frozen=True)
class ReportingModel:
    """A listener who says what they want instead of wearing a sensor (a focus session):
    a comfortable tempo and energy, and how they tell the session.

    * **Comfort.** The music is comfortable while its tempo is within ``tempo_tolerance``
      of ``comfort_bpm`` and the energy heard within ``energy_tolerance`` of
      ``preferred_energy``. Energy heard is the playing piece's composed energy plus
      ``ENERGY_PER_DB`` per dB of the stream's level (an intensity change re-levels the
      stream, ``cantus.stations.intensity``).
    * **Reports.** After ``patience_seconds`` of discomfort, and at most every
      ``report_gap_seconds``, the listener reports once: "too fast" or "too slow" for
      the tempo; for the energy, the intensity slider moved by ``slider_step`` ("more
      calm" when both the tempo and the energy are too high).
    * **Mood.** Every ``mood_seconds`` a self-report: arousal ``0.5 + 1.5 × (energy heard
      - preferred)``, valence ``0.7`` when comfortable else ``0.4``, each with Gaussian noise
      ``mood_noise`` and clipped to 0..1.
    """

    comfort_bpm: float
    preferred_energy: float
    tempo_tolerance: float = 0.04
    energy_tolerance: float = 0.08
    patience_seconds: float = 20.0
    report_gap_seconds: float = 45.0
    slider_step: float = 0.15
    mood_seconds: float = 60.0
    mood_noise: float = 0.05


ENERGY_PER_DB = 0.016
"""Energy heard per dB of stream level (intensity 0, -9 dB, takes 0.14 off; intensity 1,
+4 dB, adds 0.064), as measured by ``cantus eval energy`` (``docs/results/energy.md``): six
pieces spread over the styles and levels re-struck for a level change (velocities through
FluidSynth's curve), their mix's loudness and ``midi_energy`` measured, 0.016 per dB of mix
loudness (least squares through 0). It depends on the pieces: quiet folk pieces alone gave
0.011 (the arrangement before #17's return change) and 0.007 (after it), their soft notes
reaching the velocity floor of ``midi_energy``'s loudness term. The one assumption left is
that a stream made louder is heard as the same piece struck harder; the melody's density
and the arrangement's activity do not change with the level."""


class ReportingListener:
    """What a ``ReportingModel`` listener reports, second by second."""

    def __init__(self, model: ReportingModel, rng: random.Random) -> None:
        self.model = model
        self.rng = rng
        self.slider = 0.5
        self.uncomfortable_for = 0.0
        self.last_report_s = -1e9
        self.last_mood_s = -1e9

    def tempo_off(self, tempo_bpm: float) -> int:
        """+1 too fast, -1 too slow, 0 comfortable."""
        band = self.model.tempo_tolerance * self.model.comfort_bpm
        return (tempo_bpm > self.model.comfort_bpm + band) - (
            tempo_bpm < self.model.comfort_bpm - band
        )

    def energy_off(self, energy: float) -> int:
        band = self.model.energy_tolerance
        return (energy > self.model.preferred_energy + band) - (
            energy < self.model.preferred_energy - band
        )

    def comfortable(self, tempo_bpm: float, energy: float) -> bool:
        return not self.tempo_off(tempo_bpm) and not self.energy_off(energy)

    def hear(self, at_s: float, tempo_bpm: float, energy: float, dt: float) -> list[tuple]:
        """One stretch of ``dt`` seconds of music; the reports it prompts, as
        ``(kind, value, valence, arousal)`` with kind a ``SignalKind`` name."""
        model = self.model
        reports: list[tuple] = []
        tempo_off, energy_off = self.tempo_off(tempo_bpm), self.energy_off(energy)
        self.uncomfortable_for = (
            0.0 if not (tempo_off or energy_off) else (self.uncomfortable_for + dt)
        )
        if (
            self.uncomfortable_for >= model.patience_seconds
            and at_s - self.last_report_s >= model.report_gap_seconds
        ):
            self.last_report_s = at_s
            if tempo_off > 0 and energy_off > 0:
                reports.append(("MORE_CALM", 0.0, 0.0, 0.0))
                self.slider = max(0.0, self.slider - 0.15)
            else:
                if tempo_off:
                    reports.append(("TOO_FAST" if tempo_off > 0 else "TOO_SLOW", 0.0, 0.0, 0.0))
                if energy_off:
                    self.slider = min(max(self.slider - energy_off * model.slider_step, 0.0), 1.0)
                    reports.append(("INTENSITY", round(self.slider, 3), 0.0, 0.0))
        if at_s - self.last_mood_s >= model.mood_seconds:
            self.last_mood_s = at_s
            arousal = 0.5 + 1.5 * (energy - model.preferred_energy)
            valence = 0.7 if not (tempo_off or energy_off) else 0.4
            noisy = [min(max(v + self.rng.gauss(0.0, model.mood_noise), 0.0), 1.0)
                     for v in (valence, arousal)]  # fmt: skip
            reports.append(("MOOD", 0.0, round(noisy[0], 3), round(noisy[1], 3)))
        return reports


def reporting_population(
    comfort_bpm: float,
    preferred_energy: float,
    *,
    count: int,
    seed: int,
    tempo_spread: float = 0.1,
    energy_spread: float = 0.2,
) -> list[ReportingModel]:
    """``count`` reporting listeners whose comfort is up to ``tempo_spread`` (a fraction)
    and ``energy_spread`` off the session's own, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [
        ReportingModel(
            comfort_bpm=round(comfort_bpm * (1 + rng.uniform(-tempo_spread, tempo_spread)), 1),
            preferred_energy=round(
                min(max(preferred_energy + rng.uniform(-energy_spread, energy_spread), 0.0), 1.0),
                3,
            ),
            patience_seconds=rng.uniform(10.0, 40.0),
            report_gap_seconds=rng.uniform(30.0, 90.0),
        )
        for _ in range(count)
    ]
