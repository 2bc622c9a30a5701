"""The lyrics metrics on hand-made lines, where the right answer is known."""

from cantus.eval.lyrics import LyricsEvalReport, MethodStats, format_report, measure_piece
from cantus.lyrics.decoding import DecodedLine, slot_texts
from cantus.lyrics.slots import plan_lines
from cantus.music.notes import Meter, Note

METER = Meter(4, 4)


def line_of(words, language="en"):
    return DecodedLine(list(words), slot_texts(words, language))


def test_english_metrics():
    bar = [Note(i * 480, 60, 480) for i in range(4)]  # strong, weak, strong, weak
    lines = plan_lines([bar, bar, bar, bar], METER, scheme="AABB")
    assert [line.syllables for line in lines] == [8, 8]
    first = line_of(["happy", "people", "sing", "along"])  # 7 syllables for 8 notes
    second = line_of(["and", "people", "sing", "along", "the", "way"])  # stresses on weak slots
    stats = MethodStats()
    measure_piece(stats, "en", lines, [first, second], similarity=0.5)
    rates = stats.rates()
    assert rates["syllable_fit"] == 0.5
    # happy, people, along on strong slots in line 1; people, along on weak ones in line 2
    assert (stats.stressed, stats.stressed_on_strong) == (5, 3)
    assert rates["rhyme_compliance"] == 0.0  # "way" does not rhyme with "along"
    assert rates["repeated_lines"] == 0.0
    assert rates["theme_similarity"] == 0.5
    text = format_report(
        LyricsEvalReport(1, {"en": "x"}, {"en": {"constrained": stats, "baseline": stats}}),
        command="cantus eval lyrics",
    )
    assert "| syllable fit | 50.0 % | 50.0 % | 1.00× | = 100 %: not met |" in text


def test_mandarin_tone_contour():
    bar = [Note(0, 60, 480), Note(480, 64, 480), Note(960, 62, 480), Note(1440, 62, 480)]
    lines = plan_lines([bar, bar], METER, scheme="AABB")
    # 人 (tone 2) → 天 (tone 1) rises with the melody, 天 → 地 (tone 4) falls with it, the
    # repeated pitch is not counted, and 水 → 人 rises where the melody falls (60 after 62).
    stats = MethodStats()
    measure_piece(stats, "zh", lines[:1], [line_of(list("人天地水人天地水"), "zh")], 0.0)
    assert (stats.tone_pairs, stats.tone_agreeing) == (5, 4)
