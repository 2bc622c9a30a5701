"""The lead sheet of a piece: melody, chord symbols above it and lyrics under its notes.

``leadsheet_musicxml`` builds the score with music21 and writes MusicXML (what notation
programs open). ``engrave_leadsheet`` engraves that MusicXML to PDF and PNG with
LilyPond: ``musicxml2ly`` (shipped with LilyPond) converts it, ``lilypond`` typesets.
We convert from MusicXML rather than writing LilyPond by hand or using music21's own
LilyPond writer because music21 already solves the hard part (splitting odd durations
into tied notes, tuplets, spelling) and musicxml2ly maps ``<harmony>`` to a ChordNames
staff and ``<lyric>`` to lyrics reliably. LilyPond's start-up costs more than a short lead
sheet's typesetting, so one long-lived LilyPond engraves them all
(``cantus.render.lilypond_server``).

A piece with a form plan (``cantus.music.form``) gets a rehearsal mark with each section's
label on the section's first bar, a double barline where a section ends a period or a strain
(``_section_ends``: not after a phrase that pauses on a half cadence), and, where a section
moves to another key area, a text direction naming it ("G major (dominant)"); the key
signature stays the piece's. Its last note has a fermata, as the render holds it past the
barline. Every lead sheet ends on a final barline.

Needs the Debian package ``lilypond`` for engraving (MusicXML needs only music21).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cantus.music.form import STRAIN_BARS, Cadence, FormPlan, Treatment
from cantus.music.notes import PITCH_CLASS_NAMES, TICKS_PER_QUARTER, Bar, Key, Meter, Mode
from cantus.music.pickup import pickup_bars
from cantus.render.lilypond_server import EngravingFailed, ServerUnavailable, engrave_with_server
from cantus.render.subprocesses import ProgramTimeout, run_program

if TYPE_CHECKING:
    from music21.style import TextStyle

_CHORD_TEXT = re.compile(r"^([A-Ga-g])([#b♯♭]?)(.*?)(?:/([A-Ga-g])([#b♯♭]?))?$")
# musicxml2ly 2.24 writes triads with an explicit fifth (``c:5``, ``a:m5``), which
# LilyPond reads as power chords and prints "C5"; drop that fifth.
_LILY_TRIAD_FIFTH = re.compile(r"(?<=[a-gs\d.]):((?:m|dim|aug)?)5(?=[\s/}|])")
_LILY_STANZA = re.compile(r'\\set stanza = "[^"]*"\s*')


class LeadsheetError(RuntimeError):
    """The lead sheet could not be built or engraved; the message says why."""


class EngravingUnavailable(LeadsheetError):
    """LilyPond is not installed."""


def _quarters(ticks: int) -> Fraction:
    return Fraction(ticks, TICKS_PER_QUARTER)


def _m21_accidental(accidental: str) -> str:
    return {"#": "#", "♯": "#", "b": "-", "♭": "-"}.get(accidental, "")


def chord_symbol(text: str) -> Any:
    """A music21 ``ChordSymbol`` for chord text such as ``Bb``, ``F#m7``, ``Ebmaj7/G`` or
    ``N.C.`` (music21 spells flats ``-``, so ``Bb`` is rewritten ``B-``). Text music21
    does not know keeps its root (and bass) and shows the original text."""
    from music21 import harmony

    text = text.strip()
    if text.upper() in ("N.C.", "NC", "N.C", "-", ""):
        return harmony.NoChord()
    match = _CHORD_TEXT.match(text)
    if not match:
        raise LeadsheetError(f"chord symbol {text!r} does not start with a root A-G")
    root, accidental, kind, bass, bass_accidental = match.groups()
    root = root.upper() + _m21_accidental(accidental)
    bass_part = f"/{bass.upper()}{_m21_accidental(bass_accidental or '')}" if bass else ""
    try:
        return harmony.ChordSymbol(root + kind + bass_part)
    except Exception:  # music21 raises assorted errors on unknown chord kinds
        symbol = harmony.ChordSymbol(root + bass_part)
        symbol.chordKindStr = kind
        return symbol


def _span_onset_and_text(span: Any) -> tuple[int, str]:
    """Onset (ticks from the bar's start) and chord text of one chord span: an
    ``(onset, text)`` or ``(onset, duration, chord, ...)`` tuple, or an object with
    ``onset``/``onset_ticks`` and ``symbol``/``chord``."""
    if isinstance(span, tuple | list):
        onset, chord = (span[0], span[2]) if len(span) >= 3 else (span[0], span[1])
    else:
        onset = getattr(span, "onset", getattr(span, "onset_ticks", 0))
        chord = getattr(span, "symbol", None) or getattr(span, "chord", None)
    if isinstance(chord, str):
        return int(onset), chord
    for attribute in ("text", "name", "symbol"):
        value = getattr(chord, attribute, None)
        if isinstance(value, str):
            return int(onset), value
    return int(onset), str(chord)


def _m21_key(key: Key) -> Any:
    from music21 import key as m21key

    name = PITCH_CLASS_NAMES[key.tonic].replace("b", "-")
    return m21key.Key(name if key.mode is Mode.MAJOR else name.lower(), key.mode.value)


def _spelled_pitch(midi: int, scale_names: dict[int, str]) -> Any:
    """The pitch spelled as the key's scale spells it (Ab, not G#, in Eb major);
    chromatic notes keep music21's default spelling."""
    from music21 import pitch

    spelled = pitch.Pitch(midi=midi)
    wanted = scale_names.get(midi % 12)
    if wanted and spelled.name != wanted:
        for candidate in spelled.getAllCommonEnharmonics():
            if candidate.name == wanted:
                return candidate
    return spelled


def _section_marks(form: FormPlan | None, bar_count: int) -> dict[int, list[Any]]:
    """music21 directions to put at the start of each bar (0-based) for ``form``: a rehearsal
    mark with the section's label, and a text naming the key area where it changes."""
    from music21 import expressions

    marks: dict[int, list[Any]] = {}
    if form is None:
        return marks
    previous_area = None
    for section in form.sections:
        if section.first_bar >= bar_count:
            break
        if section.treatment is Treatment.PICKUP:
            continue  # an anacrusis, not a section a player looks for
        directions = marks.setdefault(section.first_bar, [])
        directions.append(expressions.RehearsalMark(section.label))
        area = (section.key, section.key_area)
        if previous_area is not None and area != previous_area:
            words = expressions.TextExpression(f"{section.key.name} ({section.key_area.value})")
            # a TextExpression's style is a TextStyle (music21 annotates it as Style)
            cast("TextStyle", words.style).fontStyle = "italic"
            words.placement = "above"
            directions.append(words)
        previous_area = area
    return marks


def _section_ends(form: FormPlan | None, bar_count: int) -> set[int]:
    """Bars (0-based) that end a section with a double barline: a section a strain long or
    longer, one that closes on the tonic, or one the next leaves for another key area. A
    one-phrase section that pauses on a half cadence is the first half of a period (the A
    of a 16-bar A A' B A'', the first phrase of a drawn ``A B C D``): the tune goes on, and
    a folk tune is written with a plain barline there. The piece's last bar and a pickup bar
    are not section ends."""
    if form is None:
        return set()
    ends = set()
    for section, following in zip(form.sections, form.sections[1:], strict=False):
        if section.treatment is Treatment.PICKUP or section.end_bar >= bar_count:
            continue
        goes_on = (
            section.bars < STRAIN_BARS
            and section.cadence is Cadence.HALF
            and following.key == section.key
        )
        if not goes_on:
            ends.add(section.end_bar - 1)
    return ends


def build_leadsheet_score(
    melody_bars: Sequence[Bar],
    chord_spans_per_bar: Sequence[Sequence[Any]],
    lyrics: Sequence[tuple[int, str]],
    key: Key,
    meter: Meter,
    tempo: float,
    *,
    title: str | None = None,
    form: FormPlan | None = None,
    tempo_marks: Mapping[int, float] | None = None,
    stanzas: Mapping[int, str] | None = None,
) -> Any:
    """The lead sheet as a music21 ``Score`` (see ``leadsheet_musicxml``)."""
    from music21 import bar as m21bar
    from music21 import expressions, metadata, note, stream
    from music21 import meter as m21meter
    from music21 import tempo as m21tempo

    m21_key = _m21_key(key)
    scale_names = {p.pitchClass: p.name for p in m21_key.pitches}
    lyric_at = dict(lyrics)
    marks = _section_marks(form, len(melody_bars))
    for bar_index, name in (stanzas or {}).items():
        tune = expressions.TextExpression(f"调寄《{name}》")
        tune.placement = "above"
        marks.setdefault(bar_index, []).append(tune)
    section_ends = _section_ends(form, len(melody_bars))
    score = stream.Score()
    score.insert(0, metadata.Metadata(title=title or "Cantus", composer="Cantus"))
    part = stream.Part()
    part.partName = "Melody"
    bar_start = 0
    # A plan's pickup bar is written as an anacrusis: a short measure 0 holding the upbeat.
    opening = form is not None and form.pickup_bars and pickup_bars(melody_bars)
    pickup_rest = melody_bars[0].notes[0].onset if opening else 0
    for index, bar in enumerate(melody_bars):
        bar_ticks = bar.meter.bar_ticks
        skipped = pickup_rest if index == 0 else 0
        measure = stream.Measure(number=index if opening else index + 1)
        if skipped:
            measure.paddingLeft = _quarters(skipped)
            measure.showNumber = stream.enums.ShowNumber.NEVER  # implicit="yes": no number
        if index == 0:
            measure.insert(0, m21meter.TimeSignature(str(meter)))
            measure.insert(0, m21_key)
            first_bpm = (tempo_marks or {}).get(0, tempo)
            measure.insert(0, m21tempo.MetronomeMark(number=round(first_bpm, 1), referent=1.0))
        elif bar.meter != melody_bars[index - 1].meter:
            measure.insert(0, m21meter.TimeSignature(str(bar.meter)))
        for direction in marks.get(index, ()):
            measure.insert(0, direction)
        if index and tempo_marks and index in tempo_marks:
            bpm = tempo_marks[index]
            # back to the piece's tempo after a section at its own: "a tempo"
            text = "a tempo" if abs(bpm - tempo) < 1e-9 else None
            measure.insert(0, m21tempo.MetronomeMark(text=text, number=round(bpm, 1), referent=1.0))
        if index in section_ends:
            measure.rightBarline = m21bar.Barline("double")
        last = index == len(melody_bars) - 1
        if last:
            measure.rightBarline = m21bar.Barline("final")
        position = skipped
        for melody_note in bar.notes:
            if melody_note.onset > position:
                rest = note.Rest(quarterLength=_quarters(melody_note.onset - position))
                measure.insert(_quarters(position - skipped), rest)
            m21_note = note.Note(quarterLength=_quarters(melody_note.duration))
            m21_note.pitch = _spelled_pitch(melody_note.pitch, scale_names)
            if last and form is not None and melody_note is bar.notes[-1]:
                # a planned piece holds its final note past the barline (the render's
                # fermata, ``cantus.render.arrangement.fermata_ticks``)
                fermata = expressions.Fermata()
                fermata.type = "upright"  # over the note (music21's default is "inverted")
                m21_note.expressions.append(fermata)
            syllable = lyric_at.get(bar_start + melody_note.onset)
            if syllable:
                m21_note.addLyric(syllable)  # "sing-" / "-ing": music21 sets the syllabic
            measure.insert(_quarters(melody_note.onset - skipped), m21_note)
            position = melody_note.end
        if position < bar_ticks:
            measure.insert(
                _quarters(position - skipped),
                note.Rest(quarterLength=_quarters(bar_ticks - position)),
            )
        spans = chord_spans_per_bar[index] if index < len(chord_spans_per_bar) else ()
        placed = [_span_onset_and_text(span) for span in spans]
        if skipped:  # the chord sounding at the upbeat, over it
            before = [(o, t) for o, t in placed if o <= skipped]
            placed = [(o, t) for o, t in placed if o > skipped] + before[-1:]
        for onset, text in placed:
            measure.insert(_quarters(max(onset - skipped, 0)), chord_symbol(text))
        part.append(measure)
        bar_start += bar_ticks
    score.insert(0, part)
    return score


def leadsheet_musicxml(
    melody_bars: Sequence[Bar],
    chord_spans_per_bar: Sequence[Sequence[Any]],
    lyrics: Sequence[tuple[int, str]],
    key: Key,
    meter: Meter,
    tempo: float,
    *,
    title: str | None = None,
    form: FormPlan | None = None,
    tempo_marks: Mapping[int, float] | None = None,
    stanzas: Mapping[int, str] | None = None,
) -> bytes:
    """MusicXML (UTF-8 bytes) of the lead sheet.

    ``melody_bars``: the melody bar by bar (onsets from each bar's start, ticks).
    ``chord_spans_per_bar``: per bar, chord spans as ``(onset ticks in the bar, text)``
    (or harmony ``ChordSpan`` objects); the text is a chord symbol such as ``F#m7``.
    ``lyrics``: ``(tick from the piece's start, syllable)``; a syllable sits under the
    melody note starting at that tick. ``tempo``: quarter-note beats per minute.
    ``form``: the piece's plan of sections (rehearsal marks, double barlines, key areas).
    ``tempo_marks``: bar (0-based) → quarter-note bpm from that bar on, where a section
    has its own tempo (an edit, issue #18) and where the piece's tempo returns after it:
    a metronome mark over the bar (the first bar gets ``tempo`` unless it has a mark).
    ``stanzas``: bar (0-based) → the ci stanza (词牌) sung from there (``cantus.lyrics.ci``),
    written over the bar as 调寄《name》."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = build_leadsheet_score(
        melody_bars,
        chord_spans_per_bar,
        lyrics,
        key,
        meter,
        tempo,
        title=title,
        form=form,
        tempo_marks=tempo_marks,
        stanzas=stanzas,
    )
    try:
        return GeneralObjectExporter(score).parse()
    except Exception as error:  # music21 raises its own exception types
        raise LeadsheetError(f"music21 could not write MusicXML: {error}") from error


@dataclass(frozen=True)
class EngravedLeadsheet:
    """The engraved lead sheet: PDF bytes, PNG bytes of each page (``png`` is page 1)
    and how long LilyPond took, seconds."""

    pdf: bytes
    png_pages: tuple[bytes, ...]
    seconds: float

    @property
    def png(self) -> bytes:
        return self.png_pages[0]


def tidy_lilypond_source(source: str) -> str:
    """Fix what musicxml2ly gets wrong for a lead sheet: triads printed as power chords, a
    "1." verse number before single-verse lyrics, the title repeated as the subtitle, and
    LilyPond's advertising tagline."""
    source = _LILY_TRIAD_FIFTH.sub(lambda m: f":{m.group(1)}" if m.group(1) else "", source)
    source = _LILY_STANZA.sub("", source)
    title = re.search(r"^\s*title\s*=\s*(.+)$", source, re.MULTILINE)
    if title:
        source = re.sub(
            r"^\s*subtitle\s*=\s*" + re.escape(title.group(1).strip()) + r"\s*\n",
            "",
            source,
            flags=re.MULTILINE,
        )
    return source.replace("\\header {", "\\header {\n    tagline = ##f", 1)


def _run(command: list[str], folder: Path, timeout_s: float) -> None:
    try:
        done = run_program(command, label=Path(command[0]).name, cwd=folder, timeout_s=timeout_s)
    except ProgramTimeout as error:
        raise LeadsheetError(str(error)) from None
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()[-800:]
        raise LeadsheetError(f"{command[0]} failed with status {done.returncode}: {stderr}")


def engrave_leadsheet(
    musicxml: bytes, *, resolution_dpi: int = 110, timeout_s: float = 120.0
) -> EngravedLeadsheet:
    """Engrave MusicXML to PDF and PNG (``resolution_dpi`` dots per inch, A4 pages) with
    LilyPond; raises ``EngravingUnavailable`` if LilyPond is not installed."""
    converter, engraver = shutil.which("musicxml2ly"), shutil.which("lilypond")
    if not converter or not engraver:
        raise EngravingUnavailable(
            "LilyPond is not installed (musicxml2ly and lilypond not on PATH): "
            "install the Debian package lilypond"
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cantus-leadsheet-") as tmp:
        folder = Path(tmp)
        (folder / "sheet.musicxml").write_bytes(musicxml)
        _run([converter, "--output=sheet.ly", "sheet.musicxml"], folder, timeout_s)
        source = folder / "sheet.ly"
        source.write_text(tidy_lilypond_source(source.read_text()))
        options = ("--formats=pdf,png", f"-dresolution={resolution_dpi}")
        try:
            engrave_with_server(engraver, options, source.resolve(), timeout_s)
        except EngravingFailed as error:
            raise LeadsheetError(str(error)) from None
        except ServerUnavailable:  # typeset by a lilypond of its own instead
            _run([engraver, *options, "-o", "sheet", "sheet.ly"], folder, timeout_s)
        pdf = (folder / "sheet.pdf").read_bytes()
        pages = sorted(
            folder.glob("sheet-page*.png"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)
        )
        if not pages and (folder / "sheet.png").exists():
            pages = [folder / "sheet.png"]
        if not pages:
            raise LeadsheetError("lilypond wrote no PNG")
        png_pages = tuple(page.read_bytes() for page in pages)
    return EngravedLeadsheet(pdf, png_pages, time.perf_counter() - started)
