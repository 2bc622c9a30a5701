"""Harmony that follows a form plan: key areas, section energy and phrase-end cadences as
constraints on the last beats, honoured by the model (allowed chord classes) and the rules."""

import numpy as np
import pytest
import torch

from cantus.harmony.cadence import (
    DOMINANT,
    TONIC,
    BarHarmonyPlan,
    bar_harmony_plan,
    dominant_chords,
    rekey_beats,
    tonic_chord,
)
from cantus.harmony.context import CONTEXT_BEATS, HarmonizedBar, build_window, planned_window
from cantus.harmony.model import decode
from cantus.harmony.rules import ChordConstraint, harmonize_bar
from cantus.harmony.serving import (
    HarmonyServing,
    MelodyToHarmonize,
    ModelHarmonizer,
    RequestInputError,
    windows_to_inputs,
)
from cantus.harmony.vocabulary import CHORD_CLASSES, NO_CHORD, chord_to_class, class_to_chord
from cantus.music.chords import ChordSymbol
from cantus.music.form import Cadence, KeyArea, plan_form
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style
from cantus.settings import REPO_ROOT

from .test_model import TINY, tiny_inputs

C, A_MINOR = Key(0), Key(9, Mode.MINOR)
FOUR, THREE = Meter(4, 4), Meter(3, 4)
CHECKPOINT = REPO_ROOT / "shared/cantus/checkpoints/harmony_gru.pt"


def bar(meter: Meter, *pitches: int) -> Bar:
    step = meter.bar_ticks // max(1, len(pitches))
    return Bar(meter, tuple(Note(i * step, p, step) for i, p in enumerate(pitches)))


def chords(*names: str) -> tuple[ChordSymbol, ...]:
    return tuple(ChordSymbol.parse(n) for n in names)


def aaba(bars: int = 16, key: Key = C) -> object:
    return plan_form("AABA", bars=bars, key=key, energy=Energy.MID)


# --- the plan per bar -------------------------------------------------------------------


def test_no_plan_means_the_spec_key_and_energy_and_no_constraints():
    plan = bar_harmony_plan(None, 3, bar(FOUR, 60), home_key=C, energy=Energy.LOW)
    assert plan == BarHarmonyPlan(C, Energy.LOW)
    assert plan.allowed_classes(FOUR) is None
    assert plan.constrained_beats(FOUR) == [False] * 4


def test_half_cadence_ends_the_bar_on_the_dominant():
    plan = aaba(32)  # sections of 8 bars: a half cadence ends the first phrase, bar 3
    assert plan.cadence_at(3) is Cadence.HALF
    bar_plan = bar_harmony_plan(plan, 3, bar(FOUR, 64, 62), home_key=C, energy=Energy.MID)
    assert bar_plan.cadence is Cadence.HALF
    (constraint,) = bar_plan.constraints
    assert (constraint.onset, constraint.duration, constraint.role) == (960, 960, DOMINANT)
    assert constraint.chords == chords("G", "G7")
    assert bar_plan.constrained_beats(FOUR) == [False, False, True, True]
    allowed = bar_plan.allowed_classes(FOUR)
    assert allowed.shape == (4, CHORD_CLASSES)
    assert allowed[:2].all()
    g, g7 = (chord_to_class(c, C) for c in chords("G", "G7"))
    assert {int(c) for c in np.flatnonzero(allowed[3])} == {g, g7}


def test_authentic_cadence_is_dominant_then_tonic():
    plan = aaba(16)  # A A' B A'': A' (bars 4-7) ends on an authentic cadence
    assert plan.cadence_at(7) is Cadence.AUTHENTIC
    cadence_bar = bar(FOUR, 62, 59, 60, 60)  # D B | C C: fits V then I
    bar_plan = bar_harmony_plan(plan, 7, cadence_bar, home_key=C, energy=Energy.MID)
    assert [(c.onset, c.role, c.chords) for c in bar_plan.constraints] == [
        (0, DOMINANT, chords("G", "G7")),
        (960, TONIC, chords("C")),
    ]


