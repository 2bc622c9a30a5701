"""A piece as the render service assembles it from events, and the files rendered from it.

``PieceParts`` is the join of one piece's melody, harmony and lyric events by bar; it
answers which bars are complete and renders segments (``render_segment_midi``) and the
finished files (``render_piece_files``: ``piece.mid``, ``piece.json``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from google.protobuf.json_format import MessageToDict

from cantus.events.codec import EVENT_TYPES
from cantus.events.conversions import (
    pb_to_bar,
    pb_to_notes,
    spec_energy,
    spec_key,
    spec_meter,
    spec_style,
)
from cantus.harmony.rules import ChordSpan
from cantus.music.chords import ChordSymbol
from cantus.music.midi_io import tracks_to_midi_bytes
from cantus.music.notes import TICKS_PER_QUARTER, Track
from cantus.render.arrangement import ArrangedBar, arrange_tracks
from cantus.v1 import events_pb2 as pb


@dataclass
class PieceParts:
    """Everything known of one piece so far, by bar index."""

    spec: pb.PieceSpec
    melody: dict[int, pb.MelodyBar]
    harmony_by_bar: dict[int, pb.HarmonyBar]
    lyric_lines: dict[int, pb.LyricLine]
    requested: pb.ComposeRequested | None

    @classmethod
    def from_state(cls, events: dict[str, dict[str, str]]) -> PieceParts | None:
        """From the render table's ``events`` (kind → index → base64 protobuf); None until
        some event carries the piece's spec."""
        decoded: dict[str, dict[int, object]] = {}
        for kind, by_index in events.items():
            message_type = EVENT_TYPES[kind].message
            decoded[kind] = {
                int(index): message_type.FromString(base64.b64decode(raw))
                for index, raw in by_index.items()
            }
        spec = None
        for kind in ("compose_requested", "melody_bar", "harmony_bar", "lyric_line"):
            for message in decoded.get(kind, {}).values():
                spec = message.spec  # type: ignore[attr-defined]
                break
            if spec is not None:
                break
        if spec is None:
            return None
        requested = decoded.get("compose_requested", {}).get(0)
        return cls(
            spec=spec,
            melody=decoded.get("melody_bar", {}),  # type: ignore[arg-type]
            harmony_by_bar=decoded.get("harmony_bar", {}),  # type: ignore[arg-type]
            lyric_lines=decoded.get("lyric_line", {}),  # type: ignore[arg-type]
            requested=requested,  # type: ignore[arg-type]
        )

    # --- readiness -----------------------------------------------------------------------
    @property
    def bar_count(self) -> int:
        return self.spec.bars

    def _lyrics_cover(self, index: int) -> bool:
        return any(
            line.first_bar <= index < line.first_bar + line.bar_count
            for line in self.lyric_lines.values()
        )

    def bar_ready(self, index: int) -> bool:
        return index in self.melody and index in self.harmony_by_bar and self._lyrics_cover(index)

    def bars_ready(self, first: int, count: int) -> bool:
        return all(self.bar_ready(i) for i in range(first, first + count))

    def all_bars_ready(self) -> bool:
        return self.bars_ready(0, self.bar_count)

    def segment_count(self, segment_bars: int) -> int:
        return -(-self.bar_count // segment_bars)

    def segment_bars(self, segment: int, segment_bars: int) -> tuple[int, int]:
        first = segment * segment_bars
        return first, min(segment_bars, self.bar_count - first)

    # --- time ----------------------------------------------------------------------------
    @property
    def bar_seconds(self) -> float:
        quarters = spec_meter(self.spec).bar_ticks / TICKS_PER_QUARTER
        return quarters * 60.0 / self.spec.tempo_bpm

    def seconds_before_bar(self, index: int) -> float:
        return index * self.bar_seconds

    # --- parts ---------------------------------------------------------------------------
    @property
    def harmony(self) -> list[pb.HarmonyBar]:
        return [self.harmony_by_bar[i] for i in sorted(self.harmony_by_bar)]

    def arranged_bar(self, index: int) -> ArrangedBar:
        meter = spec_meter(self.spec)
        melody = pb_to_bar(self.melody[index].notes, meter)
        harmony = self.harmony_by_bar[index]
        lyrics = []
        for line in self.lyric_lines.values():
            for syllable in line.syllables:
                if syllable.bar_index == index and syllable.note_index < len(melody.notes):
                    lyrics.append((melody.notes[syllable.note_index].onset, syllable.text))
        return ArrangedBar(
            melody=melody,
            chords=[
                ChordSpan(
                    span.onset_ticks,
                    span.duration_ticks,
                    ChordSymbol.parse(span.symbol),
                    span.roman,
                )
                for span in harmony.chords
            ],
            voicing=pb_to_notes(harmony.voicing),
            bass=pb_to_notes(harmony.bass),
            lyrics=sorted(lyrics),
        )

    def tracks(self, first: int, count: int) -> list[Track]:
        bars = [self.arranged_bar(i) for i in range(first, first + count)]
        return arrange_tracks(
            bars,
            style=spec_style(self.spec),
            energy=spec_energy(self.spec),
            first_index=first,
            total_bars=self.bar_count,
        )

    def midi(self, first: int, count: int) -> bytes:
        return tracks_to_midi_bytes(
            self.tracks(first, count),
            tempo_bpm=self.spec.tempo_bpm,
            meter=spec_meter(self.spec),
            key=spec_key(self.spec),
        )


def render_segment_midi(parts: PieceParts, first: int, count: int) -> bytes:
    """Bars ``first`` .. ``first + count - 1`` as a Standard MIDI File of every part."""
    return parts.midi(first, count)


def render_piece_files(
    parts: PieceParts, *, piece_id: str, event_log: list[dict]
) -> dict[str, bytes]:
    """The files of a finished piece by name: ``piece.mid`` and ``piece.json``."""
    midi = parts.midi(0, parts.bar_count)
    key = spec_key(parts.spec)
    melody_models = sorted({bar.model for bar in parts.melody.values() if bar.model})
    harmonizers = sorted({bar.harmonizer for bar in parts.harmony})
    lyrics = [
        {"line": index, "first_bar": line.first_bar, "bar_count": line.bar_count, "text": line.text}
        for index, line in sorted(parts.lyric_lines.items())
        if line.text
    ]
    summary = {
        "piece_id": piece_id,
        "request": MessageToDict(parts.spec, preserving_proto_field_name=True),
        "key": key.name,
        "meter": str(spec_meter(parts.spec)),
        "tempo_bpm": parts.spec.tempo_bpm,
        "bars": parts.bar_count,
        "duration_seconds": round(parts.seconds_before_bar(parts.bar_count), 3),
        "chords_per_bar": [[span.symbol for span in bar.chords] for bar in parts.harmony],
        "roman_numerals_per_bar": [[span.roman for span in bar.chords] for bar in parts.harmony],
        "melody_per_bar": [
            [[n.onset_ticks, n.pitch, n.duration_ticks] for n in parts.melody[i].notes]
            for i in sorted(parts.melody)
        ],
        "lyrics": lyrics,
        "models": {"melody": melody_models, "harmony": harmonizers},
        "ticks_per_quarter": TICKS_PER_QUARTER,
        "files": ["piece.mid", "piece.json"],
        "event_log": sorted(event_log, key=lambda entry: entry["produced_at_unix_ns"]),
    }
    return {
        "piece.mid": midi,
        "piece.json": json.dumps(summary, indent=2).encode(),
    }
