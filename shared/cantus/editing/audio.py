"""Audio of an edited piece: only the bars that change are rendered, and spliced into the
previous version's mix with short equal-power crossfades at both edges.

The span is synthesised from one bar before its first changed bar (so notes and reverb
that ring into it are there, as in the whole piece) to its last changed bar, plus the
crossfade; it is mastered like a piece and brought to the level the previous mix had over
the same bars (RMS), so the splice neither jumps in loudness nor re-masters the rest.
An edit that changes the whole piece's sound (palette, tempo) renders every segment, as
the render service does (``streamed_piece_audio``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from cantus.render.piece import TAIL_SECONDS, PieceParts

CROSSFADE_SECONDS = 0.08
"""Equal-power crossfade at each edge of a spliced span."""


@dataclass(frozen=True)
class SplicedAudio:
    """The new version's whole mix, float32 ``[samples, 2]``, and what was rendered for it:
    bars ``rendered_bars`` (first, last; 0-based; None: nothing, the mix is unchanged) and
    the seconds of audio synthesised."""

    audio: np.ndarray
    sample_rate: int
    rendered_bars: tuple[int, int] | None
    rendered_seconds: float


def wav_to_audio(wav: bytes) -> tuple[np.ndarray, int]:
    """A stored piece.wav as float32 ``[samples, 2]`` and its sample rate."""
    import soundfile

    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio[:, :2]), int(rate)


def _equal_power(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in gains over ``n`` samples (their squares sum to one)."""
    t = (np.arange(n, dtype=np.float32) + 0.5) / max(n, 1)
    return np.cos(t * np.pi / 2)[:, None], np.sin(t * np.pi / 2)[:, None]


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0


def splice_bars(
    previous: np.ndarray,
    sample_rate: int,
    parts: PieceParts,
    first: int,
    last: int,
    *,
    preset: str,
) -> SplicedAudio:
    """``previous`` (the last version's mix, same tempo and length) with bars ``first`` ..
    ``last`` of ``parts`` rendered anew and spliced in."""
    from cantus.render.mix import master
    from cantus.render.synth import SAMPLE_RATE, render_stems

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the stored mix is at {sample_rate} Hz, the synthesiser at {SAMPLE_RATE}")
    bar_ticks = parts.bar_ticks
    start = max(0, first - 1)  # one bar of pre-roll: what rings into the first changed bar
    end = last + 1
    to_end = end == parts.bar_count
    tail = TAIL_SECONDS if to_end else CROSSFADE_SECONDS
    stems = render_stems(
        parts.tracks(start, end - start),
        tempo_bpm=parts.tempo_map.from_tick(start * bar_ticks),
        end_tick=(end - start) * bar_ticks,
        tail_seconds=tail,
    )
    # one limiter pass: the span is brought to the previous mix's level below anyway, so
    # the passes that home in on the preset's loudness would be wasted
    fresh = master(stems, sample_rate, preset, max_passes=1).audio
    offset = round(parts.seconds_before_bar(start) * sample_rate)
    cut_in = round(parts.seconds_before_bar(first) * sample_rate)
    cut_out = round(parts.seconds_before_bar(end) * sample_rate)
    # the level the previous mix had over the changed bars
    old_span = previous[cut_in:cut_out]
    new_span = fresh[cut_in - offset : cut_out - offset]
    if _rms(new_span) > 0 and _rms(old_span) > 0:
        fresh = fresh * np.float32(_rms(old_span) / _rms(new_span))
    fade = round(CROSSFADE_SECONDS * sample_rate)
    if to_end:
        out = np.zeros((cut_in + len(fresh) - (cut_in - offset), 2), np.float32)
        out[:cut_in] = previous[:cut_in]
    else:
        out = previous.copy()
    fade_out, fade_in = _equal_power(fade)
    # in: the previous mix fades out over the first changed bar's first samples
    head = min(fade, len(out) - cut_in)
    out[cut_in : cut_in + head] = (
        previous[cut_in : cut_in + head] * fade_out[:head]
        + fresh[cut_in - offset : cut_in - offset + head] * fade_in[:head]
    )
    body_end = len(out) if to_end else cut_out
    body = fresh[cut_in - offset + head : body_end - offset]
    out[cut_in + head : cut_in + head + len(body)] = body
    if not to_end:
        # out: the new bars' last sound fades into the previous mix from the next bar on
        n = min(fade, len(fresh) - (cut_out - offset), len(out) - cut_out)
        out[cut_out : cut_out + n] = (
            fresh[cut_out - offset : cut_out - offset + n] * fade_out[:n]
            + previous[cut_out : cut_out + n] * fade_in[:n]
        )
    return SplicedAudio(
        audio=out,
        sample_rate=sample_rate,
        rendered_bars=(start, last),
        rendered_seconds=len(fresh) / sample_rate,
    )


def whole_piece_audio(parts: PieceParts, segment_bars: int, *, preset: str) -> SplicedAudio:
    """Every segment rendered and mastered as the render service streams them."""
    from cantus.render.piece import streamed_piece_audio
    from cantus.render.synth import SAMPLE_RATE

    audio = streamed_piece_audio(parts, segment_bars, preset=preset)
    return SplicedAudio(
        audio=audio,
        sample_rate=SAMPLE_RATE,
        rendered_bars=(0, parts.bar_count - 1),
        rendered_seconds=len(audio) / SAMPLE_RATE,
    )
