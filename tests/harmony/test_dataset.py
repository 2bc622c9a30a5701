"""Reading the harmony data: Bach chorales (chord per beat from the four voices), chord-
annotated ABC tunes and lead sheets, energy levels, and training windows."""

from dataclasses import replace

import numpy as np
import pytest

from cantus.harmony.context import CONTEXT_BEATS, PAD, START
from cantus.harmony.dataset import (
    ANNOTATED,
    DERIVED,
    HarmonizedTune,
    _chorded_abc_tunes,
    _with_energy,
    abc_tune_to_tune,
    chorale_to_tune,
    lead_sheet_to_tune,
    music21_figure_to_symbol,
    note_density,
)
from cantus.harmony.features import beat_spans
from cantus.harmony.training import encode_tune, window_batch
from cantus.music.notes import Bar, Key, Mode, Note
from cantus.music.styles import Energy, Style


@pytest.fixture(scope="module")
def chorale() -> HarmonizedTune:
    from music21 import corpus

    path = next(str(p) for p in corpus.getComposer("bach") if str(p).endswith("bwv10.7.mxl"))
    return chorale_to_tune(path)


def test_chorale_chords_come_from_the_four_voices(chorale):
    assert chorale.key == Key(7, Mode.MINOR)  # G minor
    assert chorale.style is Style.CHORALE
    assert str(chorale.meter) == "4/4"
    assert all(len(bar) == len(beat_spans(chorale.meter)) for bar in chorale.chords)
    # The first beats: G minor under a D in the soprano, voices bass to soprano.
    assert chorale.chords[0][0] == "Gm"
    assert chorale.voices[0][0] == (55, 58, 67, 74)
    symbols = [c for bar in chorale.chord_symbols() for c in bar if c is not None]
    assert len(symbols) > 0.9 * sum(len(bar) for bar in chorale.chords)
    for bar, voices in zip(chorale.bars, chorale.voices, strict=True):
        for (onset, _), satb in zip(beat_spans(chorale.meter), voices, strict=True):
            soprano = next((n.pitch for n in bar.notes if n.onset <= onset < n.end), None)
            if satb is not None and soprano is not None:
                assert satb[-1] == soprano  # the melody is the soprano voice


def test_json_round_trip(chorale):
    assert HarmonizedTune.from_json(chorale.to_json()) == chorale


def test_training_windows(chorale):
    encoded = encode_tune(chorale)
    beats = sum(len(bar) for bar in chorale.chords)
    assert encoded.features.shape == (beats, 70)
    assert encoded.bar_ends[-1] == beats
    features, previous, chords, inversions = window_batch(
        [encoded, encoded], [encoded.bar_ends[1], encoded.bar_ends[-1]], [0, 5]
    )
    assert features.shape == (2, CONTEXT_BEATS, 70)
    end = encoded.bar_ends[1]
    assert (previous[0, : CONTEXT_BEATS - end] == PAD).all()
    assert previous[0, CONTEXT_BEATS - end] == START
    assert (chords[0, : CONTEXT_BEATS - end] == -100).all()
    assert (chords[1] != -100).sum() > 0.9 * CONTEXT_BEATS
    assert ((inversions == -100) == (chords == -100)).all()
    # Transposition moves only the register of sounding beats.
    row = encoded.features[-CONTEXT_BEATS:]
    sounding = row[:, 12:24].sum(axis=1) > 0
    np.testing.assert_allclose(
        features[1, sounding, 62].numpy(), row[sounding, 62] + 5 / 12, rtol=1e-6
    )


CHORDED_ABC = """X:1
T:Chorded test tune
M:4/4
L:1/4
K:G
"G"GABc|"C"e2"D7"d2|"G"B2"Em"G2|"Am"A"D"F"G"G2|]
"""


def test_chord_symbols_of_an_abc_tune_fill_every_beat():
    tune = abc_tune_to_tune(CHORDED_ABC, "inline/0", Style.CELTIC)
    assert tune.key == Key(7, Mode.MAJOR)
    assert tune.chords == (
        ("G", "G", "G", "G"),
        ("C", "C", "D7", "D7"),
        ("G", "G", "Em", "Em"),
        ("Am", "D", "G", "G"),
    )
    assert (tune.style, tune.labels, tune.split) == (Style.CELTIC, ANNOTATED, "test")
    assert [n for n, _ in _chorded_abc_tunes(CHORDED_ABC + "\n" + CHORDED_ABC)] == [0, 1]
    five_chords = CHORDED_ABC.replace('"D7"', "").replace('"Em"', "").replace('"Am"', "")
    assert _chorded_abc_tunes(five_chords) == []  # fewer than six symbols: not annotated


def test_music21_flats_are_not_read_as_minor():
    assert music21_figure_to_symbol("B-") == "Bb"
    assert music21_figure_to_symbol("E-7/B-") == "Eb7/Bb"
    assert music21_figure_to_symbol("Am") == "Am"


def test_corpus_lead_sheet_keeps_its_chords_and_key():
    from music21 import corpus

    path = next(str(p) for p in corpus.getPaths() if str(p).endswith("fosterBrownHair.mxl"))
    tune = lead_sheet_to_tune(path)
    chords = {c for bar in tune.chords for c in bar if c}
    assert {"F", "C", "Bb"} <= chords and "Bm" not in chords
    assert tune.key == Key(5, Mode.MAJOR)  # F major, from the final chord
    assert tune.style is Style.FOLK and tune.split == "test"


def test_energy_tertiles_are_per_style(chorale):
    def with_density(tune, notes_per_bar, style):
        bars = tuple(
            Bar(bar.meter, tuple(Note(i * 120, 60, 120) for i in range(notes_per_bar)))
            for bar in tune.bars
        )
        return replace(tune, bars=bars, style=style)

    tunes = [with_density(chorale, n, Style.CHORALE) for n in (2, 4, 8)]
    tunes += [with_density(chorale, n, Style.FOLK) for n in (9, 12, 16)]
    levels = [t.energy for t in _with_energy(tunes)]
    assert levels == [Energy.LOW, Energy.MID, Energy.HIGH] * 2
    assert note_density(tunes[0]) == pytest.approx(0.5)


def test_derived_labels_round_trip(chorale):
    derived = replace(chorale, labels=DERIVED, source="essen")
    assert HarmonizedTune.from_json(derived.to_json()) == derived
    legacy = chorale.to_json()
    del legacy["labels"]
    assert HarmonizedTune.from_json(legacy).labels == ANNOTATED
