"""The lyric service's handler with its table and broker replaced by fakes and the Triton
scorer by the same LM in-process: lines close as bars arrive, every bar is covered once,
syllables sit on the notes, a redelivered bar or a restart changes nothing, pieces without
a theme pass through bar by bar, a bad language is refused."""

from __future__ import annotations

import asyncio

import pytest

from cantus.events.codec import InvalidEvent
from cantus.lyrics.ci import stanza_named
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.serving import load_lyric_scorer
from cantus.lyrics.training import checkpoint_path, lexicon_path
from cantus.lyrics.transformer import TransformerLyricScorer, load_transformer_checkpoint
from cantus.streaming import Received
from cantus.v1 import events_pb2 as pb

PIECE = "0" * 31 + "1"
BARS = 6


@pytest.fixture
def lyric(monkeypatch, tmp_path):
    monkeypatch.setenv("CANTUS_STATE_DIR", str(tmp_path / "state"))
    from services.lyric import app

    published: list = []

    async def publish(message, *, received=None):
        published.append(message)

    monkeypatch.setattr(app, "piece_state", {})
    monkeypatch.setattr(app.service, "publish", publish)
    local = {}

    def scorer_for(language, register):
        if (language, register) not in local:
            scorer = load_lyric_scorer(checkpoint_path(language))
            if register:  # as Triton answers a register: the transformer in it
                loaded = load_transformer_checkpoint(checkpoint_path(language, model="transformer"))
                scorer = TransformerLyricScorer(loaded, register)
            local[language, register] = scorer
        return local[language, register]

    monkeypatch.setattr(app.resources, "scorer_for", scorer_for)
    monkeypatch.setattr(app.resources, "_scorers", {})
    app.published = published  # type: ignore[attr-defined]
    return app


def bars(
    theme: str, language: str = "en", *, dense: bool = False, register: str = ""
) -> list[pb.MelodyBar]:
    spec = pb.PieceSpec(
        key_tonic=0,
        mode=pb.MODE_MAJOR,
        tempo_bpm=100,
        meter_numerator=4,
        meter_denominator=4,
        bars=BARS,
        style="folk",
        mood="calm",
        seed=5,
        lyrics_theme=theme,
        lyrics_language=language,
        lyrics_rhyme_scheme="AABB" if theme else "",
        lyrics_register=register,
    )
    out = []
    for index in range(BARS):
        onsets = [0, 480, 960, 1440] if index % 2 == 0 or dense else [0, 960]
        notes = [
            pb.Note(onset_ticks=o, pitch=60 + index, duration_ticks=480, velocity=90)
            for o in onsets
        ]
        out.append(
            pb.MelodyBar(meta=pb.EventMeta(piece_id=PIECE, index=index), spec=spec, notes=notes)
        )
    return out


def feed(app, events) -> None:
    async def run():
        for offset, event in enumerate(events):
            await app.handle_melody_bar(event, Received("t", 0, offset, 1))

    asyncio.run(run())


def test_lines_cover_bars_and_fit_their_notes(lyric):
    events = bars("the sea at night")
    feed(lyric, events)
    lines = lyric.published
    assert [line.meta.index for line in lines] == list(range(len(lines)))
    covered = [b for line in lines for b in range(line.first_bar, line.first_bar + line.bar_count)]
    assert covered == list(range(BARS))
    for line in lines:
        expected = [
            (b, i)
            for b in range(line.first_bar, line.first_bar + line.bar_count)
            for i in range(len(events[b].notes))
        ]
        assert [(s.bar_index, s.note_index) for s in line.syllables] == expected
        assert line.text
    # A redelivered bar, and the whole piece again after a "restart" with the table kept,
    # publish nothing new; with the table lost, the same lines come out again.
    feed(lyric, events[:2])
    assert lyric.published == lines
    first = [line.text for line in lines]
    lyric.piece_state.clear()
    lyric.published.clear()
    feed(lyric, events)
    assert [line.text for line in lyric.published] == first


def test_mandarin_lines_are_one_character_per_note(lyric):
    feed(lyric, bars("明月思乡", "zh"))
    for line in lyric.published:
        assert [len(s.text) for s in line.syllables] == [1] * len(line.syllables)
        assert line.text == "".join(s.text for s in line.syllables)


def test_long_mandarin_lines_are_sung_in_clauses_that_the_table_keeps(lyric):
    from cantus.streaming.table_state import LyricState

    events = bars("明月思乡", "zh", dense=True)
    feed(lyric, events)
    texts = [line.text for line in lyric.published]
    assert any("，" in text for text in texts)
    for line in lyric.published:
        assert line.text.replace("，", "") == "".join(s.text for s in line.syllables)
    kept = LyricState.from_table(lyric.piece_state[PIECE]).lines
    assert {len(entry.clauses) for entry in kept.values()} >= {2}
    lyric.piece_state.clear()
    lyric.published.clear()
    feed(lyric, events)
    assert [line.text for line in lyric.published] == texts


def test_a_register_is_written_by_the_transformer_in_it(lyric):
    from cantus.lyrics.lexicon import Lexicon
    from cantus.lyrics.training import lexicon_path

    feed(lyric, bars("the sea at night", register="scripture"))
    words = {w for line in lyric.published for w in line.text.split()}
    assert words and words <= set(Lexicon.load(lexicon_path("en", model="transformer")).words)
    with pytest.raises(InvalidEvent, match="lyrics_register"):
        feed(lyric, bars("the sea", register="ci")[:1])


