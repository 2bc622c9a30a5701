"""The lyric corpora from the Debian fortunes packages."""

from collections import Counter

from cantus.lyrics.corpus import DroppedLine, english_lines, load_documents, mandarin_lines


def test_english_lines_drop_attributions_and_blocked_words():
    dropped = Counter()
    lines = english_lines(
        "A box without hinges, key, or lid,\n\t\t-- J. R. R. Tolkien\nwhat the hell", dropped
    )
    assert lines == ["a box without hinges key or lid"]
    assert dropped[DroppedLine.ATTRIBUTION] == 1 and dropped[DroppedLine.BLOCKED] == 1


def test_mandarin_lines_are_clauses_without_titles():
    dropped = Counter()
    text = "《送别》\n作者：王维\n下马饮君酒，问君何所之。"
    assert mandarin_lines(text, dropped) == ["下马饮君酒", "问君何所之"]
    assert dropped[DroppedLine.TITLE] == 2


def test_the_installed_corpora_are_read():
    for language, minimum in (("en", 5000), ("zh", 3000)):
        documents, _ = load_documents(language)
        assert sum(len(d) for d in documents) > minimum
