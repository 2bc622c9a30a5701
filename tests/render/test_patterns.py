"""Accompaniment patterns: every note inside its chord's span and on the voicing's pitches
(so a voicing under the melody stays under it), and each pattern's own shape."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.harmony.rules import pulse_ticks
from cantus.music.notes import Meter, Note
from cantus.render.palettes import ALBERTI, ARPEGGIO, STRUM, WALTZ
from cantus.render.patterns import PATTERNS, UPSTROKE_NOTES, pattern_for, play

METERS = [Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(2, 4), Meter(9, 8), Meter(5, 4)]


def voicing(meter: Meter, splits: int) -> list[Note]:
    """``splits`` chords of four notes across the bar."""
    bar = meter.bar_ticks
    edges = [bar * i // splits for i in range(splits + 1)]
    notes = []
    for index, (start, end) in enumerate(itertools.pairwise(edges)):
        for pitch in (48 + index, 52 + index, 55 + index, 60 + index):
            notes.append(Note(start, pitch, end - start, 70))
    return notes


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(PATTERNS)), st.sampled_from(METERS), st.integers(1, 2))
def test_patterns_keep_to_the_chords_spans_and_pitches(name, meter, splits):
    chords = voicing(meter, splits)
    played = play(name, chords, meter)
    assert played
    for note in played:
        span = [c for c in chords if c.onset <= note.onset < c.end]
        assert span, note
        assert note.end <= max(c.end for c in span)
        assert note.pitch in {c.pitch for c in span}


def test_waltz_leaves_the_downbeat_to_the_bass():
    meter = Meter(3, 4)
    played = play(WALTZ, voicing(meter, 1), meter)
    assert {n.onset for n in played} == {480, 960}


def test_a_strum_in_three_four_is_a_waltz():
    assert pattern_for(STRUM, Meter(3, 4)) == WALTZ
    assert pattern_for(STRUM, Meter(6, 8)) == STRUM
    assert pattern_for(ALBERTI, Meter(4, 4)) == ALBERTI


@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(6, 8)])
def test_the_upstroke_sounds_only_the_top_strings(meter):
    chords = voicing(meter, 1)
    played = play(STRUM, chords, meter)
    pulse = pulse_ticks(meter)
    offbeats = [n for n in played if n.onset % pulse]
    assert offbeats
    top = sorted(c.pitch for c in chords)[-UPSTROKE_NOTES:]
    assert {n.pitch for n in offbeats} == set(top)


def test_alberti_goes_low_high_middle_high():
    meter = Meter(4, 4)
    played = play(ALBERTI, voicing(meter, 1), meter)
    assert [n.pitch for n in played[:4]] == [48, 60, 55, 60]


def test_sustain_holds_the_tones_two_chords_share():
    from cantus.render.patterns import tied

    c_major = [Note(0, p, 960, 70) for p in (48, 55, 60, 64)]
    a_minor = [Note(960, p, 960, 70) for p in (45, 57, 60, 64)]
    held = tied(c_major + a_minor)
    assert Note(0, 60, 1920, 70) in held and Note(0, 64, 1920, 70) in held
    assert len(held) == 6  # two common tones held, not struck again
    assert {(n.onset, n.pitch) for n in held} >= {(960, 45), (960, 57), (0, 48), (0, 55)}


def test_a_band_plays_oom_pah_in_two_and_three_and_strums_a_lively_jig():
    from cantus.music.styles import Energy
    from cantus.render.arrangement import _accompaniment

    def onsets(meter, energy, restrike=True):
        played = _accompaniment(
            voicing(meter, 1), "block", meter, energy=energy, tempo_bpm=100, restrike=restrike
        )
        return sorted({n.onset for n in played})

    assert onsets(Meter(3, 4), Energy.MID) == [480, 960]  # waltz: the bass has beat one
    assert onsets(Meter(2, 4), Energy.MID) == [480]  # march: oom-pah
    assert onsets(Meter(3, 4), Energy.LOW) == [0]  # quiet: held chords
    assert onsets(Meter(3, 4), Energy.MID, restrike=False) == [0]  # an organ holds
    jig = onsets(Meter(6, 8), Energy.HIGH)
    assert 0 in jig and 720 in jig and len(jig) > 2


def test_at_high_energy_the_oom_pah_is_strummed_and_an_organ_plays_marcato():
    from cantus.music.styles import Energy
    from cantus.render.arrangement import FAST_TEMPO_BPM, _accompaniment

    def played(meter, energy, restrike=True, tempo_bpm=100.0):
        return _accompaniment(
            voicing(meter, 1), "block", meter, energy=energy, tempo_bpm=tempo_bpm,
            restrike=restrike,
        )  # fmt: skip

    # oom-pah-a, oom-pah-a-pah-a: an upstroke on the top strings after each chord
    for meter, chords, ups in ((Meter(2, 4), [480], [720]), (Meter(3, 4), [480, 960], [720, 1200])):
        notes = played(meter, Energy.HIGH)
        assert sorted({n.onset for n in notes}) == sorted(chords + ups)
        top = sorted(n.pitch for n in voicing(meter, 1))[-UPSTROKE_NOTES:]
        for up in ups:
            strings = [n for n in notes if n.onset == up]
            assert sorted(n.pitch for n in strings) == top
            down = [n for n in notes if n.onset == up - 240 and n.pitch in top]
            assert all(u.velocity < d.velocity for u, d in zip(strings, down, strict=True))
        assert all(n.end <= meter.bar_ticks for n in notes)
    # an organ holds its chords below high energy, and re-strikes them on every beat at high
    assert sorted({n.onset for n in played(Meter(4, 4), Energy.HIGH, restrike=False)}) == [
        0, 480, 960, 1440,
    ]  # fmt: skip
    held = played(Meter(4, 4), Energy.HIGH, restrike=False, tempo_bpm=FAST_TEMPO_BPM)
    assert sorted({n.onset for n in held}) == [0]  # too fast to re-strike


def test_the_pedal_holds_a_broken_chord_until_it_changes_or_the_key_is_struck_again():
    from cantus.render.patterns import pedalled

    meter = Meter(4, 4)
    chords = voicing(meter, 2)  # two chords of a half bar each
    played = play(ARPEGGIO, chords, meter)
    held = pedalled(played, chords)
    assert len(held) == len(played)
    for before, after in zip(played, held, strict=True):
        assert after.onset == before.onset and after.end >= before.end
        assert after.end <= (960 if before.onset < 960 else 1920)  # never past its chord
        again = [n.onset for n in played if n.pitch == before.pitch and n.onset > before.onset]
        if again:
            assert after.end <= again[0]
    assert any(a.end > b.end for a, b in zip(held, played, strict=True))


@pytest.mark.parametrize(
    ("meter", "lows", "uppers"),
    [
        (Meter(4, 4), [0, 960], [(240, 52), (480, 55), (720, 60)]),  # low, then rising
        (Meter(6, 8), [0, 720], [(240, 55), (480, 60)]),  # low, middle, top
        (Meter(3, 4), [0], [(240, 52), (480, 55), (720, 60), (960, 55), (1200, 52)]),
    ],
)
def test_a_ballad_holds_the_low_note_under_the_upper_ones(meter, lows, uppers):
    from cantus.render.patterns import ballad

    chord = voicing(meter, 1)  # 48, 52, 55, 60 for the whole bar
    played = ballad(chord, meter)
    low = [n for n in played if n.pitch == 48]
    assert [n.onset for n in low] == lows
    assert all(n.end == min(n.onset + (meter.bar_ticks // len(lows)), meter.bar_ticks) for n in low)
    assert [(n.onset, n.pitch) for n in played if n.pitch != 48][: len(uppers)] == uppers
    assert all(n.velocity < low[0].velocity for n in played if n.pitch != 48)


def test_a_calm_slow_piece_plays_its_broken_chords_as_a_ballad():
    from cantus.music.styles import Energy
    from cantus.render.arrangement import BALLAD_TEMPO_BPM, _accompaniment

    meter, chord = Meter(4, 4), voicing(Meter(4, 4), 1)

    def onsets_of_low(energy, tempo):
        notes = _accompaniment(chord, ARPEGGIO, meter, energy=energy, tempo_bpm=tempo,
                               restrike=True, pedal=True)  # fmt: skip
        return [n.onset for n in notes if n.pitch == 48]

    assert onsets_of_low(Energy.LOW, BALLAD_TEMPO_BPM - 12) == [0, 960]  # the ballad
    assert onsets_of_low(Energy.LOW, BALLAD_TEMPO_BPM) == [0, 1440]  # the arpeggio (up, down)
    assert onsets_of_low(Energy.MID, 60.0) == [0, 1440]
