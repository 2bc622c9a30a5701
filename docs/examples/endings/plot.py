"""Momentary loudness (400 ms, every 100 ms) of composed pieces' piece.wav, one panel each,
with the last phrase and the held final chord (after the last barline) marked."""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyloudnorm
import soundfile

from cantus.render.mix import integrated_loudness
from cantus.render.piece import PieceParts, piece_form
from cantus.v1 import events_pb2 as pb


def momentary(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """EBU momentary loudness: one 400 ms block's K-weighted loudness, every 100 ms."""
    meter = pyloudnorm.Meter(rate, block_size=0.4)
    window, hop = int(0.4 * rate), int(0.1 * rate)
    times, levels = [], []
    for start in range(0, len(audio) - window, hop):
        times.append((start + window / 2) / rate)
        levels.append(meter.integrated_loudness(audio[start : start + window]))
    return np.array(times), np.array(levels)


def main(folders: list[str], out: str) -> None:
    figure, axes = plt.subplots(len(folders), 1, figsize=(10, 3.2 * len(folders)), sharex=True)
    for axis, folder in zip(np.atleast_1d(axes), folders, strict=True):
        record = pb.PieceRecord.FromString((Path(folder) / "parts.pb").read_bytes())
        parts = PieceParts.from_record(record)
        plan = piece_form(parts)
        audio, rate = soundfile.read(Path(folder) / "piece.wav", dtype="float32")
        times, levels = momentary(audio, rate)
        axis.plot(times, np.maximum(levels, -40), color="black", linewidth=1)
        axis.axhline(-14, color="grey", linestyle=":", label="target -14 LUFS")
        music = parts.seconds_before_bar(parts.bar_count)
        last = parts.seconds_before_bar(plan.sections[-1].first_bar) if plan else music - 4
        axis.axvspan(last, music, color="tab:blue", alpha=0.12, label="last phrase")
        axis.axvspan(music, music + 1.0, color="tab:orange", alpha=0.3, label="held final chord")
        whole = integrated_loudness(audio, rate)
        name = plan.name if plan else "no plan"
        axis.set_title(f"{parts.palette.name}, {name}: {whole:.1f} LUFS integrated")
        axis.set_ylabel("LUFS (momentary)")
        axis.set_ylim(-40, -5)
        axis.legend(loc="lower left", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(out, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
