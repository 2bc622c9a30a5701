"""Near-duplicate detection by interval n-grams."""

import random

from hypothesis import given
from hypothesis import strategies as strategies

from cantus.stations.novelty import (
    MelodyIndex,
    interval_ngrams,
    most_similar,
    pitches_to_intervals,
    similarity,
)

melodies = strategies.lists(strategies.integers(48, 84), min_size=2, max_size=64)


@given(melodies, strategies.integers(-12, 12))
def test_transposed_melody_is_identical(pitches, shift):
    a = pitches_to_intervals(pitches)
    b = pitches_to_intervals([p + shift for p in pitches])
    assert similarity(a, b) == 1.0


@given(melodies, melodies)
def test_similarity_is_symmetric_and_bounded(a, b):
    x, y = pitches_to_intervals(a), pitches_to_intervals(b)
    assert 0.0 <= similarity(x, y) == similarity(y, x) <= 1.0


def test_unrelated_melodies_score_low_and_a_variant_scores_high():
    rng = random.Random(3)
    tune = [rng.randint(60, 72) for _ in range(64)]
    other = [rng.randint(60, 72) for _ in range(64)]
    variant = tune[:56] + [rng.randint(60, 72) for _ in range(8)]
    assert similarity(pitches_to_intervals(tune), pitches_to_intervals(other)) < 0.1
    assert similarity(pitches_to_intervals(tune), pitches_to_intervals(variant)) > 0.7


def test_ngrams_of_short_sequences():
    assert interval_ngrams([1, 2], n=4) == {(1, 2)}
    assert interval_ngrams([], n=4) == set()
    assert interval_ngrams([1, 2, 3, 4, 5], n=4) == {(1, 2, 3, 4), (2, 3, 4, 5)}


def test_most_similar_picks_the_closest():
    tune = pitches_to_intervals([60, 62, 64, 65, 67, 65, 64, 62, 60])
    earlier = [("a", pitches_to_intervals([60, 67, 60, 67, 60, 67])), ("b", tune)]
    assert most_similar(tune, earlier) == ("b", 1.0)
    assert most_similar(tune, []) is None


any_melodies = strategies.lists(strategies.integers(48, 84), min_size=1, max_size=64)


@given(strategies.lists(any_melodies, max_size=12), any_melodies, strategies.integers(0, 11))
def test_the_index_scores_as_comparing_with_every_melody(earlier, candidate, removed):
    ids = [f"p{i}" for i in range(len(earlier))]
    pairs = [(i, pitches_to_intervals(m)) for i, m in zip(ids, earlier, strict=True)]
    index = MelodyIndex()
    for piece_id, intervals in pairs:
        index.add(piece_id, interval_ngrams(intervals))
    if removed < len(pairs):  # one melody forgotten: as if it had never been there
        index.remove(pairs.pop(removed)[0])
    expected = most_similar(pitches_to_intervals(candidate), pairs)
    found = index.most_similar(interval_ngrams(pitches_to_intervals(candidate)))
    assert (found is None) == (expected is None)
    if found is not None:
        assert found[1] == expected[1]
        assert similarity(pitches_to_intervals(candidate), dict(pairs)[found[0]]) == found[1]
