"""A station's continuous audio: pieces joined end to start with an equal-power crossfade.

Audio arrives per piece in program order, a segment at a time (float32 frames × 2 channels
at one sample rate). The mixer passes it straight on, except the last ``crossfade`` seconds
of each piece, which it holds back until the next piece's first seconds arrive and then
emits mixed (the outgoing piece fading out while the next fades in). The stream is thus
shorter than the pieces by one crossfade per join, and never has a gap between pieces.

A listening session's pieces join on the beat instead (``hold``): a piece's whole release
(the held final chord and its decay, everything after its last barline) overlaps the next
piece, which comes in quickly on what would have been the next downbeat, so the pulse goes
on across the join while the old chord dies away under it.
"""

from __future__ import annotations

import numpy as np

CHANNELS = 2


class StationMixer:
    """Joins pieces with crossfades. ``feed`` returns the frames ready to be streamed."""

    def __init__(self, sample_rate: int, crossfade_seconds: float) -> None:
        self.sample_rate = sample_rate
        self.crossfade_frames = round(crossfade_seconds * sample_rate)
        self._tail = np.zeros((0, CHANNELS), np.float32)  # held end of the previous piece
        self._held = np.zeros((0, CHANNELS), np.float32)  # held end of the current piece
        self._head_needed = 0  # frames of the current piece still to mix into _tail
        self.frames_out = 0
        self._default_frames = self.crossfade_frames
        self._fade_in_frames: int | None = None  # the current piece's hold: its successor's
        self._join_fade_in: int | None = None  # fade-in of the piece mixing into _tail

    def hold(self, frames: int, fade_in_frames: int) -> None:
        """For the current piece only, before it is fed: overlap its last ``frames`` with the
        next piece, which fades in over ``fade_in_frames`` (not over the whole overlap)."""
        self.crossfade_frames = max(frames, 0)
        self._fade_in_frames = fade_in_frames

    def start_piece(self) -> None:
        """Begin the next piece; the previous one's held tail waits to be mixed into it."""
        self._tail = self._held
        self._held = np.zeros((0, CHANNELS), np.float32)
        self._head_needed = len(self._tail)
        self._join_fade_in = self._fade_in_frames
        self.crossfade_frames, self._fade_in_frames = self._default_frames, None

    def feed(self, frames: np.ndarray) -> np.ndarray:
        """Add the current piece's next frames; returns the frames ready to stream."""
        frames = _as_stereo(frames)
        ready: list[np.ndarray] = []
        if self._head_needed:
            take = min(self._head_needed, len(frames))
            start = len(self._tail) - self._head_needed
            tail_part = self._tail[start : start + take]
            ready.append(
                _crossfade(tail_part, frames[:take], start, len(self._tail), self._join_fade_in)
            )
            self._head_needed -= take
            frames = frames[take:]
            if not self._head_needed:
                self._tail = np.zeros((0, CHANNELS), np.float32)
        pending = np.concatenate([self._held, frames]) if len(self._held) else frames
        keep = min(self.crossfade_frames, len(pending))
        ready.append(pending[: len(pending) - keep])
        self._held = pending[len(pending) - keep :]
        out = np.concatenate(ready) if ready else np.zeros((0, CHANNELS), np.float32)
        self.frames_out += len(out)
        return out

    def flush(self) -> np.ndarray:
        """Everything held (the end of the stream: no next piece to fade into)."""
        rest = [self._tail[len(self._tail) - self._head_needed :], self._held]
        self._tail = np.zeros((0, CHANNELS), np.float32)
        self._held = np.zeros((0, CHANNELS), np.float32)
        self._head_needed = 0
        out = np.concatenate(rest)
        self.frames_out += len(out)
        return out

    @property
    def held_frames(self) -> int:
        return len(self._held) + self._head_needed


def _crossfade(
    tail: np.ndarray, head: np.ndarray, offset: int, length: int, fade_in: int | None = None
) -> np.ndarray:
    """Equal-power crossfade of ``tail`` (fading out) and ``head`` (fading in); ``offset`` is
    where these frames sit within a fade of ``length`` frames. With ``fade_in`` the head
    comes in over its first ``fade_in`` frames only (a beat-aligned join)."""
    frames = np.arange(len(head)) + offset + 0.5
    position = frames / max(length, 1)
    rising = position if fade_in is None else np.minimum(frames / max(fade_in, 1), 1.0)
    gain_in = np.sin(rising * np.pi / 2)[:, None].astype(np.float32)
    gain_out = np.cos(position * np.pi / 2)[:, None].astype(np.float32)
    return tail * gain_out + head * gain_in


def _as_stereo(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 1:
        frames = frames[:, None]
    if frames.shape[1] == 1:
        frames = np.repeat(frames, CHANNELS, axis=1)
    return frames[:, :CHANNELS]


def resample(frames: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Stereo float32 frames at ``target`` Hz (linear interpolation; rates rarely differ)."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 1:
        frames = np.repeat(frames[:, None], 2, axis=1)
    if rate == target or not len(frames):
        return frames
    count = round(len(frames) * target / rate)
    positions = np.linspace(0, len(frames) - 1, count)
    return np.stack(
        [
            np.interp(positions, np.arange(len(frames)), frames[:, c])
            for c in range(frames.shape[1])
        ],
        axis=1,
    ).astype(np.float32)


def fade_out(frames: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """``frames`` with their last ``seconds`` faded to silence (a raised-cosine gain, so
    the fade has no corner where it starts); the whole piece when it is shorter."""
    count = min(len(frames), round(seconds * sample_rate))
    if count <= 0:
        return frames
    gain = 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, count, dtype=np.float32)))
    faded = frames.copy()
    shape = (count, 1) if faded.ndim == 2 else (count,)
    faded[-count:] = faded[-count:] * gain.reshape(shape)
    return faded
