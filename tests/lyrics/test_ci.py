"""Ci tune patterns: counted from poems, cut into stanzas, fitted to melody (whole clauses
per line, melismas on weak notes first, nothing where the tune does not allow), carried by
the lines and written clause by clause with their rhymes."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.lyrics.ci import (
    CI_MAX_BARS,
    MAX_MELISMA_SHARE,
    CiClause,
    CiStanza,
    carry,
    ci_groups,
    ci_stanzas,
    count_patterns,
    fit_line,
    fit_stanza,
    group_shape,
    received_group,
    sing_ci,
    sing_named,
    stanzas_of,
)
from cantus.lyrics.decoding import LyricWriter
from cantus.lyrics.slots import Slot, plan_lines, rhyme_word
from cantus.music.form import plan_form, with_pickup
from cantus.music.notes import TICKS_PER_QUARTER, Key, Meter, Mode, Note
from cantus.music.styles import Energy

QUARTER = TICKS_PER_QUARTER
FOUR_FOUR = Meter(4, 4)
HUANXISHA = (7, 7, 7, 7, 7, 7)


def clauses(lengths, rhymes=None) -> tuple[CiClause, ...]:
    rhymes = rhymes or [True] * len(lengths)
    return tuple(CiClause(n, r) for n, r in zip(lengths, rhymes, strict=True))


def slots(count: int, *, strong_every: int = 2, hold: int = QUARTER) -> list[Slot]:
    return [Slot(0, i, i * hold, 60, i % strong_every == 0, 1, hold) for i in range(count)]


def poem(lengths, marks) -> list[str]:
    return ["".join("月" * n + m for n, m in zip(lengths, marks, strict=True))]


def test_a_pattern_takes_its_commonest_lengths_and_the_rhymes_most_poems_mark():
    poems = [("浣溪沙", poem(HUANXISHA, "。。。，。。"))] * 3
    poems += [("浣溪沙", poem(HUANXISHA, "。。。。。。"))] * 2
    poems += [("浣溪沙", poem((7, 7, 7, 7, 7), "。。。，。"))] * 4  # a variant, fewer poems
    poems += [("浣溪沙", ["一曲□词酒一杯。"])]  # a lacuna: not counted
    poems += [("如梦令", poem((6, 6, 5, 6, 2, 2, 6), "。。，。。。。"))] * 2
    counted = count_patterns(poems, min_poems=3)
    assert [(name, count) for name, count, _ in counted] == [("浣溪沙", 5)]
    shape = counted[0][2]
    assert [c.characters for c in shape] == list(HUANXISHA)
    assert [c.rhymes for c in shape] == [True, True, True, False, True, True]


def test_a_pattern_of_two_stanzas_is_cut_at_the_rhyme_nearest_its_half():
    whole, first, second = stanzas_of("浣溪沙", 700, clauses(HUANXISHA))
    assert (whole.part, first.part, second.part) == ("", "上片", "下片")
    assert first.characters == second.characters == 21
    assert second.name == "浣溪沙·下片"
    # no rhyme near half the characters: one stanza
    lopsided = clauses((7, 7, 3, 3), (False, False, False, True))
    assert [s.part for s in stanzas_of("x", 1, lopsided)] == [""]


def test_the_committed_patterns_hold_known_tunes():
    names = {stanza.name for stanza in ci_stanzas()}
    assert {"浣溪沙", "浣溪沙·上片", "如梦令", "菩萨蛮·下片"} <= names
    ru_meng_ling = next(s for s in ci_stanzas() if s.name == "如梦令")
    assert [c.characters for c in ru_meng_ling.clauses] == [6, 6, 5, 6, 2, 2, 6]


def test_a_line_with_as_many_notes_as_characters_needs_no_melisma():
    _, merged, notes = fit_line(slots(12), clauses((5, 7)))
    assert merged == () and notes == (5, 7)
    assert fit_line(slots(11), clauses((5, 7))) is None


def test_extra_notes_are_sung_on_weak_notes_before_strong_ones():
    _, merged, notes = fit_line(slots(9), clauses((7,)))
    assert len(merged) == 2 and sum(notes) == 9
    assert all(i % 2 == 1 for i in merged)  # the weak slots
    assert 0 not in merged  # a clause starts a character on its first note


def test_a_clause_is_cut_where_the_melody_breathes():
    line = slots(13, hold=QUARTER // 2)
    line[6] = Slot(0, 6, 0, 60, True, 1, 4 * QUARTER)  # a long seventh note
    _, merged, notes = fit_line(line, clauses((6, 6)))
    assert notes == (7, 6)  # the melisma goes where the first clause then ends on it
    assert len(merged) == 1 and merged[0] < 7


def stanza_lines(counts: list[int]):
    bars = []
    for count in counts:  # one line per two bars, ``count`` quarter notes over them
        notes = [Note(i * QUARTER % (4 * QUARTER), 62, QUARTER) for i in range(count)]
        bars += [notes[:4], notes[4:]] if count > 4 else [notes, []]
    return bars


def line_slots(counts: list[int], bars: int = 2):
    """Lines of ``counts`` slots each (quarter notes, strong on beats 1 and 3), each over
    ``bars`` bars."""
    from cantus.lyrics.slots import LineSlots

    out = []
    for index, count in enumerate(counts):
        line = tuple(
            Slot(bars * index, i, i * QUARTER, 60 + i, i % 2 == 0, 1, QUARTER) for i in range(count)
        )
        out.append(LineSlots(index, bars * index, bars, line, "A", None))
    return out


def test_a_stanza_fits_whole_clauses_to_each_line():
    stanza = CiStanza("浣溪沙", "上片", clauses(HUANXISHA[:3]), 700)
    fit = fit_stanza(line_slots([7, 8, 7]), [stanza])
    assert fit is not None and fit.melisma == 1
    assert [fit.lines[i].clauses for i in range(3)] == [(7,), (7,), (7,)]
    # a line of 14 notes takes two clauses; lines cannot split a clause
    fit = fit_stanza(line_slots([14, 7]), [stanza])
    assert fit is not None and fit.lines[0].clauses == (7, 7)
    assert fit_stanza(line_slots([10, 11]), [stanza]) is None


def test_a_tune_with_too_many_notes_or_too_few_carries_no_stanza():
    stanza = CiStanza("浣溪沙", "上片", clauses(HUANXISHA[:3]), 700)
    too_many = int(21 / (1 - MAX_MELISMA_SHARE)) + 3
    assert fit_stanza(line_slots([too_many]), [stanza]) is None
    assert fit_stanza(line_slots([7, 7, 6]), [stanza]) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 14), min_size=1, max_size=6))
def test_a_fit_covers_every_note_once_and_the_stanzas_characters(counts):
    lines = line_slots(counts)
    fit = fit_stanza(lines)
    if fit is None:
        return
    assert fit.melisma <= MAX_MELISMA_SHARE * sum(counts)
    assert sum(sum(f.clauses) for f in fit.lines.values()) == fit.stanza.characters
    for line in lines:
        carried = carry(line, fit.lines[line.index])
        assert carried.syllables == sum(carried.clauses)
        assert sum(s.note_count for s in carried.slots) == line.syllables
        assert sum(s.hold_ticks for s in carried.slots) == sum(s.hold_ticks for s in line.slots)


def test_a_piece_carries_a_stanza_with_one_rhyme_anchored_on_its_first_rhyming_line():
    lines = line_slots([7, 7, 7, 7, 7, 8])
    sung, stanzas = sing_ci(lines, None)
    assert {stanza.name for stanza in stanzas.values()} == {"浣溪沙"}
    assert [line.syllables for line in sung] == [7] * 6
    rhyming = [line for line in sung if any(line.clause_rhymes)]
    assert rhyming[0].rhymes_with is None
    assert all(line.rhymes_with == rhyming[0].index for line in rhyming[1:])
    free = [line for line in sung if not any(line.clause_rhymes)]
    assert all(line.rhymes_with is None for line in free)


def test_sixteen_bars_of_aaba_are_one_group_and_a_chorus_is_its_own():
    aaba = plan_form("AABA", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    assert ci_groups(aaba, 16) == [(0, 16)]
    long = plan_form("AABA", bars=32, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    assert ci_groups(long, 32) == [(0, 16), (16, 32)]
    song = plan_form("verse-chorus", bars=24, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    groups = ci_groups(song, 24)
    choruses = [(s.first_bar, s.end_bar) for s in song.sections if "chorus" in s.label]
    assert all(chorus in groups for chorus in choruses)
    assert groups[0][0] == 0 and groups[-1][1] == 24
    assert all(end - first <= CI_MAX_BARS for first, end in groups)
    assert ci_groups(None, 40) == [(0, 40)]
    # a pickup bar is the first line's upbeat: 17 bars of AABA are still one group
    assert ci_groups(with_pickup(aaba), 17) == [(0, 17)]


def test_the_service_plans_a_group_as_the_whole_piece_is_planned():
    bars = stanza_lines([7, 7, 7, 7, 7, 7])
    whole = plan_lines(bars, FOUR_FOUR, scheme="AABB", ci=True)
    parts = received_group(
        dict(enumerate(bars)),
        (0, len(bars)),
        FOUR_FOUR,
        None,
        len(bars),
        first_line=0,
        scheme="AABB",
        melisma=False,
    )
    assert [fit.stanza.name for fit, _ in parts] == ["浣溪沙"]
    assert parts[0][1] == whole


def test_an_edit_sings_the_stanza_again_on_the_notes_there_are_now():
    lines = line_slots([7, 7, 7, 7, 7, 8])
    sung, stanzas = sing_ci(lines, None)
    names = {index: stanza.name for index, stanza in stanzas.items()}
    assert sing_named(lines, names, None) == {line.index: line for line in sung}
    assert sing_named(line_slots([3, 3]), {0: "浣溪沙"}, None) == {}


def test_a_shape_names_the_rhythm_not_the_pitches():
    lines = line_slots([7, 8])
    higher = [
        dataclasses.replace(line, slots=tuple(dataclasses.replace(s, pitch=70) for s in line.slots))
        for line in lines
    ]
    assert group_shape(lines) == group_shape(higher)
    assert group_shape(lines) != group_shape(line_slots([8, 7]))


def test_a_carried_line_is_written_clause_by_clause_with_each_rhyme(scorers, lexicons):
    lines = line_slots([7, 7, 7, 7, 7, 8])
    sung, _ = sing_ci(lines, None)
    writer = LyricWriter(scorers["zh"], lexicons["zh"], theme_text="明月思乡", seed=2)
    decoded = writer.write_lines(sung)
    lexicon = lexicons["zh"]

    def rhyme(line, words):
        return lexicon.rhymes[lexicon.index[rhyme_word(line, words)]]

    anchor = next(line for line in sung if any(line.clause_rhymes))
    key = rhyme(anchor, decoded[anchor.index].words)
    rhymed = 0
    for line, out in zip(sung, decoded, strict=True):
        assert len(out.syllables) == line.syllables
        assert out.clauses == (list(line.clauses) if len(line.clauses) > 1 else [])
        if line.rhymes_with is not None:
            assert rhyme(line, out.words) == key
            rhymed += 1
    assert rhymed >= 3


def test_a_group_no_stanza_fits_whole_carries_one_over_each_half():
    """Sixteen one-bar lines of seven notes (112) are more than any stanza holds; each half
    (56 notes) holds one, with its own rhyme."""
    lines = line_slots([7] * 16, bars=1)
    sung, stanzas = sing_ci(lines, None)
    assert set(stanzas) == set(range(16))
    first, second = {stanzas[i].name for i in range(8)}, {stanzas[i].name for i in range(8, 16)}
    assert len(first) == len(second) == 1
    assert sung[8].rhymes_with is None
    assert all(line.rhymes_with in (None, *range(8)) for line in sung[:8])
    assert all(line.rhymes_with in (None, *range(8, 16)) for line in sung[8:])
    names = {index: stanza.name for index, stanza in stanzas.items()}
    assert sing_named(lines, names, None) == {line.index: line for line in sung}
