"""Edits of stored pieces (issue #18) on in-process fakes of the models: only what changes
is streamed, the new version is stored beside the old one (untouched), the history is in
piece.json, the right side of a gap chooses its closing bars, and bad edits fail naming
the field without storing anything."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cantus.editing.editor import EditModels, EditOptions, EditUnsupported, PieceEditor
from cantus.editing.requests import EditError
from cantus.harmony.client import HarmonyModelError
from cantus.melody.composition import PhraseRequest
from cantus.melody.prompting import MelodyPrompter
from cantus.music.notes import Bar, Note
from cantus.render.piece import PARTS_FILE, PieceParts, render_piece_files
from cantus.settings import CHECKPOINTS
from cantus.storage import LocalPieceStore, PieceNotFound, VersionNotFound
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb

sys.path.insert(0, str(Path(__file__).parents[1] / "render"))
from piece_fixtures import PIECE_ID, piece_events, spec, table_events

PROMPTER = MelodyPrompter.from_checkpoint(CHECKPOINTS / "melody_lm.pt")
OPTIONS = EditOptions(audio_formats=("wav",), leadsheet=False)


class FakeModels:
    """The models as functions: a decoder writing one pitch per candidate seed, a scorer that
    likes a candidate whose last note is near the first note after the gap, and a harmony
    model that cannot answer (the rules harmonise, as in the service's fallback)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.requests: list[PhraseRequest] = []
        self.scored = 0
        self.fail_at = fail_at

    def decoder(self, piece_spec: pb.PieceSpec):
        async def decode(phrase: PhraseRequest) -> AsyncIterator[Bar]:
            self.requests.append(phrase)
            meter = phrase.context[0].meter if phrase.context else None
            assert meter is not None
            pitch = 60 + (phrase.seed // 1_000_003) * 3  # candidates k = 0, 1, 2, 3: 60, 63, ...
            for k in range(phrase.n_bars):
                if self.fail_at is not None and phrase.first_bar + k == self.fail_at:
                    raise RuntimeError("the model went away")
                yield Bar(meter, tuple(Note(q * 480, pitch, 480) for q in range(4)))

        return decode

    async def score(self, sequences: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        self.scored += len(sequences)
        vocab = PROMPTER.tokenizer.vocab
        scores = []
        for sequence, start in zip(sequences, starts, strict=True):
            pitches = [
                int(vocab.token(t)[6:]) for t in sequence if vocab.token(t).startswith("PITCH_")
            ]
            before = [
                int(vocab.token(t)[6:])
                for t in sequence[:start]
                if vocab.token(t).startswith("PITCH_")
            ]
            scores.append(-abs(pitches[len(before)] - before[-1]))
        return scores

    async def harmonize(self, window):
        raise HarmonyModelError("no model in this test")

    def models(self) -> EditModels:
        return EditModels(
            decoder=self.decoder,
            score=self.score,
            harmonize=self.harmonize,
            prompter=PROMPTER,
            harmony_model_version="fake",
        )


def stored_piece(tmp_path: Path, *, bars: int = 8, lyrics: bool = False) -> LocalPieceStore:
    store = LocalPieceStore(tmp_path / "pieces")
    parts = PieceParts.from_events(table_events(piece_events(spec(bars), lyrics=lyrics)))
    assert parts is not None
    rendered = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=("wav",), leadsheet=False
    )
    for name, content in rendered.files.items():
        store.write(PIECE_ID, name, content)
    return store


def run_edit(editor: PieceEditor, request: api.EditRequest) -> list[api.PieceEvent]:
    async def go() -> list[api.PieceEvent]:
        opened = editor.open(request)
        return [event async for event in editor.run(opened)]

    return asyncio.run(go())


def regenerate(first: int, last: int, **kwargs) -> api.EditRequest:
    return api.EditRequest(
        piece_id=PIECE_ID,
        seed=11,
        regenerate=api.RegenerateBars(bars=api.BarRange(first_bar=first, last_bar=last)),
        **kwargs,
    )


def kinds(events: list[api.PieceEvent]) -> list[tuple[str, int]]:
    out = []
    for event in events:
        which = event.WhichOneof("event")
        message = getattr(event, which)
        out.append((which, message.version if which == "edited" else message.meta.index))
    return out


def test_regenerating_bars_streams_only_them_and_stores_a_new_version(tmp_path):
    store = stored_piece(tmp_path)
    before = store.read_all(PIECE_ID)
    fakes = FakeModels()
    events = run_edit(PieceEditor(store, fakes.models(), OPTIONS), regenerate(3, 4))

    assert kinds(events) == [
        ("edited", 2),
        ("melody_bar", 2),  # one phrase, closing the gap: chosen among candidates, then out
        ("melody_bar", 3),
        ("harmony_bar", 2),  # each bar harmonised once the bar after it is known
        ("harmony_bar", 3),
        ("render_segment", 0),
        ("render_segment", 1),
        ("completed", 8),
    ]
    assert store.versions(PIECE_ID) == [1, 2]
    assert store.read_all(PIECE_ID) == before  # version 1 untouched
    v2 = store.read_all(PIECE_ID, 2)
    old = pb.PieceRecord.FromString(before[PARTS_FILE])
    new = pb.PieceRecord.FromString(v2[PARTS_FILE])
    for index in (0, 1, 4, 5, 6, 7):
        assert new.melody[index].notes == old.melody[index].notes
        assert new.harmony[index].chords == old.harmony[index].chords
    assert new.melody[2].notes != old.melody[2].notes
    summary = json.loads(v2["piece.json"])
    assert summary["version"] == 2
    [entry] = summary["edit_history"]
    assert entry["from_version"] == 1 and entry["kind"] == "regenerate"
    assert entry["bars"] == [3, 4] and entry["rendered_bars"] == [2, 4]
    # the edit's own account of its first bar: its first melody_lm request, then the bar
    seconds = entry["seconds"]
    assert 0 <= seconds["decode_start"] <= seconds["first_bar"] <= seconds["bars"]
    # the spliced audio keeps the untouched bars' samples (to the 16-bit WAV's last bit)
    a, rate = soundfile.read(io.BytesIO(before["piece.wav"]), dtype="float32")
    b, _ = soundfile.read(io.BytesIO(v2["piece.wav"]), dtype="float32")
    assert len(a) == len(b)
    bar = int(2.0 * rate)  # 4/4 at 120 bpm
    fade = 4000  # samples, more than the crossfade
    assert np.abs(a[: 2 * bar] - b[: 2 * bar]).max() < 1e-4
    assert np.abs(a[4 * bar + fade :] - b[4 * bar + fade :]).max() < 1e-4
    assert np.abs(a[2 * bar + fade : 4 * bar] - b[2 * bar + fade : 4 * bar]).max() > 0.01


def test_the_closing_bars_are_chosen_by_the_bars_after_the_gap(tmp_path):
    store = stored_piece(tmp_path)
    fakes = FakeModels()
    events = run_edit(PieceEditor(store, fakes.models(), OPTIONS), regenerate(2, 3))
    assert fakes.scored == OPTIONS.candidates
    # candidates play 60, 63, 66, 69; bar 5 starts on 67 in the fixture: 66 leads into it
    last = [e.melody_bar for e in events if e.WhichOneof("event") == "melody_bar"][-1]
    assert {n.pitch for n in last.notes} == {66}


def test_a_later_edit_starts_from_any_version_and_keeps_the_history(tmp_path):
    store = stored_piece(tmp_path)
    editor = PieceEditor(store, FakeModels().models(), OPTIONS)
    run_edit(editor, regenerate(3, 4))
    run_edit(
        editor,
        api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(palette="piano")),
    )
    events = run_edit(
        editor,
        api.EditRequest(
            piece_id=PIECE_ID,
            from_version=1,
            reharmonize=api.Reharmonize(style="chorale"),
        ),
    )
    assert [k for k, _ in kinds(events)].count("harmony_bar") == 8
    assert store.versions(PIECE_ID) == [1, 2, 3, 4]
    v3 = json.loads(store.read_all(PIECE_ID, 3)["piece.json"])
    assert [e["version"] for e in v3["edit_history"]] == [2, 3]
    assert v3["palette"] == "piano" and v3["request"]["palette"] == "piano"
    v4 = json.loads(store.read_all(PIECE_ID, 4)["piece.json"])
    assert [(e["version"], e["from_version"]) for e in v4["edit_history"]] == [(4, 1)]


def test_changing_the_sound_renders_every_segment_and_no_bar(tmp_path):
    store = stored_piece(tmp_path)
    events = run_edit(
        PieceEditor(store, FakeModels().models(), OPTIONS),
        api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(tempo_bpm=90)),
    )
    assert [k for k, _ in kinds(events)] == [
        "edited",
        "render_segment",
        "render_segment",
        "completed",
    ]
    assert events[0].edited.spec.tempo_bpm == 90
    assert events[-1].completed.duration_seconds == pytest.approx(8 * 4 * 60 / 90)


