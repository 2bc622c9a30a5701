"""``cantus gallery``: a short example of every palette in every style, to hear and see
what each sounds like.

Each example is a piece composed in process as the stack composes it (the shipped melody
and harmony models, ``cantus.eval.arrangement.piece_parts``), arranged in the palette and
written to ``DIR/<palette>/<style>/``: ``piece.mid``, the mastered audio (Ogg Vorbis) and
``pianoroll.png``. ``index.md`` lists them in a grid (palettes by styles) with each
palette's instruments and each piece's masking rate; ``index.html`` is the same grid as a
page to listen to, with each example's player and piano roll, opened from disk.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cantus.eval.arrangement import PieceRequest
from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Style
from cantus.render.palettes import PALETTES

PALETTE_MOODS = {"lullaby": "tender", "therapy": "calm", "ambient": "dreamy", "strings": "sad"}
"""The mood of a palette's examples where the palette asks for one."""
STYLE_MOODS = {Style.FOLK: "happy", Style.CELTIC: "bright", Style.CHORALE: "calm"}
"""Otherwise the style's."""
SLOW_PALETTES = ("lullaby", "therapy", "ambient")


@dataclass(frozen=True)
class GalleryEntry:
    palette: str
    style: str
    mood: str
    folder: Path
    masking: float
    seconds: float


def gallery_requests(seed: int = 0, styles: Sequence[Style] = tuple(Style)) -> list[PieceRequest]:
    """One request per palette and style: the style's meter (a jig's 6/8 for celtic, 3/4
    and 4/4 in turn otherwise), keys around the circle of fifths, minor for a sad palette
    and for every third example, slow tempi for the slow palettes."""
    requests = []
    for index, name in enumerate(PALETTES):
        for number, style in enumerate(styles):
            turn = index * len(styles) + number
            meter = (
                Meter(6, 8) if style is Style.CELTIC else Meter(3, 4) if turn % 2 else Meter(4, 4)
            )
            mood = PALETTE_MOODS.get(name, STYLE_MOODS[style])
            minor = mood == "sad" or turn % 3 == 2
            tempo = 72.0 if name in SLOW_PALETTES else 112.0 if style is Style.CELTIC else 100.0
            requests.append(
                PieceRequest(
                    key=Key((turn * 7) % 12, Mode.MINOR if minor else Mode.MAJOR),
                    meter=meter,
                    tempo_bpm=tempo,
                    style=style,
                    mood=mood,
                    palette=name,
                    seed=seed * 1000 + turn,
                )
            )
    return requests


def build_gallery(
    out: Path, *, bars: int = 16, seed: int = 0, styles: Sequence[Style] = tuple(Style)
) -> list[GalleryEntry]:
    """Compose, arrange, render and write an example per palette and style under ``out``."""
    import torch

    from cantus.eval.arrangement import HARMONY_CHECKPOINT, compose_melodies, piece_parts
    from cantus.eval.masking import midi_masking
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.render.exports import export_audio
    from cantus.render.mix import master
    from cantus.render.pianoroll import pianoroll_png
    from cantus.render.synth import SAMPLE_RATE, render_stems

    torch.set_num_threads(1)
    requests = gallery_requests(seed, styles)
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    entries = []
    for request, melody in zip(requests, melodies, strict=True):
        if melody is None:
            continue
        parts = piece_parts(request, melody, harmonizer)
        folder = out / request.palette / request.style.value
        folder.mkdir(parents=True, exist_ok=True)
        midi = parts.midi(0, parts.bar_count)
        (folder / "piece.mid").write_bytes(midi)
        tracks = parts.piece_tracks(0, parts.bar_count)
        stems = render_stems(tracks, tempo_bpm=parts.tempo_map, sample_rate=SAMPLE_RATE)
        mastered = master(stems, SAMPLE_RATE, palette=request.palette)
        (folder / "piece.ogg").write_bytes(export_audio(mastered.audio, SAMPLE_RATE, "ogg"))
        title = f"{request.palette}: {request.style.value}, {request.mood}, {request.meter}"
        (folder / "pianoroll.png").write_bytes(
            pianoroll_png(tracks, meter=request.meter, title=title)
        )
        entries.append(
            GalleryEntry(
                request.palette,
                request.style.value,
                request.mood,
                folder,
                midi_masking(midi).rate,
                len(mastered.audio) / SAMPLE_RATE,
            )
        )
    (out / "index.md").write_text(gallery_index(entries, out))
    (out / "index.html").write_text(gallery_html(entries, out))
    return entries


def _grid(
    entries: Sequence[GalleryEntry],
) -> tuple[list[str], list[tuple[str, list[GalleryEntry | None]]]]:
    """The styles the entries hold, and a row per palette (in PALETTES' order) with its
    entry in each of those styles (None where there is none)."""
    styles = [s.value for s in Style if any(e.style == s.value for e in entries)]
    found = {(e.palette, e.style): e for e in entries}
    rows = [
        (name, [found.get((name, style)) for style in styles])
        for name in PALETTES
        if any(e.palette == name for e in entries)
    ]
    return styles, rows


def gallery_index(entries: list[GalleryEntry], out: Path) -> str:
    styles, rows = _grid(entries)
    lines = [
        "# Palette gallery",
        "",
        "An example of each palette in each style (`cantus gallery`): piece.mid, piece.ogg,",
        "pianoroll.png; `index.html` to listen. Each cell: the piano roll, the audio, the share of",
        "melody notes another part sounds at or above (masking).",
        "",
        "| palette | instruments | " + " | ".join(styles) + " |",
        "|---|---|" + "---|" * len(styles),
    ]
    for name, row in rows:
        cells = []
        for entry in row:
            if entry is None:
                cells.append("–")
                continue
            folder = entry.folder.relative_to(out)
            cells.append(
                f"[roll]({folder}/pianoroll.png) · [audio]({folder}/piece.ogg) · "
                f"{entry.mood}, {entry.seconds:.0f} s, {100 * entry.masking:.1f} %"
            )
        lines.append(f"| {name} | {PALETTES[name].summary} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def gallery_html(entries: list[GalleryEntry], out: Path) -> str:
    """The grid as a page: a player and the piano roll in each cell (relative links, so the
    folder can be opened from disk or served as it is)."""
    styles, rows = _grid(entries)
    head = "".join(f"<th>{html.escape(style)}</th>" for style in styles)
    html_rows = []
    for name, row in rows:
        cells = []
        for style, entry in zip(styles, row, strict=True):
            if entry is None:
                cells.append("<td>–</td>")
                continue
            folder = html.escape(str(entry.folder.relative_to(out)))
            cells.append(
                f'<td><img src="{folder}/pianoroll.png" alt="{html.escape(name)}, '
                f'{html.escape(style)}: piano roll" width="360"><br>'
                f'<audio controls preload="none" src="{folder}/piece.ogg"></audio><br>'
                f"{html.escape(entry.mood)}, {entry.seconds:.0f} s, masking "
                f"{100 * entry.masking:.1f} %</td>"
            )
        summary = html.escape(PALETTES[name].summary)
        html_rows.append(
            f"<tr><th>{html.escape(name)}<br><small>{summary}</small></th>{''.join(cells)}</tr>"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Cantus palette gallery</title>"
        "<style>body{font-family:sans-serif}td,th{vertical-align:top;padding:6px}</style>"
        "</head><body><h1>Cantus palette gallery</h1>"
        f"<table><tr><th>palette</th>{head}</tr>{''.join(html_rows)}</table></body></html>\n"
    )
