"""A session's outcome log: what was planned, what the listener signalled, what was played
and what control changed, as ``OutcomeRecord`` messages (topic ``cantus.station.outcome``),
and the same log as one JSON document or one CSV table per session for a clinic.

CSV columns (one row per record, in the order they happened): ``at_utc`` (ISO 8601),
``stream_seconds`` (playback position, -1 before playback), ``record`` (started, signal,
played, adjustment, ended), ``piece_id``, ``plan_step``, ``tempo_bpm`` (a piece's start
tempo, or the tempo control asked for), ``tempo_end_bpm``, ``planned_tempo_bpm`` (the
open-loop plan's), ``key``, ``mode``, ``energy`` (0..1: asked for), ``planned_energy``,
``energy_measured`` (a played piece's, ``cantus.stations.measure.midi_energy``),
``gain_db`` and ``heard_after_seconds`` (an intensity change heard mid-stream: the stream's
level from then on, dB against the mastered pieces, and how long after the signal it is
heard; such a row leaves the step's columns empty),
``signal_kind``, ``value`` (heart rate, cadence, intensity), ``valence``, ``arousal``,
``measured_utc``, ``rejected`` (why a signal was not used), ``reason`` (why control
changed the step).
"""

from __future__ import annotations

import csv
import io
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict

from cantus.v1 import station_pb2 as st

CSV_COLUMNS = (
    "at_utc",
    "stream_seconds",
    "record",
    "piece_id",
    "plan_step",
    "tempo_bpm",
    "tempo_end_bpm",
    "planned_tempo_bpm",
    "key",
    "mode",
    "energy",
    "planned_energy",
    "energy_measured",
    "gain_db",
    "heard_after_seconds",
    "signal_kind",
    "value",
    "valence",
    "arousal",
    "measured_utc",
    "rejected",
    "reason",
)


def outcome(station: str, stream_seconds: float, **what) -> st.OutcomeRecord:
    """A record stamped now: ``started=…``, ``signal=…``, ``played=…``, ``adjustment=…`` or
    ``ended=…``."""
    return st.OutcomeRecord(
        station=station, at_unix_ns=time.time_ns(), stream_seconds=stream_seconds, **what
    )


RECORDS_PER_SESSION = 50_000
"""Outcome records kept per session (a 45-minute session with a reading every second has
about 3,000); beyond it the oldest signals go first, never the session's start."""
SESSIONS_PER_STATION = 8
"""Sessions kept per station name (a name reused day after day keeps its last ones)."""
SESSION_RETENTION_S = 7 * 24 * 3600.0
"""A session whose last record is this much older than the station's newest is dropped."""


@dataclass
class SessionLog:
    session_id: str
    records: list[st.OutcomeRecord] = field(default_factory=list)
    last_unix_ns: int = 0


@dataclass
class StationOutcomes:
    """A station's outcome logs, per session id, bounded: at most ``sessions`` sessions (the
    most recently written), each of at most ``records_per_session`` records, none whose last
    record is ``retention_s`` older than the newest. The topic keeps everything; this is
    what a gateway holds in memory and serves."""

    sessions: int = SESSIONS_PER_STATION
    records_per_session: int = RECORDS_PER_SESSION
    retention_s: float = SESSION_RETENTION_S
    logs: OrderedDict[str, SessionLog] = field(default_factory=OrderedDict)
    """session id → its log, least recently written first."""

    def add(self, record: st.OutcomeRecord) -> None:
        log = self.logs.get(record.session_id)
        if log is None:
            log = self.logs[record.session_id] = SessionLog(record.session_id)
        self.logs.move_to_end(record.session_id)
        log.records.append(record)
        log.last_unix_ns = max(log.last_unix_ns, record.at_unix_ns)
        if len(log.records) > self.records_per_session:
            # keep the start record (the plan and config): drop the oldest after it
            first = 1 if log.records[0].WhichOneof("what") == "started" else 0
            del log.records[first : first + len(log.records) - self.records_per_session]
        newest = max(entry.last_unix_ns for entry in self.logs.values())
        while len(self.logs) > 1:
            oldest = next(iter(self.logs.values()))
            expired = newest - oldest.last_unix_ns > self.retention_s * 1e9
            if len(self.logs) <= self.sessions and not expired:
                break
            del self.logs[oldest.session_id]

    def session(self, session_id: str = "") -> SessionLog | None:
        """A session's log; the latest written when ``session_id`` is empty."""
        if not session_id:
            return next(reversed(self.logs.values()), None)
        return self.logs.get(session_id)

    def __len__(self) -> int:
        return sum(len(log.records) for log in self.logs.values())


