"""``cantus gallery``: one short example per palette, to hear and see what each sounds like.

Each palette gets a piece composed in process as the stack composes it (the shipped melody
and harmony models, ``cantus.eval.arrangement.piece_parts``), in a style that suits it (its
own for a style's band), arranged in that palette and written to ``DIR/<palette>/``:
``piece.mid``, the mastered audio (Ogg Vorbis) and ``pianoroll.png``. An ``index.md``
lists them with each palette's instruments and the piece's masking rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Style
from cantus.render.palettes import PALETTES, STYLE_BANDS

GALLERY_STYLE = {name: style for style, name in STYLE_BANDS.items()}
"""The style of each palette's example: a band's own style, else folk or celtic in turn."""
GALLERY_MOODS = {
    "folk": "happy",
    "celtic": "bright",
    "chorale": "calm",
    "lullaby": "tender",
    "therapy": "calm",
    "ambient": "dreamy",
}
"""The mood of each palette's example (default: calm)."""


@dataclass(frozen=True)
class GalleryEntry:
    palette: str
    style: str
    mood: str
    folder: Path
    masking: float
    seconds: float


def build_gallery(out: Path, *, bars: int = 16, seed: int = 0) -> list[GalleryEntry]:
    """Compose, arrange, render and write one example per palette under ``out``."""
    import torch

    from cantus.eval.arrangement import (
        HARMONY_CHECKPOINT,
        PieceRequest,
        compose_melodies,
        piece_parts,
    )
    from cantus.eval.masking import midi_masking
    from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
    from cantus.render.exports import export_audio
    from cantus.render.mix import master
    from cantus.render.pianoroll import pianoroll_png
    from cantus.render.synth import SAMPLE_RATE, render_stems

    torch.set_num_threads(1)
    requests = []
    others = (Style.FOLK, Style.CELTIC)
    for index, name in enumerate(PALETTES):
        style = GALLERY_STYLE.get(name, others[index % 2])
        meter = Meter(6, 8) if style is Style.CELTIC else Meter(3, 4) if index % 3 else Meter(4, 4)
        requests.append(
            PieceRequest(
                key=Key((index * 5) % 12, Mode.MINOR if name == "strings" else Mode.MAJOR),
                meter=meter,
                tempo_bpm=72.0 if name in ("lullaby", "therapy", "ambient") else 100.0,
                style=style,
                mood=GALLERY_MOODS.get(name, "calm"),
                palette=name,
                seed=seed * 1000 + index,
            )
        )
    melodies = compose_melodies(requests, bars)
    harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
    entries = []
    for request, melody in zip(requests, melodies, strict=True):
        if melody is None:
            continue
        parts = piece_parts(request, melody, harmonizer)
        folder = out / request.palette
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
    return entries


def gallery_index(entries: list[GalleryEntry], out: Path) -> str:
    lines = [
        "# Palette gallery",
        "",
        "One example per palette (`cantus gallery`): piece.mid, piece.ogg, pianoroll.png.",
        "",
        "| palette | instruments | style | mood | length | masking |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        palette = PALETTES[entry.palette]
        folder = entry.folder.relative_to(out)
        lines.append(
            f"| [{entry.palette}]({folder}/pianoroll.png) | {palette.summary} | {entry.style} "
            f"| {entry.mood} | {entry.seconds:.0f} s | {100 * entry.masking:.1f} % |"
        )
    return "\n".join(lines) + "\n"