@pytest.mark.parametrize(
    ("request_", "error", "field"),
    [
        (regenerate(0, 2), EditError, "regenerate.bars.first_bar"),
        (regenerate(3, 9), EditError, "regenerate.bars.last_bar"),
        (regenerate(5, 4), EditError, "regenerate.bars.last_bar"),
        (api.EditRequest(piece_id=PIECE_ID), EditError, "edit"),
        (
            api.EditRequest(piece_id=PIECE_ID, reharmonize=api.Reharmonize(style="jazz")),
            EditError,
            "reharmonize.style",
        ),
        (
            api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(palette="kazoo")),
            EditError,
            "change_sound.palette",
        ),
        (
            api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(tempo_bpm=500)),
            EditError,
            "change_sound.tempo_bpm",
        ),
        (regenerate(1, 2, from_version=3), VersionNotFound, "from_version"),
        (api.EditRequest(piece_id="f" * 32, regenerate=api.RegenerateBars()), PieceNotFound, ""),
    ],
)
def test_bad_edits_name_the_field_and_store_nothing(tmp_path, request_, error, field):
    store = stored_piece(tmp_path)
    with pytest.raises(error) as raised:
        PieceEditor(store, FakeModels().models(), OPTIONS).open(request_)
    if error is EditError:
        assert raised.value.field == field
    else:
        assert str(raised.value).startswith(field)
    assert store.versions(PIECE_ID) == [1]


