"""Arrangement: four named tracks with absolute onsets, drums on channel 9."""

import itertools

import pytest

from cantus.harmony.rules import harmonize_bar
from cantus.harmony.voicing import bass_line, voice_chords
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy, Style
from cantus.render.arrangement import ArrangedBar, arrange_tracks, drum_pattern, programs_for


def folk_bar(melody: Bar, lyrics: list[tuple[int, str]] | None = None) -> ArrangedBar:
    """``melody`` harmonised, voiced and given a bass as a folk piece in C at mid energy."""
    spans = harmonize_bar(melody, Key(0), previous=None, style=Style.FOLK)
    return ArrangedBar(
        melody,
        spans,
        voice_chords(spans, style=Style.FOLK, previous_voicing=None),
        bass_line(spans, melody.meter, style=Style.FOLK, energy=Energy.MID),
        lyrics or [],
    )


def arranged(meter: Meter, pitch: int) -> ArrangedBar:
    return folk_bar(Bar(meter, (Note(0, pitch, meter.bar_ticks),)), [(0, "la")])


def test_four_named_tracks_with_absolute_onsets():
    meter = Meter(3, 4)
    tracks = arrange_tracks(
        [arranged(meter, 60), arranged(meter, 67)], style=Style.CELTIC, energy=Energy.HIGH
    )
    assert [t.name for t in tracks] == ["melody", "chords", "bass", "drums"]
    melody = tracks[0]
    assert [n.onset for n in melody.notes] == [0, meter.bar_ticks]
    assert melody.lyrics == [(0, "la"), (meter.bar_ticks, "la")]
    assert tracks[3].channel == 9 and tracks[3].notes


def test_chorales_have_no_drums_and_segments_know_their_place():
    assert (
        drum_pattern(
            Meter(4, 4), style=Style.CHORALE, energy=Energy.HIGH, bar_index=0, is_final=False
        )
        == []
    )
    middle = arrange_tracks(
        [arranged(Meter(4, 4), 60)],
        style=Style.FOLK,
        energy=Energy.LOW,
        first_index=4,
        total_bars=16,
    )
    assert 49 not in {n.pitch for n in middle[3].notes}  # no crash cymbal mid-piece


# --- tracks -----------------------------------------------------------------------------------


def piece(meter: Meter, style: Style, energy: Energy, bars: int = 4) -> list[ArrangedBar]:
    result, previous_chord, previous_voicing = [], None, None
    for index in range(bars):
        step = meter.bar_ticks // 2
        melody = Bar(meter, (Note(0, 67 + index, step), Note(step, 64, meter.bar_ticks - step)))
        spans = harmonize_bar(melody, Key(0), previous=previous_chord, style=style)
        voicing = voice_chords(spans, style=style, previous_voicing=previous_voicing)
        bass = bass_line(spans, meter, style=style, energy=energy)
        result.append(ArrangedBar(melody, spans, voicing, bass, [(0, f"la{index}")]))
        previous_chord = spans[-1].symbol
        previous_voicing = tuple(sorted(n.pitch for n in voicing if n.onset == spans[-1].onset))
    return result


@pytest.mark.parametrize("style", list(Style))
@pytest.mark.parametrize("energy", list(Energy))
@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(5, 4), Meter(7, 8)])
def test_every_bar_lands_inside_its_own_stretch_of_time(style, energy, meter):
    bars = piece(meter, style, energy)
    tracks = arrange_tracks(bars, style=style, energy=energy)
    assert [t.name for t in tracks] == ["melody", "chords", "bass", "drums"]
    assert [t.channel for t in tracks] == [0, 1, 2, 9]
    for track in tracks:
        assert list(track.notes) == sorted(track.notes)
        for index in range(len(bars)):
            start, end = index * meter.bar_ticks, (index + 1) * meter.bar_ticks
            inside = [n for n in track.notes if start <= n.onset < end]
            assert all(n.end <= end for n in inside)
            if track.name != "drums" or style is not Style.CHORALE:
                assert inside, (track.name, index)
    assert tracks[0].lyrics == [(i * meter.bar_ticks, f"la{i}") for i in range(len(bars))]
    if style is Style.CHORALE:
        assert tracks[3].notes == []


def test_programs_follow_the_style():
    programs = {
        style: [
            t.program
            for t in arrange_tracks(
                piece(Meter(4, 4), style, Energy.MID), style=style, energy=Energy.MID
            )
        ]
        for style in Style
    }
    assert programs[Style.FOLK][:3] == [73, 24, 32]
    assert programs[Style.CELTIC][:3] == [40, 25, 32]
    assert programs[Style.CHORALE][:3] == [52, 19, 19]
    assert programs_for(Style.FOLK, Energy.HIGH)["melody"] == 21


