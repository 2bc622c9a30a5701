"""Palettes: every one renders with the installed SoundFont, keeps the melody on top, and
changes instruments where the form changes section."""

from __future__ import annotations

import numpy as np
import pytest

from cantus.eval.masking import track_masking
from cantus.events.conversions import form_to_pb
from cantus.music.form import plan_form
from cantus.music.notes import Key, Mode
from cantus.music.styles import MOOD_ENERGY, Energy, Style
from cantus.render.arrangement import BODHRAN_KEYS, CRASH, KICK, SNARE
from cantus.render.palettes import (
    PALETTES,
    PaletteError,
    default_palette,
    get_palette,
)
from cantus.render.piece import PieceParts
from cantus.render.synth import render_stems

from .piece_fixtures import piece_events, spec, table_events

C = Key(0, Mode.MAJOR)


def planned(palette: str, form: str = "AABA", bars: int = 16, style: str = "folk"):
    piece_spec = spec(bars, tempo=120.0, style=style)
    plan = plan_form(form, bars=bars, key=C, energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    piece_spec.palette = palette
    parts = PieceParts.from_events(table_events(piece_events(piece_spec)), humanise=True)
    assert parts is not None
    return parts, plan


@pytest.mark.parametrize("name", list(PALETTES))
def test_every_palette_keeps_the_melody_on_top(name):
    parts, _ = planned(name)
    tracks = parts.piece_tracks(0, parts.bar_count)
    assert track_masking(tracks).rate == 0.0
    programs = {t.name: t.program for t in tracks}
    palette = get_palette(name)
    assert programs["chords"] == palette.chords and programs["colour"] == palette.colour
    drums = next(t for t in tracks if t.name == "drums")
    assert bool(drums.notes) == palette.has_drums


@pytest.mark.parametrize("name", list(PALETTES))
def test_every_palette_renders_with_the_installed_soundfont(name):
    parts, _ = planned(name, form="AABA", bars=8)
    tracks = parts.piece_tracks(0, parts.bar_count)
    stems = render_stems(tracks, tempo_bpm=parts.tempo_map, tail_seconds=0.5)
    for track in tracks:
        if track.notes:
            peak = float(np.abs(stems[track.name]).max())
            assert peak > 1e-3, f"{name}: the {track.name} part is silent"


def test_the_bridge_switches_to_the_colour_instrument_at_its_boundary():
    parts, plan = planned("folk", form="AABA", bars=16)
    tracks = {t.name: t for t in parts.piece_tracks(0, 16)}
    ticks = parts.bar_ticks
    bridge = next(s for s in plan.sections if s.label == "B")
    low, high = bridge.first_bar * ticks, bridge.end_bar * ticks

    def inside(name, a, b):
        return [n for n in tracks[name].notes if a <= n.onset < b]

    assert not inside("chords", low, high) and inside("colour", low, high)
    before = inside("chords", low - ticks, low)
    assert before and not inside("colour", low - ticks, low)
    # The section after the bridge has the chords back.
    assert inside("chords", high, high + ticks)


def test_the_intro_is_thinner_than_the_last_chorus_in_every_palette():
    for name in PALETTES:
        parts, plan = planned(name, form="verse-chorus", bars=32)
        tracks = parts.piece_tracks(0, 32)
        ticks = parts.bar_ticks
        counts = {}
        for label in ("intro", "chorus''"):
            section = next(s for s in plan.sections if s.label == label)
            low, high = section.first_bar * ticks, section.end_bar * ticks
            sounding = {t.name for t in tracks if any(low <= n.onset < high for n in t.notes)}
            counts[label] = (len(sounding), section.bars)
        assert counts["intro"][0] < counts["chorus''"][0], name


def test_the_celtic_band_plays_a_frame_drum_not_a_kit():
    parts, _ = planned("celtic", style="celtic")
    drums = next(t for t in parts.piece_tracks(0, 16) if t.name == "drums")
    keys = {n.pitch for n in drums.notes}
    assert keys & set(BODHRAN_KEYS.values())
    assert not keys & {KICK, SNARE, CRASH}


def test_defaults_come_from_style_and_mood():
    assert default_palette(Style.FOLK, "happy") == "folk"
    assert default_palette(Style.CELTIC, "energetic") == "celtic"
    assert default_palette(Style.CHORALE, "calm") == "chorale"
    for style in Style:
        for mood in MOOD_ENERGY:
            assert default_palette(style, mood) in PALETTES


def test_an_unknown_palette_is_named_with_the_known_ones():
    with pytest.raises(PaletteError, match=r"unknown palette 'kazoo'.*piano"):
        get_palette("kazoo")


def test_a_solo_palette_plans_smaller_section_contrasts_around_the_same_mean():
    from cantus.render.arrangement import section_levels_db

    plan = plan_form("verse-chorus", bars=32, key=C, energy=Energy.MID)
    band = section_levels_db(plan, Style.FOLK, get_palette("folk"))
    solo = section_levels_db(plan, Style.FOLK, get_palette("piano"))
    assert max(solo) - min(solo) < max(band) - min(band)
    assert band == section_levels_db(plan, Style.FOLK)  # a band plans as before palettes