def test_sung_bars_are_refused_by_an_editor_without_a_lyric_model(tmp_path):
    store = stored_piece(tmp_path, lyrics=True)
    with pytest.raises(EditError, match=r"sung .* no lyric model") as raised:
        PieceEditor(store, FakeModels().models(), OPTIONS).open(regenerate(2, 3))
    assert raised.value.field == "regenerate.bars"
    assert store.versions(PIECE_ID) == [1]


def lyric_models() -> EditModels:
    from cantus.lyrics.serving import load_lyric_scorer
    from cantus.lyrics.training import checkpoint_path
    from cantus.lyrics.writer import LyricResources

    models = FakeModels().models()
    models.lyrics = LyricResources(
        scorer_for=lambda lang, register: load_lyric_scorer(checkpoint_path(lang))
    )
    return models


def stored_song(tmp_path: Path) -> LocalPieceStore:
    """4 bars, one lyric line "la lo" per bar (8 eighth notes), theme "a boat on the sea"."""
    store = LocalPieceStore(tmp_path / "pieces")
    piece_spec = spec(4)
    piece_spec.lyrics_theme, piece_spec.lyrics_language = "a boat on the sea", "en"
    parts = PieceParts.from_events(table_events(piece_events(piece_spec, lyrics=True)))
    assert parts is not None
    rendered = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=("wav",), leadsheet=False
    )
    for name, content in rendered.files.items():
        store.write(PIECE_ID, name, content)
    return store


