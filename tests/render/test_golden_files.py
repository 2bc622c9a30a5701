"""Golden files for what the render service writes of a piece: ``piece.mid`` (all four
arranged parts, humanised as the service does by default) must come out byte for byte as
tests/data/golden/piece.mid, and the lead sheet's MusicXML as leadsheet.musicxml once the
parts music21 varies between runs and versions are normalised away (``normalise_musicxml``).

Regenerate the golden files with ``make golden`` (``CANTUS_UPDATE_GOLDEN=1 pytest`` on them)."""

from __future__ import annotations

import re

from cantus.music.form import Cadence, FormPlan, KeyArea, Section, Treatment
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy
from cantus.render.leadsheet import leadsheet_musicxml
from cantus.render.piece import PieceParts

from .piece_fixtures import piece_events, spec, table_events

GOLDEN_PIECE_MIDI = "piece.mid"
GOLDEN_LEADSHEET = "leadsheet.musicxml"
GOLDEN_LEADSHEET_FORM = "leadsheet_form.musicxml"
GOLDEN_PIECE_FORM_MIDI = "piece_form.mid"

LEADSHEET_KEY = Key(3, Mode.MAJOR)
"""Eb major: Ab, Bb and Eb are spelled flat."""
LEADSHEET_METER = Meter(3, 4)
LEADSHEET_BARS = (
    Bar(LEADSHEET_METER, (Note(0, 63, 480), Note(480, 68, 480), Note(960, 70, 480))),
    # A triplet, a rest and a chromatic note.
    Bar(
        LEADSHEET_METER,
        (Note(0, 67, 160), Note(160, 65, 160), Note(320, 63, 160), Note(960, 66, 480)),
    ),
    # A meter change, and 1.25 quarters: a quarter tied to a sixteenth, then a rest.
    Bar(Meter(2, 4), (Note(0, 65, 240), Note(240, 63, 600))),
)
"""Three bars: 3/4, 3/4, 2/4."""
LEADSHEET_CHORDS = (
    ((0, "Eb"),),
    ((0, "Ab"), (960, "Bb7")),
    ((0, "Ebmaj7/G"), (480, "N.C.")),
)
"""Chord spans per bar: (onset in the bar, chord text), a slash chord and no chord among them."""
LEADSHEET_LYRICS = (
    (0, "Hap-"),
    (480, "-py"),
    (960, "day"),
    (1440, "sing"),
    (2400, "on"),
    (2880, "sun-"),
    (3120, "-ny"),
)
"""(tick from the start of the piece, syllable) in notation form: "-py" ends "Hap-"."""

LEADSHEET_FORM = FormPlan(
    "AB",
    (
        Section("A", 0, 2, LEADSHEET_KEY, KeyArea.HOME, Energy.MID, Treatment.NEW, Cadence.HALF),
        Section(
            "B",
            2,
            1,
            KeyArea.DOMINANT.key(LEADSHEET_KEY),
            KeyArea.DOMINANT,
            Energy.HIGH,
            Treatment.NEW,
            Cadence.AUTHENTIC,
        ),
    ),
    LEADSHEET_KEY,
)
"""Two sections over the three bars: a rehearsal mark on bars 1 and 3, a double barline after
bar 2, and "Bb major (dominant)" on bar 3."""

_MUSIC21_PART_ID = re.compile(rb'\bid="(P[0-9a-f]+)"')


def normalise_musicxml(data: bytes) -> bytes:
    """The MusicXML with what legitimately changes between runs or music21 versions
    replaced by fixed text; everything else (notes, harmony, lyrics, layout) stays as is."""
    # The date the file was written: a new one every day.
    data = re.sub(rb"<encoding-date>[^<]*</encoding-date>", b"<encoding-date/>", data)
    # music21's name and version (music21 v.10.5.1): changes with every music21 upgrade.
    data = re.sub(rb"<software>[^<]*</software>", b"<software/>", data)
    # music21 gives each part a fresh random id (P + 32 hex digits) on every run; number the
    # ids in order of first appearance so <score-part> and <part> must still name the same.
    numbers: dict[bytes, int] = {}
    return _MUSIC21_PART_ID.sub(
        lambda match: b'id="P%d"' % numbers.setdefault(match.group(1), len(numbers) + 1), data
    )


def test_piece_midi_matches_golden(golden) -> None:
    parts = PieceParts.from_events(table_events(piece_events(spec(4))))
    assert parts is not None
    golden(GOLDEN_PIECE_MIDI, parts.midi(0, parts.bar_count))


def test_planned_piece_midi_matches_golden(golden) -> None:
    """A 16-bar AABA piece: sections arranged apart (a fifth track, the pad, in the last
    return), fills into each section, the closing ritardando as set_tempo events and the
    final chord held past the last barline."""
    from cantus.events.conversions import form_to_pb
    from cantus.music.form import plan_form

    piece_spec = spec(16)
    piece_spec.form.CopyFrom(
        form_to_pb(plan_form("AABA", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID))
    )
    parts = PieceParts.from_events(table_events(piece_events(piece_spec)))
    assert parts is not None
    golden(GOLDEN_PIECE_FORM_MIDI, parts.midi(0, parts.bar_count))


def test_leadsheet_musicxml_matches_golden(golden) -> None:
    musicxml = leadsheet_musicxml(
        LEADSHEET_BARS,
        LEADSHEET_CHORDS,
        LEADSHEET_LYRICS,
        LEADSHEET_KEY,
        LEADSHEET_METER,
        96.0,
        title="Golden tune",
    )
    golden(GOLDEN_LEADSHEET, musicxml, normalise=normalise_musicxml)


def test_leadsheet_musicxml_with_a_form_matches_golden(golden) -> None:
    musicxml = leadsheet_musicxml(
        LEADSHEET_BARS,
        LEADSHEET_CHORDS,
        LEADSHEET_LYRICS,
        LEADSHEET_KEY,
        LEADSHEET_METER,
        96.0,
        title="Golden tune",
        form=LEADSHEET_FORM,
    )
    golden(GOLDEN_LEADSHEET_FORM, musicxml, normalise=normalise_musicxml)


def test_musicxml_normaliser_removes_only_what_varies() -> None:
    first = leadsheet_musicxml(
        LEADSHEET_BARS[:1], LEADSHEET_CHORDS[:1], (), LEADSHEET_KEY, LEADSHEET_METER, 96.0
    )
    again = leadsheet_musicxml(
        LEADSHEET_BARS[:1], LEADSHEET_CHORDS[:1], (), LEADSHEET_KEY, LEADSHEET_METER, 96.0
    )
    assert normalise_musicxml(first) == normalise_musicxml(again)
    normalised = normalise_musicxml(first)
    assert b"<encoding-date/>" in normalised and b"<software/>" in normalised
    assert normalised.count(b'id="P1"') == 2  # <score-part> and <part>
    assert normalise_musicxml(first.replace(b"<step>E</step>", b"<step>F</step>", 1)) != normalised
