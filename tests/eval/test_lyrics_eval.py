"""The lyrics metrics on hand-made lines, where the right answer is known."""

from cantus.eval.grammar import mandarin_tags, parses
from cantus.eval.lyrics import (
    BigramJudge,
    LyricsEvalReport,
    MethodStats,
    distinct_2,
    format_report,
    language_checks,
    measure_piece,
    reads_better,
    song_melody,
)
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
    report = LyricsEvalReport(
        1,
        {"en": "x"},
        {"en": {"lstm": stats, "lstm_beam": stats, "baseline": stats}},
        served={"en": "lstm"},
        reads_better={"en": "transformer"},
    )
    text = format_report(report, command="cantus eval lyrics")
    assert "| metric | LSTM | LSTM, plain beam | baseline | target (served) |" in text
    assert "| syllable fit | 50.0 % | 50.0 % | 50.0 % | = 100 %: not met |" in text
    assert "Served (`lyric_models`): **LSTM**" in text
    assert "the setting does not: set lyric_models en=transformer" in text


def test_the_lm_that_reads_better_is_chosen_per_language():
    checks = {
        "transformer": {"grammatical": 0.5, "judge_perplexity": 90.0},
        "lstm": {"grammatical": 0.6, "judge_perplexity": 120.0},
        "lstm_beam": {"grammatical": 0.9, "judge_perplexity": 10.0},  # another decoder
        "human": {"grammatical": 0.95, "judge_perplexity": 5.0},
    }
    assert reads_better("en", checks) == "lstm"
    assert reads_better("zh", checks) == "transformer"


def test_distinct_2_within_a_piece_counts_a_repeated_line_once():
    bar = [Note(i * 480, 60, 480) for i in range(4)]
    lines = plan_lines([bar] * 4, METER, scheme="AABB")
    chorus = line_of(["we", "sing", "a", "song"])
    stats = MethodStats()
    measure_piece(stats, "en", lines[:2], [chorus, chorus], similarity=0.0)
    assert stats.rates()["distinct_2_in_piece"] == 1.0
    assert stats.rates()["distinct_2"] == 0.5


def test_mandarin_tone_contour():
    bar = [Note(0, 60, 480), Note(480, 64, 480), Note(960, 62, 480), Note(1440, 62, 480)]
    lines = plan_lines([bar, bar], METER, scheme="AABB")
    # 人 (tone 2) → 天 (tone 1) rises with the melody, 天 → 地 (tone 4) falls with it, the
    # repeated pitch is not counted, and 水 → 人 rises where the melody falls (60 after 62).
    stats = MethodStats()
    measure_piece(stats, "zh", lines[:1], [line_of(list("人天地水人天地水"), "zh")], 0.0)
    assert (stats.tone_pairs, stats.tone_agreeing) == (5, 4)


def test_link_grammar_parses_sentences_and_not_word_salad():
    verdicts = parses(["i walked home through the snow", "i could be loved you", "!the dog runs"])
    assert verdicts == [True, False, True]


def test_mandarin_lines_are_tagged_word_by_word():
    moon, we = mandarin_tags(["明月照高楼", "我们在江上"])
    assert len(moon) < 5  # words, not characters
    assert we[:2] == ["r", "p"]  # 我们 a pronoun, 在 a preposition


def test_mandarin_plausibility_prefers_verse_word_order_to_shuffled_characters():
    verse = ["明月照高楼", "春风吹绿草", "孤舟过远山", "白云生故乡", "秋雨落空庭"]
    judge = [list(line) for line in verse * 4]
    shuffled = ["楼高照月明", "草绿吹风春", "山远过舟孤", "乡故生云白", "庭空落雨秋"]
    checks = language_checks("zh", {"verse": verse, "shuffled": shuffled, "human": verse}, judge)
    # at least the human lines' median: about half of the human lines by construction
    assert checks["verse"]["tags_plausible"] == checks["human"]["tags_plausible"] >= 0.5
    assert checks["shuffled"]["tags_plausible"] < checks["human"]["tags_plausible"]
    assert checks["shuffled"]["tag_perplexity"] > checks["verse"]["tag_perplexity"]


