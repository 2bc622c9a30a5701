"""The palette gallery: an example of every palette in every style, its index as a grid
(markdown and a page to listen to)."""

from pathlib import Path

from cantus.music.styles import Style
from cantus.render.gallery import GalleryEntry, gallery_html, gallery_index, gallery_requests
from cantus.render.palettes import PALETTES


def test_every_palette_is_asked_for_in_every_style():
    requests = gallery_requests()
    assert {(r.palette, r.style) for r in requests} == {(p, s) for p in PALETTES for s in Style}
    assert len({r.seed for r in requests}) == len(requests)
    assert all(r.meter.numerator == 6 for r in requests if r.style is Style.CELTIC)
    assert {r.key.mode.value for r in requests} == {"major", "minor"}
    only = gallery_requests(styles=(Style.CHORALE,))
    assert {r.style for r in only} == {Style.CHORALE} and len(only) == len(PALETTES)


def test_the_index_is_a_grid_of_every_example_with_its_instruments():
    out = Path("/tmp/gallery")
    entries = [
        GalleryEntry(name, style.value, "calm", out / name / style.value, 0.0, 30.0)
        for name in PALETTES
        for style in Style
    ]
    text = gallery_index(entries, out)
    assert "| palette | instruments | folk | celtic | chorale |" in text
    for name, palette in PALETTES.items():
        assert f"| {name} | {palette.summary} |" in text
        for style in Style:
            assert f"[roll]({name}/{style.value}/pianoroll.png)" in text
    page = gallery_html(entries, out)
    assert page.count("<audio controls") == len(PALETTES) * len(Style)
    assert 'src="harp-flute/celtic/piece.ogg"' in page and "<th>chorale</th>" in page
    # a missing example leaves its cell marked, not the grid broken
    assert "| folk | " + PALETTES["folk"].summary + " | – |" in gallery_index(entries[1:], out)
