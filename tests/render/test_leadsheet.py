"""Lead sheet (MusicXML, LilyPond PDF/PNG) and piano-roll pictures."""

import io
import re
import shutil

import pytest
from music21 import converter, harmony

from cantus.music.form import plan_form, with_pickup
from cantus.music.notes import Bar, Key, Meter, Mode, Note, Track
from cantus.music.styles import Energy
from cantus.render.leadsheet import (
    chord_symbol,
    engrave_leadsheet,
    leadsheet_musicxml,
    tidy_lilypond_source,
)
from cantus.render.pianoroll import pianoroll_png

METER = Meter(3, 4)
KEY = Key(3, Mode.MAJOR)  # Eb major: Ab, Bb and Eb must be spelled flat


@pytest.fixture(scope="module")
def sheet():
    bars = [
        Bar(METER, (Note(0, 63, 480), Note(480, 68, 480), Note(960, 70, 480))),
        Bar(METER, (Note(0, 67, 160), Note(160, 65, 160), Note(320, 63, 160), Note(960, 63, 480))),
        Bar(METER, (Note(0, 63, 1200),)),  # 2.5 quarters: needs a tie
    ]
    chords = [[(0, "Eb")], [(0, "Ab"), (960, "Bb7")], [(0, "Ebmaj7/G")]]
    lyrics = [(0, "Hap-"), (480, "py"), (960, "day"), (1440, "sing"), (2400, "on"), (2880, "home")]
    return bars, chords, lyrics


@pytest.fixture(scope="module")
def musicxml(sheet):
    bars, chords, lyrics = sheet
    return leadsheet_musicxml(bars, chords, lyrics, KEY, METER, 96.0, title="Test tune")


def test_musicxml_has_melody_chords_and_lyrics(musicxml):
    assert musicxml.lstrip().startswith(b"<?xml")
    score = converter.parse(musicxml, format="musicxml")
    part = score.parts[0]
    notes = [n for n in part.flatten().notes if not isinstance(n, harmony.ChordSymbol)]
    # Eight melody notes, the last one split over a tie; spelled in the key.
    names = [n.pitch.name for n in notes]
    assert names[:8] == ["E-", "A-", "B-", "G", "F", "E-", "E-", "E-"]
    assert notes[-1].tie is not None
    lyrics = [n.lyric for n in notes[:8]]
    assert lyrics == ["Hap", "py", "day", "sing", None, None, "on", "home"]
    assert notes[0].lyrics[0].syllabic == "begin"
    symbols = [c.figure for c in part.flatten().getElementsByClass(harmony.ChordSymbol)]
    assert symbols == ["E-", "A-", "B-7", "E-maj7/G"]
    assert str(part.flatten().getElementsByClass("TimeSignature")[0].ratioString) == "3/4"
    assert part.flatten().getElementsByClass("KeySignature")[0].sharps == -3


def test_a_pickup_bar_is_written_as_an_anacrusis():
    plan = with_pickup(plan_form("AA'", bars=8, key=KEY, energy=Energy.MID))
    upbeat = Bar(METER, (Note(960, 70, 480),))
    bars = [upbeat] + [Bar(METER, (Note(0, 63, 1440),))] * 8
    chords = [[(0, "Eb"), (480, "Bb7")]] + [[(0, "Eb")]] * 8
    xml = leadsheet_musicxml(bars, chords, [(960, "the")], KEY, METER, 96.0, form=plan)
    part = converter.parse(xml, format="musicxml").parts[0]
    measures = list(part.getElementsByClass("Measure"))
    assert [m.number for m in measures[:2]] == [0, 1]
    assert b'<measure implicit="yes" number="0">' in xml
    first = measures[0]
    assert first.duration.quarterLength == 1.0  # the upbeat alone, no bar of rest
    (note,) = first.flatten().notes.getElementsNotOfClass(harmony.ChordSymbol)
    assert (note.pitch.name, note.lyric) == ("B-", "the")
    symbols = first.flatten().getElementsByClass(harmony.ChordSymbol)
    assert [c.figure for c in symbols] == ["B-7"]  # the chord sounding under the upbeat
    marks = [m.content for m in part.flatten().getElementsByClass("RehearsalMark")]
    assert marks[0] == "A"  # no mark for the anacrusis, and no double bar line after it
    assert first.rightBarline is None or first.rightBarline.type != "double"