def test_velocities_rise_with_energy():
    def mean_velocity(energy: Energy, name: str) -> float:
        tracks = arrange_tracks(
            piece(Meter(4, 4), Style.FOLK, energy), style=Style.FOLK, energy=energy
        )
        notes = next(t for t in tracks if t.name == name).notes
        return sum(n.velocity for n in notes) / len(notes)

    for name in ("melody", "bass", "drums"):
        low, mid, high = (mean_velocity(e, name) for e in (Energy.LOW, Energy.MID, Energy.HIGH))
        assert low < mid < high, name


def test_crash_opens_the_piece_and_the_last_bar_is_a_final_hit():
    meter = Meter(4, 4)
    tracks = arrange_tracks(
        piece(meter, Style.FOLK, Energy.MID), style=Style.FOLK, energy=Energy.MID
    )
    drums = tracks[3].notes
    assert [n.onset for n in drums if n.pitch == 49] == [0, 3 * meter.bar_ticks]
    last_bar = [n for n in drums if n.onset >= 3 * meter.bar_ticks]
    assert {n.pitch for n in last_bar} == {36, 49} and {n.onset for n in last_bar} == {
        3 * meter.bar_ticks
    }


def test_a_segment_in_the_middle_has_neither_crash_nor_final_hit():
    tracks = arrange_tracks(
        piece(Meter(4, 4), Style.FOLK, Energy.HIGH),
        style=Style.FOLK,
        energy=Energy.HIGH,
        first_index=8,
        total_bars=32,
    )
    assert 49 not in {n.pitch for n in tracks[3].notes}


# --- drum patterns ----------------------------------------------------------------------------

GM_DRUMS = {36, 37, 38, 42, 49, 51}


@pytest.mark.parametrize(
    "meter",
    [
        Meter.parse(m)
        for m in (
            "2/4",
            "3/4",
            "4/4",
            "2/2",
            "3/8",
            "6/8",
            "9/8",
            "12/8",
            "5/4",
            "7/8",
            "6/4",
            "3/2",
        )
    ],
)
@pytest.mark.parametrize("style", [Style.FOLK, Style.CELTIC])
@pytest.mark.parametrize("energy", list(Energy))
def test_drum_patterns_fit_every_meter(meter, style, energy):
    notes = drum_pattern(meter, style=style, energy=energy, bar_index=3, is_final=False)
    assert notes and {n.pitch for n in notes} <= GM_DRUMS
    assert all(n.end <= meter.bar_ticks for n in notes)
    assert any(n.pitch == 36 and n.onset == 0 for n in notes)  # every bar opens with a kick
    assert 49 not in {n.pitch for n in notes}


def test_low_energy_is_sparse_and_high_energy_busy():
    counts = [
        len(drum_pattern(Meter(4, 4), style=Style.FOLK, energy=e, bar_index=2, is_final=False))
        for e in (Energy.LOW, Energy.MID, Energy.HIGH)
    ]
    assert counts[0] < counts[1] <= counts[2]
    low = drum_pattern(
        Meter(4, 4), style=Style.FOLK, energy=Energy.LOW, bar_index=2, is_final=False
    )
    assert 38 not in {n.pitch for n in low}


def test_high_energy_doubles_the_last_kick_on_its_off_beat():
    def kicks(meter, energy, tempo_bpm=100.0):
        notes = drum_pattern(
            meter, style=Style.FOLK, energy=energy, bar_index=1, is_final=False,
            tempo_bpm=tempo_bpm,
        )  # fmt: skip
        return [n.onset for n in notes if n.pitch == 36]

    assert kicks(Meter(4, 4), Energy.MID) == [0, 960]
    assert kicks(Meter(4, 4), Energy.HIGH) == [0, 960, 1200]  # boom, chick, boom-boom, chick
    assert kicks(Meter(2, 4), Energy.HIGH) == [0, 240]
    assert kicks(Meter(6, 8), Energy.HIGH) == [0, 480]  # on the jig's third eighth
    assert kicks(Meter(3, 4), Energy.HIGH) == [0]  # a waltz keeps its one
    assert kicks(Meter(4, 4), Energy.HIGH, tempo_bpm=150.0) == [0, 960]  # too fast


