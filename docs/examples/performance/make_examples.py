"""Regenerates this folder: `.venv/bin/python docs/examples/performance/make_examples.py`.

Two 16-bar pieces composed in process as `cantus gallery` composes them (the shipped melody
and harmony models, form `auto`): a calm piano piece in 4/4 at 72 bpm (the ballad figure
and the phrase rubato) and a folk waltz at mid energy (MMA's Waltz on the kit). Each:
piece.mid, the mastered audio as Opus 64 kbit/s (ffmpeg), and its piano roll; the tempo at
the middle of each bar is printed."""

import subprocess
import tempfile
from pathlib import Path

import torch

from cantus.eval.arrangement import HARMONY_CHECKPOINT, PieceRequest, compose_melodies, piece_parts
from cantus.harmony.serving import HarmonyServing, ModelHarmonizer
from cantus.music.notes import Key, Meter, Mode
from cantus.music.styles import Style
from cantus.render.exports import export_audio
from cantus.render.mix import master
from cantus.render.pianoroll import pianoroll_png
from cantus.render.synth import SAMPLE_RATE, render_stems

OUT = Path(__file__).parent
REQUESTS = {
    "piano_ballad": PieceRequest(Key(5, Mode.MAJOR), Meter(4, 4), 72.0, Style.FOLK, "calm",
                                 "piano", 12),
    "folk_waltz": PieceRequest(Key(7, Mode.MAJOR), Meter(3, 4), 108.0, Style.FOLK, "happy",
                               "folk", 5),
}  # fmt: skip

torch.set_num_threads(1)
melodies = compose_melodies(list(REQUESTS.values()), 16)
harmonizer = ModelHarmonizer(HarmonyServing.load(HARMONY_CHECKPOINT))
for (name, request), melody in zip(REQUESTS.items(), melodies, strict=True):
    assert melody is not None, name
    parts = piece_parts(request, melody, harmonizer)
    (OUT / f"{name}.mid").write_bytes(parts.midi(0, parts.bar_count))
    tracks = parts.piece_tracks(0, parts.bar_count)
    stems = render_stems(tracks, tempo_bpm=parts.tempo_map, sample_rate=SAMPLE_RATE)
    mastered = master(stems, SAMPLE_RATE, palette=request.palette)
    with tempfile.TemporaryDirectory() as folder:
        flac = Path(folder) / "piece.flac"
        flac.write_bytes(export_audio(mastered.audio, SAMPLE_RATE, "flac"))
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(flac),
                        "-c:a", "libopus", "-b:a", "64k", str(OUT / f"{name}.opus")],
                       check=True)  # fmt: skip
    title = (
        f"{name}: {request.palette}, {request.mood}, {request.meter}, {request.tempo_bpm:.0f} bpm"
    )
    (OUT / f"{name}_pianoroll.png").write_bytes(
        pianoroll_png(tracks, meter=request.meter, title=title)
    )
    bar = parts.bar_ticks
    tempos = [round(parts.tempo_map.bpm_at(i * bar + bar // 2), 1) for i in range(parts.bar_count)]
    print(f"{name}: {len(mastered.audio) / SAMPLE_RATE:.1f} s, tempo mid-bar {tempos}")
