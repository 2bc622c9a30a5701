"""Audio of an edited piece: only the bars that change are rendered, and spliced into the
previous version's mix with short equal-power crossfades at both edges.

The span is synthesised from one bar before its first changed bar (so notes and reverb
that ring into it are there, as in the whole piece) to its last changed bar, plus the
crossfade; it is mastered like a piece and brought to the level the previous mix had over
the same bars (RMS), so the splice neither jumps in loudness nor re-masters the rest.
An edit that changes the whole piece's sound (palette, tempo) renders every segment, as
the render service does (``streamed_piece_audio``). An edit of one section's sound
(``splice_spans``) renders the section (and, for a tempo, the bar that ramps into it);
the bars after it are the previous mix, moved to where the new tempo puts them.

A sung piece's spans carry the voice too: each span's vocal stem is sung from the notes of
its bars and the bars either side (leads before a bar line, the glide from the note
before), at the same samples as the streamed stem (``VocalTrack`` renders a piece in
pieces exactly as at once), and mixed as the lead as the streamed segments are. The
editor chooses the spans (``vocal_changes``: the bars whose sung notes change, and their
neighbours) and keeps a splice only where its joins do not click (``join_steps``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cantus.render.piece import TAIL_SECONDS, PieceParts

CROSSFADE_SECONDS = 0.08
"""Equal-power crossfade at each edge of a spliced span."""

SPLICE_CLICK_RATIO = 1.5
"""A join clicks when its largest step is over this many times the largest in the music
around it (``join_steps``' ratio); a sung piece's edit is then rendered whole."""


@dataclass(frozen=True)
class SplicedAudio:
    """The new version's whole mix, float32 ``[samples, 2]``, and what was rendered for it:
    bars ``rendered_bars`` (first, last; 0-based; None: nothing, the mix is unchanged) and
    the seconds of audio synthesised."""

    audio: np.ndarray
    sample_rate: int
    rendered_bars: tuple[int, int] | None
    rendered_seconds: float
    spans: tuple[tuple[int, int], ...] = ()
    """The spans of bars rendered (first, last; 0-based, pre-roll bar included)."""
    joins: tuple[int, ...] = ()
    """Where each crossfade between the previous mix and rendered audio starts (samples)."""
    vocals: np.ndarray | None = None
    """The whole new vocal stem (mono, as mixed); None without vocals (or where the previous
    version's stem could not be read back to splice it)."""


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
    return splice_spans(previous, sample_rate, parts, parts, [(first, last)], preset=preset)


def splice_spans(
    previous: np.ndarray,
    sample_rate: int,
    old: PieceParts,
    parts: PieceParts,
    spans: Sequence[tuple[int, int]],
    *,
    preset: str,
    previous_vocals: np.ndarray | None = None,
) -> SplicedAudio:
    """``previous`` (the mix of ``old``) with each span of bars (first, last; 0-based,
    ascending, apart) of ``parts`` rendered anew and spliced in.

    Between spans the two versions' bars are alike and at the same tempo, but may start
    earlier or later (a section at another tempo before them): there the previous mix is
    copied, shifted to where the new version's tempo map puts it (to the nearest sample).

    ``previous_vocals``: the previous version's vocal stem (mono, at the level it was
    mixed at, as long as ``previous``); given, and ``parts`` sung, the new stem is spliced
    the same way (``SplicedAudio.vocals``), each span's voice as sung for its mix.
    """
    from cantus.render.mix import master, vocal_profiles
    from cantus.render.synth import SAMPLE_RATE, render_stems

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the stored mix is at {sample_rate} Hz, the synthesiser at {SAMPLE_RATE}")
    bar_ticks = parts.bar_ticks
    fade = round(CROSSFADE_SECONDS * sample_rate)
    fade_out, fade_in = _equal_power(fade)
    # the layers spliced alike: the mix, and the vocal stem (as a column) where there is one
    before = [previous]
    if parts.vocals and previous_vocals is not None:
        stem = np.zeros((len(previous), 1), np.float32)
        stem[: min(len(previous), len(previous_vocals)), 0] = previous_vocals[: len(previous)]
        before.append(stem)
    chunks: list[list[np.ndarray]] = [[] for _ in before]
    length = 0  # samples of the new mix so far
    old_pos = 0  # the previous mix's sample at the new mix's ``length``
    rendered = 0
    joins: list[int] = []

    def new_at(bar: int) -> int:
        return round(parts.seconds_before_bar(bar) * sample_rate)

    def old_at(bar: int) -> int:
        return round(old.seconds_before_bar(bar) * sample_rate)

    def add(layers: Sequence[np.ndarray]) -> None:
        nonlocal length
        for out, layer in zip(chunks, layers, strict=True):
            out.append(layer)
        length += len(layers[0])

    def keep(first: int, stop: int) -> None:
        add([layer[first:stop] for layer in before])

    def crossfade(a: Sequence[np.ndarray], b: Sequence[np.ndarray], n: int) -> None:
        add([x[:n] * fade_out[:n] + y[:n] * fade_in[:n] for x, y in zip(a, b, strict=True)])

    for first, last in spans:
        start = max(0, first - 1)  # one bar of pre-roll: what rings into the first changed bar
        end = last + 1
        to_end = end == parts.bar_count
        stems = render_stems(
            parts.tracks(start, end - start),
            tempo_bpm=parts.tempo_map.from_tick(start * bar_ticks),
            end_tick=(end - start) * bar_ticks,
            tail_seconds=TAIL_SECONDS if to_end else CROSSFADE_SECONDS,
        )
        profiles = None
        if parts.vocals:
            stems["vocals"] = span_vocals(parts, start, end, new_at(start), stems, sample_rate)
            profiles = vocal_profiles(parts.palette.name)
        # one limiter pass: the span is brought to the previous mix's level below anyway, so
        # the passes that home in on the preset's loudness would be wasted
        fresh = master(
            stems, sample_rate, preset, max_passes=1, profiles=profiles, palette=parts.palette.name
        ).audio
        rendered += len(fresh)
        offset = new_at(start)
        cut_in, cut_out = new_at(first), new_at(end)
        # the level the previous mix had over the changed bars
        old_span = previous[old_at(first) : old_at(end)]
        new_span = fresh[cut_in - offset : cut_out - offset]
        if _rms(new_span) > 0 and _rms(old_span) > 0:
            fresh = fresh * np.float32(_rms(old_span) / _rms(new_span))
        # the voice is not levelled: it is the stem before the mix, as the whole piece's
        new = [fresh, stems["vocals"][: len(fresh), :1]] if len(before) > 1 else [fresh]
        # the unchanged bars before the span, as they were
        kept = cut_in - length
        keep(old_pos, old_pos + kept)
        old_pos += kept
        # in: the previous mix fades out over the first changed bar's first samples
        head = min(fade, len(fresh) - (cut_in - offset), len(previous) - old_pos)
        joins.append(length)
        crossfade([layer[old_pos:] for layer in before], [x[cut_in - offset :] for x in new], head)
        body_end = offset + len(fresh) if to_end else cut_out
        add([x[cut_in - offset + head : body_end - offset] for x in new])
        if to_end:
            old_pos = len(previous)
            break
        # out: the new bars' last sound fades into the previous mix from the next bar on
        old_pos = old_at(end)
        n = min(fade, len(fresh) - (cut_out - offset), len(previous) - old_pos)
        joins.append(length)
        crossfade([x[cut_out - offset :] for x in new], [layer[old_pos:] for layer in before], n)
        old_pos += n
    keep(old_pos, len(previous))
    out = np.concatenate(chunks[0]).astype(np.float32, copy=False)
    vocals = np.concatenate(chunks[1])[:, 0].astype(np.float32) if len(chunks) > 1 else None
    return SplicedAudio(
        audio=out,
        sample_rate=sample_rate,
        rendered_bars=(max(0, spans[0][0] - 1), spans[-1][1]),
        rendered_seconds=rendered / sample_rate,
        spans=tuple((max(0, a - 1), b) for a, b in spans),
        joins=tuple(joins),
        vocals=vocals,
    )


def span_vocals(
    parts: PieceParts,
    start: int,
    end: int,
    offset: int,
    stems: dict[str, np.ndarray],
    sample_rate: int,
) -> np.ndarray:
    """The vocal stem (stereo, as the mix takes it) of the samples ``stems`` cover, which
    start at sample ``offset`` of the piece: bars ``start`` .. ``end - 1`` and what rings
    on. Sung from the notes of bars ``start - 1`` .. ``end`` (the lookahead bar's leads
    start before its bar line); what the voice makes before ``offset`` is dropped."""
    from cantus.render.vocals import LOOKAHEAD_BARS, VocalTrack

    samples = len(next(iter(stems.values())))
    notes = parts.sung_notes(start, end - start + LOOKAHEAD_BARS)
    track = VocalTrack(parts.spec.lyrics_language or "en", sample_rate)
    track.render_until(offset, notes)
    voice = track.render_until(offset + samples, notes)
    return np.repeat(voice[:, None], 2, axis=1)


def vocal_changes(old: PieceParts, new: PieceParts) -> list[int]:
    """Bars (0-based) whose sung notes differ between ``old`` and ``new`` (another syllable,
    pitch, octave, level, or timing within the bar), with the bar before and after each
    (a note's lead, glide and coda depend on its neighbours)."""
    if not new.vocals:
        return []
    if not old.vocals or old.spec.lyrics_language != new.spec.lyrics_language:
        return list(range(new.bar_count))

    def sung(parts: PieceParts, bar: int) -> list[tuple]:
        begin, finish = parts.seconds_before_bar(bar), parts.seconds_before_bar(bar + 1)
        return [
            (
                round(n.onset - begin, 6),
                round(n.end - begin, 6),
                n.pitch,
                n.velocity,
                n.phones,
                n.continues,
                n.phrase_end,
                round(n.level_db, 6),
            )
            for n in parts.sung_notes(bar, 1)
            if begin - 1e-9 <= n.onset < finish - 1e-9
        ]

    differ = [bar for bar in range(new.bar_count) if sung(old, bar) != sung(new, bar)]
    return sorted({b for bar in differ for b in (bar - 1, bar, bar + 1) if 0 <= b < new.bar_count})


def merge_spans(bars: Sequence[int], *, gap: int = 2) -> list[tuple[int, int]]:
    """Sorted bars as spans (first, last), spans fewer than ``gap`` bars apart joined (a
    span's pre-roll bar must not reach into the span before it)."""
    spans: list[tuple[int, int]] = []
    for bar in sorted(set(bars)):
        if spans and bar - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], bar)
        else:
            spans.append((bar, bar))
    return spans


