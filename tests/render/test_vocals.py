"""The sung vocal stem (cantus.render.vocals) on a short lyric piece in English and Mandarin:
its pitch follows the melody, its vowels start on the notes, segments join exactly, the
piece's files carry the mix and vocals.wav; bad requests name the field. Needs the
packages `make setup` installs (espeak-ng, pyworld)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from cantus.eval.vocals import praat_f0, vowel_onsets
from cantus.render.piece import VOCALS_FILE, PieceParts, SegmentAudio, render_piece_files
from cantus.render.vocals import (
    BREATH_LEVEL,
    SungNote,
    VocalTrack,
    arpabet_syllables,
    breath_span,
    consonant_leads,
    lead_piece,
    octave_shift,
    phrase_breaths,
    render_vocals,
    spoken_syllable,
    sung_before,
    syllable_phones,
    world,
)
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

from .piece_fixtures import PIECE_ID, spec, table_events

TUNE = [67, 69, 71, 72, 74, 72, 71, 69, 67, 64, 65, 67, 69, 67, 65, 64]
"""Four bars of quarter notes in C major, G4..D5."""

LYRICS = {
    "en": ["hap-", "py", "sai-", "lor", "sing-", "ing", "to", "the", "sea", "and", "the",
           "ri-", "ver", "runs", "a-", "way"],
    "zh": list("大海的歌声在远方我们一起唱着歌吧"),
}  # fmt: skip


def lyric_piece(language: str, *, vocals: bool = True, transpose: int = 0) -> PieceParts:
    """Four bars at 100 bpm, one syllable per quarter note, lyric lines of two bars; the
    tune ``transpose`` semitones from ``TUNE``."""
    piece_spec = spec(4, tempo=100.0)
    piece_spec.lyrics_theme = "the sea"
    piece_spec.lyrics_language = language
    piece_spec.vocals = vocals
    events: list = [
        pb.ComposeRequested(
            meta=pb.EventMeta(piece_id=PIECE_ID, index=0, producer="gateway"), spec=piece_spec
        )
    ]
    for index in range(4):
        notes = [
            pb.Note(
                onset_ticks=480 * k,
                pitch=TUNE[4 * index + k] + transpose,
                duration_ticks=480,
                velocity=90,
            )
            for k in range(4)
        ]
        events.append(
            pb.MelodyBar(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=index, producer="melody"),
                spec=piece_spec,
                notes=notes,
            )
        )
        events.append(
            pb.HarmonyBar(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=index, producer="harmony"),
                spec=piece_spec,
                chords=[pb.ChordSpan(onset_ticks=0, duration_ticks=1920, symbol="C", roman="I")],
                voicing=[pb.Note(onset_ticks=0, pitch=p, duration_ticks=1920, velocity=60)
                         for p in (48, 52, 55)],
                bass=[pb.Note(onset_ticks=0, pitch=36, duration_ticks=1920, velocity=70)],
                harmonizer="rules-v1",
            )
        )  # fmt: skip
    texts = LYRICS[language]
    for line in range(2):
        syllables = [
            pb.Syllable(bar_index=2 * line + k // 4, note_index=k % 4, text=texts[8 * line + k])
            for k in range(8)
        ]
        events.append(
            pb.LyricLine(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=line, producer="lyric"),
                spec=piece_spec,
                first_bar=2 * line,
                bar_count=2,
                syllables=syllables,
                text=" ".join(s.text for s in syllables),
            )
        )
    parts = PieceParts.from_events(table_events(events), humanise=False)
    assert parts is not None
    return parts


def cents_off(stem: np.ndarray, sample_rate: int, parts: PieceParts) -> np.ndarray:
    """Cents between the stem's F0 (WORLD DIO + StoneMask, 10 ms) and the note sung, on
    the voiced frames of each note's middle (50 ms in from either end)."""
    pw = world()
    audio = stem.astype(np.float64)
    f0, times = pw.dio(audio, sample_rate, frame_period=10.0, f0_floor=70.0, f0_ceil=1000.0)
    f0 = pw.stonemask(audio, f0, times, sample_rate)
    off = []
    for note in parts.sung_notes(0, parts.bar_count):
        inside = (times >= note.onset + 0.05) & (times < note.end - 0.05) & (f0 > 0)
        hz = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
        off.extend(1200.0 * np.log2(f0[inside] / hz))
    return np.abs(np.array(off))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_lyric_piece_sings_its_melody_in_segments_as_at_once(language):
    parts = lyric_piece(language)
    assert parts.vocals and parts.segment_ready(0, 2)
    audio = SegmentAudio(parts.tempo_map)
    for segment in range(parts.segment_count(2)):
        audio.render(parts, segment, 2)
    streamed = audio.piece_vocals()
    assert streamed is not None
    notes = parts.sung_notes(0, parts.bar_count)
    # the voice sings G4..D5 an octave down, in its range (D3..G4)
    assert len(notes) == 16 and [n.pitch for n in notes] == [p - 12 for p in TUNE]
    # the voice follows the tune: F0 within 50 cents on >= 90 % of voiced frames
    off = cents_off(streamed, audio.sample_rate, parts)
    assert len(off) > 100
    assert np.mean(off < 50.0) >= 0.9
    # segments join exactly: the stem sung in one go is the same
    whole = render_vocals(notes, language, len(streamed), audio.sample_rate)
    assert np.allclose(streamed, whole, atol=1e-6)
    # and it is sung: every note's middle is loud
    for note in notes:
        middle = streamed[round((note.onset + 0.1) * 44100) : round((note.end - 0.05) * 44100)]
        assert np.sqrt(np.mean(middle**2)) > 0.02