def test_regenerating_sung_bars_fits_new_lyrics_to_the_new_notes(tmp_path):
    """Bars 2-3 composed anew (four quarter notes each, from the fake decoder): their lines
    are written again with one syllable per new note, and line 4, which rhymes with
    line 3 (AABB), with them; line 1 is kept word for word."""
    store = stored_song(tmp_path)
    events = run_edit(PieceEditor(store, lyric_models(), OPTIONS), regenerate(2, 3))
    assert "lyrics written again" in events[0].edited.description
    lines = {e.lyric_line.meta.index: e.lyric_line for e in events if e.HasField("lyric_line")}
    assert sorted(lines) == [1, 2, 3]
    melody = {e.melody_bar.meta.index: e.melody_bar for e in events if e.HasField("melody_bar")}
    for index in (1, 2):
        assert len(lines[index].syllables) == len(melody[index].notes) == 4
        assert {s.bar_index for s in lines[index].syllables} == {index}
        assert lines[index].text != "la lo"
    assert len(lines[3].syllables) == 8  # bar 4 kept its notes
    summary = json.loads(store.read_all(PIECE_ID, 2)["piece.json"])
    texts = [line["text"] for line in summary["lyrics"]]
    assert texts[0] == "la lo" and texts[1:] == [lines[i].text for i in (1, 2, 3)]
    assert summary["edit_history"][0]["edit"]["sung"] == [1, 2]


def test_a_piece_stored_before_parts_cannot_be_edited(tmp_path):
    store = stored_piece(tmp_path)
    (tmp_path / "pieces" / PIECE_ID / PARTS_FILE).unlink()
    with pytest.raises(EditUnsupported, match="compose it again"):
        PieceEditor(store, FakeModels().models(), OPTIONS).open(regenerate(2, 3))


def test_a_failed_edit_leaves_the_stored_piece_untouched(tmp_path):
    store = stored_piece(tmp_path)
    before = store.read_all(PIECE_ID)
    with pytest.raises(RuntimeError, match="went away"):
        run_edit(PieceEditor(store, FakeModels(fail_at=3).models(), OPTIONS), regenerate(2, 7))
    assert store.versions(PIECE_ID) == [1]
    assert store.read_all(PIECE_ID) == before


def test_concurrent_edits_of_one_piece_make_different_versions(tmp_path):
    """Two gateways (two editors, no shared lock) edit one piece at once: both open before
    either stores, as in the race, yet each gets its own version, stored whole; a failed
    edit gives its claimed number back to the next edit."""
    store = stored_piece(tmp_path)
    first = PieceEditor(store, FakeModels().models(), OPTIONS)
    second = PieceEditor(store, FakeModels().models(), OPTIONS)

    async def both() -> list[list[api.PieceEvent]]:
        opened = [
            await asyncio.to_thread(first.open, regenerate(2, 3)),
            await asyncio.to_thread(
                second.open,
                api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(tempo_bpm=90)),
            ),
        ]
        assert [o.version for o in opened] == [2, 3]

        async def run(editor: PieceEditor, o) -> list[api.PieceEvent]:
            return [event async for event in editor.run(o)]

        return list(await asyncio.gather(run(first, opened[0]), run(second, opened[1])))

    regenerated, resounded = asyncio.run(both())
    assert regenerated[0].edited.version == 2 and resounded[0].edited.version == 3
    assert store.versions(PIECE_ID) == [1, 2, 3]
    v2 = json.loads(store.read_all(PIECE_ID, 2)["piece.json"])
    v3 = json.loads(store.read_all(PIECE_ID, 3)["piece.json"])
    assert [e["kind"] for e in v2["edit_history"]] == ["regenerate"]
    assert [e["kind"] for e in v3["edit_history"]] == ["change_sound"]

    with pytest.raises(RuntimeError, match="went away"):
        run_edit(PieceEditor(store, FakeModels(fail_at=3).models(), OPTIONS), regenerate(2, 7))
    assert not (tmp_path / "pieces" / PIECE_ID / "v4").exists()
    assert run_edit(first, regenerate(5, 6))[0].edited.version == 4


