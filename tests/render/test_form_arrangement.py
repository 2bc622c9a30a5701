"""A piece with a form plan is arranged section by section: a thin intro, returns fuller than
their first statement, the last return fullest, a contrasting colour in a bridge, fills or
pickups into each new section, and an ending with a ritardando (a tempo map in piece.mid that
the audio follows) and a held final chord."""

from __future__ import annotations

import io
import itertools
import math

import mido
import numpy as np
import pytest

from cantus.events.conversions import form_to_pb
from cantus.music.form import plan_form, plan_pattern, with_pickup
from cantus.music.notes import Key, Meter, Mode, Track
from cantus.music.styles import Energy, Style
from cantus.render import arrangement
from cantus.render.arrangement import (
    ARPEGGIO,
    CRASH,
    HIGH_TOM,
    KICK,
    LOW_TOM,
    MID_TOM,
    SNARE,
    bar_arrangements,
    drum_fill,
    fermata_ticks,
    section_arrangements,
    section_levels_db,
    segment_level_db,
    sustains,
)
from cantus.render.mix import integrated_loudness
from cantus.render.piece import PieceParts, SegmentAudio
from cantus.render.tempo import (
    CADENCE_BROADENING,
    RITARDANDO_END,
    RUBATO_DEPTH,
    TempoMap,
    broadened_at_cadences,
    ending_tempo_map,
    midi_tempo_changes,
    phrase_rubato,
)

from .piece_fixtures import piece_events, spec, table_events

C = Key(0, Mode.MAJOR)
TOMS = {HIGH_TOM, MID_TOM, LOW_TOM}


