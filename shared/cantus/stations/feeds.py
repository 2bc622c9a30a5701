"""What listeners' players read: the HLS media playlist of a station's stream (a live
playlist over a sliding window of segments, ``#EXT-X-ENDLIST`` once the station stops), and
the playlist feeds (M3U and JSON) with now-playing metadata.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cantus.music.notes import Key, Mode
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st

HLS_VERSION = 3


@dataclass(frozen=True)
class SegmentEntry:
    """One published segment as the playlist lists it."""

    sequence: int
    duration_seconds: float
    discontinuity: bool


def media_playlist(
    segments: Sequence[SegmentEntry],
    *,
    ended: bool,
    discontinuity_sequence: int = 0,
    uri_query: str = "",
) -> str:
    """An HLS media playlist (RFC 8216) over ``segments``, in order; ``seg<N>.ts`` URIs, each
    followed by ``uri_query`` (``?token=…``: a player that was given the playlist's URL with a
    token fetches the segments with it too).

    A live playlist without ``EXT-X-PLAYLIST-TYPE``: the window slides (old segments leave
    it), which an EVENT playlist must never do. ``discontinuity_sequence``: discontinuity
    tags that already left the playlist's head (RFC 8216 section 4.3.3.3)."""
    target = max((math.ceil(s.duration_seconds) for s in segments), default=4)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{segments[0].sequence if segments else 0}",
    ]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    for index, segment in enumerate(segments):
        if segment.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXTINF:{segment.duration_seconds:.3f},")
        lines.append(f"seg{segment.sequence}.ts{uri_query}")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def form_metadata(form: pb.FormPlan) -> dict | None:
    """A piece's form as players show it: its name and each section's label, bars (first,
    0-based, and count), key, key area and energy; None for a piece without a plan."""
    if not form.sections:
        return None
    return {
        "name": form.name,
        "sections": [
            {
                "label": s.label,
                "first_bar": s.first_bar,
                "bar_count": s.bar_count,
                "key": Key(s.key_tonic, Mode.MINOR if s.mode == pb.MODE_MINOR else Mode.MAJOR).name,
                "key_area": s.key_area,
                "energy": s.energy,
            }
            for s in form.sections
        ],
    }


def entry_metadata(entry: st.ProgramEntry) -> dict:
    """Now-playing metadata of one program entry."""
    return {
        "piece_id": entry.piece_id,
        "position": entry.position,
        "title": entry.title,
        "key": f"{entry.key} {entry.mode}",
        "tempo_bpm": entry.tempo_bpm,
        "mood": entry.mood,
        "energy": entry.energy,
        "style": entry.style,
        "duration_seconds": round(entry.duration_seconds, 2),
        "loudness_lufs": round(entry.integrated_lufs, 2),
        "status": entry.status,
        "stream_start_seconds": round(entry.stream_start_seconds, 2),
        "plan_step": entry.plan_step,
        "likes": entry.likes,
        "skips": entry.skips,
        "reason": entry.reason,
        "form": form_metadata(entry.form),
    }


def playback_seconds(status: st.StationStatus, now_ns: int | None = None) -> float:
    """Where real-time playback of the stream is now, seconds from its start."""
    if not status.stream_started_unix_ns:
        return 0.0
    now_ns = time.time_ns() if now_ns is None else now_ns
    return max(0.0, (now_ns - status.stream_started_unix_ns) / 1e9)


def now_playing(status: st.StationStatus, now_ns: int | None = None) -> st.ProgramEntry | None:
    """The piece heard at real-time playback now (the latest one started)."""
    position = playback_seconds(status, now_ns)
    current = None
    for entry in status.program:
        if 0 <= entry.stream_start_seconds <= position and entry.status != "rejected":
            current = entry
    return current


def json_feed(status: st.StationStatus, now_ns: int | None = None) -> str:
    playing = now_playing(status, now_ns)
    return json.dumps(
        {
            "station": status.name,
            "running": status.running,
            "now_playing": entry_metadata(playing) if playing else None,
            "playback_seconds": round(playback_seconds(status, now_ns), 2),
            "stream_seconds": round(status.stream_seconds, 2),
            "pieces": [entry_metadata(entry) for entry in status.program],
            "plan": [
                {
                    "index": step.index,
                    "tempo_bpm": step.tempo_bpm,
                    "tempo_min_bpm": step.tempo_min_bpm,
                    "tempo_max_bpm": step.tempo_max_bpm,
                    "energy": step.energy,
                    "mood": step.mood,
                    "key": f"{step.key} {step.mode}",
                    "duration_seconds": step.duration_seconds,
                }
                for step in status.plan
            ],
            "steering": {
                "style_weights": dict(status.steering.style_weights),
                "tempo_center_bpm": status.steering.tempo_center_bpm,
                "energy_center": status.steering.energy_center,
            },
        },
        indent=1,
    )


def m3u_feed(status: st.StationStatus, piece_url: str) -> str:
    """An extended M3U of the station's delivered, stored pieces (those in the snapshot's
    window: the most recent ``Settings.station_history_pieces`` played); ``piece_url`` has a
    ``{piece_id}``."""
    lines = ["#EXTM3U", f"#PLAYLIST:{status.name}"]
    for entry in status.program:
        if entry.status not in ("ready", "streamed") or not entry.duration_seconds:
            continue  # not delivered, or not yet stored (it streams before it is stored)
        meta = entry_metadata(entry)
        lines.append(
            f"#EXTINF:{round(entry.duration_seconds)},{entry.title} "
            f"({meta['key']}, {entry.tempo_bpm:g} BPM, {entry.mood}, {entry.energy} energy, "
            f"{entry.integrated_lufs:.1f} LUFS)"
        )
        lines.append(piece_url.format(piece_id=entry.piece_id))
    return "\n".join(lines) + "\n"