def test_without_a_theme_every_bar_passes_through(lyric):
    feed(lyric, bars(""))
    assert [(line.first_bar, line.bar_count, len(line.syllables)) for line in lyric.published] == [
        (i, 1, 0) for i in range(BARS)
    ]


def test_an_unsupported_language_is_an_invalid_event(lyric):
    with pytest.raises(InvalidEvent, match="lyrics_language"):
        feed(lyric, bars("the sea", "fr")[:1])


def test_a_line_no_words_fit_is_sung_without_words_and_the_piece_goes_on(lyric, monkeypatch):
    from cantus.lyrics.decoding import NoWordsFit

    real = lyric.write_piece_line
    calls = []

    def first_line_fails(resources, line, **kwargs):
        calls.append(line.index)
        if line.index == 0:
            raise NoWordsFit("no words fit line 0")
        return real(resources, line, **kwargs)

    monkeypatch.setattr(lyric, "write_piece_line", first_line_fails)
    feed(lyric, bars("the sea at night"))
    lines = lyric.published
    covered = [b for line in lines for b in range(line.first_bar, line.first_bar + line.bar_count)]
    assert covered == list(range(BARS))  # every bar's lyrics are settled, so render goes on
    assert not lines[0].syllables and not lines[0].text
    assert all(line.syllables and line.text for line in lines[1:])


def test_song_form_lines_stay_in_sections_and_the_chorus_repeats(lyric, monkeypatch):
    """A 16-bar verse-chorus piece (its plan in the spec, repeated sections with the same
    notes); each line is written as its own index by a stand-in writer, so the service's
    song-form logic is what is seen."""
    from cantus.events.conversions import form_to_pb
    from cantus.lyrics.decoding import DecodedLine
    from cantus.music.form import plan_form
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy

    plan = plan_form("verse-chorus", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    written = []

    def by_index(resources, line, **kwargs):
        written.append(line.index)
        words = [f"w{line.index}"] * line.syllables
        return DecodedLine(words, list(words), f"r{line.index}")

    monkeypatch.setattr(lyric, "write_piece_line", by_index)
    events = []
    for section_number, section in enumerate(plan.sections):
        figure = section.source if section.source is not None else section_number
        for offset in range(section.bars):
            index = section.first_bar + offset
            notes = [
                pb.Note(onset_ticks=o, pitch=60 + figure + offset, duration_ticks=480, velocity=90)
                for o in (0, 480, 960, 1440)
            ]
            events.append(pb.MelodyBar(meta=pb.EventMeta(piece_id=PIECE, index=index), notes=notes))
    spec = bars("the sea at night")[0].spec
    spec.bars = plan.total_bars
    spec.form.CopyFrom(form_to_pb(plan))
    for event in events:
        event.spec.CopyFrom(spec)
    feed(lyric, events)
    lines = lyric.published
    texts: dict[int, list[str]] = {}
    for line in lines:
        number = plan.section_index(line.first_bar)
        assert line.first_bar + line.bar_count <= plan.sections[number].end_bar
        texts.setdefault(number, []).append(line.text)
    labels = [section.label for section in plan.sections]
    chorus = texts[labels.index("chorus")]
    verse = texts[labels.index("verse")]
    for number, label in enumerate(labels):
        if label.startswith("chorus"):  # repeated or varied with the same rhythm: same words
            assert texts[number] == chorus
        elif label.startswith("verse") and number:
            assert texts[number] != verse
    assert len(written) < len(lines)


def ci_bars(lines: int = 6) -> list[pb.MelodyBar]:
    """A Mandarin piece of ``lines`` two-bar phrases of seven notes (four quarters, then two
    quarters and a half note): the 浣溪沙's 7 × 6 when ``lines`` is six."""
    spec = bars("明月思乡", "zh")[0].spec
    spec.bars = 2 * lines
    out = []
    for index in range(2 * lines):
        shape = [(0, 480), (480, 480), (960, 480), (1440, 480)]
        if index % 2:
            shape = [(0, 480), (480, 480), (960, 960)]
        notes = [
            pb.Note(onset_ticks=o, pitch=62 + (index + i) % 5, duration_ticks=d, velocity=90)
            for i, (o, d) in enumerate(shape)
        ]
        out.append(
            pb.MelodyBar(meta=pb.EventMeta(piece_id=PIECE, index=index), spec=spec, notes=notes)
        )
    return out


def test_a_mandarin_piece_the_tune_allows_is_sung_to_a_ci_stanza(lyric):
    events = ci_bars()
    feed(lyric, events[:-1])
    assert lyric.published == []  # the stanza waits for its last bar
    feed(lyric, events[-1:])
    lines = lyric.published
    assert {line.ci_stanza for line in lines} == {"浣溪沙"}
    assert [len(line.syllables) for line in lines] == [7] * 6
    stanza = stanza_named("浣溪沙")
    assert stanza is not None
    finals = [line.text[-1] for line in lines]
    rhyming = [f for f, c in zip(finals, stanza.clauses, strict=True) if c.rhymes]
    lexicon = Lexicon.load(lexicon_path("zh"))
    assert len({lexicon.rhymes[lexicon.index[f]] for f in rhyming}) == 1
    texts = [line.text for line in lines]
    lyric.piece_state.clear()  # written again from nothing: the same lines
    lyric.published.clear()
    feed(lyric, events)
    assert [line.text for line in lyric.published] == texts


def test_a_long_piece_without_a_plan_does_not_wait_for_a_stanza(lyric):
    feed(lyric, ci_bars(10)[:4])  # 20 bars: more than a stanza's group
    assert lyric.published
    assert all(line.ci_stanza == "" for line in lyric.published)