def stored_aaba(tmp_path: Path) -> LocalPieceStore:
    """A 16-bar AABA piece (sections A, A', B, A'' of 4 bars) in the folk palette."""
    from cantus.events.conversions import form_to_pb
    from cantus.music.form import plan_form
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy

    store = LocalPieceStore(tmp_path / "pieces")
    piece_spec = spec(16)
    piece_spec.palette = "folk"
    plan = plan_form("AABA", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    parts = PieceParts.from_events(table_events(piece_events(piece_spec, lyrics=False)))
    assert parts is not None
    rendered = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=("wav",), leadsheet=False
    )
    for name, content in rendered.files.items():
        store.write(PIECE_ID, name, content)
    return store


def section_sound(section: str, **change) -> api.EditRequest:
    return api.EditRequest(
        piece_id=PIECE_ID, change_sound=api.ChangeSound(section=section, **change)
    )


LSB = 2 / 32768
"""piece.wav is 16-bit and dithered when written: kept audio is equal within this."""


def mix(store: LocalPieceStore, version: int) -> np.ndarray:
    audio, _ = soundfile.read(
        io.BytesIO(store.read_files(PIECE_ID, ["piece.wav"], version)["piece.wav"]),
        dtype="float32",
    )
    return audio


def test_one_sections_tempo_renders_it_and_moves_the_bars_after_it(tmp_path):
    """Section B (bars 9-12) at 90 bpm in a 120 bpm piece: the bar before it ramps in,
    so bars 8-12 are rendered (bar 7 as pre-roll); bars 13-16 are the previous mix's
    samples, later by what the slower bars add; the later segments are streamed again
    with their new times; the joins do not click."""
    store = stored_aaba(tmp_path)
    old = PieceParts.from_record(pb.PieceRecord.FromString(store.read_all(PIECE_ID)[PARTS_FILE]))
    events = run_edit(
        PieceEditor(store, FakeModels().models(), OPTIONS), section_sound("B", tempo_bpm=90)
    )
    assert kinds(events) == [
        ("edited", 2),
        ("render_segment", 1),
        ("render_segment", 2),
        ("render_segment", 3),
        ("completed", 16),
    ]
    assert [s.tempo_bpm for s in events[0].edited.spec.form.sections] == [0, 0, 90, 0]
    new = PieceParts.from_record(pb.PieceRecord.FromString(store.read_all(PIECE_ID, 2)[PARTS_FILE]))
    # the section's tempo scales the phrase's shape (its rubato) from 120 to 90 bpm
    tick = 9 * new.bar_ticks
    assert new.tempo_map.bpm_at(tick) == pytest.approx(
        old.tempo_map.bpm_at(tick) * 90 / 120, abs=0.002
    )
    later = new.seconds_before_bar(12) - old.seconds_before_bar(12)
    assert later == pytest.approx(4 * 4 * (60 / 90 - 60 / 120), rel=0.15)
    assert events[-1].completed.duration_seconds == pytest.approx(
        old.seconds_before_bar(16) + later
    )
    segment = events[3].render_segment
    assert segment.start_seconds == pytest.approx(new.seconds_before_bar(12))

    summary = json.loads(store.read_all(PIECE_ID, 2)["piece.json"])
    assert [s.get("tempo_bpm") for s in summary["form"]["sections"]] == [None, None, 90, None]
    entry = summary["edit_history"][0]
    assert entry["description"] == "section B: 90 bpm"
    assert entry["bars"] == [8, 12] and entry["rendered_spans"] == [[7, 12]]
    before, after = mix(store, 1), mix(store, 2)
    rate = 44100
    cut = round(old.seconds_before_bar(6) * rate)
    assert np.allclose(after[:cut], before[:cut], atol=LSB, rtol=0)  # bars 1-6: untouched
    # bar 13 on: the old samples, moved by a whole number of samples (the mix's growth)
    old_13 = round(old.seconds_before_bar(13) * rate)
    new_13 = old_13 + len(after) - len(before)
    assert new_13 == pytest.approx(new.seconds_before_bar(13) * rate, abs=2)  # two roundings
    assert np.allclose(
        after[new_13 : new_13 + rate], before[old_13 : old_13 + rate], atol=LSB, rtol=0
    )
    assert len(after) - len(before) == pytest.approx(later * rate, abs=2)
    assert len(entry["joins"]) == 2
    assert all(join["ratio"] < 1.5 for join in entry["joins"]), entry["joins"]


