"""What the lyric service keeps between lines: a piece's writer, and the candidates it sends
Triton serialised once."""

from unittest.mock import patch

from cantus.lyrics import client
from cantus.lyrics import writer as writer_module
from cantus.lyrics.client import TritonLyricScorer
from cantus.lyrics.slots import plan_lines
from cantus.lyrics.writer import LyricResources, write_piece_line
from cantus.music.notes import Meter

from .test_decoding import melody

METER = Meter(4, 4)


def _resources(scorers) -> LyricResources:  # type: ignore[no-untyped-def]
    return LyricResources(scorer_for=lambda language, register: scorers[language])


def _write(resources, lines):  # type: ignore[no-untyped-def]
    written = {}
    for line in lines:
        written[line.index] = write_piece_line(
            resources,
            line,
            language="en",
            theme="the sea at night",
            mood="calm",
            seed=5,
            written=dict(written),
            is_anchor=line.rhymes_with is None,
        )
    return [written[i].words for i in sorted(written)]


def test_a_kept_writer_writes_the_lines_a_new_one_for_each_line_writes(scorers):
    lines = plan_lines(melody(3, bars=6), METER, scheme="ABAB")
    kept = _resources(scorers)
    by_kept = _write(kept, lines)
    assert len(kept._writers) == 1  # one piece, one writer for all its lines

    fresh_lines = []
    for count in range(1, len(lines) + 1):  # every line by a writer built for it alone
        fresh_lines.append(_write(_resources(scorers), lines[:count])[-1])
    assert by_kept == fresh_lines


def test_writers_are_kept_per_piece_and_the_oldest_let_go(scorers, monkeypatch):
    monkeypatch.setattr(writer_module, "WRITERS_KEPT", 2)
    resources = _resources(scorers)
    first = resources.writer("en", "", "the sea", "calm", 1)
    assert resources.writer("en", "", "the sea", "calm", 1) is first
    assert resources.writer("en", "", "the sea", "calm", 2) is not first  # another piece
    resources.writer("en", "", "the sea", "sad", 1)
    assert len(resources._writers) == 2
    assert resources.writer("en", "", "the sea", "calm", 1) is not first  # let go, built anew


def test_the_candidates_are_serialised_once_while_they_stay_the_same():
    scorer = TritonLyricScorer("127.0.0.1:1", "en")  # no call goes out
    words = ["sea", "night", "\n"]
    with patch("cantus.lyrics.client._text_tensor", wraps=client._text_tensor) as made:
        first = scorer._candidate_tensor(words)
        assert scorer._candidate_tensor(list(words)) is first  # equal words, another list
        assert made.call_count == 1
        assert scorer._candidate_tensor(["moon", "\n"]) is not first
        assert made.call_count == 2


def test_the_served_resources_embed_on_the_settings_torch_threads():
    import torch

    from cantus.lyrics.client import served_lyric_resources
    from cantus.lyrics.theme import ThemeEmbedder
    from cantus.settings import Settings

    settings = Settings.model_construct(lyric_torch_threads=1)
    resources = served_lyric_resources(settings)
    assert resources.embedder.torch_threads == 1
    assert resources.models == settings.lyric_models
    scorer = resources.scorer("en")  # built lazily, without asking Triton
    assert isinstance(scorer, TritonLyricScorer)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        embedder = ThemeEmbedder(torch_threads=1)
        assert torch.get_num_threads() == 2  # nothing set until the model loads
        embedder.embed(["the sea at night"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_kept_lines_rhyme_is_its_lexicons_so_a_rewritten_line_can_rhyme_with_it(scorers):
    """An edit reads kept lines back from their text; the rhyme a rewritten line after
    them must keep comes from the lexicon (a word it lacks has none)."""
    resources = LyricResources(scorer_for=lambda language, register: scorers[language])
    lexicon = resources.lexicon("en")
    assert resources.rhyme_of("en", "", "night") == lexicon.rhymes[lexicon.index["night"]]
    assert resources.rhyme_of("en", "", "night") == resources.rhyme_of("en", "", "light")
    assert resources.rhyme_of("en", "", "zzzq") == ""
