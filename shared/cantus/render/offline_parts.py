"""A piece's parts assembled in process from its melody bars and the harmony model's beats,
voiced as the harmony service voices them: for tools (benchmarks, evaluations) that render
pieces without the stack."""

from __future__ import annotations

from collections.abc import Sequence

from cantus.events.conversions import notes_to_pb
from cantus.harmony.cadence import bar_harmony_plan
from cantus.harmony.context import beats_to_spans
from cantus.harmony.voicing import bass_line, tune_before, voice_chords
from cantus.music.chords import roman_numeral
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key
from cantus.music.styles import Energy, Style
from cantus.render.piece import PieceParts
from cantus.v1 import events_pb2 as pb


def parts_from_beats(
    spec: pb.PieceSpec,
    bars: Sequence[Bar],
    beats: Sequence[Sequence[tuple[int, int]]],
    plan: FormPlan | None,
    *,
    key: Key,
    style: Style,
    energy: Energy,
) -> PieceParts:
    """``PieceParts`` of ``bars`` under the chords ``beats`` (per bar, the model's
    ``(chord class, inversion)`` per beat in ``key``): voicing led from bar to bar under the
    melody, the bass by each bar's planned energy, one empty lyric line per bar."""
    melody: dict[int, pb.MelodyBar] = {}
    harmony: dict[int, pb.HarmonyBar] = {}
    lyrics: dict[int, pb.LyricLine] = {}
    voicing_before: tuple[int, ...] | None = None
    melody_before: tuple[int, ...] = ()
    for index, bar in enumerate(bars):
        bar_plan = bar_harmony_plan(plan, index, bar, home_key=key, energy=energy)
        spans = beats_to_spans(bar, beats[index], key)
        voicing = voice_chords(
            spans,
            style=style,
            previous_voicing=voicing_before,
            melody=bar,
            melody_before=melody_before,
        )
        last_onset = max((n.onset for n in voicing), default=None)
        if last_onset is not None:
            voicing_before = tuple(sorted(n.pitch for n in voicing if n.onset == last_onset))
        melody_before = tune_before(bar, bar.meter.bar_ticks)
        meta = pb.EventMeta(piece_id="0" * 32, index=index)
        melody[index] = pb.MelodyBar(meta=meta, spec=spec, notes=notes_to_pb(bar.notes))
        harmony[index] = pb.HarmonyBar(
            meta=meta,
            spec=spec,
            chords=[
                pb.ChordSpan(
                    onset_ticks=s.onset,
                    duration_ticks=s.duration,
                    symbol=str(s.symbol),
                    roman=roman_numeral(s.symbol, key),
                    pitch_classes=sorted(s.symbol.pitch_classes),
                )
                for s in spans
            ],
            voicing=notes_to_pb(voicing),
            bass=notes_to_pb(bass_line(spans, bar.meter, style=style, energy=bar_plan.energy)),
        )
        lyrics[index] = pb.LyricLine(meta=meta, spec=spec, first_bar=index, bar_count=1)
    return PieceParts(spec, melody, harmony, lyrics, None)
