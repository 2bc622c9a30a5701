"""``cantus compose``: the client side of a Compose call — stream the piece's events with a
progress bar, then fetch the finished files and write them under ``DIR/<piece_id>/``."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cantus.music.notes import PITCH_CLASS_NAMES, TICKS_PER_QUARTER
from cantus.requests import RETRY_AFTER_METADATA
from cantus.security import channel_credentials
from cantus.settings import MAX_GRPC_MESSAGE_BYTES, Settings, load_settings
from cantus.storage import check_piece_id
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from cantus.v1 import events_pb2 as pb

_DURATION = re.compile(
    r"^\s*(?:(?P<minutes>\d+(?:\.\d*)?|\.\d+)\s*m(?:in)?)?"
    r"\s*(?:(?P<seconds>\d+(?:\.\d*)?|\.\d+)\s*s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``150`` or ``150s`` (seconds), ``2m`` or ``2min`` (minutes),
    ``1m30s``, ``2.5m``. ``ValueError`` for anything else; the range is the server's to check."""
    match = _DURATION.match(text.lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 90s, 2m, 1m30s or 150")
    minutes, seconds = match.group("minutes"), match.group("seconds")
    total = float(minutes or 0) * 60.0 + float(seconds or 0)
    if not math.isfinite(total):
        raise ValueError(f"{text!r} is not a finite duration")
    return total


def describe_form(spec: pb.PieceSpec) -> str:
    """One line per piece: the form's name and each section's label and bars (1-based), with
    its key where it leaves the home key, e.g. ``AABA: A 1-4 | A' 5-8 | B 9-12 (G major) |
    A'' 13-16``; empty for a spec without a plan."""
    if not spec.form.sections:
        return ""
    parts = []
    for section in spec.form.sections:
        first, last = section.first_bar + 1, section.first_bar + section.bar_count
        text = f"{section.label} {first}-{last}" if last > first else f"{section.label} {first}"
        if section.key_area and section.key_area != "home":
            mode = "minor" if section.mode == pb.MODE_MINOR else "major"
            text += f" ({PITCH_CLASS_NAMES[section.key_tonic]} {mode})"
        parts.append(text)
    return f"{spec.form.name}: " + " | ".join(parts)


_FROM_WORDS = {
    "request": "as asked",
    "default": "the default; the file names none",
    "file": "from the file",
    "time_signature": "from the file",
    "midi_default": "the MIDI default; the file has no time signature",
    "key_signature": "from the key signature",
    "key_signature_and_notes": "from the key signature, mode from the notes",
    "notes": "from a key analysis of the notes",
}


def describe_given_melody(spec: pb.PieceSpec) -> str:
    """What was read from the user's melody file, for the user: where the melody is, the
    key, meter and tempo and where each comes from, the pickup and any notices; empty for
    a spec without a melody file."""
    if not spec.HasField("given_melody"):
        return ""
    given = spec.given_melody

    def source(value: str) -> str:
        return _FROM_WORDS.get(value, value)

    key = (
        f"{PITCH_CLASS_NAMES[spec.key_tonic]} {'minor' if spec.mode == pb.MODE_MINOR else 'major'}"
    )
    meter = f"{spec.meter_numerator}/{spec.meter_denominator}"
    key_line = f"  key {key} ({source(given.key_from)})"
    if given.key_from == "request" and given.file_key:
        key_line += f", the file's: {given.file_key}"
    meter_line = f"  meter {meter} ({source(given.meter_from)})"
    if given.meter_from == "request":
        meter_line += f", the file's: {given.file_meter}"
    lines = [
        f"melody file ({given.file_format}): {given.part}",
        key_line,
        meter_line,
        f"  tempo {spec.tempo_bpm:g} bpm ({source(given.tempo_from)})",
    ]
    if given.pickup_ticks:
        quarters = given.pickup_ticks / TICKS_PER_QUARTER
        plural = "" if quarters == 1 else "s"
        lines.append(f"  pickup of {quarters:g} quarter note{plural}, kept as a pickup")
    lines.extend(f"  note: {notice}" for notice in given.notices)
    return "\n".join(lines)


class ComposeFailed(RuntimeError):
    """The server rejected the request or the piece failed; the message is the server's.
    ``retry_after_s``: the server's hint when it was busy (RESOURCE_EXHAUSTED)."""

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ComposeFailed:
        retry_after = None
        for key, value in error.trailing_metadata() or ():
            if key == RETRY_AFTER_METADATA:
                # a hint we cannot read leaves the client's own backoff
                with contextlib.suppress(ValueError):
                    retry_after = float(value)
        return cls(error.details() or str(error), error.code(), retry_after)


BUSY_WAIT_S = 300.0
"""Longest a client waits, retrying, for a busy gateway to take its piece."""


@dataclass
class ComposedPiece:
    piece_id: str
    folder: Path
    events: list[api.PieceEvent] = field(default_factory=list)


def open_channel(address: str, settings: Settings | None = None) -> grpc.Channel:
    """A channel to the gateway: plaintext, or TLS (with a bearer token) when the client
    settings ``gateway_client_ca`` / ``gateway_client_token`` say so (a secured cluster)."""
    settings = settings or load_settings()
    options = [
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ]
    if settings.gateway_client_ca is None and settings.gateway_client_token is None:
        return grpc.insecure_channel(address, options=options)
    ca = settings.gateway_client_ca.read_bytes() if settings.gateway_client_ca else None
    token = settings.gateway_client_token
    credentials = channel_credentials(ca, token.get_secret_value() if token else None)
    return grpc.secure_channel(address, credentials, options=options)


def stream_piece(
    channel: grpc.Channel, request: api.ComposeRequest, timeout_s: float | None = None
) -> Iterator[api.PieceEvent]:
    """Every event of the piece as it arrives; raises ``ComposeFailed`` with the server's
    message on an invalid request or a failed piece."""
    stub = api_grpc.ComposerStub(channel)
    try:
        for event in stub.Compose(request, timeout=timeout_s):
            if event.WhichOneof("event") == "failed":
                failed = event.failed
                raise ComposeFailed(f"{failed.service} failed the piece: {failed.reason}")
            yield event
    except grpc.RpcError as error:
        raise ComposeFailed.from_rpc_error(error) from None


@dataclass
class FetchedPiece:
    """One version of a stored piece, its files joined from GetPieceFiles' chunks."""

    piece_id: str
    version: int
    latest_version: int
    files: dict[str, bytes]


def download_piece(
    channel: grpc.Channel, piece_id: str, version: int = 0, timeout_s: float = 600
) -> FetchedPiece:
    """Every file of a version of a piece (0: the latest), streamed in chunks by
    ``GetPieceFiles`` and joined here, so no file size limit applies; a gateway older than
    that call gets ``GetPiece``. Raises ``ComposeFailed`` with the server's message, or when
    a file's chunks do not join into its announced size."""
    stub = api_grpc.ComposerStub(channel)
    request = api.GetPieceRequest(piece_id=piece_id, version=version)
    try:
        return _join_chunks(stub.GetPieceFiles(request, timeout=timeout_s))
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise ComposeFailed.from_rpc_error(error) from None
    try:
        piece = stub.GetPiece(request, timeout=timeout_s)
    except grpc.RpcError as error:
        raise ComposeFailed.from_rpc_error(error) from None
    return FetchedPiece(
        piece.piece_id,
        piece.version,
        piece.latest_version,
        {file.name: file.content for file in piece.files},
    )


def _join_chunks(chunks: Iterable[api.PieceChunk]) -> FetchedPiece:
    parts: dict[str, bytearray] = {}
    sizes: dict[str, int] = {}
    fetched = FetchedPiece("", 0, 0, {})
    for chunk in chunks:
        fetched.piece_id, fetched.version = chunk.piece_id, chunk.version
        fetched.latest_version = chunk.latest_version
        part = parts.setdefault(chunk.name, bytearray())
        sizes[chunk.name] = chunk.size
        if chunk.offset != len(part):
            raise ComposeFailed(
                f"{chunk.name}: chunk at offset {chunk.offset} after {len(part)} bytes"
            )
        part += chunk.data
    for name, part in parts.items():
        if len(part) != sizes[name]:
            raise ComposeFailed(f"{name}: {len(part)} of {sizes[name]} bytes received")
        fetched.files[name] = bytes(part)
    return fetched


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        # Names come from the server; keep only the base name as a guard.
        (folder / Path(name).name).write_bytes(content)
    return folder


def fetch_piece(channel: grpc.Channel, piece_id: str, out_dir: Path) -> Path:
    """Write every file of a finished piece to ``out_dir/<piece_id>/``."""
    piece = download_piece(channel, piece_id)
    return write_files(out_dir / check_piece_id(piece.piece_id), piece.files)


def compose(
    address: str,
    request: api.ComposeRequest,
    out_dir: Path,
    *,
    on_event: Callable[[api.PieceEvent], None] = lambda e: None,
    timeout_s: float | None = None,
    on_busy: Callable[[str, float], None] = lambda message, wait_s: None,
    busy_wait_s: float = BUSY_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> ComposedPiece:
    """Compose one piece end to end and store its files; returns where they are. A gateway
    too busy to take the piece (RESOURCE_EXHAUSTED, before any event) is asked again after
    its hint, doubling the wait each time, for up to ``busy_wait_s`` in all (``on_busy``
    hears each wait)."""
    waited = 0.0
    with open_channel(address) as channel:
        events: list[api.PieceEvent] = []
        piece_id = ""
        while True:
            try:
                for event in stream_piece(channel, request, timeout_s):
                    events.append(event)
                    if event.WhichOneof("event") == "requested":
                        piece_id = event.requested.meta.piece_id
                    on_event(event)
                break
            except ComposeFailed as error:
                busy = error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and not events
                wait = max(error.retry_after_s or 1.0, waited)  # the hint, then doubling
                if not busy or waited + wait > busy_wait_s:
                    raise
                on_busy(str(error), wait)
                sleep(wait)
                waited += wait
        if not events or events[-1].WhichOneof("event") != "completed":
            raise ComposeFailed(f"the stream of piece {piece_id or '?'} ended before completion")
        folder = fetch_piece(channel, piece_id, out_dir)
    return ComposedPiece(piece_id=piece_id, folder=folder, events=events)
