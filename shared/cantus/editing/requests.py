"""An ``EditRequest`` checked against the stored piece it edits: the typed edit, or an
``EditError`` naming the request field.

Bars are 1-based and inclusive on the wire (bar 1 is the first bar, as on the lead sheet);
the typed edits hold 0-based indices, as events do.
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.events.conversions import spec_form
from cantus.music.notes import MusicError
from cantus.music.styles import TEMPO_RANGE_BPM, Energy, Style
from cantus.render.palettes import PALETTES
from cantus.requests import MAX_THEME_CHARS, RequestError
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb


class EditError(RequestError):
    """An edit that cannot be made on this piece; ``field`` names the request field."""


@dataclass(frozen=True)
class RegenerateEdit:
    """Melody bars ``first`` .. ``last`` (0-based, inclusive) decoded anew, harmonised again;
    the lyric lines ``sung`` over them (indices) written again on the new notes."""

    first: int
    last: int
    sung: tuple[int, ...] = ()
    kind = "regenerate"

    def describe(self) -> str:
        described = f"melody of bars {self.first + 1}-{self.last + 1} composed anew, chords to fit"
        if self.sung:
            described += ", their lyrics written again to the new notes"
        return described


@dataclass(frozen=True)
class ReharmonizeEdit:
    """Chords of bars ``first`` .. ``last`` chosen again in ``style`` with ``energy``."""

    first: int
    last: int
    style: Style
    energy: Energy
    kind = "reharmonize"

    def describe(self) -> str:
        return (
            f"bars {self.first + 1}-{self.last + 1} harmonised again "
            f"({self.style.value}, {self.energy.value} energy)"
        )


@dataclass(frozen=True)
class SoundEdit:
    """The whole piece in ``palette`` at ``tempo_bpm`` (either may be unchanged)."""

    palette: str
    tempo_bpm: float
    kind = "change_sound"

    def describe(self) -> str:
        return f"palette {self.palette}, {self.tempo_bpm:g} bpm"


@dataclass(frozen=True)
class LyricsEdit:
    """The lyric lines starting in section ``section`` (0-based; bars ``first`` .. ``last``)
    written again on ``theme``."""

    section: int
    first: int
    last: int
    theme: str
    kind = "rewrite_lyrics"

    def describe(self) -> str:
        bars = f"bars {self.first + 1}-{self.last + 1}"
        return f"lyrics of section {self.section + 1} ({bars}) rewritten"


@dataclass(frozen=True)
class SectionSoundEdit:
    """The sections labelled ``section`` (0-based indices ``sections`` of the form plan;
    bars ``first`` .. ``last`` from the first one's start to the last one's end) in
    ``palette`` and/or at ``tempo_bpm`` (None: unchanged)."""

    section: str
    sections: tuple[int, ...]
    first: int
    last: int
    palette: str | None
    tempo_bpm: float | None
    kind = "change_sound"

    def describe(self) -> str:
        changes = []
        if self.palette is not None:
            changes.append(f"palette {self.palette}")
        if self.tempo_bpm is not None:
            changes.append(f"{self.tempo_bpm:g} bpm")
        return f"section {self.section}: {', '.join(changes)}"


Edit = RegenerateEdit | ReharmonizeEdit | SoundEdit | SectionSoundEdit | LyricsEdit


def validate_edit(request: api.EditRequest, spec: pb.PieceSpec, record: pb.PieceRecord) -> Edit:
    """The edit ``request`` asks of a piece with this ``spec`` and stored parts."""
    which = request.WhichOneof("edit")
    if which is None:
        raise EditError(
            "edit", "say what to change: regenerate, reharmonize, change_sound or rewrite_lyrics"
        )
    if which == "regenerate":
        if not request.regenerate.HasField("bars"):
            raise EditError("regenerate.bars", "give the bars to compose anew")
        first, last = _bars("regenerate.bars", request.regenerate.bars, spec.bars)
        pickup = spec.given_melody.pickup_ticks if spec.HasField("given_melody") else 0
        if first == 0 and pickup:
            raise EditError(
                "regenerate.bars.first_bar",
                f"bar 1 is a pickup (its last {pickup} ticks); a bar composed anew fills the "
                "whole bar, which would move the meter's downbeats mid-bar: start at bar 2",
            )
        if first == 0 and _opens_with_pickup(spec):
            raise EditError(
                "regenerate.bars.first_bar",
                "bar 1 is the pickup bar (the upbeat before the first phrase); a bar composed "
                "anew fills the whole bar and makes the first phrase a bar too long: start at "
                "bar 2",
            )
        return RegenerateEdit(first, last, tuple(_sung_lines(record, first, last)))
    if which == "reharmonize":
        edit = request.reharmonize
        if edit.HasField("bars"):
            first, last = _bars("reharmonize.bars", edit.bars, spec.bars)
        else:
            first, last = 0, spec.bars - 1
        try:
            style = Style(edit.style or spec.style)
        except ValueError:
            known = ", ".join(s.value for s in Style)
            raise EditError(
                "reharmonize.style", f"unknown style {edit.style!r} ({known})"
            ) from None
        try:
            energy = Energy(edit.energy or spec.energy)
        except ValueError:
            known = ", ".join(e.value for e in Energy)
            raise EditError(
                "reharmonize.energy", f"unknown energy {edit.energy!r} ({known})"
            ) from None
        return ReharmonizeEdit(first, last, style, energy)
    if which == "rewrite_lyrics":
        return _lyrics_edit(request.rewrite_lyrics, spec, record)
    sound = request.change_sound
    palette = sound.palette or spec.palette
    if sound.palette and sound.palette not in PALETTES:
        known = ", ".join(PALETTES)
        raise EditError("change_sound.palette", f"unknown palette {sound.palette!r} ({known})")
    tempo = sound.tempo_bpm if sound.HasField("tempo_bpm") else spec.tempo_bpm
    low, high = TEMPO_RANGE_BPM
    if not low <= tempo <= high:
        raise EditError(
            "change_sound.tempo_bpm", f"{tempo:g} is outside {low:g}..{high:g} beats per minute"
        )
    if not sound.palette and not sound.HasField("tempo_bpm"):
        raise EditError("change_sound", "give a palette, a tempo_bpm or both")
    if sound.section:
        return _section_sound(sound, spec)
    return SoundEdit(palette, tempo)


def _section_sound(sound: api.ChangeSound, spec: pb.PieceSpec) -> SectionSoundEdit:
    """The sections of the plan labelled ``sound.section``."""
    from cantus.events.conversions import spec_form

    plan = spec_form(spec)
    if plan is None or plan.total_bars != spec.bars:
        raise EditError(
            "change_sound.section",
            "the piece has no form plan, so no sections: change the whole piece's sound",
        )
    labels = [section.label for section in spec.form.sections]
    wanted = sound.section.strip()
    indices = tuple(i for i, label in enumerate(labels) if label == wanted)
    if not indices:  # "b" for "B", "Chorus" for "chorus"
        indices = tuple(i for i, label in enumerate(labels) if label.lower() == wanted.lower())
    if not indices and wanted.isdigit() and 1 <= int(wanted) <= len(labels):
        indices = (int(wanted) - 1,)  # a section by its number, as rewrite_lyrics names it
    if not indices:
        known = ", ".join(dict.fromkeys(labels))
        raise EditError(
            "change_sound.section", f"no section is labelled {sound.section!r} (sections: {known})"
        )
    if sound.HasField("tempo_bpm") and spec.tempo_end_bpm:
        raise EditError(
            "change_sound.tempo_bpm",
            "the piece's tempo ramps to tempo_end_bpm (a session piece): a section's tempo "
            "can only be set in a piece at one tempo; change the whole piece's tempo",
        )
    sections = [spec.form.sections[i] for i in indices]
    return SectionSoundEdit(
        section=labels[indices[0]],
        sections=indices,
        first=sections[0].first_bar,
        last=sections[-1].first_bar + sections[-1].bar_count - 1,
        palette=sound.palette or None,
        tempo_bpm=sound.tempo_bpm if sound.HasField("tempo_bpm") else None,
    )


def _bars(field: str, bars: api.BarRange, total: int) -> tuple[int, int]:
    """0-based first and last bar of a 1-based inclusive range within ``total`` bars."""
    if bars.first_bar < 1 or bars.first_bar > total:
        raise EditError(f"{field}.first_bar", f"{bars.first_bar} is not a bar of 1..{total}")
    if bars.last_bar < bars.first_bar or bars.last_bar > total:
        raise EditError(
            f"{field}.last_bar", f"{bars.last_bar} is not a bar of {bars.first_bar}..{total}"
        )
    return bars.first_bar - 1, bars.last_bar - 1


def _sung_lines(record: pb.PieceRecord, first: int, last: int) -> list[int]:
    """Indices of the sung lyric lines over any of bars ``first`` .. ``last`` (new notes
    there need new syllables: whole lines, as a word never crosses a line)."""
    return [
        line.meta.index
        for line in record.lyric_lines
        if line.syllables
        and line.first_bar <= last
        and first <= line.first_bar + line.bar_count - 1
    ]


def _lyrics_edit(edit: api.RewriteLyrics, spec: pb.PieceSpec, record: pb.PieceRecord) -> LyricsEdit:
    from cantus.events.conversions import spec_form

    if not spec.lyrics_theme.strip():
        raise EditError("rewrite_lyrics", "the piece has no lyrics (compose it with a theme)")
    theme = edit.theme.strip() or spec.lyrics_theme
    if len(theme) > MAX_THEME_CHARS:
        raise EditError("rewrite_lyrics.theme", f"longer than {MAX_THEME_CHARS} characters")
    plan = spec_form(spec)
    spans = (
        [(s.first_bar, s.end_bar - 1) for s in plan.sections]
        if plan is not None and plan.total_bars == spec.bars
        else [(0, spec.bars - 1)]
    )
    if not 1 <= edit.section <= len(spans):
        raise EditError(
            "rewrite_lyrics.section", f"{edit.section} is not a section of 1..{len(spans)}"
        )
    first, last = spans[edit.section - 1]
    if not any(first <= line.first_bar <= last and line.syllables for line in record.lyric_lines):
        raise EditError("rewrite_lyrics.section", f"section {edit.section} has no sung lines")
    return LyricsEdit(edit.section - 1, first, last, theme)


def _opens_with_pickup(spec: pb.PieceSpec) -> bool:
    """Whether the piece's plan opens with a pickup section (``form.with_pickup``)."""
    try:
        plan = spec_form(spec)
    except MusicError:
        return False  # the editor refuses a piece whose plan does not read, elsewhere
    return plan is not None and plan.pickup_bars == 1
