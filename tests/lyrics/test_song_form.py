"""Lyrics in song form: lines end at section ends, the rhyme scheme restarts per section, a
repeated chorus sings its words again, and the title comes from the chorus."""

from collections import Counter

from cantus.lyrics.decoding import DecodedLine, LyricWriter
from cantus.lyrics.slots import plan_lines
from cantus.lyrics.song_form import SungLine, line_melody, repeated_line, title_line
from cantus.music.form import plan_form, with_pickup
from cantus.music.notes import Key, Meter, Mode, Note
from cantus.music.styles import Energy

FOUR_FOUR = Meter(4, 4)


def verse_chorus(bars: int = 32):
    return plan_form("verse-chorus", bars=bars, key=Key(0, Mode.MAJOR), energy=Energy.MID)


def melody_for(plan):
    """Bars whose notes repeat where the plan's sections repeat (a different figure per
    new section)."""
    out = []
    for number, section in enumerate(plan.sections):
        seed = section.source if section.source is not None else number
        for bar in range(section.bars):
            pitch = 60 + (seed * 3 + bar) % 12
            out.append([Note(i * 480, pitch + i, 480) for i in range(4)])
    return out


class EchoWriter:
    """Writes each line as its own index, so repetition is visible."""

    context = staticmethod(LyricWriter.context)

    def __init__(self):
        self.calls = 0

    def write_line(self, line, **_):
        self.calls += 1
        words = [f"w{line.index}"] * line.syllables
        return DecodedLine(words, list(words), f"r{line.index}")


def test_lines_end_at_section_ends_and_rhyme_per_section():
    plan = verse_chorus()
    lines = plan_lines(melody_for(plan), FOUR_FOUR, scheme="AABB", plan=plan)
    ends = {section.end_bar for section in plan.sections}
    starts = {section.first_bar for section in plan.sections}
    for line in lines:
        last = line.first_bar + line.bar_count
        section = plan.section_at(line.first_bar)
        assert last <= section.end_bar  # never crosses a section end
    assert {line.first_bar for line in lines} >= starts
    assert {line.first_bar + line.bar_count for line in lines} >= ends
    first_in_section = [line for line in lines if line.first_bar in starts]
    assert all(line.rhymes_with is None for line in first_in_section)


def test_a_repeated_chorus_sings_the_same_words_and_verses_get_new_ones():
    plan = verse_chorus()
    lines = plan_lines(melody_for(plan), FOUR_FOUR, scheme="AABB", plan=plan)
    echo = EchoWriter()
    decoded = LyricWriter.write_lines(echo, lines, plan)  # type: ignore[arg-type]
    by_label: dict[str, list[str]] = {}
    for line, out in zip(lines, decoded, strict=True):
        by_label.setdefault(plan.section_at(line.first_bar).label, []).append(" ".join(out.words))
    labels = [s.label for s in plan.sections]
    assert "chorus" in labels and "chorus'" in labels
    assert by_label["chorus'"] == by_label["chorus"]  # a repeat: the same words
    verses = [label for label in by_label if label.startswith("verse")]
    assert len(verses) >= 2 and by_label[verses[0]] != by_label[verses[1]]
    assert echo.calls < len(lines)
    if "chorus''" in by_label:  # varied: the same words where the notes are the same
        shared = Counter(by_label["chorus''"]) & Counter(by_label["chorus"])
        assert shared


def test_a_chorus_line_with_another_rhythm_gets_new_words():
    plan = verse_chorus()
    chorus = next(s for s in plan.sections if s.label == "chorus")
    again = next(s for s in plan.sections if s.label == "chorus'")
    melody = ((0, 0, 60, True), (0, 480, 62, False))
    earlier = [SungLine(0, chorus.first_bar, 2, melody, ("a", "b"), ("a", "b"))]
    assert repeated_line(plan, again.first_bar, 2, melody, earlier) is earlier[0]
    new_pitch = ((0, 0, 60, True), (0, 480, 64, False))  # a varied cadence: same words
    assert repeated_line(plan, again.first_bar, 2, new_pitch, earlier) is earlier[0]
    new_rhythm = ((0, 0, 60, True), (0, 480, 62, True))
    assert repeated_line(plan, again.first_bar, 2, new_rhythm, earlier) is None
    assert repeated_line(None, again.first_bar, 2, melody, earlier) is None


def test_the_title_is_the_first_chorus_line():
    plan = verse_chorus()
    chorus = next(s for s in plan.sections if s.label == "chorus")
    lines = {0: (0, "walking home"), 1: (chorus.first_bar, "under the snow"), 2: (30, "x")}
    assert title_line(plan, lines) == (1, "under the snow")
    assert title_line(None, lines) == (0, "walking home")
    assert title_line(plan, {}) is None


def test_line_melody_is_relative_to_the_line():
    from cantus.lyrics.slots import Slot

    slots = [Slot(4, 0, 0, 60, True), Slot(5, 0, 480, 62, False)]
    assert line_melody(4, slots) == ((0, 0, 60, True), (1, 480, 62, False))


def test_a_pickup_bar_opens_the_first_line_instead_of_making_one_of_its_own():
    plan = with_pickup(verse_chorus())
    melody = melody_for(plan)
    melody[0] = [Note(1440, 67, 480)]  # the upbeat: one syllable
    lines = plan_lines(melody, FOUR_FOUR, scheme="AABB", plan=plan)
    assert lines[0].first_bar == 0 and lines[0].bar_count > 1
    assert lines[0].first_bar + lines[0].bar_count <= plan.sections[1].end_bar
    # the first line is the first section's: its stanza, its rhyme
    assert lines[1].first_bar < plan.sections[1].end_bar
    assert lines[1].stanza == 0 and lines[1].rhymes_with == 0
    assert plan.sections[plan.heard_section_index(0)].label == "intro"
    assert {line.first_bar for line in lines} >= {s.first_bar for s in plan.sections[2:]}