def test_authentic_cadence_without_a_split_takes_its_dominant_in_the_bar_before():
    plan = plan_form("AA'", bars=8, key=C, energy=Energy.MID)
    assert plan.cadence_at(7) is Cadence.AUTHENTIC
    before = bar_harmony_plan(plan, 6, bar(THREE, 62, 65, 59), home_key=C, energy=Energy.MID)
    assert [(c.onset, c.duration, c.role) for c in before.constraints] == [(0, 1440, DOMINANT)]
    last = bar_harmony_plan(plan, 7, bar(THREE, 60), home_key=C, energy=Energy.MID)
    assert [(c.role, c.chords) for c in last.constraints] == [(TONIC, chords("C"))]


def test_approach_is_dropped_where_the_melody_clashes_with_every_dominant():
    plan = aaba(16)
    clash = bar(FOUR, 64, 60, 60, 60)  # E C | C C: no dominant fits E-C
    bar_plan = bar_harmony_plan(plan, 7, clash, home_key=C, energy=Energy.MID)
    assert [c.role for c in bar_plan.constraints] == [TONIC]


def test_an_approach_the_cadence_bar_has_no_room_for_moves_to_the_bar_before():
    plan = aaba(16)
    clash = bar(FOUR, 64, 60, 60, 60)  # E C | C C: no dominant fits the first half
    fits = bar(FOUR, 62, 59, 60, 60)  # D B | C C: the dominant fits the first half
    before = bar(FOUR, 67, 65, 62, 59)  # G F | D B: a dominant bar
    moved = bar_harmony_plan(plan, 6, before, home_key=C, energy=Energy.MID, next_bar=clash)
    assert [(c.onset, c.role) for c in moved.constraints] == [(960, DOMINANT)]
    kept = bar_harmony_plan(plan, 6, before, home_key=C, energy=Energy.MID, next_bar=fits)
    assert kept.constraints == ()


def test_sections_in_other_key_areas_are_harmonised_in_them():
    plan = aaba(32)  # 8-bar sections: B takes its key area
    b_section = plan.sections[2]
    assert b_section.key_area is KeyArea.DOMINANT
    bar_plan = bar_harmony_plan(
        plan, b_section.first_bar + 1, bar(FOUR, 67), home_key=C, energy=Energy.MID
    )
    assert bar_plan.key == Key(7)
    assert bar_plan.energy is b_section.energy is Energy.HIGH
    # B ends on a half cadence in G: on D.
    end = bar_harmony_plan(
        plan, b_section.end_bar - 1, bar(FOUR, 69, 66), home_key=C, energy=Energy.MID
    )
    assert end.cadence is Cadence.HALF and end.key == Key(7)
    assert end.constraints[-1].chords == chords("D", "D7")


def test_last_bar_ends_on_the_home_tonic():
    plan = plan_form("rondo", bars=20, key=A_MINOR, energy=Energy.LOW)
    last = bar_harmony_plan(plan, 19, bar(FOUR, 69), home_key=A_MINOR, energy=Energy.LOW)
    assert last.key == A_MINOR
    assert last.constraints[-1].chords == chords("Am")


def test_minor_dominant_offers_the_modal_v_only_under_a_subtonic():
    harmonic = bar(FOUR, 71, 68)  # B G#: the leading tone
    natural = bar(FOUR, 71, 67)  # B G: the subtonic, which E and E7's G# would clash with
    assert dominant_chords(A_MINOR, harmonic, (0, 1920)) == chords("E", "E7")
    assert dominant_chords(A_MINOR, natural, (0, 1920)) == chords("Em")
    assert tonic_chord(A_MINOR) == ChordSymbol.parse("Am")


def test_rekey_beats_keeps_the_chords():
    beats = ((chord_to_class(ChordSymbol.parse("D7"), C), 1), (NO_CHORD, 0))
    in_g = rekey_beats(beats, C, Key(7))
    assert class_to_chord(in_g[0][0], Key(7)) == ChordSymbol.parse("D7")
    assert in_g[0][1] == 1 and in_g[1] == (NO_CHORD, 0)
    assert rekey_beats(in_g, Key(7), C) == beats