def test_the_voice_sings_in_its_range_and_the_instruments_as_written():
    """The octave is chosen by the first lyric line's notes (G4..D5 here, median 71: sung
    an octave down; two octaves written higher: two down; two lower: one up), the same
    for the whole piece; the instruments keep the written pitch."""
    assert octave_shift(TUNE[:8], "en") == -12
    assert octave_shift([p + 12 for p in TUNE[:8]], "en") == -24
    assert octave_shift([p - 24 for p in TUNE[:8]], "zh") == 12
    assert octave_shift([57, 60], "en") == 0 and octave_shift([], "en") == 0
    parts = lyric_piece("en", transpose=12)
    assert parts.vocal_octave_shift == -24
    notes = parts.sung_notes(0, parts.bar_count)
    assert [n.pitch for n in notes] == [p - 12 for p in TUNE]
    melody = [n.pitch for t in parts.piece_tracks(0, 4) if t.name == "melody" for n in t.notes]
    assert set(melody) == {p + 12 for p in TUNE}
    stem = render_vocals(notes, "en", round(notes[-1].end * 44100) + 4410, 44100)
    off = cents_off(stem, 44100, parts)
    assert len(off) > 100 and np.mean(off < 50.0) >= 0.9


def test_a_vocal_segment_waits_for_the_bar_after_it():
    parts = lyric_piece("en")
    without_bar_2 = PieceParts(
        parts.spec,
        {i: bar for i, bar in parts.melody.items() if i != 2},
        parts.harmony_by_bar,
        parts.lyric_lines,
        parts.requested,
    )
    assert without_bar_2.bars_ready(0, 2) and not without_bar_2.segment_ready(0, 2)
    instrumental = lyric_piece("en", vocals=False)
    assert not instrumental.vocals
    assert PieceParts(
        instrumental.spec,
        {i: bar for i, bar in instrumental.melody.items() if i != 2},
        instrumental.harmony_by_bar,
        instrumental.lyric_lines,
        instrumental.requested,
    ).segment_ready(0, 2)