def test_the_judge_prefers_what_it_has_seen_and_never_gives_zero():
    judge = BigramJudge([["the", "sea", "is", "wide"]] * 5, {"the", "sea", "rock"})
    seen = judge.perplexity([["the", "sea", "is", "wide"]])
    unseen = judge.perplexity([["wide", "is", "rock", "the"]])
    assert 1 < seen < unseen < float("inf")


def test_distinct_2_counts_bigrams_within_lines():
    assert distinct_2(["a b a b", "a b"], "en") == 2 / 4
    assert distinct_2(["明月明月"], "zh") == 2 / 3


def test_a_song_melody_copies_its_repeated_sections():
    from cantus.music.form import plan_form
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy

    plan = plan_form("verse-chorus", bars=24, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    tune = [[Note(0, 60 + i, 480)] for i in range(12)]
    bars = song_melody(tune, plan)
    assert len(bars) == 24
    for section in plan.sections:
        if section.source is not None:
            source = plan.sections[section.source]
            copied = bars[section.first_bar : section.end_bar]
            assert copied == bars[source.first_bar : source.first_bar + section.bars]


def test_mandarin_checks_read_clauses_and_cut_whole_lines_alike():
    from cantus.eval.lyrics import check_units, clause_text
    from cantus.lyrics.slots import make_line
    from cantus.music.notes import Meter, Note

    eighths = [[Note(i * 240, 60 + i, 240) for i in range(8)] for _ in range(2)]
    line = make_line(0, 0, eighths, Meter(4, 4), "AABB")  # 16 notes: three clauses
    words = list("明月几时有把酒问青天不知天上宫阙")
    whole = clause_text(line, DecodedLine(words, words), "zh")
    written = clause_text(line, DecodedLine(words, words, clauses=[5, 6, 5]), "zh")
    assert whole.count("，") == 2 and written == "明月几时有，把酒问青天不，知天上宫阙"
    assert check_units([whole], "zh") == whole.split("，")
    assert check_units(["i will go, and you"], "en") == ["i will go, and you"]
    assert clause_text(line, DecodedLine(["sea"], ["sea"]), "en") == "sea"


def test_the_register_table_counts_what_was_heard():
    from collections import Counter

    from cantus.eval.lyric_registers import RegisterCheck, format_register_check

    check = RegisterCheck("zh", 2)
    check.heard = {"ci": Counter(ci=2), "shi": Counter(ci=1, shi=1), "qu": Counter(qu=2)}
    check.lines = {r: ["明月几时有"] for r in check.heard}
    check.distinct_2 = dict.fromkeys(check.heard, 0.5)
    assert check.accuracy == 5 / 6
    text = "\n".join(format_register_check(check))
    assert "Heard as asked: **83 %** (chance 33 %)" in text
    assert "| shi | 1 | 1 | 0 | 50.0 % |" in text


def test_the_ci_report_counts_the_pieces_that_carry_a_stanza():
    from cantus.eval.lyrics import CiStats, format_ci, measure_ci
    from cantus.lyrics.ci import sing_ci
    from cantus.lyrics.slots import LineSlots, Slot

    def lines(counts):
        return [
            LineSlots(
                i,
                2 * i,
                2,
                tuple(Slot(2 * i, k, k * 480, 60, k % 2 == 0, 1, 480) for k in range(n)),
                "A",
                None,
            )
            for i, n in enumerate(counts)
        ]

    stats = CiStats()
    carried = lines([7, 7, 7, 7, 7, 8])
    sung, stanzas = sing_ci(carried, None)
    measure_ci(stats, carried, sung, stanzas)
    free = lines([3])
    measure_ci(stats, free, *sing_ci(free, None))
    measure_ci(stats, [], [], {})  # a silent piece is not counted
    assert (stats.sections, stats.carried, stats.notes, stats.melisma) == (2, 1, 43, 1)
    assert stats.stanzas == {"浣溪沙": 1}
    text = "\n".join(format_ci(stats))
    assert "**1 of 2** (50 %)" in text and "《浣溪沙》 1" in text and "2.3 %" in text