def test_root_position_and_violations():
    bar_plan = bar_harmony_plan(aaba(32), 3, bar(FOUR, 62), home_key=C, energy=Energy.MID)
    g, c = (chord_to_class(ChordSymbol.parse(s), C) for s in ("G", "C"))
    beats = [(c, 1), (c, 1), (g, 2), (g, 2)]
    assert bar_plan.violations(beats, FOUR) == []
    assert bar_plan.root_position(beats, FOUR) == [(c, 1), (c, 1), (g, 0), (g, 0)]
    assert bar_plan.violations([(c, 0)] * 4, FOUR) == [2, 3]


# --- the rules honour constraints --------------------------------------------------------


def test_rules_take_the_constrained_chord_even_against_the_melody():
    melody = bar(FOUR, 60, 64, 67, 72)  # a C arpeggio: one C chord without constraints
    assert [str(s.symbol) for s in harmonize_bar(melody, C, previous=None, style=Style.FOLK)] == [
        "C"
    ]
    half = (ChordConstraint(960, 960, chords("G", "G7"), DOMINANT),)
    spans = harmonize_bar(melody, C, previous=None, style=Style.FOLK, constraints=half)
    assert [(s.onset, str(s.symbol)) for s in spans][-1][0] == 960
    assert spans[-1].symbol in chords("G", "G7")


def test_rules_split_a_bar_for_dominant_then_tonic():
    constraints = (
        ChordConstraint(0, 960, chords("G", "G7"), DOMINANT),
        ChordConstraint(960, 960, chords("C"), TONIC),
    )
    spans = harmonize_bar(
        bar(FOUR, 62, 59, 60, 60), C, previous=None, style=Style.FOLK, constraints=constraints
    )
    assert [s.roman for s in spans] in (["V", "I"], ["V7", "I"])
    rests = Bar(FOUR, ())
    spans = harmonize_bar(
        rests, C, previous=ChordSymbol.parse("F"), style=Style.FOLK, constraints=constraints
    )
    assert [str(s.symbol) for s in spans] == ["G", "C"]


def test_rules_one_chord_bar_takes_the_allowed_chord():
    only_tonic = (ChordConstraint(0, 1440, chords("Am"), TONIC),)
    spans = harmonize_bar(
        bar(THREE, 72, 71, 69), A_MINOR, previous=None, style=Style.CELTIC, constraints=only_tonic
    )
    assert [str(s.symbol) for s in spans] == ["Am"]


# --- the model honours the allowed classes ----------------------------------------------


def test_decode_keeps_to_the_allowed_classes_and_breaks_a_hold_for_them():
    torch.manual_seed(0)
    from cantus.harmony.model import HarmonyNet

    net = HarmonyNet(TINY)
    features, previous, hold, decode_from = tiny_inputs(batch=2)
    hold[:, -3:] = True  # the last three beats would repeat the chord before them
    allowed = torch.ones((2, CONTEXT_BEATS, CHORD_CLASSES), dtype=torch.bool)
    allowed[:, -2:] = False
    allowed[0, -2:, 70] = True
    allowed[1, -2:, [70, 74]] = True
    free, _, _ = decode(net, features, previous, hold, decode_from)
    chords_out, _, _ = decode(net, features, previous, hold, decode_from, allowed=allowed)
    assert (chords_out[0, -2:] == 70).all()
    assert set(chords_out[1, -2:].tolist()) <= {70, 74}
    assert torch.equal(chords_out[:, :-2], free[:, :-2])  # beats before are untouched