def test_one_sections_palette_renders_only_that_section(tmp_path):
    store = stored_aaba(tmp_path)
    editor = PieceEditor(store, FakeModels().models(), OPTIONS)
    events = run_edit(editor, section_sound("b", palette="strings"))
    assert kinds(events) == [
        ("edited", 2),
        ("render_segment", 2),
        ("render_segment", 3),  # the crossfade out of bar 12 starts it
        ("completed", 16),
    ]
    assert [s.palette for s in events[0].edited.spec.form.sections] == ["", "", "strings", ""]
    entry = json.loads(store.read_all(PIECE_ID, 2)["piece.json"])["edit_history"][0]
    assert entry["rendered_spans"] == [[8, 12]] and entry["bars"] == [9, 12]
    before, after = mix(store, 1), mix(store, 2)
    assert len(after) == len(before)
    rate, bar = 44100, 2 * 44100  # 4/4 at 120 bpm before the closing bars
    assert np.allclose(after[: 8 * bar], before[: 8 * bar], atol=LSB, rtol=0)
    assert not np.allclose(after[9 * bar : 12 * bar], before[9 * bar : 12 * bar], atol=1e-3)
    assert np.allclose(
        after[12 * bar + rate : 14 * bar], before[12 * bar + rate : 14 * bar], atol=LSB, rtol=0
    )
    assert all(join["ratio"] < 1.5 for join in entry["joins"]), entry["joins"]

    # the same palette again changes no sound: nothing is rendered, the mix is kept
    again = run_edit(editor, section_sound("B", palette="strings"))
    assert [k for k, _ in kinds(again)] == [
        "edited",
        "render_segment",
        "render_segment",
        "completed",
    ]
    assert mix(store, 3).tobytes() == after.tobytes()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"section": "C", "palette": "strings"}, "change_sound.section", "A, A', B, A''"),
        ({"section": "B", "palette": "kazoo"}, "change_sound.palette", "unknown palette"),
        ({"section": "B", "tempo_bpm": 300}, "change_sound.tempo_bpm", "outside"),
        ({"section": "B"}, "change_sound", "give a palette"),
    ],
)
def test_bad_section_sound_edits_name_the_field(tmp_path, change, field, message):
    store = stored_aaba(tmp_path)
    with pytest.raises(EditError, match=message) as raised:
        PieceEditor(store, FakeModels().models(), OPTIONS).open(
            api.EditRequest(piece_id=PIECE_ID, change_sound=api.ChangeSound(**change))
        )
    assert raised.value.field == field
    assert store.versions(PIECE_ID) == [1]


def test_a_piece_without_a_plan_has_no_sections_to_change(tmp_path):
    store = stored_piece(tmp_path)
    with pytest.raises(EditError, match="no form plan") as raised:
        PieceEditor(store, FakeModels().models(), OPTIONS).open(section_sound("A", tempo_bpm=90))
    assert raised.value.field == "change_sound.section"


def stored_lyric_piece(tmp_path: Path, piece_spec: pb.PieceSpec):
    """The fixture's piece with ``piece_spec`` and "la lo" lines, rendered and stored, and
    the fake models with the shipped lyric LM."""
    from cantus.lyrics.serving import load_lyric_scorer
    from cantus.lyrics.training import checkpoint_path
    from cantus.lyrics.writer import LyricResources

    store = LocalPieceStore(tmp_path / "pieces")
    parts = PieceParts.from_events(table_events(piece_events(piece_spec, lyrics=True)))
    assert parts is not None
    rendered = render_piece_files(
        parts, piece_id=PIECE_ID, event_log=[], audio_formats=("wav",), leadsheet=False
    )
    for name, content in rendered.files.items():
        store.write(PIECE_ID, name, content)
    models = FakeModels().models()
    models.lyrics = LyricResources(
        scorer_for=lambda lang, register: load_lyric_scorer(checkpoint_path(lang))
    )
    return store, models


