"""One bar's harmony as the harmony service makes it: chords from the model (the rules where
the model cannot answer or the bar is a bar of rests), in the bar's key area and energy
with its planned cadence, then the voicing and the bass.

The harmony service calls this for every bar of a piece as it arrives; an edit (issue #18)
calls it for the bars it harmonises again, with the history of the bars before them read
from the stored piece. ``HarmonyContext`` is what the bar needs of the bars before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cantus.events.conversions import notes_to_pb
from cantus.harmony.cadence import bar_harmony_plan
from cantus.harmony.client import HarmonyModelError
from cantus.harmony.context import HarmonizedBar, Window, beats_to_spans, planned_window
from cantus.harmony.features import beat_spans
from cantus.harmony.rules import ChordSpan, harmonize_bar
from cantus.harmony.serving import HISTORY_BARS
from cantus.harmony.vocabulary import (
    CHORD_CLASSES,
    chord_inversion,
    chord_to_class,
    class_to_chord,
)
from cantus.harmony.voicing import bass_line, tune_before, voice_chords
from cantus.music.chords import ChordQuality, ChordSymbol, roman_numeral
from cantus.music.form import FormPlan
from cantus.music.notes import Bar, Key, Note
from cantus.music.styles import Energy, Style
from cantus.v1 import events_pb2 as pb

RULES = "rules-v1"

AskModel = Callable[[Window], Awaitable[list[tuple[int, int]]]]
"""(chord class, inversion) per beat of the window's bar, e.g. ``HarmonyClient.harmonize``;
raises ``HarmonyModelError`` when it cannot answer."""


@dataclass
class HarmonyContext:
    """What one bar's harmony needs of the bars before it: up to ``HISTORY_BARS`` bars with
    their (chord class, inversion) per beat relative to the piece's key (``complete`` while
    no older bar was dropped), the last chord's voicing (MIDI pitches) and the melody just
    before the bar."""

    history: list[HarmonizedBar] = field(default_factory=list)
    complete: bool = True
    voicing: tuple[int, ...] | None = None
    melody_before: tuple[int, ...] = ()

    def advance(self, bar: Bar, spans: list[ChordSpan], voicing: list[Note], key: Key) -> None:
        """Take in the bar just harmonised (``key``: the piece's home key)."""
        self.history = [*self.history, HarmonizedBar(bar, tuple(span_beats(bar, spans, key)))]
        if len(self.history) > HISTORY_BARS:
            self.history = self.history[-HISTORY_BARS:]
            self.complete = False
        last_onset = max((n.onset for n in voicing), default=None)
        chord = sorted(n.pitch for n in voicing if n.onset == last_onset)
        self.voicing = tuple(chord) if chord else self.voicing
        self.melody_before = tuple(tune_before(bar, bar.meter.bar_ticks))


@dataclass(frozen=True)
class BarHarmony:
    """One bar's chords, voicing and bass, and which harmoniser chose the chords (and why)."""

    spans: list[ChordSpan]
    voicing: list[Note]
    bass: list[Note]
    harmonizer: str
    cadence: str | None
    """``half`` or ``authentic`` in the bar's key area, None where no cadence ends here."""
    key_area: Key
    model_error: str | None = None

    def to_pb(self, meta: pb.EventMeta, spec: pb.PieceSpec) -> pb.HarmonyBar:
        return pb.HarmonyBar(
            meta=meta,
            spec=spec,
            chords=[
                pb.ChordSpan(
                    onset_ticks=span.onset,
                    duration_ticks=span.duration,
                    symbol=str(span.symbol),
                    roman=span.roman,
                    pitch_classes=sorted(span.symbol.pitch_classes),
                )
                for span in self.spans
            ],
            voicing=notes_to_pb(self.voicing),
            bass=notes_to_pb(self.bass),
            harmonizer=self.harmonizer,
        )


async def harmonize_piece_bar(
    index: int,
    bar: Bar,
    next_bar: Bar | None,
    context: HarmonyContext,
    ask_model: AskModel,
    *,
    bars: int,
    key: Key,
    style: Style,
    energy: Energy,
    plan: FormPlan | None,
    model_version: str,
) -> BarHarmony:
    """Harmonise bar ``index`` of a piece of ``bars`` bars (``next_bar``: its lookahead,
    None for the last bar). ``plan`` (None for a spec without one) sets the bar's key area,
    energy and cadence; chords and Roman numerals stay in the piece's ``key``. ``context``
    is read, not changed (``HarmonyContext.advance`` takes the bar in)."""
    is_final = index == bars - 1
    previous = last_chord(context.history, key)
    bar_plan = bar_harmony_plan(plan, index, bar, home_key=key, energy=energy, next_bar=next_bar)
    model_error = None
    if bar.is_rest:
        spans = harmonize_bar(
            bar,
            bar_plan.key,
            previous=previous,
            style=style,
            is_final=is_final,
            constraints=bar_plan.constraints,
        )
        harmonizer = f"{RULES} (bar of rests: the chord before is held)"
    else:
        window = planned_window(
            context.history,
            bar,
            next_bar=next_bar,
            plan=bar_plan,
            home_key=key,
            style=style,
            is_final=is_final,
            history_is_complete=context.complete,
        )
        try:
            beats = await ask_model(window)
            if any(not 0 <= chord < CHORD_CLASSES for chord, _ in beats):
                raise HarmonyModelError(f"chord classes out of range: {beats}")
            if bar_plan.violations(beats, bar.meter):
                raise HarmonyModelError(f"the answer {beats} breaks the bar's cadence")
            beats = bar_plan.root_position(beats, bar.meter)
            spans = beats_to_spans(bar, beats, bar_plan.key)
            harmonizer = model_version
        except HarmonyModelError as error:
            model_error = str(error)
            spans = harmonize_bar(
                bar,
                bar_plan.key,
                previous=previous,
                style=style,
                next_bar=next_bar,
                is_final=is_final,
                constraints=bar_plan.constraints,
            )
            harmonizer = f"{RULES} (fallback: the harmony model did not answer)"
    if bar_plan.key != key:  # Roman numerals in the piece's key
        spans = [
            ChordSpan(s.onset, s.duration, s.symbol, roman_numeral(s.symbol, key)) for s in spans
        ]
    voicing = voice_chords(
        spans,
        style=style,
        previous_voicing=context.voicing,
        melody=bar,
        melody_before=context.melody_before,
    )
    bass = bass_line(spans, bar.meter, style=style, energy=bar_plan.energy)
    return BarHarmony(
        spans=spans,
        voicing=voicing,
        bass=bass,
        harmonizer=harmonizer,
        cadence=bar_plan.cadence.value if bar_plan.cadence else None,
        key_area=bar_plan.key,
        model_error=model_error,
    )


def span_beats(bar: Bar, spans: list[ChordSpan], key: Key) -> list[tuple[int, int]]:
    """(chord class, inversion) of each beat under ``spans``, for the model's history; a
    chord outside the model's vocabulary is read as its nearest triad."""
    beats = []
    for onset, _ in beat_spans(bar.meter):
        chord = next(s.symbol for s in spans if s.onset <= onset < s.onset + s.duration)
        try:
            beats.append((chord_to_class(chord, key), chord_inversion(chord)))
        except ValueError:
            beats.append((chord_to_class(ChordSymbol(chord.root, _triad_of(chord)), key), 0))
    return beats


def _triad_of(chord: ChordSymbol) -> ChordQuality:
    return ChordQuality.MINOR if 3 in chord.quality.intervals else ChordQuality.MAJOR


def last_chord(history: list[HarmonizedBar], key: Key) -> ChordSymbol | None:
    if not history or not history[-1].beats:
        return None
    chord_class, inversion = history[-1].beats[-1]
    return class_to_chord(chord_class, key, inversion) if chord_class >= 0 else None