def test_piece_files_carry_the_mix_and_a_vocals_stem():
    parts = lyric_piece("en")
    files = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=("wav",), leadsheet=False
    )
    assert not files.errors
    stem, rate = soundfile.read(io.BytesIO(files.files[VOCALS_FILE]))
    assert rate == 44100 and stem.ndim == 1 and np.abs(stem).max() > 0.1
    assert files.loudness is not None
    assert abs(files.loudness["integrated_lufs"] - files.loudness["target_lufs"]) < 1.0
    assert files.loudness["true_peak_dbtp"] <= files.loudness["ceiling_dbtp"]
    mix, _ = soundfile.read(io.BytesIO(files.files["piece.wav"]))
    assert len(mix) >= len(stem) - 44100 // 10


def test_english_syllables_are_read_from_the_whole_word():
    assert arpabet_syllables("HH AE1 P IY0") == [["HH", "AE1"], ["P", "IY0"]]
    assert arpabet_syllables("L AO1 NG IH0 NG") == [["L", "AO1", "NG"], ["IH0", "NG"]]
    assert syllable_phones(["hap-", "py", "sea"], "en") == ["[[h'a]]", "[[p'i:]]", "[[s'i:]]"]
    # a word the dictionary lacks is read from its letters; an open word at the end too
    assert syllable_phones(["zorb-", "lax"], "en") == ["zorb", "lax"]
    assert syllable_phones(["大", "海"], "zh") == ["da4", "hai3"]


def _request(**fields) -> api.ComposeRequest:
    return api.ComposeRequest(key="C", mode="major", meter="4/4", bars=8, **fields)


def test_vocals_are_on_by_default_with_lyrics_and_refused_without():
    assert validate_compose_request(_request(lyrics_theme="the sea"), max_bars=64).spec.vocals
    assert not validate_compose_request(_request(), max_bars=64).spec.vocals
    off = _request(lyrics_theme="the sea", vocals=False)
    assert not validate_compose_request(off, max_bars=64).spec.vocals
    with pytest.raises(RequestError) as raised:
        validate_compose_request(_request(vocals=True), max_bars=64)
    assert raised.value.field == "vocals"
    with pytest.raises(RequestError) as raised:
        validate_compose_request(
            _request(lyrics_theme="la mer", lyrics_language="fr", vocals=True), max_bars=64
        )
    assert raised.value.field == "lyrics_language"


def test_a_note_without_its_own_syllable_holds_the_vowel_before_it():
    parts = lyric_piece("en")
    line = parts.lyric_lines[0]
    kept = [s for s in line.syllables if not (s.bar_index == 0 and s.note_index == 1)]
    del line.syllables[:]
    line.syllables.extend(kept)
    notes = parts.sung_notes(0, 2)
    assert notes[1].continues and notes[1].phones == notes[0].phones
    assert not notes[0].continues and not notes[2].continues
    # the melisma is sung through, on its own pitch
    stem = render_vocals(notes, "en", round(notes[-1].end * 44100) + 4410, 44100)
    off = cents_off(stem, 44100, parts)
    assert np.mean(off < 50.0) >= 0.9
    held = stem[round((notes[1].onset + 0.1) * 44100) : round((notes[1].end - 0.05) * 44100)]
    assert np.sqrt(np.mean(held**2)) > 0.02


ONSET_WORDS = {
    "en": ["no", "more", "night", "made", "me", "be-", "gin", "now"],
    "zh": list("你们来吗明年那么"),
}
"""Syllables that start with a nasal, l or b: voiced consonants as loud as the vowel over the
whole spectrum, which used to be counted as vowel, stretched with it and put it late."""


def legato_notes(language: str) -> list[SungNote]:
    phones = syllable_phones(ONSET_WORDS[language], language)
    return [
        SungNote(
            onset=0.6 + 0.45 * k, end=0.6 + 0.45 * (k + 1), pitch=TUNE[k], velocity=90, phones=p
        )
        for k, p in enumerate(phones)
    ]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_voiced_onsets_are_sung_ahead_so_the_vowel_lands_on_the_note(language):
    notes = legato_notes(language)
    # the nasal of "no" / "ni" is the lead, not the vowel's start
    first = spoken_syllable(notes[0].phones, language)
    assert first.lead_seconds >= 0.03
    stem = render_vocals(notes, language, round((notes[-1].end + 0.3) * 44100), 44100)
    times, f0 = praat_f0(stem, 44100)
    errors, missed = vowel_onsets(stem, 44100, times, f0, notes)
    assert missed == 0
    assert np.mean(np.abs(errors) <= 0.04) >= 0.85, np.round(errors, 3)
    assert np.median(np.abs(errors)) <= 0.025


