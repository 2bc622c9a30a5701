"""Lyric lines that span several bars, as the lyric service writes them, reach piece.mid
as lyric events on the melody track and the MusicXML lead sheet as lyrics under the notes
(round trip through mido and music21); render waits until a line covers each bar."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import mido
import music21

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from piece_fixtures import PIECE_ID, piece_events, spec, table_events

from cantus.events.conversions import spec_key, spec_meter
from cantus.lyrics.decoding import slot_texts
from cantus.render.leadsheet import leadsheet_musicxml
from cantus.render.piece import PieceParts, leadsheet_inputs, piece_title
from cantus.v1 import events_pb2 as pb

WORDS = ["happy", "people", "sing", "along", "the", "river", "to", "the", "sea"]


def themed_events(bars: int = 2) -> list:
    """The fixture piece with one line over both bars (8 notes each: 16 syllables)."""
    events = [e for e in piece_events(spec(bars)) if not isinstance(e, pb.LyricLine)]
    melody = [e for e in events if isinstance(e, pb.MelodyBar)]
    texts = slot_texts(WORDS, "en")
    texts += ["la"] * (sum(len(bar.notes) for bar in melody) - len(texts))
    positions = [(bar.meta.index, k) for bar in melody for k in range(len(bar.notes))]
    line = pb.LyricLine(
        meta=pb.EventMeta(piece_id=PIECE_ID, index=0, producer="lyric"),
        spec=melody[0].spec,
        first_bar=0,
        bar_count=bars,
        syllables=[
            pb.Syllable(bar_index=b, note_index=k, text=t)
            for (b, k), t in zip(positions, texts, strict=True)
        ],
        text=" ".join(WORDS),
    )
    return [*events, line]


def lead_sheet(parts: PieceParts, **options):
    """The piece's lead sheet (``leadsheet_musicxml`` at 120 bpm) read back by music21."""
    bars, chords, lyrics = leadsheet_inputs(parts)
    xml = leadsheet_musicxml(
        bars, chords, lyrics, spec_key(parts.spec), spec_meter(parts.spec), 120.0, **options
    )
    return music21.converter.parse(xml, format="musicxml")


def test_render_waits_for_the_line_covering_a_bar():
    events = themed_events()
    parts = PieceParts.from_events(table_events(events[:-1]), humanise=False)
    assert not parts.bar_ready(0) and not parts.bar_ready(1)
    parts = PieceParts.from_events(table_events(events), humanise=False)
    assert parts.all_bars_ready()


def test_lyrics_round_trip_through_midi_and_musicxml():
    events = themed_events()
    line = events[-1]
    parts = PieceParts.from_events(table_events(events), humanise=False)
    midi = mido.MidiFile(file=io.BytesIO(parts.midi(0, parts.bar_count)), charset="utf-8")
    melody = next(track for track in midi.tracks if track.name == "melody")
    assert [m.text for m in melody if m.type == "lyrics"] == [s.text for s in line.syllables]

    score = lead_sheet(parts, title=piece_title(parts))
    sung = [n for n in score.recurse().notes if n.lyric]
    assert [n.lyric for n in sung] == [s.text.rstrip("-") for s in line.syllables]
    syllabic = [n.lyrics[0].syllabic for n in sung[:6]]
    assert syllabic == ["begin", "end", "begin", "end", "single", "begin"]  # hap-py peo-ple sing a-


def test_a_ci_stanza_is_named_over_its_first_bar_on_the_lead_sheet():
    from cantus.render.piece import ci_stanza_marks

    events = themed_events()
    events[-1].ci_stanza = "浣溪沙·上片"
    parts = PieceParts.from_events(table_events(events), humanise=False)
    assert ci_stanza_marks(parts) == {0: "浣溪沙·上片"}
    score = lead_sheet(parts, stanzas=ci_stanza_marks(parts))
    first = score.parts[0].getElementsByClass("Measure")[0]
    texts = [t.content for t in first.recurse().getElementsByClass("TextExpression")]
    assert "调寄《浣溪沙·上片》" in texts
