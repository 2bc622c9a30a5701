"""Lyrics end to end against the real stack (broker, Triton serving ``lyric_lm``, every
service): a themed piece in English and in Mandarin streams lyric lines that fit the melody
syllable for syllable, and the lyrics reach piece.mid and the MusicXML lead sheet; bad
themes are refused at the gateway naming the field."""

from __future__ import annotations

import io
import json

import grpc
import mido
import music21
import numpy as np
import pytest
import soundfile

from cantus.cli.compose import ComposeFailed, compose
from cantus.lyrics.ci import MAX_MELISMA_SHARE
from cantus.lyrics.mandarin import is_hanzi
from cantus.v1 import composer_pb2 as api

pytestmark = pytest.mark.integration

BARS = 8


def events_of(piece, kind: str) -> list:
    return [getattr(e, kind) for e in piece.events if e.WhichOneof("event") == kind]


def check_lines_fit_melody(piece) -> list[str]:
    """Every bar in exactly one line; a line's syllables are its notes' onsets, in order
    (a line of a ci stanza: some of them, from its first note on, the others sung on the
    syllable before them); returns the syllable texts of the piece in order."""
    melody = {bar.meta.index: bar for bar in events_of(piece, "melody_bar")}
    lines = sorted(events_of(piece, "lyric_line"), key=lambda line: line.meta.index)
    assert [line.meta.index for line in lines] == list(range(len(lines)))
    covered = [b for line in lines for b in range(line.first_bar, line.first_bar + line.bar_count)]
    assert covered == list(range(BARS))
    assert len(lines) < BARS  # lines span phrases, not single bars
    texts = []
    for line in lines:
        expected = []
        for b in range(line.first_bar, line.first_bar + line.bar_count):
            notes = sorted((n.onset_ticks, n.pitch) for n in melody[b].notes)
            seen = set()
            for index, (onset, _) in enumerate(notes):
                if onset not in seen:
                    seen.add(onset)
                    expected.append((b, index))
        got = [(s.bar_index, s.note_index) for s in line.syllables]
        if line.ci_stanza:  # melismas: an ordered subset, from the line's first note
            assert got[:1] == expected[:1] and set(got) <= set(expected)
            assert got == sorted(got) and len(got) >= (1 - MAX_MELISMA_SHARE) * len(expected) - 1
        else:
            assert got == expected, f"line {line.meta.index}: syllables do not fit the notes"
        assert line.text and all(s.text for s in line.syllables)
        texts += [s.text for s in line.syllables]
    return texts


def midi_lyrics(folder) -> list[str]:
    midi = mido.MidiFile(file=io.BytesIO((folder / "piece.mid").read_bytes()), charset="utf-8")
    melody = next(t for t in midi.tracks if t.name == "melody")
    return [m.text for m in melody if m.type == "lyrics"]


def musicxml_lyrics(folder) -> list[str]:
    score = music21.converter.parse((folder / "piece.musicxml").read_bytes(), format="musicxml")
    return [n.lyric for n in score.recurse().notes if n.lyric]


@pytest.mark.parametrize(
    ("language", "theme", "register"),
    # The Mandarin piece asks for a register: lyric_lm answers it with the lyric transformer.
    [("en", "a sailor longing for the sea", ""), ("zh", "明月思乡", "qu")],
)
def test_themed_piece_has_fitting_lyrics_in_every_file(
    gateway_address, tmp_path, language, theme, register
):
    request = api.ComposeRequest(
        key="G",
        mode="major",
        tempo_bpm=100,
        meter="4/4",
        bars=BARS,
        style="folk",
        mood="calm",
        seed=11,
        lyrics_theme=theme,
        lyrics_language=language,
        lyrics_rhyme_scheme="AABB",
        lyrics_register=register,
        pickup=False,
    )
    piece = compose(gateway_address, request, tmp_path)
    assert piece.events[-1].WhichOneof("event") == "completed"
    texts = check_lines_fit_melody(piece)
    if language == "zh":
        assert all(len(t) == 1 and is_hanzi(t) for t in texts)  # one character per note
        lines = events_of(piece, "lyric_line")
        assert all(
            line.text.replace("，", "") == "".join(s.text for s in line.syllables) for line in lines
        )
    else:
        words = " ".join(line.text for line in events_of(piece, "lyric_line")).split()
        assert "".join(t.rstrip("-") for t in texts) == "".join(words)
    # MIDI lyric events on the melody track, one per syllable, in order.
    assert midi_lyrics(piece.folder) == texts
    # The lead sheet carries them under the notes (music21 drops the hyphens into syllabic).
    assert [t.rstrip("-") for t in texts] == musicxml_lyrics(piece.folder)
    summary = json.loads((piece.folder / "piece.json").read_text())
    assert [entry["text"] for entry in summary["lyrics"]] == [
        line.text for line in sorted(events_of(piece, "lyric_line"), key=lambda x: x.meta.index)
    ]
    assert summary["request"]["lyrics_language"] == language
    assert summary["request"].get("lyrics_register", "") == register
    # Lyrics are sung by default: a vocal stem beside the mix, as long as it (issue #19).
    assert summary["request"]["vocals"] is True
    stem, rate = soundfile.read(piece.folder / "vocals.wav")
    mix, mix_rate = soundfile.read(piece.folder / "piece.wav")
    assert stem.ndim == 1 and rate == mix_rate
    assert abs(len(stem) - len(mix)) < rate // 10 and np.abs(stem).max() > 0.1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lyrics_theme": "   "}, "lyrics_theme"),
        ({"lyrics_theme": "sea " * 200}, "lyrics_theme"),
        ({"lyrics_theme": "?!…"}, "lyrics_theme"),
        ({"lyrics_theme": "the sea", "lyrics_language": "fr"}, "lyrics_language"),
        ({"lyrics_theme": "the sea", "lyrics_rhyme_scheme": "AXBX"}, "lyrics_rhyme_scheme"),
        ({"lyrics_theme": "the sea", "lyrics_register": "ci"}, "lyrics_register"),
    ],
)
def test_bad_lyrics_requests_are_refused_naming_the_field(gateway_address, tmp_path, fields, field):
    with pytest.raises(ComposeFailed) as raised:
        compose(gateway_address, api.ComposeRequest(bars=4, **fields), tmp_path)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(raised.value).startswith(f"{field}: ")