def test_a_voiced_lead_after_a_legato_note_keeps_that_notes_pitch():
    notes = legato_notes("en")
    before, note = notes[0], notes[1]  # "no" then "more": the m sounds inside "no"
    syllable = spoken_syllable(note.phones, "en")
    piece = lead_piece(before, note, syllable)
    assert piece is not None and piece.start < note.onset
    voiced = piece.f0[piece.f0 > 0]
    assert len(voiced) and np.allclose(voiced, 440.0 * 2.0 ** ((before.pitch - 69) / 12.0))
    # and the consonant is sung softer than the vowel it crossfades into
    consonant = (piece.f0 > 0) & (piece.source < syllable.vowel_start)
    assert consonant.any() and piece.gain_db is not None
    assert piece.gain_db[consonant].max() < 0 and piece.gain_db[-1] == 0


def test_a_breath_is_caught_at_the_end_of_a_line_that_runs_into_the_next():
    """The fixture's lines run into each other (quarter notes, no rest): the first line's
    last note ("the", 0.6 s) gives up its end for a breath, unvoiced noise at a breath's
    level, before the second line's first syllable ("sea"); rendered in two calls that part inside
    the breath, the stem is the same as at once. Without the line's end marked, no breath:
    the note is sung through."""
    from dataclasses import replace

    notes = lyric_piece("en").sung_notes(0, 4)
    assert phrase_breaths(notes, "en") == (1, 1)  # lines 1 -> 2; the piece's end is no gap
    end, after = notes[7], notes[8]
    assert end.phrase_end and after.onset - end.end < 1e-9  # legato as written
    syllable = spoken_syllable(after.phones, "en")
    sung = sung_before(end, after, syllable)
    lead = lead_piece(sung, after, syllable)
    taken = breath_span(sung, after, after.onset if lead is None else lead.start)
    assert sung is not None and taken is not None
    assert end.onset + 0.25 < sung.end < end.end and taken[0] > sung.end and taken[1] > 0.1
    samples = round((notes[-1].end + 0.3) * 44100)
    stem = render_vocals(notes, "en", samples, 44100)
    gap = stem[round((sung.end + 0.03) * 44100) : round((taken[0] + taken[1]) * 44100)]
    rms = float(np.sqrt(np.mean(gap**2)))
    assert 0.1 * BREATH_LEVEL < rms < BREATH_LEVEL, rms  # breath, not the held vowel
    times, f0 = praat_f0(stem, 44100)
    in_gap = (times > sung.end + 0.03) & (times < taken[0] + taken[1])
    assert in_gap.any() and not (f0[in_gap] > 0).any()
    # in two calls that part inside the breath: the same stem
    track, cut = VocalTrack("en", 44100), round((taken[0] + taken[1] / 2) * 44100)
    parted = np.concatenate([track.render_until(cut, notes), track.render_until(samples, notes)])
    assert np.allclose(parted, stem, atol=1e-6)
    # not a line's end: sung through, legato
    through = [replace(n, phrase_end=False) for n in notes]
    assert phrase_breaths(through, "en") == (0, 0)
    held = render_vocals(through, "en", samples, 44100)[: len(stem)]
    assert np.sqrt(np.mean(held[round((sung.end + 0.03) * 44100) : cut] ** 2)) > 0.02


def test_a_line_ending_on_a_short_note_sings_into_the_next_without_a_breath():
    """An eighth note (0.3 s at 100 bpm) cannot give up the room a breath needs."""
    from dataclasses import replace

    notes = lyric_piece("en").sung_notes(0, 4)
    short = [*notes[:7], replace(notes[7], onset=notes[7].end - 0.3), *notes[8:]]
    assert phrase_breaths(short, "en") == (1, 0)
    assert sung_before(short[7], short[8], spoken_syllable(short[8].phones, "en")) == short[7]