@pytest.mark.parametrize(
    ("text", "root", "bass"),
    [("Bb", "B-", "B-"), ("F#m7", "F#", "F#"), ("Ebmaj7/G", "E-", "G"), ("C/E", "C", "E")],
)
def test_chord_text_becomes_music21_chord_symbols(text, root, bass):
    symbol = chord_symbol(text)
    assert symbol.root().name == root
    assert symbol.bass().name == bass


def test_no_chord_and_unknown_kinds():
    assert isinstance(chord_symbol("N.C."), harmony.NoChord)
    odd = chord_symbol("Cxyz")  # music21 does not know "xyz": keep the root, show the text
    assert odd.root().name == "C"


def test_lilypond_source_is_tidied():
    source = (
        '\\header {\n    title =  "T"\n    subtitle =  "T"\n    }\n'
        "\\chordmode { c4:5 a4:m5 f2:5/+a b4:dim5 g4:7 d2:m7.5- }\n"
        '\\new Lyrics { \\set stanza = "1." \\words }\n'
    )
    tidy = tidy_lilypond_source(source)
    assert "c4 a4:m f2/+a b4:dim g4:7 d2:m7.5-" in tidy
    assert "stanza" not in tidy and "subtitle" not in tidy
    assert "tagline = ##f" in tidy


@pytest.mark.skipif(not shutil.which("lilypond"), reason="LilyPond not installed (Debian lilypond)")
def test_lilypond_engraves_pdf_and_png(musicxml):
    engraved = engrave_leadsheet(musicxml, resolution_dpi=60)
    assert engraved.pdf.startswith(b"%PDF")
    assert engraved.png.startswith(b"\x89PNG")
    assert engraved.seconds < 60


@pytest.mark.skipif(not shutil.which("lilypond"), reason="LilyPond not installed (Debian lilypond)")
def test_mandarin_lyrics_are_engraved_in_a_font_that_has_them(sheet):
    bars, chords, lyrics = sheet
    hanzi = [(tick, character) for (tick, _), character in zip(lyrics, "明月几时有酒", strict=True)]
    musicxml = leadsheet_musicxml(bars, chords, hanzi, KEY, METER, 96.0, title="明月")
    fonts = re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([A-Za-z-]+)", engrave_leadsheet(musicxml).pdf)
    # LilyPond's own fonts (Emmentaler, C059, Nimbus) have no hanzi: without a CJK font
    # (Debian fonts-wqy-microhei) the lyrics and the title come out blank.
    assert any(b"WenQuanYi" in font or b"CJK" in font for font in fonts), fonts


def test_pianoroll_png_of_all_parts():
    from PIL import Image

    def tracks(bars):
        return [
            Track("melody", 0, 0, [Note(i * 960, 72 + i % 5, 480) for i in range(bars * 2)]),
            Track("bass", 33, 2, [Note(i * 1920, 40, 1920) for i in range(bars)]),
            Track("drums", 0, 9, [Note(i * 480, 36 if i % 2 else 42, 60) for i in range(bars * 4)]),
        ]

    short = pianoroll_png(tracks(4), meter=Meter(4, 4), title="roll")
    long = pianoroll_png(tracks(24), meter=Meter(4, 4))
    assert short.startswith(b"\x89PNG")
    short_size = Image.open(io.BytesIO(short)).size
    long_size = Image.open(io.BytesIO(long)).size
    assert long_size[0] > short_size[0] and long_size[1] == short_size[1]