def test_serving_checks_and_defaults_the_allowed_input():
    serving = HarmonyServing.load(CHECKPOINT)
    features, previous, hold, decode_from = tiny_inputs(batch=1)
    inputs = {
        "FEATURES": features.numpy(),
        "PREVIOUS": previous.numpy().astype(np.int32),
        "HOLD": hold.numpy(),
        "DECODE_FROM": decode_from.numpy().astype(np.int32)[:, None],
    }
    free = serving.decode(inputs)["CHORDS"]  # ALLOWED left out: every class
    allowed = np.ones((1, CONTEXT_BEATS, CHORD_CLASSES), dtype=bool)
    assert (serving.decode({**inputs, "ALLOWED": allowed})["CHORDS"] == free).all()
    allowed[0, -1] = False
    allowed[0, -1, 5] = True
    assert serving.decode({**inputs, "ALLOWED": allowed})["CHORDS"][0, -1] == 5
    allowed[0, -1, 5] = False
    with pytest.raises(RequestInputError, match="ALLOWED leaves a beat"):
        serving.decode({**inputs, "ALLOWED": allowed})


def test_planned_window_reads_history_and_features_in_the_section_key():
    g_major, c_class = Key(7), chord_to_class(ChordSymbol.parse("C"), C)
    history = [HarmonizedBar(bar(FOUR, 60), ((c_class, 0),) * 4)]
    bar_plan = BarHarmonyPlan(
        g_major, Energy.HIGH, Cadence.HALF, (ChordConstraint(960, 960, chords("D"), DOMINANT),)
    )
    window = planned_window(
        history,
        bar(FOUR, 67),
        next_bar=None,
        plan=bar_plan,
        home_key=C,
        style=Style.FOLK,
        is_final=False,
        history_is_complete=True,
    )
    expected = build_window(
        [HarmonizedBar(bar(FOUR, 60), ((chord_to_class(ChordSymbol.parse("C"), g_major), 0),) * 4)],
        bar(FOUR, 67),
        next_bar=None,
        key=g_major,
        style=Style.FOLK,
        energy=Energy.HIGH,
        is_final=False,
        history_is_complete=True,
    )
    assert np.array_equal(window.features, expected.features)
    assert np.array_equal(window.previous, expected.previous)
    d_class = chord_to_class(ChordSymbol.parse("D"), g_major)
    assert window.allowed[-2:].sum() == 2 and window.allowed[-2:, d_class].all()
    assert window.allowed[:-2].all()
    inputs = windows_to_inputs([window, expected])
    assert inputs["ALLOWED"].shape == (2, CONTEXT_BEATS, CHORD_CLASSES)
    assert inputs["ALLOWED"][1].all()


def test_model_harmonizer_follows_the_plan_cadences():
    scale = (60, 62, 64, 65, 67, 69, 71, 72)
    bars = [bar(FOUR, *(scale[(i + k) % 8] for k in range(4))) for i in range(15)]
    bars.append(bar(FOUR, 60))
    plan = aaba(16)
    harmonizer = ModelHarmonizer(HarmonyServing.load(CHECKPOINT))
    planned, free = harmonizer.harmonize(
        [
            MelodyToHarmonize(bars, C, Style.FOLK, Energy.MID, plan),
            MelodyToHarmonize(bars, C, Style.FOLK, Energy.MID),
        ]
    )
    for index, beats in enumerate(planned):
        following = bars[index + 1] if index + 1 < len(bars) else None
        bar_plan = bar_harmony_plan(
            plan, index, bars[index], home_key=C, energy=Energy.MID, next_bar=following
        )
        local = rekey_beats(beats, C, bar_plan.key)
        assert bar_plan.violations(local, FOUR) == [], index
        if bar_plan.cadence is not None:
            last = class_to_chord(local[-1][0], bar_plan.key)
            wanted = 0 if bar_plan.cadence is Cadence.AUTHENTIC else 7
            assert (last.root - bar_plan.key.tonic) % 12 == wanted, index
            assert local[-1][1] == 0  # root position
    assert class_to_chord(planned[-1][-1][0], C) == ChordSymbol.parse("C")
    # Without a plan: harmonised as before plans existed.
    again = harmonizer.harmonize([MelodyToHarmonize(bars, C, Style.FOLK, Energy.MID)])
    assert again[0] == free