JOIN_WINDOW_SECONDS = 0.05
"""How much unspliced audio either side of a crossfade a join's steps are compared with."""


def join_steps(audio: SplicedAudio) -> list[dict[str, float]]:
    """How each splice sounds at its edges: a click is a sample-to-sample step larger than
    the music makes around it. For each crossfade (``joins``), ``step`` is the largest
    step (either channel, full scale 1.0) at its first and last sample, ``around`` the
    largest step in the ``JOIN_WINDOW_SECONDS`` of audio before and after the crossfade,
    ``ratio`` their quotient (at most 1: nothing stands out of the music; a click would
    be many times it), ``piece_ratio`` the step over the 99.9th percentile of the whole
    mix's steps (as ``cantus bench render`` measures segment joints)."""
    x = audio.audio
    fade = round(CROSSFADE_SECONDS * audio.sample_rate)
    window = round(JOIN_WINDOW_SECONDS * audio.sample_rate)
    steps = np.abs(np.diff(x, axis=0)).max(axis=1) if len(x) > 1 else np.zeros(0)
    typical = float(np.percentile(steps, 99.9)) if len(steps) else 0.0
    found = []
    for join in audio.joins:
        # steps[k] is the step from sample k to k + 1: into the crossfade and out of it
        edges = [k for k in (join - 1, join + fade - 1) if 0 <= k < len(steps)]
        step = float(max((steps[k] for k in edges), default=0.0))
        around = np.concatenate(
            [
                steps[max(0, join - 1 - window) : max(0, join - 1)],
                steps[join + fade : join + fade + window],
            ]
        )
        level = float(around.max()) if len(around) else 0.0
        found.append(
            {
                "at_seconds": round(join / audio.sample_rate, 3),
                "step": round(step, 5),
                "around": round(level, 5),
                "ratio": round(step / level, 3) if level > 0 else 0.0,
                "piece_ratio": round(step / typical, 3) if typical > 0 else 0.0,
            }
        )
    return found


def whole_piece_audio(parts: PieceParts, segment_bars: int, *, preset: str) -> SplicedAudio:
    """Every segment rendered and mastered as the render service streams them."""
    from cantus.render.piece import streamed_piece_render
    from cantus.render.synth import SAMPLE_RATE

    audio, vocals = streamed_piece_render(parts, segment_bars, preset=preset)
    return SplicedAudio(
        audio=audio,
        sample_rate=SAMPLE_RATE,
        rendered_bars=(0, parts.bar_count - 1),
        rendered_seconds=len(audio) / SAMPLE_RATE,
        vocals=vocals,
    )
