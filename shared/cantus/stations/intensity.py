"""Intensity mid-stream (#17): a listening session's intensity is heard within seconds, in
the piece that is playing, not only from the next piece decided.

Two things follow an intensity change (``ListenerSignal`` INTENSITY, or "more calm", which
lowers it):

* the **next pieces** are composed at the new energy (``cantus.stations.control``);
* the **audio not yet streamed**, the playing piece's rest included, is re-mixed at the new
  level: ``IntensityStage`` sits between the station's mixer and its HLS encoder, holds the
  mixed audio back until playback is within ``lead_seconds`` of it, and applies a gain that
  ramps (raised cosine, ``RAMP_SECONDS``) from the old level to the new one, starting at the
  first frame it has not yet released. Within a piece only the level changes; its notes
  change with the next piece.

The delay from a signal to the change being heard is therefore at most the audio released
ahead of playback: ``lead_seconds`` plus up to one HLS segment still in the encoder, plus the
ramp, from the session's first second. The prebuffer is kept in hand, not in the stream:
before playback starts only the lead is released (``release_horizon``) and the audio the
stage holds counts toward the prebuffer (``Program.start_playback``). Before, the stream was
released the prebuffer plus the lead ahead, so a change asked in playback's first
``prebuffer_seconds`` waited for that audio (20.4 s, asked 7.6 s into playback, in the
integration session). ``IntensityStage.set_intensity`` returns where, in stream seconds, the
change starts, so the station logs the delay it gives each signal (``Adjustment.reason`` in
the outcome log).

Levels: intensity 0.5 is the pieces as mastered; 0 is ``-MAX_CUT_DB``, 1 ``+MAX_BOOST_DB``
(linear in dB between). A boost could push the mastered true peak (-1 dBTP) over full
scale, so what the gain lifts past ``LIMIT`` is soft-limited (tanh) below 1.0.
"""

from __future__ import annotations

import numpy as np

from cantus.stations.config import StationConfig
from cantus.stations.feeds import playback_seconds
from cantus.stations.sessions import SessionConfig
from cantus.v1 import station_pb2 as st

MAX_CUT_DB = 9.0
"""Intensity 0: this many dB under the mastered level."""
MAX_BOOST_DB = 4.0
"""Intensity 1: this many dB over the mastered level (soft-limited)."""
RAMP_SECONDS = 0.5
"""The level moves to a new intensity's over this long (no click, no jump)."""
LIMIT = 0.89
"""Samples the gain lifts beyond this (about -1 dBFS) are soft-limited below 1.0."""


def intensity_gain_db(intensity: float) -> float:
    """The level for an intensity 0..1, dB relative to the mastered pieces."""
    intensity = min(max(intensity, 0.0), 1.0)
    if intensity >= 0.5:
        return (intensity - 0.5) * 2 * MAX_BOOST_DB
    return (intensity - 0.5) * 2 * MAX_CUT_DB


class IntensityStage:
    """Mixed stream audio held until playback nears it, released at the asked intensity.

    Frame positions count from this stage's first frame (the station process's start);
    ``release(until)`` gives the frames up to position ``until`` (all with ``None``)."""

    def __init__(self, sample_rate: int, intensity: float = 0.5) -> None:
        self.sample_rate = sample_rate
        self._pending: list[np.ndarray] = []
        self.pending_frames = 0
        self.released_frames = 0
        self._gain = _db_to_gain(intensity_gain_db(intensity))
        """The level at the release point."""
        self._target = self._gain
        self._ramp_left = 0
        self._ramp_from = self._gain
        self._ramp_frames = max(round(RAMP_SECONDS * sample_rate), 1)

    def push(self, frames: np.ndarray) -> None:
        if len(frames):
            self._pending.append(np.asarray(frames, dtype=np.float32))
            self.pending_frames += len(frames)

    def set_intensity(self, intensity: float) -> float:
        """Move to ``intensity``'s level from the next frame released; returns that frame's
        position, seconds from the stage's start."""
        target = _db_to_gain(intensity_gain_db(intensity))
        if target != self._target:
            self._ramp_from, self._target = self._gain, target
            self._ramp_left = self._ramp_frames
        return self.released_frames / self.sample_rate

    @property
    def gain_db(self) -> float:
        """The level asked for now (the ramp's end), dB."""
        return float(20 * np.log10(self._target))

    def release(self, until: int | None = None) -> np.ndarray:
        """The held frames up to position ``until`` (every one with ``None``), levelled."""
        count = self.pending_frames if until is None else until - self.released_frames
        count = min(max(count, 0), self.pending_frames)
        if count == 0:
            return np.zeros((0, 2), np.float32)
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        out, rest = joined[:count], joined[count:]
        self._pending = [rest] if len(rest) else []
        self.pending_frames -= count
        self.released_frames += count
        return self._level(out)

    def _level(self, frames: np.ndarray) -> np.ndarray:
        gains = np.full(len(frames), self._target, np.float32)
        if self._ramp_left:
            done = self._ramp_frames - self._ramp_left
            n = min(self._ramp_left, len(frames))
            phase = (np.arange(done, done + n) + 0.5) / self._ramp_frames
            shape = 0.5 - 0.5 * np.cos(np.pi * phase)
            gains[:n] = self._ramp_from + (self._target - self._ramp_from) * shape
            self._ramp_left -= n
        self._gain = float(gains[-1]) if len(gains) else self._gain
        if np.allclose(gains, 1.0):
            return frames
        shaped = gains.reshape((-1,) + (1,) * (frames.ndim - 1))
        out = frames * shaped
        return _soft_limit(out) if self._target > 1.0 or self._ramp_from > 1.0 else out


def intensity_adjustment(
    before: float,
    after: float,
    *,
    starts_at_seconds: float,
    playback_seconds: float,
) -> st.Adjustment:
    """The outcome log's record of an intensity change: its level and how long after the
    signal it is heard (the change starts at stream position ``starts_at_seconds``;
    playback is at ``playback_seconds``; audio already played cannot wait, so at least 0)."""
    heard_after = max(starts_at_seconds - playback_seconds, 0.0)
    gain = intensity_gain_db(after)
    return st.Adjustment(
        gain_db=round(gain, 2),
        heard_after_seconds=round(heard_after, 2),
        reason=(
            f"intensity {before:.2f} -> {after:.2f}: {gain:+.1f} dB from stream "
            f"{starts_at_seconds:.1f} s, heard {heard_after:.1f} s after the signal"
        ),
    )


def release_horizon(
    status: st.StationStatus,
    config: StationConfig,
    session: SessionConfig,
    now_ns: int | None = None,
) -> float:
    """How far (stream seconds) a session's audio may be released now: ``lead`` ahead of
    playback (at least two HLS segments, so the encoder always has a whole one to cut), and
    before playback starts, the lead from the stream's start (what the stage holds counts
    toward the prebuffer, ``Program.start_playback``)."""
    lead = max(session.intensity_lead_seconds, 2 * config.segment_seconds)
    if not status.stream_started_unix_ns:
        return lead
    return playback_seconds(status, now_ns) + lead


def _db_to_gain(db: float) -> float:
    return float(10 ** (db / 20))


def _soft_limit(frames: np.ndarray) -> np.ndarray:
    magnitude = np.abs(frames)
    over = magnitude > LIMIT
    if not over.any():
        return frames
    headroom = 1.0 - LIMIT
    limited = LIMIT + headroom * np.tanh((magnitude - LIMIT) / headroom)
    return np.where(over, np.sign(frames) * limited, frames).astype(np.float32)