def _utc(unix_ns: int) -> str:
    return datetime.fromtimestamp(unix_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def is_level_change(adjustment: st.Adjustment) -> bool:
    """An intensity change heard mid-stream (``cantus.stations.intensity``): it re-levels
    the stream and decides no step, so it has no tempo (a step's is always above 0)."""
    return adjustment.tempo_bpm == 0


def session_log_json(station: str, records: Iterable[st.OutcomeRecord]) -> dict:
    """The log as one document: the plan and config, then lists per kind of record."""
    records = list(records)
    session_id = records[0].session_id if records else ""
    log: dict = {"station": station, "session_id": session_id, "started": None,
                 "signals": [], "played": [], "adjustments": [], "ended": None}  # fmt: skip
    for record in records:
        kind = record.WhichOneof("what")
        at = {"at_utc": _utc(record.at_unix_ns), "stream_seconds": round(record.stream_seconds, 2)}
        body = MessageToDict(getattr(record, kind), preserving_proto_field_name=True)
        if kind == "started":
            log["started"] = at | body
        elif kind == "signal":
            signal = record.signal.signal
            log["signals"].append(
                at
                | body.get("signal", {})
                | {
                    "measured_utc": _utc(signal.measured_unix_ns),
                    "rejected": record.signal.rejected,
                }
            )
        elif kind == "played":
            log["played"].append(at | body)
        elif kind == "adjustment":
            if is_level_change(record.adjustment):  # a return to the mastered level: 0 dB
                body |= {
                    "gain_db": record.adjustment.gain_db,
                    "heard_after_seconds": record.adjustment.heard_after_seconds,
                }
            log["adjustments"].append(at | body)
        elif kind == "ended":
            log["ended"] = at | body
    return log


def session_log_csv(records: Iterable[st.OutcomeRecord]) -> str:
    """The log as CSV, one row per record (``CSV_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        kind = record.WhichOneof("what")
        row: dict[str, object] = {
            "at_utc": _utc(record.at_unix_ns),
            "stream_seconds": round(record.stream_seconds, 2),
            "record": kind,
        }
        if kind == "signal":
            signal = record.signal.signal
            row |= {
                "signal_kind": st.SignalKind.Name(signal.kind),
                "value": signal.value,
                "valence": signal.valence if signal.kind == st.MOOD else "",
                "arousal": signal.arousal if signal.kind == st.MOOD else "",
                "measured_utc": _utc(signal.measured_unix_ns),
                "rejected": record.signal.rejected,
            }
        elif kind == "played":
            entry = record.played
            row |= {
                "piece_id": entry.piece_id,
                "plan_step": entry.plan_step,
                "tempo_bpm": entry.tempo_bpm,
                "tempo_end_bpm": entry.tempo_end_bpm or entry.tempo_bpm,
                "key": entry.key,
                "mode": entry.mode,
                "energy": entry.energy_asked,
                "energy_measured": entry.energy_measured or "",
            }
        elif kind == "adjustment":
            adjustment = record.adjustment
            if is_level_change(adjustment):
                row |= {
                    "gain_db": adjustment.gain_db,
                    "heard_after_seconds": adjustment.heard_after_seconds,
                    "reason": adjustment.reason,
                }
            else:
                row |= {
                    "plan_step": adjustment.plan_step,
                    "tempo_bpm": adjustment.tempo_bpm,
                    "planned_tempo_bpm": adjustment.planned_tempo_bpm,
                    "energy": adjustment.energy,
                    "planned_energy": adjustment.planned_energy,
                    "reason": adjustment.reason,
                }
        elif kind == "started":
            first = record.started.plan[0] if record.started.plan else None
            row |= {"tempo_bpm": record.started.session.start.tempo_bpm,
                    "planned_tempo_bpm": first.tempo_bpm if first else "",
                    "reason": "session started"}  # fmt: skip
        writer.writerow(row)
    return out.getvalue()