def test_onset_consonants_are_placed_before_the_note():
    """Every syllable of the fixture that starts with consonants ("sai-", "sing-", "the",
    "sea", ...) sings them before its note's onset, as long as they were spoken (the room
    a quarter note at 100 bpm leaves is more than eSpeak's leads). The piece's first note
    ("hap-", at 0 s) has no room before it: its lead is not sung."""
    leads = np.array(consonant_leads(lyric_piece("en").sung_notes(0, 4), "en"))
    assert len(leads) >= 10 and leads[0, 1] == 0.0
    assert np.all(leads[1:, 1] > 0.005)
    assert np.allclose(leads[1:, 1], np.minimum(leads[1:, 0], 0.25))


def test_a_held_note_is_sustained_on_its_vowel_not_faded_as_spoken():
    """eSpeak's spoken vowel fades (its end 5-10 dB under its start); held for 1.5 s on
    one note it is sung at a steady level: its last quarter within 3 dB of its first."""
    phones = syllable_phones(["sea"], "en")[0]
    note = SungNote(onset=0.3, end=1.8, pitch=62, velocity=90, phones=phones, phrase_end=True)
    stem = render_vocals([note], "en", round(2.2 * 44100), 44100)

    def level(a: float, b: float) -> float:
        part = stem[round(a * 44100) : round(b * 44100)]
        return 10 * np.log10(np.mean(part**2))

    early, late = level(0.45, 0.8), level(1.35, 1.7)
    assert abs(late - early) < 3.0, (early, late)


def test_the_eval_hears_the_voice_in_front_of_the_tune_and_times_the_render():
    """The voice through its chain is louder than the instrument that plays the tune
    (stepped back under it) and than the rest of the band; the streamed render is timed
    per segment by CPU, wall clock and the wall clock less the wait for a core."""
    from cantus.eval.vocals import lead_margins, run_queue_seconds, stream

    parts = lyric_piece("en")
    streamed = stream(parts)
    assert streamed.stem is not None and len(streamed.segments) == 1
    audio, cpu, wall, waited = streamed.segments[0]
    assert audio > 10 and cpu > 0 and wall > 0 and 0 <= waited <= wall
    before = run_queue_seconds()
    assert before >= 0 and run_queue_seconds() >= before
    over_tune, over_band, step_back = lead_margins(parts, streamed.stem)
    assert over_tune is not None and over_band is not None and step_back is not None
    assert over_tune > 3 and over_band > 0 and step_back < -6


def test_a_syllable_that_starts_on_its_vowel_is_joined_legato(monkeypatch):
    """ "I am" on two legato notes: the second syllable starts on its vowel, so the first
    runs on into it (its spoken fade not sung) with no gap; where joins are off, the first
    faded out before the second and the voice dropped out between them."""
    import cantus.render.vocals as vocals

    phones = syllable_phones(["i", "am"], "en")
    notes = [
        SungNote(onset=0.3, end=0.65, pitch=64, velocity=90, phones=phones[0]),
        SungNote(onset=0.65, end=1.3, pitch=67, velocity=90, phones=phones[1], phrase_end=True),
    ]
    assert vocals.open_syllable(phones[0]) and not vocals.open_syllable(phones[1])
    assert not vocals.open_syllable("tian1") and vocals.open_syllable("hai3")

    def weakest_db() -> float:
        stem = render_vocals(notes, "en", round(1.6 * 44100), 44100)
        hop = 441  # 10 ms
        around = stem[round(0.5 * 44100) : round(0.75 * 44100)]
        levels = [np.mean(around[k : k + hop] ** 2) for k in range(0, len(around) - hop, hop)]
        return 10 * np.log10(min(levels) + 1e-12)

    joined = weakest_db()
    monkeypatch.setattr(vocals, "JOIN_LEAD_SECONDS", 0.0)
    vocals.spoken_syllable.cache_clear()
    apart = weakest_db()
    assert joined > -32 and apart < joined - 15, (joined, apart)
