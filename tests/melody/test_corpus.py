"""Tests for the melody corpus: conversion rules on hand-written ABC tunes, a small real
build from the music21 corpus, splits, augmentation and the cache."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from cantus.melody.corpus import (
    PITCH_RANGE,
    RejectReason,
    Tune,
    build_corpus,
    convert_abc_tune,
    corpus_statistics,
    format_statistics,
    load_or_build_corpus,
    melody_fingerprint,
    melody_to_record,
    record_to_melody,
    split_corpus,
    transpose_melody,
    transpositions,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import SUPPORTED_METERS

GRID = 120


def abc(body: str, *, meter: str = "2/4", length: str = "1/8", key: str = "G") -> str:
    return f"X:1\nT:test\nM:{meter}\nL:{length}\nK:{key}\n{body}\n"


FOUR_BARS = "G2 AB | c2 BA | G2 AB | c2 BA | G4 |"


def test_plain_tune_is_quantized_and_barred() -> None:
    melody = convert_abc_tune(abc(FOUR_BARS))
    assert isinstance(melody, Melody)
    assert melody.meter == Meter(2, 4)
    assert len(melody.bars) == 5
    assert melody.key == Key(7, Mode.MAJOR)
    assert melody.tempo_bpm == 100.0  # folk default
    first = melody.bars[0].notes
    assert [(n.onset, n.pitch, n.duration) for n in first] == [
        (0, 67, 480),
        (480, 69, 240),
        (720, 71, 240),
    ]
    assert all(n.velocity == 90 for bar in melody.bars for n in bar.notes)


def test_pickup_sits_at_the_end_of_a_full_bar() -> None:
    melody = convert_abc_tune(abc("D | " + FOUR_BARS))
    assert isinstance(melody, Melody)
    pickup = melody.bars[0].notes
    assert [(n.onset, n.pitch, n.duration) for n in pickup] == [(720, 62, 240)]
    assert melody.bars[1].notes[0].onset == 0


def test_section_end_and_next_pickup_share_a_bar() -> None:
    # "G3 :|" is three eighths, the next section's pickup "D" completes that 2/4 bar.
    melody = convert_abc_tune(abc("D | G2 AB | c2 BA | G3 :| D | G2 AB | c2 BA | G4 |"))
    assert isinstance(melody, Melody)
    third = melody.bars[3].notes
    assert [(n.onset, n.pitch) for n in third] == [(0, 67), (720, 62)]


def test_rare_triplet_is_snapped_but_many_are_rejected() -> None:
    one_triplet = abc("(3GAB c2 | " + " | ".join(["c2 BA", "G2 AB"] * 14) + " |")
    melody = convert_abc_tune(one_triplet)
    assert isinstance(melody, Melody)
    for bar in melody.bars:
        for note in bar.notes:
            assert note.onset % GRID == 0 and note.duration % GRID == 0
    assert convert_abc_tune(abc("(3GAB c2 | (3GAB c2 | (3GAB c2 | G4 |")) is RejectReason.OFF_GRID


def test_tied_notes_merge_within_a_bar_and_split_at_the_barline() -> None:
    melody = convert_abc_tune(abc("G-G AB | c2 B-B | B2 AB | c2 BA | G4 |"))
    assert isinstance(melody, Melody)
    first = melody.bars[0].notes[0]
    assert (first.onset, first.duration) == (0, 480)
    # "B-B |" ends bar 2 and "B2" starts bar 3: same pitch, split at the barline.
    assert melody.bars[1].notes[-1].end == Meter(2, 4).bar_ticks
    assert melody.bars[2].notes[0].onset == 0


def test_chords_keep_their_top_note() -> None:
    melody = convert_abc_tune(abc("[GB]2 AB | c2 BA | G2 AB | c2 BA | G4 |"))
    assert isinstance(melody, Melody)
    assert melody.bars[0].notes[0].pitch == 71


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (abc(FOUR_BARS, meter="4/2"), RejectReason.UNSUPPORTED_METER),
        (abc(FOUR_BARS, meter="none"), RejectReason.UNSUPPORTED_METER),
        # music21 ignores the inline [M:3/4] and splits the overfull bars it then sees.
        (abc("G2 AB | c2 BA | [M:3/4] G2 AB c2 | c2 BA G2 | G4 |"), RejectReason.IRREGULAR_BARS),
        (abc("G2 AB | c2 BA |"), RejectReason.TOO_FEW_BARS),
        (abc("c''''2 AB | c2 BA | G2 AB | c2 BA | G4 |"), RejectReason.OUT_OF_RANGE),
        (abc("z4 | z4 | z4 | z4 |"), RejectReason.NO_NOTES),
        (abc("G2 AB c2 | c2 BA | G2 AB | c2 BA | G4 |"), RejectReason.IRREGULAR_BARS),
    ],
)
def test_reject_reasons(text: str, reason: RejectReason) -> None:
    assert convert_abc_tune(text) is reason


def melody_of(text: str, style: str = "folk") -> Melody:
    melody = convert_abc_tune(text, style=style)
    assert isinstance(melody, Melody), melody
    return melody


def test_minor_and_modal_keys() -> None:
    assert melody_of(abc(FOUR_BARS, key="Em")).key == Key(4, Mode.MINOR)
    assert melody_of(abc(FOUR_BARS, key="Ador")).key == Key(9, Mode.MINOR)
    assert melody_of(abc(FOUR_BARS, key="Dmix")).key == Key(2, Mode.MAJOR)
    # A bare "K:G" is only a signature: an E-minor tune written that way reads as E minor.
    e_minor = abc("E2 GB | e2 BG | E2 GB | e2 dB | E4 | B,2 E2 | E4 |")
    assert melody_of(e_minor).key == Key(4, Mode.MINOR)


def test_tempo_from_the_score() -> None:
    text = "X:1\nM:2/4\nL:1/8\nQ:1/4=132\nK:G\n" + FOUR_BARS + "\n"
    assert melody_of(text).tempo_bpm == 132.0
    assert melody_of(abc(FOUR_BARS), style="celtic").tempo_bpm == 110.0


@pytest.fixture(scope="module")
def small_build() -> tuple[list[Tune], Counter[RejectReason]]:
    return build_corpus(limit_per_source=10, workers=1, progress=False)


def test_small_build_from_every_source(
    small_build: tuple[list[Tune], Counter[RejectReason]],
) -> None:
    tunes, rejects = small_build
    assert len(tunes) + sum(rejects.values()) == 40
    assert {t.source for t in tunes} == {"essen", "oneill", "ryans", "chorales"}
    assert [t.tune_id for t in tunes] == sorted(t.tune_id for t in tunes)
    meters = set(SUPPORTED_METERS)
    low, high = PITCH_RANGE
    for tune in tunes:
        bars = tune.melody.bars
        assert len(bars) >= 4 and not bars[-1].is_rest
        assert len({b.meter for b in bars}) == 1 and bars[0].meter in meters
        for bar in bars:
            for note in bar.notes:
                assert note.onset % GRID == 0 and note.duration % GRID == 0
                assert low <= note.pitch <= high


def test_reject_counts_from_a_build(small_build: tuple[list[Tune], Counter[RejectReason]]) -> None:
    # The first Essen tunes are in 4/2, several O'Neill tunes hold triplets.
    _, rejects = small_build
    assert all(isinstance(reason, RejectReason) and n > 0 for reason, n in rejects.items())
    assert rejects[RejectReason.UNSUPPORTED_METER] > 0
    assert rejects[RejectReason.OFF_GRID] > 0


def test_split_is_deterministic_and_disjoint(
    small_build: tuple[list[Tune], Counter[RejectReason]],
) -> None:
    tunes, rejects = small_build
    split = split_corpus(tunes, valid_fraction=0.2, test_fraction=0.2, rejects=rejects)
    again = split_corpus(
        list(reversed(tunes)), valid_fraction=0.2, test_fraction=0.2, rejects=rejects
    )
    assert split.manifest == again.manifest
    ids = [set(t.tune_id for t in part) for part in (split.train, split.valid, split.test)]
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])
    assert set().union(*ids) == {t.tune_id for t in tunes}
    assert split.manifest["rejects"] == {r.value: n for r, n in rejects.items()}
    # A tune's split depends only on its id, not on the other tunes.
    alone = split_corpus(tunes[:1], valid_fraction=0.2, test_fraction=0.2)
    name = next(k for k in ("train", "valid", "test") if alone.manifest[k]["count"])
    assert tunes[0].tune_id in split.manifest[name]["tune_ids"]


def _tune(pitches: list[int]) -> Tune:
    meter = Meter(4, 4)
    bars = tuple(Bar(meter, (Note(0, p, 1920),)) for p in pitches)
    return Tune("test#1", "essen", "folk", Melody(Key(0), 100.0, bars))


def test_transpositions_stay_in_range() -> None:
    low, high = PITCH_RANGE
    tune = _tune([60, 91, 62, 64])  # 91 + 6 would pass 96
    shifted = list(transpositions(tune))
    shifts = [int(t.tune_id.split("^")[1]) if "^" in t.tune_id else 0 for t in shifted]
    assert shifts == [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]
    for variant in shifted:
        pitches = [n.pitch for b in variant.melody.bars for n in b.notes]
        assert low <= min(pitches) and max(pitches) <= high
    up_two = next(t for t in shifted if t.tune_id.endswith("^+2"))
    assert up_two.melody.key == Key(2)
    assert [n.pitch for n in up_two.melody.notes_absolute()] == [62, 93, 64, 66]


def test_fingerprint_ignores_transposition() -> None:
    melody = _tune([60, 62, 64, 65]).melody
    assert melody_fingerprint(melody) == melody_fingerprint(transpose_melody(melody, 3))
    assert melody_fingerprint(melody) != melody_fingerprint(_tune([60, 62, 64, 67]).melody)


def test_record_round_trip(small_build: tuple[list[Tune], Counter[RejectReason]]) -> None:
    for tune in small_build[0]:
        assert record_to_melody(melody_to_record(tune.melody)) == tune.melody


def test_statistics(small_build: tuple[list[Tune], Counter[RejectReason]]) -> None:
    tunes, rejects = small_build
    stats = corpus_statistics(split_corpus(tunes, rejects=rejects))
    assert sum(row["tunes"] for row in stats["splits"].values()) == len(tunes)
    assert sum(stats["meters"].values()) == len(tunes)
    assert sum(stats["keys"].values()) == len(tunes)
    text = format_statistics(stats)
    assert "train" in text and "meters:" in text


def test_cache_second_call_loads(tmp_path: Path) -> None:
    kwargs = {"sources": ("essen",), "limit_per_source": 3, "workers": 1, "progress": False}
    built = load_or_build_corpus(tmp_path, **kwargs)
    assert list(tmp_path.glob("corpus-*.json.gz"))
    started = time.monotonic()
    loaded = load_or_build_corpus(tmp_path, **kwargs)
    assert time.monotonic() - started < 2
    assert loaded.manifest == built.manifest
    assert [t.melody for t in loaded.train] == [t.melody for t in built.train]


def test_cache_key_ignores_defaults_and_workers(tmp_path: Path) -> None:
    kwargs = {"sources": ("essen",), "limit_per_source": 2, "progress": False}
    load_or_build_corpus(tmp_path, workers=1, **kwargs)
    load_or_build_corpus(tmp_path, workers=2, midi_dir=None, **kwargs)
    assert len(list(tmp_path.glob("corpus-*.json.gz"))) == 1


def test_midi_folder_source(tmp_path: Path) -> None:
    from cantus.music.midi_io import melody_to_midi_bytes

    meter = Meter(3, 4)
    bars = tuple(Bar(meter, (Note(0, 60 + i, 1440, 64),)) for i in range(5))
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "good.mid").write_bytes(melody_to_midi_bytes(Melody(Key(0), 72.0, bars)))
    (tmp_path / "broken.mid").write_bytes(b"MThd garbage")
    tunes, rejects = build_corpus(
        (), midi_dir=tmp_path, midi_style="celtic", workers=1, progress=False
    )
    assert [(t.tune_id, t.source, t.style) for t in tunes] == [
        ("midi/songs/good.mid", "midi", "celtic")
    ]
    assert tunes[0].melody.tempo_bpm == 72.0
    assert all(n.velocity == 90 for n in tunes[0].melody.notes_absolute())
    assert rejects == Counter({RejectReason.PARSE_ERROR: 1})
