"""cantus bench render --palettes: the per-palette rates and their table (the rendering
itself is ``cantus.eval.arrangement.stream_palette``, tested with the arrangement eval)."""

import pytest

from cantus.bench.render import PaletteSpeed, format_palette_speeds


def test_rates_are_total_audio_over_total_time_and_the_table_shows_the_worst_piece():
    speed = PaletteSpeed("lullaby", audio_seconds=80.0, cpu_seconds=4.0, wall_seconds=16.0)
    speed.lufs += [-14.2, -13.3]
    speed.true_peaks += [-1.5, -1.13]
    assert speed.rtf_cpu == pytest.approx(20.0) and speed.rtf_wall == pytest.approx(5.0)
    table = format_palette_speeds([speed, PaletteSpeed("piano")], -14.0)
    rows = table.splitlines()
    assert rows[2] == "| lullaby | 80.0 | 4.00 | 20.0 | 5.0 | 0.70 | -1.13 |"
    assert rows[3].startswith("| piano | 0.0 | 0.00 | 0.0 | 0.0 | 0.00 |")  # nothing run
