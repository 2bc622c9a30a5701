"""The style and energy inputs of the committed harmony model change what it plays."""

import numpy as np
import pytest
import torch

from cantus.harmony.context import CONTEXT_BEATS, START
from cantus.harmony.features import bar_features
from cantus.harmony.model import load_harmony_checkpoint
from cantus.harmony.vocabulary import chord_to_class
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style
from cantus.settings import REPO_ROOT

G_MAJOR = Key(7, Mode.MAJOR)
TUNE = [  # eight bars of 4/4 in G, quarters and eighths
    (67, 71, 74, 71),
    (72, 71, 69, 67),
    (66, 69, 72, 69),
    (67, 71, 74, 79),
    (76, 74, 72, 71),
    (69, 71, 72, 74),
    (71, 69, 67, 66),
    (67, 67, 67, 67),
]


@pytest.fixture(scope="module")
def net():
    net, _ = load_harmony_checkpoint(REPO_ROOT / "shared/cantus/checkpoints/harmony_gru.pt")
    return net


def melody() -> list[Bar]:
    meter = Meter(4, 4)
    bars = []
    for index, pitches in enumerate(TUNE):
        notes = [Note(i * 480, p, 480) for i, p in enumerate(pitches)]
        if index % 2:  # every other bar: eighths on beat two
            notes[1:2] = [Note(480, pitches[1], 240), Note(720, pitches[1] + 2, 240)]
        bars.append(Bar(meter, tuple(notes)))
    return bars


def chord_probabilities(net, style: Style, energy: Energy) -> np.ndarray:
    """[beats, chord classes]: the model's chord distribution on every beat of the tune,
    the tonic chord given as the chord before each beat (the same history for every
    setting, so only the controls differ)."""
    bars = melody()
    features = np.concatenate(
        [
            bar_features(
                bar,
                G_MAJOR,
                next_bar=bars[i + 1] if i + 1 < len(bars) else None,
                is_final=i == len(bars) - 1,
                style=style,
                energy=energy,
            )
            for i, bar in enumerate(bars)
        ]
    )
    assert len(features) <= CONTEXT_BEATS
    tonic = chord_to_class(ChordSymbol(7, ChordQuality.MAJOR), G_MAJOR)
    previous = torch.full((1, len(features)), tonic)
    previous[0, 0] = START
    with torch.no_grad():
        logits, _, _ = net(torch.from_numpy(features)[None], previous)
    return logits[0].softmax(-1).numpy()


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over beats of the total variation distance between two chord distributions."""
    return float(0.5 * np.abs(a - b).sum(-1).mean())


def test_style_changes_the_chord_distribution(net):
    chorale = chord_probabilities(net, Style.CHORALE, Energy.MID)
    folk = chord_probabilities(net, Style.FOLK, Energy.MID)
    celtic = chord_probabilities(net, Style.CELTIC, Energy.MID)
    assert total_variation(chorale, folk) > 0.15
    assert total_variation(folk, celtic) > 0.02
    assert total_variation(folk, folk) == 0


def test_energy_changes_the_chord_distribution(net):
    for style in Style:
        low = chord_probabilities(net, style, Energy.LOW)
        high = chord_probabilities(net, style, Energy.HIGH)
        print(style, total_variation(low, high))
        assert total_variation(low, high) > 0.02