def test_a_chorale_pedal_is_re_struck_on_every_beat_at_high_energy_only():
    meter = Meter(4, 4)  # two chords of two beats each, the pedal one note a chord
    for energy, onsets in ((Energy.MID, [0, 960]), (Energy.HIGH, [0, 480, 960, 1440])):
        bars = piece(meter, Style.CHORALE, energy, bars=1)
        assert [n.onset for n in bars[0].bass] == [0, 960]
        chords, bass = arrange_tracks(bars, style=Style.CHORALE, energy=energy, total_bars=4)[1:3]
        assert [n.onset for n in bass.notes] == onsets
        assert sorted({n.onset for n in chords.notes}) == onsets  # the organ's chords too
        pitch_at = {n.onset: n.pitch for n in bars[0].bass}
        assert all(n.pitch == pitch_at[n.onset // 960 * 960] for n in bass.notes)


def test_odd_meters_kick_on_each_group():
    five = drum_pattern(
        Meter(5, 4), style=Style.FOLK, energy=Energy.MID, bar_index=1, is_final=False
    )
    assert [n.onset for n in five if n.pitch == 36] == [0, 3 * 480]  # 3 + 2
    seven = drum_pattern(
        Meter(7, 8), style=Style.FOLK, energy=Energy.MID, bar_index=1, is_final=False
    )
    assert [n.onset for n in seven if n.pitch == 36] == [0, 480, 960]  # 2 + 2 + 3


def test_celtic_rides_where_folk_uses_the_hi_hat():
    celtic = drum_pattern(
        Meter(6, 8), style=Style.CELTIC, energy=Energy.MID, bar_index=1, is_final=False
    )
    folk = drum_pattern(
        Meter(6, 8), style=Style.FOLK, energy=Energy.MID, bar_index=1, is_final=False
    )
    assert 51 in {n.pitch for n in celtic} and 42 in {n.pitch for n in folk}


def test_tempo_thins_or_fills_the_cymbal():
    def hats(tempo: float) -> int:
        notes = drum_pattern(
            Meter(4, 4),
            style=Style.FOLK,
            energy=Energy.MID,
            bar_index=3,
            is_final=False,
            tempo_bpm=tempo,
        )
        return sum(1 for n in notes if n.pitch == 42)

    assert hats(60) > hats(100) > hats(170)


# --- articulation -------------------------------------------------------------------------


def eighths_bar(meter: Meter, *, gap: int = 0) -> ArrangedBar:
    """A bar of eighth notes (each ``gap`` ticks short of the next), then a held note."""
    eighth = 240
    notes = [Note(i * eighth, 67 + i % 3, eighth - gap) for i in range(4)]
    notes.append(Note(4 * eighth, 64, meter.bar_ticks - 4 * eighth))
    return folk_bar(Bar(meter, tuple(notes)))


def melody_of(bar: ArrangedBar, style: Style, palette: str | None = None) -> list[Note]:
    from cantus.render.palettes import get_palette

    tracks = arrange_tracks(
        [bar, bar],  # the second bar ends the piece: the first is articulated
        style=style,
        energy=Energy.MID,
        palette=get_palette(palette) if palette else None,
    )
    return [n for n in tracks[0].notes if n.onset < bar.melody.meter.bar_ticks]


def test_a_jig_or_reel_is_played_lighter_than_a_folk_tune_and_a_chorale_legato():
    from cantus.render.arrangement import STYLE_ARTICULATION

    bar = eighths_bar(Meter(4, 4))
    written = [n.duration for n in bar.melody.notes]
    celtic = [n.duration for n in melody_of(bar, Style.CELTIC)]
    folk = [n.duration for n in melody_of(bar, Style.FOLK)]
    chorale = [n.duration for n in melody_of(bar, Style.CHORALE)]
    assert celtic[:4] == [round(240 * STYLE_ARTICULATION[Style.CELTIC])] * 4  # detached
    assert all(c < f < w for c, f, w in zip(celtic[:4], folk[:4], written[:4], strict=True))
    assert chorale == written
    # the bar's last (long) note keeps its length, carrying into the next bar
    assert celtic[4] == folk[4] == written[4]


def test_a_legato_palette_ties_the_tune_whatever_the_style():
    bar = eighths_bar(Meter(4, 4), gap=60)  # the tune written with short rests between
    for palette in ("strings", "chorale", "ambient", "lullaby"):
        notes = melody_of(bar, Style.CELTIC, palette)
        # each note now runs into the next: no rest left inside the bar
        for note, following in itertools.pairwise(notes):
            assert note.end == following.onset, palette
    # a band keeps the style's articulation: the celtic band's eighths stay short
    band = melody_of(bar, Style.CELTIC, "celtic")
    assert all(n.duration < 180 for n in band[:4])


def test_the_final_bar_is_not_articulated():
    """The last bar is left as written (a planned piece holds it, a fermata)."""
    bar = eighths_bar(Meter(4, 4))
    tracks = arrange_tracks([bar], style=Style.CELTIC, energy=Energy.MID)
    assert [n.duration for n in tracks[0].notes] == [n.duration for n in bar.melody.notes]