def test_rewriting_a_sections_lyrics_streams_its_lines_and_keeps_the_audio(tmp_path):
    piece_spec = spec(4)
    piece_spec.lyrics_theme, piece_spec.lyrics_language = "a boat on the sea", "en"
    store, models = stored_lyric_piece(tmp_path, piece_spec)
    request = api.EditRequest(
        piece_id=PIECE_ID, seed=3, rewrite_lyrics=api.RewriteLyrics(section=1, theme="winter night")
    )
    events = run_edit(PieceEditor(store, models, OPTIONS), request)
    lines = [e.lyric_line for e in events if e.HasField("lyric_line")]
    assert [line.meta.index for line in lines] == [0, 1, 2, 3]
    for line in lines:  # one syllable per note of the line's bar, words where "la lo" was
        assert len(line.syllables) == 8 and line.text and line.text != "la lo"
    v2 = store.read_all(PIECE_ID, 2)
    assert v2["piece.wav"] == store.read_all(PIECE_ID)["piece.wav"]  # no vocals: same mix
    summary = json.loads(v2["piece.json"])
    assert [line["text"] for line in summary["lyrics"]] == [line.text for line in lines]
    assert summary["edit_history"][0]["rendered_audio_seconds"] == 0.0

    with pytest.raises(EditError) as raised:
        PieceEditor(store, models, OPTIONS).open(
            api.EditRequest(piece_id=PIECE_ID, rewrite_lyrics=api.RewriteLyrics(section=2))
        )
    assert raised.value.field == "rewrite_lyrics.section"


def test_a_gap_ending_on_a_phrase_end_keeps_its_cadence(tmp_path):
    """An 8-bar piece without a plan is through-composed: phrases end on bars 4 and 8. A
    gap to bar 4 asks the model for the cadence there and holds its last note; a gap that
    ends mid-phrase asks for none."""
    store = stored_piece(tmp_path)
    fakes = FakeModels()
    editor = PieceEditor(store, fakes.models(), OPTIONS)
    run_edit(editor, regenerate(2, 4))
    assert {r.cadence_steps != () for r in fakes.requests} == {True}
    assert {(r.first_bar, r.n_bars) for r in fakes.requests} == {(1, 3)}
    fakes.requests.clear()
    run_edit(editor, regenerate(2, 6))  # bars 2-4 end a phrase, 5-6 close the gap mid-phrase
    by_start = {r.first_bar: r for r in fakes.requests}
    assert by_start[1].cadence_steps != () and by_start[1].n_bars == 3
    assert by_start[4].cadence_steps == () and by_start[4].n_bars == 2


