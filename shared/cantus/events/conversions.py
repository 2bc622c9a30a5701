"""Conversions between the music domain (``cantus.music``) and the event messages."""

from __future__ import annotations

from collections.abc import Iterable

from cantus.music.form import Cadence, FormPlan, KeyArea, Section, Treatment
from cantus.music.notes import Bar, Key, Meter, Mode, MusicError, Note
from cantus.music.styles import Energy, Style
from cantus.v1 import events_pb2 as pb

_MODE_TO_PB = {Mode.MAJOR: pb.MODE_MAJOR, Mode.MINOR: pb.MODE_MINOR}
_PB_TO_MODE = {value: key for key, value in _MODE_TO_PB.items()}


def mode_to_pb(mode: Mode) -> pb.Mode:
    return _MODE_TO_PB[mode]


def spec_key(spec: pb.PieceSpec) -> Key:
    return Key(spec.key_tonic, _PB_TO_MODE[spec.mode])


def spec_meter(spec: pb.PieceSpec) -> Meter:
    return Meter(spec.meter_numerator, spec.meter_denominator)


def spec_style(spec: pb.PieceSpec) -> Style:
    return Style(spec.style)


def spec_energy(spec: pb.PieceSpec) -> Energy:
    return Energy(spec.energy)


def form_to_pb(plan: FormPlan) -> pb.FormPlan:
    return pb.FormPlan(
        name=plan.name,
        sections=[
            pb.FormSection(
                label=s.label,
                first_bar=s.first_bar,
                bar_count=s.bars,
                key_tonic=s.key.tonic,
                mode=mode_to_pb(s.key.mode),
                key_area=s.key_area.value,
                energy=s.energy.value,
                treatment=s.treatment.value,
                cadence=s.cadence.value,
                source_section=-1 if s.source is None else s.source,
            )
            for s in plan.sections
        ],
    )


def pb_to_form(plan: pb.FormPlan, home_key: Key) -> FormPlan:
    """The plan in ``plan``; ``MusicError`` naming the problem if it is not a valid plan."""
    try:
        sections = tuple(
            Section(
                label=s.label,
                first_bar=s.first_bar,
                bars=s.bar_count,
                key=Key(s.key_tonic, _PB_TO_MODE[s.mode]),
                key_area=KeyArea(s.key_area),
                energy=Energy(s.energy),
                treatment=Treatment(s.treatment),
                cadence=Cadence(s.cadence),
                source=None if s.source_section < 0 else s.source_section,
            )
            for s in plan.sections
        )
    except (KeyError, ValueError) as error:
        raise MusicError(f"invalid form plan: {error}") from None
    return FormPlan(plan.name, sections, home_key)


def spec_form(spec: pb.PieceSpec) -> FormPlan | None:
    """The spec's form plan, or None for a spec without one (written before forms existed)."""
    if not spec.HasField("form") or not spec.form.sections:
        return None
    return pb_to_form(spec.form, spec_key(spec))


def note_to_pb(note: Note) -> pb.Note:
    return pb.Note(
        onset_ticks=note.onset,
        pitch=note.pitch,
        duration_ticks=note.duration,
        velocity=note.velocity,
    )


def pb_to_note(note: pb.Note) -> Note:
    return Note(note.onset_ticks, note.pitch, note.duration_ticks, note.velocity)


def notes_to_pb(notes: Iterable[Note]) -> list[pb.Note]:
    return [note_to_pb(note) for note in notes]


def pb_to_notes(notes: Iterable[pb.Note]) -> list[Note]:
    return [pb_to_note(note) for note in notes]


def pb_to_bar(notes: Iterable[pb.Note], meter: Meter) -> Bar:
    """A ``Bar`` from event notes; raises ``MusicError`` if they do not fit the meter."""
    return Bar(meter, tuple(sorted(pb_to_notes(notes))))
