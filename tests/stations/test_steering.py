"""Feedback steers a station's choices, within its bounds."""

import random
from collections import Counter

from cantus.stations.config import parse_station_config
from cantus.stations.steering import apply_feedback, choose_next, initial_steering
from cantus.v1 import station_pb2 as st

CONFIG = parse_station_config(
    "styles: {folk: 1, celtic: 1, chorale: 1}\ntempo_bpm: [70, 130]\nenergy: [0.1, 0.9]\n"
)


def draws(steering, count=600):
    rng = random.Random(1)
    return [choose_next(CONFIG, steering, rng) for _ in range(count)]


def test_choices_stay_inside_the_configured_bounds():
    for choice in draws(initial_steering(CONFIG)):
        assert 70 <= choice.tempo_bpm <= 130
        assert choice.style in CONFIG.styles
        assert choice.key in CONFIG.keys and choice.mode in CONFIG.modes


def test_likes_and_skips_shift_style_tempo_and_energy():
    before = initial_steering(CONFIG)
    steering = before
    liked = st.ProgramEntry(style="celtic", tempo_bpm=125, energy="high")
    skipped = st.ProgramEntry(style="chorale", tempo_bpm=75, energy="low")
    for _ in range(4):
        steering = apply_feedback(CONFIG, steering, liked, "like")
        steering = apply_feedback(CONFIG, steering, skipped, "skip")
    old, new = draws(before), draws(steering)
    old_styles, new_styles = Counter(c.style for c in old), Counter(c.style for c in new)
    assert new_styles["celtic"] > 1.5 * old_styles["celtic"]
    assert new_styles["chorale"] < 0.5 * old_styles["chorale"]
    assert new_styles["chorale"] > 0  # never switched off entirely
    mean = lambda cs, f: sum(getattr(c, f) for c in cs) / len(cs)  # noqa: E731
    assert mean(new, "tempo_bpm") > mean(old, "tempo_bpm") + 10
    assert mean(new, "energy") > mean(old, "energy") + 0.1
    assert 70 <= steering.tempo_center_bpm <= 130 and 0.1 <= steering.energy_center <= 0.9


def test_feedback_kind_is_checked():
    import pytest

    with pytest.raises(ValueError, match="kind"):
        apply_feedback(CONFIG, initial_steering(CONFIG), st.ProgramEntry(style="folk"), "love")