def test_a_sung_sections_new_lyrics_render_only_that_section_with_its_voice(tmp_path):
    """A sung 8-bar AABA piece (issue #18 with #19's voice): new lyrics for B (bars 5-6)
    change the voice there only, so bars 4-7 are rendered with the voice (the neighbours'
    leads, glides and codas; bar 3 as pre-roll) and spliced into the previous mix, whose
    other bars stay as they were, and the joins do not click."""
    from cantus.events.conversions import form_to_pb
    from cantus.music.form import plan_form
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy

    piece_spec = spec(8)
    piece_spec.palette = "folk"
    piece_spec.lyrics_theme, piece_spec.lyrics_language = "a boat on the sea", "en"
    piece_spec.vocals = True
    plan = plan_form("AABA", bars=8, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    piece_spec.form.CopyFrom(form_to_pb(plan))
    store, models = stored_lyric_piece(tmp_path, piece_spec)
    assert "vocals.wav" in store.read_all(PIECE_ID)
    request = api.EditRequest(
        piece_id=PIECE_ID, seed=3, rewrite_lyrics=api.RewriteLyrics(section=3, theme="winter")
    )
    events = run_edit(PieceEditor(store, models, OPTIONS), request)
    lines = [e.lyric_line.meta.index for e in events if e.HasField("lyric_line")]
    assert lines == [4, 5]
    entry = json.loads(store.read_all(PIECE_ID, 2)["piece.json"])["edit_history"][0]
    assert entry["rendered_spans"] == [[3, 7]]
    duration = events[-1].completed.duration_seconds
    assert entry["rendered_audio_seconds"] < 0.75 * duration
    assert len(entry["joins"]) == 2
    assert all(join["ratio"] < 1.5 for join in entry["joins"]), entry["joins"]
    before, after = mix(store, 1), mix(store, 2)
    assert len(after) == len(before)
    parts = PieceParts.from_record(pb.PieceRecord.FromString(store.read_all(PIECE_ID)[PARTS_FILE]))
    at = [round(parts.seconds_before_bar(bar) * 44100) for bar in range(9)]
    assert np.allclose(after[: at[3]], before[: at[3]], atol=LSB, rtol=0)  # bars 1-3
    assert not np.allclose(after[at[4] : at[6]], before[at[4] : at[6]], atol=1e-3)  # B
    fade = round(0.08 * 44100)
    assert np.allclose(after[at[7] + fade :], before[at[7] + fade :], atol=LSB, rtol=0)
    # the voice's stem is spliced as the mix is (vocals.wav, its gain in piece.json): it is
    # the new version's voice sung whole, but for the crossfades, where old and new overlap
    from cantus.render.piece import stored_vocals
    from cantus.render.vocals import render_vocals

    stems = []
    for version in (1, 2):
        files = store.read_files(PIECE_ID, ["vocals.wav", "piece.json"], version)
        gain_db = json.loads(files["piece.json"])["vocals"]["gain_db"]
        stems.append((stored_vocals(files["vocals.wav"], gain_db), 10 ** (-gain_db / 20)))
    (old_stem, old_step), (new_stem, new_step) = stems
    assert len(new_stem) == len(after)
    new = PieceParts.from_record(pb.PieceRecord.FromString(store.read_all(PIECE_ID, 2)[PARTS_FILE]))
    sung = render_vocals(new.sung_notes(0, new.bar_count), "en", len(new_stem), 44100)
    outside = np.ones(len(sung), dtype=bool)
    for join in (at[3], at[7]):  # the joins: where bar 4 starts, where bar 8 starts
        outside[join : join + fade] = False
    tolerance = 1.5 * LSB * max(old_step, new_step)  # both stems were written in 16 bits
    assert np.abs(new_stem - sung)[outside].max() < tolerance
    assert np.abs(new_stem[: at[3]] - old_stem[: at[3]]).max() < tolerance  # bars 1-3 as sung
    assert np.abs(new_stem[at[4] : at[6]] - old_stem[at[4] : at[6]]).max() > 100 * tolerance


def test_edits_take_the_services_register_settings():
    from cantus.editing.triton import edit_options
    from cantus.settings import Settings

    served = edit_options(Settings.model_construct())
    assert served.register_contrast and served.register_window
    off = edit_options(Settings.model_construct(melody_register_window=False))
    assert off.register_contrast and not off.register_window


def test_a_planned_pickup_bar_is_not_composed_anew():
    from cantus.editing.requests import validate_edit
    from cantus.events.conversions import form_to_pb
    from cantus.music.form import plan_form, with_pickup
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy

    plain = plan_form("AABA", bars=16, key=Key(0, Mode.MAJOR), energy=Energy.MID)
    opened = with_pickup(plain)
    piece = pb.PieceSpec(bars=opened.total_bars, mode=pb.MODE_MAJOR, form=form_to_pb(opened))
    with pytest.raises(EditError) as raised:
        validate_edit(regenerate(1, 4), piece, pb.PieceRecord())
    assert raised.value.field == "regenerate.bars.first_bar" and "pickup bar" in str(raised.value)
    edit = validate_edit(regenerate(2, 5), piece, pb.PieceRecord())
    assert (edit.first, edit.last) == (1, 4)
    # a piece that opens on the downbeat composes its first bar anew
    downbeat = pb.PieceSpec(bars=16, mode=pb.MODE_MAJOR, form=form_to_pb(plain))
    assert validate_edit(regenerate(1, 4), downbeat, pb.PieceRecord()).first == 0
