"""The form plan in a finished piece's files: piece.json's ``form`` entry, and the lead sheet's
rehearsal marks, double barlines at section ends and key-area texts."""

from __future__ import annotations

import dataclasses
import json

import pytest
from music21 import bar as m21bar
from music21 import converter, expressions

from cantus.events.conversions import form_to_pb
from cantus.music.form import FormPlan, KeyArea, plan_form, plan_pattern
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy
from cantus.render.leadsheet import leadsheet_musicxml

from .piece_fixtures import spec


def spec_with_form(bars: int, form: str = "auto"):
    piece_spec = spec(bars, tempo=120.0, style="celtic")  # strict time: no phrase rubato
    plan = plan_form(form, bars=bars, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    return piece_spec


def test_piece_json_lists_the_sections(quick_render):
    rendered = quick_render(spec_with_form(16))
    form = json.loads(rendered.files["piece.json"])["form"]
    assert form["name"] == "AABA" and form["total_bars"] == 16 and form["home_key"] == "C major"
    sections = form["sections"]
    assert [(s["label"], s["first_bar"], s["bars"]) for s in sections] == [
        ("A", 0, 4),
        ("A'", 4, 4),
        ("B", 8, 4),
        ("A''", 12, 4),
    ]
    bridge = sections[2]
    assert (bridge["key"], bridge["key_area"], bridge["energy"]) == ("C major", "home", "high")
    assert (bridge["treatment"], bridge["cadence"], bridge["source"]) == ("new", "half", None)
    ret = sections[1]
    assert (ret["treatment"], ret["source"], ret["source_label"]) == ("vary", 0, "A")
    # 2 s a bar, and each section's cadence broadens its last two beats (0.5 s each)
    from cantus.render.tempo import CADENCE_BROADENING

    breath = 0.5 / ((1 + CADENCE_BROADENING) / 2) + 0.5 / CADENCE_BROADENING - 1.0
    expected = [0.0, 8.0 + breath, 16.0 + 2 * breath, 24.0 + 3 * breath]
    assert [s["start_seconds"] for s in sections] == pytest.approx(expected, abs=0.001)
    assert sections[-1]["cadence"] == "authentic"


def test_a_piece_without_a_plan_has_no_form_and_no_rehearsal_marks(quick_render):
    rendered = quick_render(spec(8))
    assert json.loads(rendered.files["piece.json"])["form"] is None
    assert b"<rehearsal" not in rendered.files["piece.musicxml"]


def test_the_rendered_lead_sheet_marks_the_sections(quick_render):
    musicxml = quick_render(spec_with_form(16)).files["piece.musicxml"]
    assert musicxml.count(b"<rehearsal") == 4
    # A A' B A'': a double barline where the first period closes on the tonic (bar 8); the A
    # and the B pause on half cadences and the tune goes on through a plain barline
    assert musicxml.count(b"<bar-style>light-light</bar-style>") == 1


def test_a_plan_of_other_length_than_the_piece_is_ignored(quick_render):
    piece_spec = spec(8)
    plan = plan_form("auto", bars=16, key=Key(0), energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    rendered = quick_render(piece_spec)
    assert json.loads(rendered.files["piece.json"])["form"] is None
    assert b"<rehearsal" not in rendered.files["piece.musicxml"]


def test_lead_sheet_rehearsal_marks_barlines_and_key_areas():
    meter = Meter(4, 4)
    bars = [Bar(meter, (Note(0, 60 + i % 5, 960), Note(960, 64, 960))) for i in range(16)]
    chords = [[(0, "C")]] * 16
    plan = plan_form("AABA", bars=16, key=Key(0), energy=Energy.MID)
    sections = list(plan.sections)  # B in the dominant, as a longer B would be
    sections[2] = dataclasses.replace(sections[2], key=Key(7), key_area=KeyArea.DOMINANT)
    plan = FormPlan(plan.name, tuple(sections), plan.home_key)
    xml = leadsheet_musicxml(bars, chords, [], Key(0), meter, 100.0, form=plan)
    part = converter.parse(xml, format="musicxml").parts[0]
    measures = list(part.getElementsByClass("Measure"))
    marks = {
        m.number: [r.content for r in m.getElementsByClass(expressions.RehearsalMark)]
        for m in measures
    }
    assert {n: labels for n, labels in marks.items() if labels} == {
        1: ["A"],
        5: ["A'"],
        9: ["B"],
        13: ["A''"],
    }
    doubles = [
        m.number
        for m in measures
        if isinstance(m.rightBarline, m21bar.Barline) and m.rightBarline.type == "double"
    ]
    # a period's close on the tonic (bar 8) and the B that leaves for the dominant (bar 12);
    # the A pauses on a half cadence and goes on
    assert doubles == [8, 12]
    # the piece ends on a final barline, its last note held (the render's fermata)
    assert measures[-1].rightBarline.type == "final"
    held = [n for n in part.recurse().notes if n.expressions]
    assert held == [measures[-1].notes[-1]]
    assert isinstance(held[0].expressions[0], expressions.Fermata)
    assert held[0].expressions[0].type == "upright"  # over the note
    # without a plan nothing is held past the barline: a final barline, no fermata
    xml = leadsheet_musicxml(bars, chords, [], Key(0), meter, 100.0)
    unplanned = converter.parse(xml, format="musicxml").parts[0]
    assert list(unplanned.getElementsByClass("Measure"))[-1].rightBarline.type == "final"
    assert not [n for n in unplanned.recurse().notes if n.expressions]
    texts = {
        m.number: [t.content for t in m.getElementsByClass(expressions.TextExpression)]
        for m in measures
    }
    assert texts[9] == ["G major (dominant)"]
    assert texts[13] == ["C major (home)"]  # back in the home key area
    assert texts[5] == []  # the same key area: no text
    # the key signature stays the piece's
    assert [k.sharps for k in part.flatten().getElementsByClass("KeySignature")] == [0]


def test_the_lead_sheet_marks_a_sections_own_tempo_and_the_return(quick_render):
    """After ``cantus edit ID --section B --tempo 90`` (issue #18): a metronome mark at
    B's first bar and "a tempo" where the piece's tempo returns."""
    import re

    piece_spec = spec_with_form(16)
    piece_spec.form.sections[2].tempo_bpm = 90
    musicxml = quick_render(piece_spec).files["piece.musicxml"].decode()
    marks = {}
    for measure in re.finditer(r'<measure[^>]*number="(\d+)".*?</measure>', musicxml, re.S):
        tempos = re.findall(r"<per-minute>([\d.]+)</per-minute>", measure.group(0))
        words = re.findall(r"<words[^>]*>([^<]*)</words>", measure.group(0))
        if tempos:
            marks[int(measure.group(1))] = (tempos, words)
    assert marks == {1: (["120"], []), 9: (["90"], []), 13: (["120"], ["a tempo"])}


def test_a_drawn_through_composed_form_has_one_double_barline_between_its_periods():
    meter = Meter(4, 4)
    bars = [Bar(meter, (Note(0, 60 + i % 5, 960), Note(960, 64, 960))) for i in range(16)]
    plan = plan_pattern("A B C D", key=Key(0), energy=Energy.MID)
    xml = leadsheet_musicxml(bars, [[(0, "C")]] * 16, [], Key(0), meter, 100.0, form=plan)
    measures = list(converter.parse(xml, format="musicxml").parts[0].getElementsByClass("Measure"))
    doubles = [
        m.number
        for m in measures
        if isinstance(m.rightBarline, m21bar.Barline) and m.rightBarline.type == "double"
    ]
    assert doubles == [8]  # after B closes the first period on the tonic
    assert sum(len(m.getElementsByClass(expressions.RehearsalMark)) for m in measures) == 4