def planned_parts(
    form: str,
    bars: int,
    *,
    style: str = "folk",
    tempo: float = 120.0,
    humanise=True,
    palette: str = "",
):
    piece_spec = spec(bars, tempo=tempo, style=style)
    piece_spec.palette = palette
    plan = plan_form(form, bars=bars, key=C, energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    parts = PieceParts.from_events(table_events(piece_events(piece_spec)), humanise=humanise)
    assert parts is not None
    return parts, plan


def section_notes(tracks: list[Track], plan, index: int, bar_ticks: int) -> dict[str, list]:
    section = plan.sections[index]
    low, high = section.first_bar * bar_ticks, section.end_bar * bar_ticks
    return {t.name: [n for n in t.notes if low <= n.onset < high] for t in tracks}


def density(notes: dict[str, list], bars: int) -> float:
    return sum(len(v) for v in notes.values()) / bars


def loudness(notes: dict[str, list]) -> float:
    velocities = [n.velocity for v in notes.values() for n in v]
    return float(np.mean(velocities))


# --- sections ---------------------------------------------------------------------------


def test_sections_get_roles_parts_energy_and_dynamics():
    plan = plan_form("verse-chorus", bars=32, key=C, energy=Energy.MID)
    assert plan.labels() == [
        "intro",
        "verse",
        "chorus",
        "verse'",
        "chorus'",
        "bridge",
        "chorus''",
        "outro",
    ]
    arrangements = dict(zip(plan.labels(), section_arrangements(plan, Style.FOLK), strict=True))
    intro, verse, chorus = arrangements["intro"], arrangements["verse"], arrangements["chorus"]
    assert intro.role == "intro" and intro.parts == {"melody", "pad", "bass"}
    assert intro.energy is Energy.LOW
    assert verse.role == chorus.role == "statement"
    assert verse.parts == {"melody", "chords", "bass", "drums"}
    # A return is fuller than its first statement: more energy or louder, never less.
    for ret, first in (("verse'", "verse"), ("chorus'", "chorus"), ("chorus''", "chorus")):
        assert arrangements[ret].dynamics > arrangements[first].dynamics
        rank = [Energy.LOW, Energy.MID, Energy.HIGH]
        assert rank.index(arrangements[ret].energy) >= rank.index(arrangements[first].energy)
    # The last chorus is the fullest of all.
    last = arrangements["chorus''"]
    assert last.role == "climax" and "pad" in last.parts and last.energy is Energy.HIGH
    assert last.dynamics == max(a.dynamics for a in arrangements.values())
    assert all(a.parts <= last.parts for a in arrangements.values() if a.role != "intro")
    # The bridge changes colour; the outro thins out again.
    assert arrangements["bridge"].role == "contrast"
    assert arrangements["bridge"].accompaniment == ARPEGGIO
    assert arrangements["outro"].parts == intro.parts
    # A chorale's contrasting section hands the accompaniment to the strings.
    chorale = section_arrangements(
        plan_form("ABA", bars=12, key=C, energy=Energy.MID), Style.CHORALE
    )
    assert [a.role for a in chorale] == ["statement", "contrast", "climax"]
    assert "chords" not in chorale[1].parts and "colour" in chorale[1].parts
    assert all("drums" not in a.parts for a in chorale)
    # a through-composed tune: its second phrase answers the first, the second strain contrasts
    through = section_arrangements(plan_pattern("A B C D", key=C, energy=Energy.MID), Style.FOLK)
    assert [a.role for a in through] == ["statement", "statement", "contrast", "contrast"]


def test_a_pickup_bar_is_a_short_intro_and_the_band_comes_in_after_it():
    plan = with_pickup(plan_form("AABA", bars=16, key=C, energy=Energy.HIGH))
    pickup, statement, *_ = section_arrangements(plan, Style.FOLK)
    # pad and bass under the upbeat, so the piece does not open on a bar of silence
    assert pickup.role == "pickup" and pickup.parts == {"melody", "pad", "bass"}
    assert pickup.energy is Energy.LOW
    assert statement.role == "statement" and "drums" in statement.parts
    first, second = bar_arrangements(plan, Style.FOLK)[:2]
    assert not first.leads_in  # the tune's own upbeat leads in: no fill over it
    assert second.opens_section  # the band's entry: a crash on the downbeat


@pytest.mark.parametrize("energy", list(Energy))
def test_a_return_builds_by_dynamics_and_parts_not_a_level_above_the_piece(energy):
    # An 8-bar piece (A A') plays the energy it was asked for in both halves: its return
    # is louder and fuller, not the next level's drums and strumming (#17).
    plan = plan_form("auto", bars=8, key=C, energy=energy)
    statement, climax = section_arrangements(plan, Style.FOLK)
    assert (statement.role, climax.role) == ("statement", "climax")
    assert statement.energy is climax.energy is energy
    assert climax.dynamics > statement.dynamics and climax.parts > statement.parts


def test_final_chorus_is_denser_and_louder_than_the_first_and_the_intro_thinnest():
    parts, plan = planned_parts("verse-chorus", 32, humanise=False)
    tracks = parts.piece_tracks(0, 32)
    assert [t.name for t in tracks] == ["melody", "chords", "bass", "drums", "pad", "colour"]
    labels = plan.labels()
    notes = {
        label: section_notes(tracks, plan, index, parts.bar_ticks)
        for index, label in enumerate(labels)
    }
    bars = {s.label: s.bars for s in plan.sections}
    first, last = notes["chorus"], notes["chorus''"]
    assert density(last, bars["chorus''"]) > density(first, bars["chorus"])
    assert loudness(last) > loudness(first)
    assert not first["pad"] and last["pad"]
    intro = notes["intro"]
    assert not intro["drums"] and not intro["chords"] and intro["pad"]
    assert density(intro, bars["intro"]) < min(
        density(notes[label], bars[label]) for label in labels if label not in ("intro", "outro")
    )
    # The bridge's accompaniment changes instrument (the colour part) and is broken up:
    # more chord notes, one at a time.
    assert not notes["bridge"]["chords"]
    bridge = notes["bridge"]["colour"]
    assert len({n.onset for n in bridge}) > len({n.onset for n in notes["verse"]["chords"]})


def test_levels_are_centred_by_time_where_bars_last_differently():
    """A loudness meter weighs by time: a slowed last section counts for its seconds."""
    plan = plan_form("AABA", bars=16, key=C, energy=Energy.MID)
    seconds = [2.0] * 12 + [4.0] * 4
    levels = section_levels_db(plan, Style.FOLK, bar_seconds=seconds)
    power = sum(
        sum(seconds[s.first_bar : s.end_bar]) * 10 ** (level / 10)
        for s, level in zip(plan.sections, levels, strict=True)
    )
    assert 10 * math.log10(power / sum(seconds)) == pytest.approx(0.0, abs=1e-9)
    by_bars = section_levels_db(plan, Style.FOLK)
    assert levels[0] < by_bars[0]  # the loud last return weighs more: the mean rises
    assert segment_level_db(plan, Style.FOLK, 12, 4, bar_seconds=seconds) == pytest.approx(
        levels[3]
    )
    # two bars of each of two sections, the longer one weighing twice
    mixed = segment_level_db(plan, Style.FOLK, 10, 4, bar_seconds=seconds)
    expected = 10 * math.log10(
        (2 * 2 * 10 ** (levels[2] / 10) + 2 * 4 * 10 ** (levels[3] / 10)) / 12
    )
    assert mixed == pytest.approx(expected)
    with pytest.raises(ValueError, match="15 bar durations for a 16-bar plan"):
        section_levels_db(plan, Style.FOLK, bar_seconds=seconds[:15])


def test_levels_are_planned_around_the_piece_and_follow_the_roles():
    plan = plan_form("verse-chorus", bars=32, key=C, energy=Energy.MID)
    levels = dict(zip(plan.labels(), section_levels_db(plan, Style.FOLK), strict=True))
    assert levels["intro"] < levels["verse"] < levels["verse'"] < levels["chorus''"]
    assert levels["chorus"] < levels["chorus''"]
    power_mean = (
        sum(
            s.bars * 10 ** (level / 10)
            for s, level in zip(plan.sections, levels.values(), strict=True)
        )
        / plan.total_bars
    )
    assert 10 * math.log10(power_mean) == pytest.approx(0.0, abs=1e-9)
    assert segment_level_db(plan, Style.FOLK, 0, 4) == pytest.approx(levels["intro"])
    assert segment_level_db(None, Style.FOLK, 0, 4) == 0.0


# --- fills, pickups and the ending -----------------------------------------------------


def test_a_fill_leads_into_each_new_section_and_a_crash_opens_it():
    parts, plan = planned_parts("AABA", 16, humanise=False)
    drums = next(t for t in parts.piece_tracks(0, 16) if t.name == "drums").notes
    bar_ticks, pulse = parts.bar_ticks, 480
    for section in plan.sections[1:]:
        boundary = section.first_bar * bar_ticks
        last_beat = [n for n in drums if boundary - pulse <= n.onset < boundary]
        assert {n.pitch for n in last_beat} & TOMS, section.label
        last_two = [n for n in drums if boundary - 2 * pulse <= n.onset < boundary]
        assert SNARE in {n.pitch for n in last_two}
        assert CRASH in {n.pitch for n in drums if n.onset == boundary}
    # Mid-section bars keep their groove: no toms.
    assert not {n.pitch for n in drums if bar_ticks <= n.onset < 2 * bar_ticks} & TOMS


def test_drum_fill_rises_in_velocity_and_ends_on_the_toms():
    start, notes = drum_fill(Meter(4, 4), energy=Energy.HIGH)
    assert start == 1920 - 960  # two beats at high energy
    strokes = [n for n in notes if n.pitch != KICK]
    assert [n.velocity for n in strokes] == sorted(n.velocity for n in strokes)
    assert strokes[0].pitch == SNARE and strokes[-1].pitch == LOW_TOM
    start, notes = drum_fill(Meter(6, 8), energy=Energy.MID)
    assert start == 1440 - 720 and all(n.end <= 1440 for n in notes)


def test_without_drums_a_pickup_figure_leads_into_the_next_section():
    parts, plan = planned_parts("ABA", 12, style="chorale", humanise=False)
    tracks = {t.name: t for t in parts.piece_tracks(0, 12)}
    assert not tracks["drums"].notes
    boundary = plan.sections[1].first_bar * parts.bar_ticks
    figure = [n for n in tracks["chords"].notes if boundary - 480 <= n.onset < boundary]
    pitches = [n.pitch for n in sorted(figure)]
    assert len(pitches) == 4 and pitches == sorted(pitches) and len(set(pitches)) == 4
    assert all(n.end <= boundary for n in figure)


def test_the_final_chord_is_held_past_the_last_barline():
    parts, _ = planned_parts("AABA", 16, humanise=False)
    end = 16 * parts.bar_ticks
    held = end + fermata_ticks(Meter(4, 4))
    for track in parts.piece_tracks(0, 16):
        if track.name in ("melody", "chords", "bass", "pad") and track.notes:
            last_onset = max(n.onset for n in track.notes)
            assert {n.end for n in track.notes if n.onset == last_onset} == {held}, track.name
            assert all(n.end <= end for n in track.notes if n.onset < last_onset)


@pytest.mark.parametrize(
    ("style", "palette", "softer"),
    [
        ("celtic", "celtic", True),  # a jig's detached fiddle
        ("folk", "folk", True),  # a folk tune's flute
        ("folk", "strings", True),  # a legato violin line
        ("chorale", "chorale", True),  # a chorale's
        ("folk", "therapy", True),  # a pan flute
        ("celtic", "piano", False),  # a piano's note dies away by itself
        ("folk", "ambient", False),  # so does the ambient palette's piano
        ("folk", "lullaby", False),  # and a music box's
    ],
)
def test_a_tune_on_an_instrument_that_sustains_holds_its_last_note_softer(
    monkeypatch, style, palette, softer
):
    def final_velocities() -> dict[str, list[int]]:
        parts, _ = planned_parts("AABA", 16, style=style, palette=palette, humanise=False)
        velocities = {}
        for track in parts.piece_tracks(0, 16):
            if track.name in ("melody", "chords", "bass", "pad") and track.notes:
                last = max(n.onset for n in track.notes)
                velocities[track.name] = [n.velocity for n in track.notes if n.onset == last]
        return velocities

    scale = arrangement.HELD_FINAL_VELOCITY
    played = final_velocities()
    monkeypatch.setattr(arrangement, "HELD_FINAL_VELOCITY", 1.0)
    written = final_velocities()
    melody = [round(v * scale) for v in written["melody"]]
    assert played["melody"] == (melody if softer else written["melody"])
    assert {k: v for k, v in played.items() if k != "melody"} == {
        k: v for k, v in written.items() if k != "melody"
    }
    assert sustains(40) and sustains(73) and sustains(19) and sustains(48)  # fiddle, flute...
    assert not any(sustains(p) for p in (0, 25, 32, 45, 46))  # piano, guitar, bass, harp


def test_segments_arrange_exactly_as_the_whole_planned_piece():
    parts, _ = planned_parts("verse-chorus", 32)
    whole = parts.piece_tracks(0, 32)
    pieces = [parts.piece_tracks(first, 4) for first in range(0, 32, 4)]
    for index, track in enumerate(whole):
        joined = sorted(n for segment in pieces for n in segment[index].notes)
        assert list(track.notes) == joined


def test_a_piece_without_a_plan_keeps_four_tracks_and_its_tempo():
    parts = PieceParts.from_events(table_events(piece_events(spec(8))))
    assert [t.name for t in parts.tracks(0, 8)] == ["melody", "chords", "bass", "drums"]
    assert parts.tempo_map == TempoMap.constant(120.0)
    midi = mido.MidiFile(file=io.BytesIO(parts.midi(0, 8)))
    assert len([m for m in midi.tracks[0] if m.type == "set_tempo"]) == 1


# --- the tempo map --------------------------------------------------------------------------


def test_ending_tempo_map_slows_beat_by_beat_over_the_last_two_bars():
    tempo = ending_tempo_map(100.0, Meter(4, 4), 8)
    ticks = [tick for tick, _ in tempo.changes]
    assert ticks == [0, *range(6 * 1920, 8 * 1920, 480)]
    bpms = [bpm for _, bpm in tempo.changes]
    assert bpms[0] == 100.0 and bpms == sorted(bpms, reverse=True)
    assert bpms[-1] == pytest.approx(100.0 * RITARDANDO_END)
    # Six bars at 100 bpm, then eight beats slower.
    expected = 6 * 2.4 + sum(60.0 / bpm for bpm in bpms[1:])
    assert tempo.seconds_at(8 * 1920) == pytest.approx(expected)
    assert tempo.seconds_at(3 * 1920) == pytest.approx(3 * 2.4)
    assert tempo.bpm_at(8 * 1920 + 5000) == bpms[-1]  # the last tempo holds the fermata
    later = tempo.from_tick(7 * 1920)
    assert later.initial_bpm == bpms[5] and later.changes[1][0] == 480
    assert ending_tempo_map(90.0, Meter(3, 4), 1) == TempoMap.constant(90.0)
    assert ending_tempo_map(90.0, Meter(3, 4), 3).changes[1][0] == 2 * 1440


def test_piece_midi_has_the_ritardando_as_set_tempo_events():
    parts, _ = planned_parts("AABA", 16, style="celtic")  # a dance tune: no phrase rubato
    midi = mido.MidiFile(file=io.BytesIO(parts.midi(0, 16)))
    tick, tempos = 0, []
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempos.append((tick, mido.tempo2bpm(message.tempo)))
    assert tempos[0] == (0, pytest.approx(120.0))
    expected = midi_tempo_changes(parts.tempo_map)
    # the ritardando's 8 beats, and at each of the 3 section ends two broadened beats and
    # the return to tempo
    assert [t for t, _ in tempos[1:]] == [t for t, _ in expected] and len(expected) == 8 + 3 * 3
    assert [bpm for _, bpm in tempos[1:]] == pytest.approx([bpm for _, bpm in expected], abs=0.01)
    # mido's own clock agrees with the map on the length of the piece.
    assert midi.length == pytest.approx(
        parts.tempo_map.seconds_at(16 * parts.bar_ticks + fermata_ticks(Meter(4, 4))), abs=0.05
    )
    # The last segment's MIDI starts at the tempo reached there.
    segment = mido.MidiFile(file=io.BytesIO(parts.midi(12, 4)))
    first = next(m for m in segment.tracks[0] if m.type == "set_tempo")
    assert mido.tempo2bpm(first.tempo) == pytest.approx(120.0)


def test_a_section_ending_cadence_broadens_then_returns_to_tempo():
    base = ending_tempo_map(120.0, Meter(4, 4), 8)
    broad = broadened_at_cadences(base, Meter(4, 4), [4, 8], 8)  # 8: the piece's own end
    # bar 4's downbeat is tick 7680: its last two beats slow, the next downbeat is in tempo
    assert broad.bpm_at(7680 - 960) == pytest.approx(120.0 * (1 + CADENCE_BROADENING) / 2)
    assert broad.bpm_at(7680 - 480) == pytest.approx(120.0 * CADENCE_BROADENING)
    assert broad.bpm_at(7680 - 961) == broad.bpm_at(7680) == 120.0
    # the piece's end keeps its own ritardando, untouched
    assert [c for c in broad.changes if c[0] > 7680] == list(base.changes[1:])
    # it takes longer by the slower beats, and nothing else moves
    slower = 0.5 / (1 + CADENCE_BROADENING) * 2 + 0.5 / CADENCE_BROADENING - 1.0
    assert broad.seconds_at(7680) - base.seconds_at(7680) == pytest.approx(slower)
    # a bar of two beats broadens its last beat only; an end at 0 or past the piece: none
    two = broadened_at_cadences(TempoMap.constant(90.0), Meter(2, 4), [0, 2, 9], 4)
    assert two.changes == ((0, 90.0), (1440, 90.0 * CADENCE_BROADENING), (1920, 90.0))


def test_phrase_rubato_leans_into_the_middle_and_eases_into_each_cadence():
    base = ending_tempo_map(100.0, Meter(3, 4), 12)  # rit over bars 10-11
    shaped = phrase_rubato(base, Meter(3, 4), [(0, 4), (4, 4), (8, 4)], 0.06, before_bar=10)
    beat = 480
    phrase = [shaped.bpm_at(b * beat) for b in range(12)]  # the first phrase's 12 beats
    # slowest at its edges, fastest in its middle, one small step a beat, no jumps
    assert phrase[0] == phrase[-1] == min(phrase) and max(phrase) in (phrase[5], phrase[6])
    assert min(phrase) == pytest.approx(100.0 * (1 - 0.06 * (2 / 3 - 1 + (11 / 12) ** 2)), abs=0.01)
    assert max(phrase) == pytest.approx(100.0 * (1 + 0.06 / 3), abs=0.1)
    assert all(abs(b - a) <= 1.7 for a, b in itertools.pairwise(phrase))  # steepest at the edges
    # a phrase lasts about as long as in strict time
    assert shaped.seconds_at(4 * 1440) == pytest.approx(base.seconds_at(4 * 1440), rel=0.01)
    # the next phrase starts as slowly as this one ended: the cadence and the breath after it
    assert shaped.bpm_at(4 * 1440) == phrase[0]
    # the closing ritardando is left as it is; a depth of 0 changes nothing
    assert [c for c in shaped.changes if c[0] >= 10 * 1440] == [
        c for c in base.changes if c[0] >= 10 * 1440
    ]
    assert phrase_rubato(base, Meter(3, 4), [(0, 12)], 0.0) is base


def test_a_calm_folk_piece_has_rubato_a_dance_tune_keeps_strict_time():
    def spread(style: str, energy: Energy) -> float:
        piece_spec = spec(16, tempo=120.0, style=style, energy=energy.value)
        plan = plan_form("AABA", bars=16, key=C, energy=energy)
        piece_spec.form.CopyFrom(form_to_pb(plan))
        parts = PieceParts.from_events(table_events(piece_events(piece_spec)))
        assert parts is not None
        tempos = [parts.tempo_map.bpm_at(tick) for tick in range(0, 12 * 1920, 480)]
        return (max(tempos) - min(tempos)) / 120.0

    calm, busy = spread("folk", Energy.LOW), spread("folk", Energy.HIGH)
    # low energy: the whole depth, and the sections' breathing on top (0.9 at their ends)
    assert 0.1 <= calm <= 0.15 and 0.1 <= busy < calm
    celtic = spread("celtic", Energy.LOW)
    assert celtic == pytest.approx(1 - CADENCE_BROADENING)  # only the breath at section ends
    # the MIDI carries it, so a player, the audio and the segments' times all follow it
    assert RUBATO_DEPTH["celtic"] == 0.0 < RUBATO_DEPTH["folk"] < RUBATO_DEPTH["chorale"]


def test_a_planned_piece_breathes_at_its_section_ends_in_midi_and_audio():
    parts, plan = planned_parts("AABA", 16, style="celtic")
    tempo = parts.tempo_map
    for section in plan.sections[:-1]:
        downbeat = section.end_bar * parts.bar_ticks
        assert tempo.bpm_at(downbeat - 480) == pytest.approx(120.0 * CADENCE_BROADENING)
        assert tempo.bpm_at(downbeat) == pytest.approx(120.0)
    # the streamed segments and piece.mid's tempo follow the same map (the ritardando test
    # above reads its set_tempo events); a segment of 4 bars lasts its bars' time in it
    audio = SegmentAudio(tempo)
    first = audio.render(parts, 0, 4)
    assert first.duration_seconds == pytest.approx(tempo.seconds_at(4 * parts.bar_ticks), abs=0.01)
    assert first.duration_seconds > 4 * parts.bar_seconds + 0.05


def test_audio_follows_the_tempo_map_and_segments_join_without_a_gap():
    parts, plan = planned_parts("AABA", 16, tempo=160.0)
    audio = SegmentAudio(parts.tempo_map)
    segments = [audio.render(parts, i, 4) for i in range(parts.segment_count(4))]
    assert audio.finished
    position = 0.0
    for index, segment in enumerate(segments):
        first, count = parts.segment_bars(index, 4)
        assert segment.start_seconds == pytest.approx(position)
        assert segment.start_seconds == pytest.approx(parts.seconds_before_bar(first), abs=0.01)
        if index < len(segments) - 1:
            expected = parts.seconds_before_bar(first + count) - parts.seconds_before_bar(first)
            assert segment.duration_seconds == pytest.approx(expected, abs=0.01)
        position += segment.duration_seconds
    # The ritardando makes the piece longer than at a steady tempo; the held chord and the
    # release tail follow the last bar.
    music = parts.seconds_before_bar(16)
    assert music > 16 * parts.bar_seconds + 0.5
    held = parts.tempo_map.seconds_at(16 * parts.bar_ticks + fermata_ticks(Meter(4, 4))) - music
    assert position == pytest.approx(music + held + 2.0, abs=0.02)
    joined = audio.piece_audio()
    assert len(joined) == sum(len(s.audio) for s in segments)
    # No cut: the held chord still sounds in the second after the last barline.
    after = joined[round(music * 44100) : round((music + 1.0) * 44100)]
    assert np.sqrt(np.mean(after**2)) > 0.01
    # The streamed master keeps the sections' dynamics and the piece on its target.
    assert integrated_loudness(joined, 44100) == pytest.approx(-14.0, abs=0.5)

    def section_lufs(index: int) -> float:
        section = plan.sections[index]
        start = round(parts.seconds_before_bar(section.first_bar) * 44100)
        end = round(parts.seconds_before_bar(section.end_bar) * 44100)
        return integrated_loudness(joined[start:end], 44100)

    assert section_lufs(3) > section_lufs(0) + 2.0  # A'' (the last return) over A


def test_a_short_jig_ends_on_a_held_note_no_louder_than_its_tune_and_lands_on_target():
    """A 24-second jig (a pickup and three phrases of 6/8 on a fiddle): its final note, held
    through the fermata, used to ring 1.9 LU over the last phrase (a real tune's 4-6 dB),
    mastered at the last bar's gain, and the piece streamed 0.34 LU over its target (a real
    one 1.1 LU)."""
    plan = with_pickup(plan_pattern("A B C", key=C, energy=Energy.MID))
    piece_spec = spec(plan.total_bars, meter=(6, 8), style="celtic")
    piece_spec.palette = "celtic"
    piece_spec.form.CopyFrom(form_to_pb(plan))
    parts = PieceParts.from_events(table_events(piece_events(piece_spec)))
    audio = SegmentAudio(parts.tempo_map)
    for segment in range(parts.segment_count(4)):
        audio.render(parts, segment, 4)
    joined = audio.piece_audio()
    assert integrated_loudness(joined, 44100) == pytest.approx(-14.0, abs=0.25)
    music = parts.seconds_before_bar(plan.total_bars)
    last_phrase = joined[
        round(parts.seconds_before_bar(plan.sections[-1].first_bar) * 44100) : round(music * 44100)
    ]
    hold = joined[round(music * 44100) : round((music + 1.0) * 44100)]
    assert integrated_loudness(hold, 44100) < integrated_loudness(last_phrase, 44100)


def test_each_phrase_swells_into_its_cadence_and_the_next_starts_softer():
    from cantus.render.arrangement import PHRASE_SWELL, bar_arrangements

    plan = plan_form("AABA", bars=16, key=C, energy=Energy.MID)
    swells = [bar.swell for bar in bar_arrangements(plan, Style.FOLK)]
    for section in plan.sections:
        phrase = swells[section.first_bar : section.end_bar]
        assert phrase == sorted(phrase) and phrase[0] < 1.0 < phrase[-1]
        assert abs(phrase[-1] - 1.0 - PHRASE_SWELL) < 1e-9
    parts, _ = planned_parts("AABA", 16, humanise=False)
    melody = next(t for t in parts.piece_tracks(0, 16) if t.name == "melody")
    ticks = parts.bar_ticks

    def mean_velocity(bar):
        notes = [n.velocity for n in melody.notes if bar * ticks <= n.onset < (bar + 1) * ticks]
        return sum(notes) / len(notes)

    # Louder into each cadence than at the phrase's start (the fixture's bars are alike).
    assert mean_velocity(3) > mean_velocity(0) and mean_velocity(7) > mean_velocity(4)
