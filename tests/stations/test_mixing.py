"""Crossfaded joins between pieces: no gap, no lost audio, equal power."""

import numpy as np

from cantus.stations.mixing import StationMixer, resample

RATE = 1000


def tone(seconds, value):
    return np.full((int(seconds * RATE), 2), value, np.float32)


def test_pieces_join_with_a_crossfade_and_nothing_is_lost():
    mixer = StationMixer(RATE, crossfade_seconds=0.5)
    out = [mixer.feed(tone(1.0, 1.0)), mixer.feed(tone(1.0, 1.0))]  # piece 1 in two segments
    mixer.start_piece()
    out += [mixer.feed(tone(0.2, -1.0)), mixer.feed(tone(1.8, -1.0))]  # head split too
    out.append(mixer.flush())
    stream = np.concatenate(out)
    assert len(stream) == int(3.5 * RATE)  # 2 s + 2 s, one 0.5 s overlap
    assert mixer.frames_out == len(stream)
    assert np.all(stream[: int(1.5 * RATE)] == 1.0)
    fade = stream[int(1.5 * RATE) : int(2.0 * RATE), 0]
    assert fade[0] > 0.9 and fade[-1] < -0.9 and np.all(np.diff(fade) <= 0)
    assert np.all(stream[int(2.0 * RATE) :] == -1.0)


def test_equal_power_fade_keeps_uncorrelated_power():
    mixer = StationMixer(RATE, crossfade_seconds=1.0)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3 * RATE, 2)), rng.standard_normal((3 * RATE, 2))
    first = mixer.feed(a.astype(np.float32))
    mixer.start_piece()
    joined = mixer.feed(b.astype(np.float32))[:RATE]
    assert len(first) == 2 * RATE
    # each piece has power 1; an equal-power fade keeps it through the whole overlap (a
    # linear fade of uncorrelated signals dips to 0.5 in the middle)
    for quarter in np.split(joined, 4):
        assert 0.8 < np.mean(quarter**2) < 1.2


def test_resample_changes_length_and_makes_stereo():
    mono = np.sin(np.linspace(0, 100, 44100)).astype(np.float32)
    out = resample(mono, 44100, 48000)
    assert out.shape == (48000, 2)
    assert np.array_equal(out[:, 0], out[:, 1])  # mono is copied to both channels
    # the waveform is kept: the resampled sine matches the sine at the new rate
    expected = np.sin(np.linspace(0, 100, 48000)).astype(np.float32)
    assert np.max(np.abs(out[:, 0] - expected)) < 1e-3
    assert np.array_equal(resample(out, 48000, 48000), out)  # same rate: unchanged
