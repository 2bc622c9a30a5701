"""The palette gallery's index: one row per example, each palette's instruments named."""

from pathlib import Path

from cantus.render.gallery import GalleryEntry, gallery_index
from cantus.render.palettes import PALETTES


def test_the_index_lists_every_example_with_its_instruments():
    out = Path("/tmp/gallery")
    entries = [GalleryEntry(name, "folk", "calm", out / name, 0.0, 30.0) for name in PALETTES]
    text = gallery_index(entries, out)
    for name, palette in PALETTES.items():
        assert f"[{name}]({name}/pianoroll.png)" in text
        assert palette.summary in text
