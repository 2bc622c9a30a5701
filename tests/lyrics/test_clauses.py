"""Where a sung line breathes: clause lengths from the melody, the printed line and its
inverse, and Mandarin lines decoded clause by clause."""

from hypothesis import given
from hypothesis import strategies as st

from cantus.lyrics.clauses import CLAUSE_SYLLABLES, clause_lengths, word_groups
from cantus.lyrics.decoding import DecodedLine, DecodeOptions, LyricWriter
from cantus.lyrics.slots import Slot, make_line
from cantus.music.notes import TICKS_PER_QUARTER, Meter, Note

EIGHTH = TICKS_PER_QUARTER // 2


def slots(holds: list[int]) -> list[Slot]:
    return [Slot(0, i, 0, 60, i % 2 == 0, 1, hold) for i, hold in enumerate(holds)]


def test_a_line_that_fits_one_clause_stays_whole():
    assert clause_lengths(slots([EIGHTH] * 7), "zh") == (7,)
    assert clause_lengths(slots([EIGHTH] * 4), "zh") == (4,)
    assert clause_lengths([], "zh") == ()


def test_a_long_line_is_cut_after_the_note_held_longest():
    holds = [EIGHTH] * 11
    holds[3] = 4 * TICKS_PER_QUARTER  # a held note after the fourth syllable
    assert clause_lengths(slots(holds), "zh") == (4, 7)
    holds[3], holds[6] = EIGHTH, 4 * TICKS_PER_QUARTER
    assert clause_lengths(slots(holds), "zh") == (7, 4)


def test_between_notes_held_alike_verse_lengths_decide():
    assert clause_lengths(slots([EIGHTH] * 8), "zh") == (4, 4)
    assert clause_lengths(slots([EIGHTH] * 12), "zh") in {(5, 7), (7, 5)}
    assert clause_lengths(slots([EIGHTH] * 14), "zh") == (7, 7)


def test_english_lines_stay_whole():
    assert clause_lengths(slots([EIGHTH] * 14), "en") == (14,)


@given(st.lists(st.integers(0, 8 * TICKS_PER_QUARTER), min_size=1, max_size=30))
def test_clauses_cover_the_line_within_the_limits(holds):
    lengths = clause_lengths(slots(holds), "zh")
    shortest, longest = CLAUSE_SYLLABLES["zh"]
    assert sum(lengths) == len(holds)
    assert len(lengths) == -(-len(holds) // longest)
    if len(lengths) > 1:
        assert all(shortest <= length <= longest for length in lengths)


@given(
    st.lists(
        st.lists(st.sampled_from("明月春风花落天涯"), min_size=1, max_size=7),
        min_size=1,
        max_size=3,
    )
)
def test_a_printed_mandarin_line_reads_back_into_its_clauses(groups):
    words = [w for group in groups for w in group]
    clauses = [len(group) for group in groups] if len(groups) > 1 else []
    line = DecodedLine(words, list(words), clauses=clauses)
    assert line.text.split("，") == ["".join(group) for group in groups]
    assert line.lm_text.split("\n") == ["".join(group) for group in groups]
    again = DecodedLine.from_text(line.text, line.syllables)
    assert (again.words, again.clauses) == (words, clauses)
    assert word_groups(words, clauses) == groups


def test_an_english_line_reads_back_from_its_text():
    line = DecodedLine.from_text("i will go home", ["i", "will", "go", "home"])
    assert (line.words, line.clauses, line.text) == (
        ["i", "will", "go", "home"],
        [],
        "i will go home",
    )


def held_line() -> list[list[Note]]:
    """Two bars: four eighths and a held half note, then six eighths and a quarter."""
    first = [Note(i * EIGHTH, 62 + i % 3, EIGHTH) for i in range(4)]
    first.append(Note(4 * EIGHTH, 64, 4 * EIGHTH))
    second = [Note(i * EIGHTH, 60 + (i * 2) % 5, EIGHTH) for i in range(6)]
    second.append(Note(6 * EIGHTH, 60, 2 * EIGHTH))
    return [first, second]


def test_a_long_mandarin_line_is_written_in_clauses(scorers, lexicons):
    line = make_line(0, 0, held_line(), Meter(4, 4), "AABB")
    assert line.syllables == 12 and clause_lengths(line.slots, "zh") == (5, 7)
    writer = LyricWriter(scorers["zh"], lexicons["zh"], theme_text="明月", seed=2)
    out = writer.write_line(line, context="")
    assert out.clauses == [5, 7] and len(out.words) == len(out.syllables) == 12
    assert out.text == "".join(out.words[:5]) + "，" + "".join(out.words[5:])
    assert out.lm_text == "".join(out.words[:5]) + "\n" + "".join(out.words[5:])
    whole = LyricWriter(
        scorers["zh"],
        lexicons["zh"],
        theme_text="明月",
        seed=2,
        options=DecodeOptions(clauses=False),
    ).write_line(line, context="")
    assert whole.clauses == [] and "，" not in whole.text and len(whole.words) == 12


def test_a_line_of_one_clause_is_written_as_before(scorers, lexicons):
    short = make_line(0, 0, held_line()[:1], Meter(4, 4), "AABB")
    assert short.syllables == 5
    lines = [
        LyricWriter(scorers["zh"], lexicons["zh"], seed=5, options=options).write_line(
            short, context=""
        )
        for options in (DecodeOptions(), DecodeOptions(clauses=False))
    ]
    assert lines[0] == lines[1]
