"""Pieces as the render service receives them (protobuf events), built without the model."""

from __future__ import annotations

from cantus.v1 import events_pb2 as pb

PIECE_ID = "0123456789abcdef0123456789abcdef"

_CHORDS = (
    ("C", "I", (0, 4, 7)),
    ("Am", "vi", (9, 0, 4)),
    ("F", "IV", (5, 9, 0)),
    ("G7", "V7", (7, 11, 2, 5)),
)


def spec(
    bars: int = 8,
    *,
    tempo: float = 120.0,
    meter: tuple[int, int] = (4, 4),
    seed: int = 7,
    style: str = "folk",
    energy: str = "mid",
) -> pb.PieceSpec:
    return pb.PieceSpec(
        key_tonic=0,
        mode=pb.MODE_MAJOR,
        tempo_bpm=tempo,
        meter_numerator=meter[0],
        meter_denominator=meter[1],
        bars=bars,
        style=style,
        mood="happy",
        energy=energy,
        seed=seed,
        melody_source=pb.MELODY_SOURCE_COMPOSE,
    )


def piece_events(piece_spec: pb.PieceSpec, *, lyrics: bool = True) -> list:
    """ComposeRequested, then per bar a MelodyBar, a HarmonyBar and a LyricLine."""
    bar_ticks = 480 * 4 * piece_spec.meter_numerator // piece_spec.meter_denominator
    step = 240
    events: list = [
        pb.ComposeRequested(
            meta=pb.EventMeta(piece_id=PIECE_ID, index=0, producer="gateway"), spec=piece_spec
        )
    ]
    scale = (60, 62, 64, 65, 67, 69, 71, 72)
    for index in range(piece_spec.bars):
        notes = [
            pb.Note(
                onset_ticks=onset,
                pitch=scale[(index + k) % len(scale)],
                duration_ticks=step,
                velocity=90,
            )
            for k, onset in enumerate(range(0, bar_ticks, step))
        ]
        symbol, roman, pcs = _CHORDS[index % len(_CHORDS)]
        events.append(
            pb.MelodyBar(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=index, producer="melody"),
                spec=piece_spec,
                notes=notes,
                model="fake",
            )
        )
        events.append(
            pb.HarmonyBar(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=index, producer="harmony"),
                spec=piece_spec,
                chords=[
                    pb.ChordSpan(
                        onset_ticks=0,
                        duration_ticks=bar_ticks,
                        symbol=symbol,
                        roman=roman,
                        pitch_classes=pcs,
                    )
                ],
                voicing=[
                    pb.Note(onset_ticks=0, pitch=48 + pc, duration_ticks=bar_ticks, velocity=70)
                    for pc in pcs[:3]
                ],
                bass=[
                    pb.Note(onset_ticks=0, pitch=36 + pcs[0], duration_ticks=bar_ticks, velocity=85)
                ],
                harmonizer="rules-v1",
            )
        )
        syllables = (
            [pb.Syllable(bar_index=index, note_index=k, text=t) for k, t in enumerate(("la", "lo"))]
            if lyrics
            else []
        )
        events.append(
            pb.LyricLine(
                meta=pb.EventMeta(piece_id=PIECE_ID, index=index, producer="lyric"),
                spec=piece_spec,
                first_bar=index,
                bar_count=1,
                syllables=syllables,
                text="la lo" if lyrics else "",
            )
        )
    return events


KIND = {
    pb.ComposeRequested: "compose_requested",
    pb.MelodyBar: "melody_bar",
    pb.HarmonyBar: "harmony_bar",
    pb.LyricLine: "lyric_line",
}


def table_events(events: list) -> dict[str, dict[int, object]]:
    """One piece's events by kind and index, as the render service holds them
    (``PieceParts.from_events``)."""
    held: dict[str, dict[int, object]] = {}
    for message in events:
        held.setdefault(KIND[type(message)], {})[message.meta.index] = message
    return held
