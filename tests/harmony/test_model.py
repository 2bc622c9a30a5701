"""The harmony net, its batched greedy decoding, checkpoints and the Triton config."""

import numpy as np
import pytest
import torch

from cantus.harmony.context import CONTEXT_BEATS, START
from cantus.harmony.features import FEATURES
from cantus.harmony.model import (
    HarmonyNet,
    HarmonyNetConfig,
    consonance_matrix,
    decode,
    load_harmony_checkpoint,
    save_harmony_checkpoint,
)
from cantus.harmony.serving import (
    HarmonyServing,
    RequestInputError,
)
from cantus.harmony.vocabulary import CHORD_CLASSES, chord_to_class
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Key
from cantus.settings import REPO_ROOT

TINY = HarmonyNetConfig(chord_embedding=8, hidden=16, layers=1, dropout=0.0)


def tiny_inputs(batch: int = 3, decode_from: int = CONTEXT_BEATS - 4):
    generator = torch.Generator().manual_seed(0)
    features = torch.rand((batch, CONTEXT_BEATS, FEATURES), generator=generator)
    previous = torch.randint(0, CHORD_CLASSES, (batch, CONTEXT_BEATS), generator=generator)
    hold = torch.zeros((batch, CONTEXT_BEATS), dtype=torch.bool)
    return features, previous, hold, torch.full((batch,), decode_from)


def test_decode_fills_only_the_decoded_beats():
    torch.manual_seed(0)
    net = HarmonyNet(TINY)
    features, previous, hold, decode_from = tiny_inputs()
    decode_from[1] = CONTEXT_BEATS - 7  # a 7/8 bar beside 4/4 bars in one batch
    chords, inversions, confidence = decode(net, features, previous, hold, decode_from)
    assert chords.shape == (3, CONTEXT_BEATS)
    assert (chords[0, :-4] == -1).all() and (chords[0, -4:] >= 0).all()
    assert (chords[1, -7:] >= 0).all() and (chords[1, :-7] == -1).all()
    assert ((inversions[0, -4:] >= 0) & (inversions[0, -4:] < 4)).all()
    assert ((confidence[0, -4:] > 0) & (confidence[0, -4:] <= 1)).all()
    # Batching does not change an answer: row 1 alone decodes the same.
    alone, _, _ = decode(net, features[1:2], previous[1:2], hold[1:2], decode_from[1:2])
    assert torch.equal(alone[0], chords[1])


def test_held_beats_repeat_the_chord_and_its_bass():
    torch.manual_seed(1)
    net = HarmonyNet(TINY)
    features, previous, hold, decode_from = tiny_inputs(batch=2)
    hold[:, -3:] = True
    chords, inversions, _ = decode(net, features, previous, hold, decode_from)
    for row in range(2):
        assert len(set(chords[row, -4:].tolist())) == 1
        assert len(set(inversions[row, -4:].tolist())) == 1


def test_melody_fit_prefers_consonant_chords():
    matrix = consonance_matrix()
    c_major = chord_to_class(ChordSymbol.parse("C"), Key(0))
    assert matrix[c_major, 0] > matrix[c_major, 1]  # C over C beats Db over C
    net = HarmonyNet(TINY)
    features, previous, hold, decode_from = tiny_inputs(batch=1)
    features[:, :, :12] = 0
    features[:, -4:, 1] = 1.0  # a Db on every decoded beat
    chords, _, _ = decode(net, features, previous, hold, decode_from, melody_fit=50.0)
    for chord_class in chords[0, -4:].tolist():
        assert matrix[chord_class, 1] == matrix[:, 1].max()


def test_checkpoint_round_trip(tmp_path):
    net = HarmonyNet(TINY)
    path = tmp_path / "harmony.pt"
    save_harmony_checkpoint(path, net, {"steps": 3})
    loaded, metadata = load_harmony_checkpoint(path)
    assert metadata == {"steps": 3}
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    (tmp_path / "other.pt").write_bytes(b"")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cantus-harmony/1 checkpoint"):
        load_harmony_checkpoint(tmp_path / "other.pt")


def test_committed_checkpoint_serves_a_batch():
    serving = HarmonyServing.load(REPO_ROOT / "shared/cantus/checkpoints/harmony_gru.pt")
    assert serving.model_version.startswith("harmony@")
    features, previous, hold, decode_from = tiny_inputs(batch=2)
    inputs = {
        "FEATURES": features.numpy(),
        "PREVIOUS": previous.numpy().astype(np.int32),
        "HOLD": hold.numpy(),
        "DECODE_FROM": decode_from.numpy().astype(np.int32)[:, None],
    }
    outputs = serving.decode(inputs)
    assert outputs["CHORDS"].shape == (2, CONTEXT_BEATS)
    assert (outputs["CHORDS"][:, -4:] >= 0).all()
    bad = dict(inputs, PREVIOUS=np.full((2, CONTEXT_BEATS), 999, dtype=np.int32))
    with pytest.raises(RequestInputError, match="PREVIOUS"):
        serving.decode(bad)
    with pytest.raises(RequestInputError, match="FEATURES has shape"):
        serving.decode(dict(inputs, FEATURES=inputs["FEATURES"][:, :10]))
    inputs["PREVIOUS"][:, -4] = START
    assert serving.decode(inputs)["CHORDS"].shape == (2, CONTEXT_BEATS)
