"""Slots from the melody: strong beats, phrases, lines and rhyme positions."""

from hypothesis import given
from hypothesis import strategies as st

from cantus.lyrics.slots import (
    is_rhyme_anchor,
    line_slots_from_bars,
    metric_level,
    next_line_bars,
    phrase_ends,
    plan_lines,
    rhyme_position,
)
from cantus.music.notes import Meter, Note

FOUR_FOUR, SIX_EIGHT = Meter(4, 4), Meter(6, 8)


def quarters(pitches):
    return [Note(i * 480, p, 480) for i, p in enumerate(pitches)]


def test_quarter_notes_in_four_four_alternate_strong_and_weak():
    slots = line_slots_from_bars([(0, quarters([60, 62, 64, 65]))], FOUR_FOUR)
    assert [s.strong for s in slots] == [True, False, True, False]
    eighths = [Note(i * 240, 60, 240) for i in range(8)]
    slots = line_slots_from_bars([(0, eighths)], FOUR_FOUR)
    assert [s.strong for s in slots] == [True, False] * 4


def test_compound_meter_beats_are_dotted_quarters():
    assert metric_level(0, SIX_EIGHT) == 3
    assert metric_level(720, SIX_EIGHT) == 1
    assert metric_level(240, SIX_EIGHT) == 0


def test_slots_follow_render_note_order_and_skip_chord_notes():
    notes = [Note(480, 64, 480), Note(0, 60, 480), Note(0, 67, 480)]
    slots = line_slots_from_bars([(3, notes)], FOUR_FOUR)
    assert [(s.bar_index, s.note_index, s.pitch) for s in slots] == [(3, 0, 60), (3, 2, 64)]


def test_melisma_only_when_asked():
    notes = [Note(0, 60, 240), Note(240, 62, 240), Note(480, 64, 960)]
    assert len(line_slots_from_bars([(0, notes)], FOUR_FOUR)) == 3
    sung = line_slots_from_bars([(0, notes)], FOUR_FOUR, melisma=True)
    assert [s.note_count for s in sung] == [2, 1]


def test_phrase_ends_at_rests_and_long_notes():
    assert phrase_ends([], FOUR_FOUR)
    assert phrase_ends([Note(0, 60, 480), Note(480, 62, 480)], FOUR_FOUR)  # half a bar of rest
    assert phrase_ends([Note(0, 60, 960), Note(960, 62, 960)], FOUR_FOUR)  # a half note
    assert not phrase_ends(quarters([60, 62, 64, 65]), FOUR_FOUR)


def test_rhyme_positions():
    assert [rhyme_position(i, "AABB") for i in range(5)] == [
        ("A", None),
        ("A", 0),
        ("B", None),
        ("B", 2),
        ("A", None),
    ]
    assert rhyme_position(3, "ABCB") == ("B", 1)
    assert rhyme_position(2, "ABCB") == ("C", None)
    assert is_rhyme_anchor(1, "ABCB") and not is_rhyme_anchor(0, "ABCB")


bar_notes = st.lists(
    st.tuples(st.integers(0, 7), st.integers(55, 80)), max_size=8, unique_by=lambda x: x[0]
).map(lambda xs: [Note(o * 240, p, 240) for o, p in sorted(xs)])


@given(st.lists(bar_notes, min_size=1, max_size=20), st.sampled_from(["AABB", "ABAB", "ABCB"]))
def test_lines_cover_every_bar_once_and_every_onset(bars, scheme):
    lines = plan_lines(bars, FOUR_FOUR, scheme=scheme)
    covered = [b for line in lines for b in range(line.first_bar, line.first_bar + line.bar_count)]
    assert covered == list(range(len(bars)))
    assert all(1 <= line.bar_count <= 4 for line in lines)
    assert sum(line.syllables for line in lines) == sum(len(bar) for bar in bars)
    assert [line.index for line in lines] == list(range(len(lines)))
    if len(bars) >= 2:
        assert (
            lines[-1].bar_count >= 2
            or len(lines) == 1
            or (
                lines[-1].bar_count == 1
                and (
                    lines[-2].first_bar + lines[-2].bar_count == len(bars) - 1
                    and lines[-2].bar_count == 4
                )
            )
        )


def test_next_line_waits_for_the_bars_that_close_it():
    dense = [Note(i * 240, 60, 240) for i in range(8)]  # eight syllables close a line
    sparse = quarters([60, 62, 64, 65])
    assert next_line_bars({0: sparse}, 0, FOUR_FOUR, total_bars=8) is None
    assert next_line_bars({1: sparse}, 0, FOUR_FOUR, total_bars=8) is None  # bar 0 missing
    assert next_line_bars({0: sparse, 1: sparse}, 0, FOUR_FOUR, total_bars=8) == [sparse, sparse]
    assert next_line_bars({2: dense}, 2, FOUR_FOUR, total_bars=8) == [dense]
    # the single bar left at the end joins the line before it
    assert next_line_bars({6: dense}, 6, FOUR_FOUR, total_bars=8) is None
    assert next_line_bars({6: dense, 7: []}, 6, FOUR_FOUR, total_bars=8) == [dense, []]
