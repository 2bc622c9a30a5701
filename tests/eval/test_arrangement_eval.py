"""The arrangement eval's parts that need no model: mixed requests and the melody margin."""

import numpy as np

from cantus.eval.arrangement import melody_margin_db, mixed_requests
from cantus.render.palettes import PALETTES


def test_requests_mix_styles_meters_moods_and_keys_in_known_palettes():
    requests = mixed_requests(24)
    assert len({r.style for r in requests}) == 3
    assert len({str(r.meter) for r in requests}) >= 4
    assert len({r.mood for r in requests}) >= 6
    assert len({r.key for r in requests}) >= 12
    assert all(r.palette in PALETTES for r in requests)


def tone(freq: float, seconds: float = 1.0, rate: int = 44100, level: float = 0.1):
    t = np.arange(int(seconds * rate)) / rate
    mono = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def test_the_margin_is_the_melody_over_the_rest_in_its_band():
    rate = 44100
    a4 = tone(440.0)
    low = tone(110.0, level=0.3)  # far under the band of a melody around A4
    inside = tone(440.0, level=0.1)
    out_of_band = melody_margin_db({"melody": a4, "bass": low}, rate, (69, 72))
    in_band = melody_margin_db({"melody": a4, "chords": inside}, rate, (69, 72))
    assert out_of_band > 20.0
    assert in_band < out_of_band and abs(in_band) < 10.0
