"""The render service's piece logic: segment audio (streamed, rebuilt by replay after a
restart), segment encoding, and the files of a finished piece."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from cantus.render.exports import encode_segment_audio
from cantus.render.piece import PieceParts, SegmentAudio, render_piece_files

from .piece_fixtures import PIECE_ID, piece_events, spec, table_events


def parts_of(bars: int = 8, **kwargs) -> PieceParts:
    parts = PieceParts.from_events(table_events(piece_events(spec(bars, **kwargs))))
    assert parts is not None
    return parts


def test_piece_tracks_count_from_the_start_of_the_piece():
    parts = parts_of(8)
    local = parts.tracks(4, 4)
    absolute = parts.piece_tracks(4, 4)
    shift = 4 * parts.bar_ticks
    for a, b in zip(local, absolute, strict=True):
        assert [n.onset + shift for n in a.notes] == [n.onset for n in b.notes]
    # The piece arranged whole has the same notes as its segments put together.
    whole = parts.piece_tracks(0, 8)
    for index, track in enumerate(whole):
        joined = sorted([*parts.piece_tracks(0, 4)[index].notes, *absolute[index].notes])
        assert list(track.notes) == joined


def test_segments_play_back_to_back_and_the_last_carries_the_tail():
    parts = parts_of(10, tempo=150.0)
    audio = SegmentAudio(parts.spec.tempo_bpm)
    segments = [audio.render(parts, i, 4) for i in range(parts.segment_count(4))]
    assert audio.finished
    position = 0.0
    for segment in segments:
        assert segment.start_seconds == pytest.approx(position)
        position += segment.duration_seconds
    assert segments[0].duration_seconds == pytest.approx(parts.seconds_before_bar(4), abs=0.01)
    # 10 bars of 4/4 at 150 bpm = 16 s, plus the 2 s tail.
    assert position == pytest.approx(parts.seconds_before_bar(10) + 2.0, abs=0.01)
    with pytest.raises(RuntimeError):
        audio.render(parts, 3, 4)


def test_a_rebuilt_renderer_renders_the_next_segment_exactly_as_the_lost_one_would():
    parts = parts_of(12)
    steady = SegmentAudio(parts.spec.tempo_bpm)
    expected = [steady.render(parts, i, 4).audio for i in range(3)]
    rebuilt = SegmentAudio(parts.spec.tempo_bpm)  # "after a restart"
    rebuilt.catch_up(parts, 2, 4)
    assert rebuilt.next_segment == 2
    again = rebuilt.render(parts, 2, 4)
    assert np.array_equal(again.audio, expected[2])
    assert again.start_seconds == pytest.approx(sum(len(a) for a in expected[:2]) / 44100)


def test_segments_must_come_in_order():
    parts = parts_of(8)
    audio = SegmentAudio(parts.spec.tempo_bpm)
    with pytest.raises(ValueError, match="segment 1 asked for, 0 is next"):
        audio.render(parts, 1, 4)
    audio.close()


def test_segment_audio_is_a_small_opus_file():
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal((8 * 44100, 2))).astype(np.float32)
    encoded = encode_segment_audio(audio, 44100, kbps=48)
    assert encoded[:4] == b"OggS" and b"OpusHead" in encoded[:64]
    assert 10_000 < len(encoded) < 120_000
    decoded, rate = soundfile.read(io.BytesIO(encoded))
    assert rate == 48000 and abs(len(decoded) / rate - 8.0) < 0.05
    # Deterministic bytes (libsndfile's random Ogg serial is replaced), valid checksums.
    assert encode_segment_audio(audio, 44100, kbps=48) == encoded
    assert encode_segment_audio(audio, 44100, kbps=48, serial=9) != encoded
    # A long segment drops its bit rate to stay under the limit.
    long = np.tile(audio, (8, 1))
    assert len(encode_segment_audio(long, 44100, kbps=256, max_bytes=300_000)) <= 300_000
    assert encode_segment_audio(np.zeros((0, 2), np.float32), 44100) == b""


def test_finished_piece_files_are_complete_and_mastered(tmp_path):
    parts = parts_of(6, tempo=100.0)
    rendered = render_piece_files(parts, piece_id=PIECE_ID, event_log=[])
    assert rendered.errors == {}
    expected = {
        "piece.mid",
        "piece.wav",
        "piece.flac",
        "piece.mp3",
        "piece.opus",
        "piece.musicxml",
        "piece.pdf",
        "piece.png",
        "pianoroll.png",
        "selfsim.png",
        "parts.pb",
        "piece.json",
    }
    assert set(rendered.files) == expected
    assert all(rendered.files.values())
    assert rendered.files["piece.pdf"].startswith(b"%PDF")
    assert rendered.files["piece.png"].startswith(b"\x89PNG")
    audio, rate = soundfile.read(io.BytesIO(rendered.files["piece.wav"]))
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(audio) + 14.0) < 0.5
    summary = json.loads(rendered.files["piece.json"])
    assert sorted(summary["files"]) == sorted(expected)
    assert summary["loudness"]["preset"] == "streaming"
    assert summary["loudness"]["target_lufs"] == -14.0
    assert abs(summary["loudness"]["integrated_lufs"] + 14.0) < 0.5
    assert summary["loudness"]["true_peak_dbtp"] <= -1.0
    assert summary["duration_seconds"] == pytest.approx(6 * 2.4)
    assert summary["audio_duration_seconds"] == pytest.approx(6 * 2.4 + 2.0, abs=0.05)
    musicxml = rendered.files["piece.musicxml"].decode()
    assert "<harmony" in musicxml and "<lyric" in musicxml


def test_a_failing_step_leaves_its_files_out_and_says_why(monkeypatch):
    import cantus.render.leadsheet as leadsheet

    def broken(musicxml: bytes):
        raise leadsheet.EngravingUnavailable("LilyPond is not installed")

    monkeypatch.setattr(leadsheet, "engrave_leadsheet", broken)
    parts = parts_of(4)
    rendered = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=["ogg"], preset="broadcast"
    )
    assert "piece.pdf" not in rendered.files and "piece.musicxml" in rendered.files
    assert "piece.ogg" in rendered.files and "piece.wav" not in rendered.files
    assert "LilyPond" in rendered.errors["engrave"]
    summary = json.loads(rendered.files["piece.json"])
    assert summary["render_errors"] == rendered.errors
    assert summary["loudness"]["target_lufs"] == -23.0


def test_without_lead_sheet_or_audio_the_piece_still_has_midi_and_summary(monkeypatch):
    def no_synth(*args, **kwargs):
        raise RuntimeError("no synth")

    import cantus.render.synth as synth

    monkeypatch.setattr(synth, "render_stems", no_synth)
    rendered = render_piece_files(parts_of(4), piece_id=PIECE_ID, event_log=[], leadsheet=False)
    assert set(rendered.files) == {
        "piece.mid",
        "parts.pb",
        "pianoroll.png",
        "selfsim.png",
        "piece.json",
    }
    assert rendered.loudness is None and "synth" in rendered.errors


def test_piece_midi_reads_back_in_mido_music21_and_pretty_midi_without_warnings(recwarn):
    import mido
    import music21
    import pretty_midi

    midi = render_piece_files(parts_of(4), piece_id=PIECE_ID, event_log=[]).files["piece.mid"]
    parsed = mido.MidiFile(file=io.BytesIO(midi))
    names = [track.name for track in parsed.tracks]
    assert {"melody", "chords", "bass", "drums"} <= set(names)
    metas = {m.type for track in parsed.tracks for m in track if m.is_meta}
    assert {"set_tempo", "time_signature", "key_signature"} <= metas
    score = music21.converter.parseData(midi, format="midi")
    assert len(score.parts) >= 3
    roll = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    assert {i.name for i in roll.instruments} >= {"melody", "chords", "bass"}
    assert any(i.is_drum for i in roll.instruments)
    assert not recwarn.list, [str(w.message) for w in recwarn]


def test_final_audio_is_the_streamed_segments_joined_and_on_target():
    """What listeners heard segment by segment is what piece.wav holds, and it is on the
    loudness target; a replay after a restart gives the same audio."""
    from cantus.render.piece import streamed_piece_audio

    parts = parts_of(8, tempo=120.0)
    live = SegmentAudio(parts.spec.tempo_bpm)
    segments = [live.render(parts, i, 4).audio for i in range(parts.segment_count(4))]
    joined = np.concatenate(segments)
    assert np.array_equal(live.piece_audio(), joined)
    assert np.array_equal(streamed_piece_audio(parts, 4, preset="streaming"), joined)

    rendered = render_piece_files(
        parts,
        piece_id=PIECE_ID,
        event_log=[],
        leadsheet=False,
        audio_formats=("wav24",),
        streamed_audio=joined,
    )
    wav, _ = soundfile.read(io.BytesIO(rendered.files["piece_24bit.wav"]), dtype="float32")
    assert wav.shape == joined.shape
    assert np.max(np.abs(wav - joined)) < 1e-4  # 24-bit quantisation only
    assert abs(rendered.loudness["integrated_lufs"] + 14.0) <= 0.5
    assert rendered.loudness["true_peak_dbtp"] <= -1.0


def test_a_piece_asked_for_its_stream_audio_gets_only_that_besides_midi_and_summary():
    from cantus.render.piece import PieceOutputs

    parts = parts_of(4)
    everything = PieceOutputs.asked(parts.spec, audio_formats=["wav", "mp3"], leadsheet=True)
    assert everything == PieceOutputs(("wav", "mp3"), leadsheet=True, pictures=True)
    parts.spec.outputs.extend(["opus"])
    outputs = PieceOutputs.asked(parts.spec, audio_formats=["wav", "mp3"], leadsheet=True)
    assert outputs == PieceOutputs(("opus",), leadsheet=False, pictures=False)
    rendered = render_piece_files(
        parts,
        piece_id=PIECE_ID,
        event_log=[],
        audio_formats=outputs.audio_formats,
        leadsheet=outputs.leadsheet,
        pictures=outputs.pictures,
    )
    assert set(rendered.files) == {"piece.mid", "parts.pb", "piece.opus", "piece.json"}
    assert rendered.errors == {}
    # a lead sheet asked for where the service engraves none (no LilyPond) is not made
    parts.spec.outputs.extend(["leadsheet"])
    assert not PieceOutputs.asked(parts.spec, audio_formats=[], leadsheet=False).leadsheet
