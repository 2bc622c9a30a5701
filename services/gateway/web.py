"""The gateway's HTTP side: station streams (HLS), playlist feeds (M3U, JSON), finished
pieces' files, live piece events (server-sent events) and the web player page.

GET  /                                  the web player (``static/player.html``)
GET  /stations                          every station's name and state (JSON)
GET  /stations/{name}/live.m3u8         HLS media playlist (grows as segments arrive)
GET  /stations/{name}/seg{n}.ts         HLS media segment (MPEG-TS, AAC)
GET  /stations/{name}/playlist.m3u      delivered pieces, extended M3U
GET  /stations/{name}/playlist.json     program, now playing, plan, steering
POST /stations/{name}/feedback          {"piece_id": …, "kind": "like"|"skip"}
GET  /stations/{name}/session.json      a listening session's outcome log (plan, signals,
GET  /stations/{name}/session.csv       pieces played, adjustments; cantus.stations.outcomes):
                                        the latest session, or ?session=ID (kept per id)
GET  /pieces/{piece_id}/events          a piece's events as they happen (SSE, JSON)
GET  /pieces/{piece_id}/{file}          a finished piece's file (piece.mp3, piece.json, …)
GET  /compose/events?key=…&bars=…       compose a piece; its events as they happen (SSE);
                                        also form=…, duration=SECONDS (instead of bars)

A piece's form shows where it is cheap: playlist.json entries carry ``form`` (the sections),
the compose stream's first event carries it too, and each melody bar names its ``section``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import ssl
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.web_log import AccessLogger
from google.protobuf.message import Message

from cantus.events.codec import encode_event, kind_of, new_meta
from cantus.render.exports import export_file_name
from cantus.requests import RequestError, validate_compose_request
from cantus.security import gateway_tokens
from cantus.segment_store import SegmentNotFound, station_segment_store
from cantus.settings import Settings
from cantus.stations.feeds import form_metadata, json_feed, m3u_feed, media_playlist
from cantus.stations.outcomes import session_log_csv, session_log_json
from cantus.stations.program import STREAM_OUTPUT
from cantus.stations.records import encode_station_record
from cantus.storage import FILE_NAME, InvalidPieceId, StorageError, media_type, piece_store
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st
from services.gateway.auth import REJECTED, bearer_token, token_accepted
from services.gateway.events import PieceEventRouter, dedup_key
from services.gateway.stations import StationDirectory

log = logging.getLogger("cantus.gateway.web")

STATIC = Path(__file__).parent / "static"
HLS_MEDIA_TYPE = "application/vnd.apple.mpegurl"
EVENT_STREAM_IDLE_S = 300.0
HEADER_MAX_BYTES = 8190
"""Largest header (name and value) the HTTP side takes: aiohttp's own default limit."""
HTTP_PARSER_LIMITS: dict[str, Any] = {"max_line_size": 128 * 1024, "max_field_size": 128 * 1024}
"""What aiohttp's parser reads of a request line or one header before it refuses the request
itself, with a 400 that names no field (#22). Past ``HEADER_MAX_BYTES`` and up to these, the
request reaches ``_limit_headers``, which answers 431 naming the header, and a long path reaches
the routes, which name the part that is wrong; beyond them aiohttp's 400 ("Got more than
131072 bytes when reading") is the answer. At most 128 headers (aiohttp's ``max_headers``)."""


TOKEN_IN_URL = re.compile(r"((?:^|[?&\s])token=)[^&\s\"]*", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter replaced."""
    return TOKEN_IN_URL.sub(r"\1REDACTED", text)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access log without the bearer tokens players send as ``?token=`` (HLS, the
    audio element): the request line and headers it logs (the Referer of a page opened with
    a token too) are logged with the token's value replaced (#22: it was logged whole)."""

    def _format_line(self, request, response, time):
        return [
            (key, redact_tokens(value) if isinstance(value, str) else value)
            for key, value in super()._format_line(request, response, time)
        ]


def event_to_json(message: Message) -> dict:
    """A piece event as the web player reads it (notes in ticks, 480 per quarter note)."""
    kind = kind_of(message)
    meta = message.meta
    out: dict = {"kind": kind, "piece_id": meta.piece_id, "index": meta.index}
    if isinstance(message, pb.MelodyBar):
        spec = message.spec
        out |= {
            "notes": [[n.onset_ticks, n.pitch, n.duration_ticks] for n in message.notes],
            "bars": spec.bars,
            "meter": [spec.meter_numerator, spec.meter_denominator],
            "tempo_bpm": spec.tempo_bpm,
            "section": _section_label(spec.form, meta.index),
        }
    elif isinstance(message, pb.HarmonyBar):
        out["chords"] = [span.symbol for span in message.chords]
    elif isinstance(message, pb.LyricLine):
        out |= {"first_bar": message.first_bar, "text": message.text}
    elif isinstance(message, pb.RenderSegment):
        out |= {
            "first_bar": message.first_bar,
            "bar_count": message.bar_count,
            "audio_media_type": message.audio_media_type,
            "audio": base64.b64encode(message.audio).decode(),
        }
    elif isinstance(message, pb.PieceCompleted):
        out |= {"duration_seconds": message.duration_seconds, "lufs": message.integrated_lufs}
    elif isinstance(message, pb.DeadLetter):
        out["reason"] = message.reason
    return out


def _section_label(form: pb.FormPlan, bar: int) -> str | None:
    """The label of the section of ``form`` holding ``bar``, None outside it or without one."""
    for section in form.sections:
        if section.first_bar <= bar < section.first_bar + section.bar_count:
            return section.label
    return None


QUERY_TEXTS = (
    ("key", "key"),
    ("mode", "mode"),
    ("meter", "meter"),
    ("style", "style"),
    ("mood", "mood"),
    ("form", "form"),
    ("palette", "palette"),
    ("lyrics", "lyrics_theme"),
    ("lang", "lyrics_language"),
    ("register", "lyrics_register"),
    ("rhyme", "lyrics_rhyme_scheme"),
)
"""The compose page's text parameters: query name, ComposeRequest field. Each is checked as
the gRPC request's field is (``validate_compose_request``), and refused naming the field."""

QUERY_BOOLEANS = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}

QUERY_NUMBERS = (
    ("tempo", "tempo_bpm", float),
    ("bars", "bars", int),
    ("duration", "duration_seconds", float),
    ("seed", "seed", int),
)
"""The compose page's number parameters: query name, ComposeRequest field, type. A value that
is not one (or out of the field's range, such as bars=-1) is refused naming the parameter."""


def query_problem(error: ValueError) -> str:
    """A refused compose request in the page's terms: the query parameter first, then the
    request field it sets where the names differ ("register (lyrics_register): …")."""
    if not isinstance(error, RequestError):
        return f"query: {error}"
    name = QUERY_NAMES.get(error.field, error.field)
    field = error.field if name == error.field else f"{name} ({error.field})"
    return f"{field}: {error.problem}"


QUERY_NAMES = {
    field: name for name, field in (*QUERY_TEXTS, *((n, f) for n, f, _ in QUERY_NUMBERS))
}
"""ComposeRequest field → the compose page's query parameter that sets it."""


class GatewayWeb:
    def __init__(
        self,
        settings: Settings,
        producer,
        router: PieceEventRouter,
        directory: StationDirectory,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.router = router
        self.directory = directory
        self.store = piece_store(settings)
        self.segments = station_segment_store(settings)
        self.runner: web.AppRunner | None = None
        self._tokens: list[bytes] = []

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._limit_headers, self._require_token, self._name_unmatched]
        )
        app.router.add_get("/", self.index)
        app.router.add_get("/stations", self.stations)
        app.router.add_get("/stations/{name}/live.m3u8", self.playlist)
        app.router.add_get(r"/stations/{name}/seg{sequence:\d+}.ts", self.segment)
        app.router.add_get("/stations/{name}/playlist.m3u", self.m3u)
        app.router.add_get("/stations/{name}/playlist.json", self.feed)
        app.router.add_post("/stations/{name}/feedback", self.feedback)
        app.router.add_get("/stations/{name}/session.json", self.session_json)
        app.router.add_get("/stations/{name}/session.csv", self.session_csv)
        app.router.add_get("/pieces/{piece_id}/events", self.piece_events)
        app.router.add_get("/pieces/{piece_id}/versions", self.piece_versions)
        app.router.add_get(r"/pieces/{piece_id}/v{version:\d+}/{file}", self.piece_file)
        app.router.add_get("/pieces/{piece_id}/{file}", self.piece_file)
        app.router.add_get("/compose/events", self.compose_events)
        return app

    @web.middleware
    async def _limit_headers(self, request: web.Request, handler):
        """A header over ``HEADER_MAX_BYTES``: 431, naming it (``HTTP_PARSER_LIMITS``)."""
        for name, value in request.raw_headers:
            if len(name) + len(value) > HEADER_MAX_BYTES:
                raise web.HTTPRequestHeaderFieldsTooLarge(
                    text=f"header {name.decode('latin-1')[:60]}: {len(name) + len(value)} "
                    f"bytes, over the {HEADER_MAX_BYTES} one header may have\n"
                )
        return await handler(request)

    @web.middleware
    async def _name_unmatched(self, request: web.Request, handler):
        """A path no route matches (an empty piece id, a slash in a name) gets a 404 that
        names the part of the path it was read as, not aiohttp's bare "Not Found"."""
        if isinstance(request.match_info.http_exception, web.HTTPNotFound):
            raise web.HTTPNotFound(text=unmatched_path(request.path))
        return await handler(request)

    @web.middleware
    async def _require_token(self, request: web.Request, handler):
        """With gateway tokens configured, the HTTP side asks for one as gRPC does: an
        ``Authorization: Bearer`` header, or ``?token=`` for players that cannot set headers
        (HLS, the browser's audio element). Only the player page itself, which holds no
        data, is served without one."""
        if self._tokens and request.path != "/":
            header = [("authorization", request.headers.get("Authorization", ""))]
            token = bearer_token(header) or request.query.get("token", "").encode() or None
            if token is None or not token_accepted(token, self._tokens):
                REJECTED.labels(reason="missing" if token is None else "invalid").inc()
                raise web.HTTPUnauthorized(
                    text="a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
                )
        return await handler(request)

    async def start(self) -> None:
        self._tokens = gateway_tokens(self.settings)
        tls = None
        if self.settings.gateway_tls_cert is not None and self.settings.gateway_tls_key is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.settings.gateway_tls_cert, self.settings.gateway_tls_key)
        self.runner = web.AppRunner(
            self.app(), access_log_class=RedactingAccessLogger, **HTTP_PARSER_LIMITS
        )
        await self.runner.setup()
        await web.TCPSite(
            self.runner, self.settings.host, self.settings.gateway_http_port, ssl_context=tls
        ).start()
        log.info("gateway HTTP on %s:%d", self.settings.host, self.settings.gateway_http_port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # --- pages ----------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "player.html")

    async def stations(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                # the program is a window of recent pieces; the counter has them all
                {
                    "name": name,
                    "running": s.status.running,
                    "pieces": max(s.status.next_position, len(s.status.program)),
                }
                for name, s in sorted(self.directory.stations.items())
                if s.status is not None
            ]
        )

    def _status(self, request: web.Request) -> st.StationStatus:
        name = request.match_info["name"]
        stream = self.directory.stations.get(name)
        if stream is None or stream.status is None:
            raise web.HTTPNotFound(text=f"name: no station {name[:60]!r}\n")
        return stream.status

    async def playlist(self, request: web.Request) -> web.Response:
        status = self._status(request)
        stream = self.directory.stations[status.name]
        # A token given as ?token= (a native HLS player cannot send a header) goes on to the
        # segment URIs: relative, they would be fetched without it and refused (#22).
        token = request.query.get("token") if self._tokens else None
        text = media_playlist(
            stream.entries(),
            ended=not status.running,
            discontinuity_sequence=stream.discontinuity_sequence,
            uri_query=f"?{urlencode({'token': token})}" if token else "",
        )
        return web.Response(
            text=text, content_type=HLS_MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
        )

    async def segment(self, request: web.Request) -> web.Response:
        status = self._status(request)
        segments: Mapping[int, st.StationSegment] = (
            self.directory.stations[status.name].segments or {}
        )
        segment = segments.get(int(request.match_info["sequence"]))
        if segment is None:
            raise web.HTTPNotFound(text="no such segment\n")
        data = segment.data  # a record from before the segment store carries its bytes
        if not data:
            try:
                data = await asyncio.to_thread(self.segments.read_uri, status.name, segment.uri)
            except SegmentNotFound as error:
                log.warning("station %s segment %d: %s", status.name, segment.sequence, error)
                raise web.HTTPNotFound(text="no such segment\n") from None
        return web.Response(body=data, content_type=segment.media_type)

    async def m3u(self, request: web.Request) -> web.Response:
        status = self._status(request)
        # Link the one audio file every station piece is stored with (the stream's), not
        # an export the station did not ask for.
        base = f"http://{request.host}/pieces/{{piece_id}}/{export_file_name(STREAM_OUTPUT)}"
        return web.Response(text=m3u_feed(status, base), content_type="audio/x-mpegurl")

    async def feed(self, request: web.Request) -> web.Response:
        return web.Response(text=json_feed(self._status(request)), content_type="application/json")

    def _session_records(self, request: web.Request, name: str) -> list:
        wanted = request.query.get("session", "")
        log = self.directory.stations[name].outcomes.session(wanted)
        if log is None and wanted:
            raise web.HTTPNotFound(text=f"session: no session {wanted[:80]!r} kept for {name}\n")
        return [] if log is None else log.records

    async def session_json(self, request: web.Request) -> web.Response:
        status = self._status(request)
        records = self._session_records(request, status.name)
        return web.json_response(
            session_log_json(status.name, records),
            headers={"Content-Disposition": f'inline; filename="{status.name}-session.json"'},
        )

    async def session_csv(self, request: web.Request) -> web.Response:
        status = self._status(request)
        records = self._session_records(request, status.name)
        return web.Response(
            text=session_log_csv(records),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{status.name}-session.csv"'},
        )

    async def feedback(self, request: web.Request) -> web.Response:
        status = self._status(request)
        expected = 'expected {"piece_id": …, "kind": "like"|"skip"}'
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text=f"body: not JSON; {expected}\n") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text=f"body: a JSON {type(body).__name__}; {expected}\n")
        for name in ("piece_id", "kind"):
            if not isinstance(body.get(name), str):
                raise web.HTTPBadRequest(text=f"{name}: missing or not a string; {expected}\n")
        piece_id, kind = body["piece_id"], body["kind"]
        if kind not in ("like", "skip"):
            raise web.HTTPBadRequest(text=f"kind: {kind[:20]!r} is not like or skip\n")
        if not any(e.piece_id == piece_id for e in status.program):
            raise web.HTTPBadRequest(text=f"piece_id: not in station {status.name}\n")
        message = st.StationFeedback(station=status.name, piece_id=piece_id, kind=kind)
        key, value, headers = encode_station_record(
            "station_feedback", message, status.name, source="gateway"
        )
        await self.producer.send_and_wait(
            self.settings.topics.station_feedback, value, key=key, headers=headers
        )
        return web.json_response({"ok": True})

    async def piece_versions(self, request: web.Request) -> web.Response:
        """``{"versions": [1, 2, …]}``: the stored versions of a piece (issue #18)."""
        try:
            versions = await asyncio.to_thread(self.store.versions, request.match_info["piece_id"])
        except InvalidPieceId as error:
            raise web.HTTPBadRequest(text=f"piece_id: {error}\n") from None
        if not versions:
            raise web.HTTPNotFound(text="piece_id: no such piece\n")
        return web.json_response({"versions": versions})

    async def piece_file(self, request: web.Request) -> web.StreamResponse:
        """A file of a piece as composed (``/pieces/ID/NAME``) or of one of its versions
        (``/pieces/ID/vN/NAME``, issue #18: the player shows a version beside the one it was
        edited from)."""
        name = request.match_info["file"]
        if not FILE_NAME.match(name):
            raise web.HTTPBadRequest(text=f"file: {name[:60]!r} is not a piece's file name\n")
        version = int(request.match_info.get("version", "1")[:6])
        piece_id = request.match_info["piece_id"]
        try:
            sizes = await asyncio.to_thread(self.store.file_sizes, piece_id, version)
        except InvalidPieceId as error:
            raise web.HTTPBadRequest(text=f"piece_id: {error}\n") from None
        except StorageError as error:
            raise web.HTTPNotFound(text=f"piece_id: {error}\n") from None
        if name not in sizes:
            raise web.HTTPNotFound(text=f"file: no {name} in the piece\n")
        # streamed from the store a chunk at a time, as GetPieceFiles does (#22)
        response = web.StreamResponse(headers={"Content-Length": str(sizes[name])})
        response.content_type = media_type(name).split(";")[0]
        chunks = self.store.read_chunks(piece_id, name, version)
        try:
            first = await asyncio.to_thread(next, chunks, b"")
            await response.prepare(request)
            data: bytes | None = first
            while data:
                await response.write(data)
                data = await asyncio.to_thread(next, chunks, None)
        except StorageError as error:  # gone between the listing and the first read
            raise web.HTTPNotFound(text=f"file: {error}\n") from None
        finally:
            chunks.close()
        await response.write_eof()
        return response

    # --- live events ----------------------------------------------------------------------
    async def piece_events(self, request: web.Request) -> web.StreamResponse:
        piece_id = request.match_info["piece_id"]
        queue = self.router.subscribe(piece_id, replay=True)
        try:
            return await self._event_stream(request, queue, first=None)
        finally:
            self.router.unsubscribe(piece_id, queue)

    async def compose_events(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        compose = api.ComposeRequest()
        for name, field in QUERY_TEXTS:
            setattr(compose, field, query.get(name, ""))
        for name in ("vocals", "pickup"):
            if name not in query:
                continue
            if query[name] not in QUERY_BOOLEANS:
                raise web.HTTPBadRequest(
                    text=f"{name}: {query[name][:40]!r} is not one of {', '.join(QUERY_BOOLEANS)}\n"
                )
            setattr(compose, name, QUERY_BOOLEANS[query[name]])
        for name, field, kind in QUERY_NUMBERS:
            if name not in query:
                continue
            try:
                setattr(compose, field, kind(query[name]))
            except (ValueError, TypeError, OverflowError):
                raise web.HTTPBadRequest(
                    text=f"{name}: {query[name][:40]!r} is not a valid {kind.__name__} "
                    f"for {field}\n"
                ) from None
        try:
            validated = validate_compose_request(
                compose,
                max_bars=self.settings.max_bars,
                pickups=self.settings.melody_pickups,
                corpus_forms=self.settings.melody_corpus_forms,
            )
        except ValueError as error:  # RequestError: "field: problem"
            raise web.HTTPBadRequest(text=f"{query_problem(error)}\n") from None
        piece_id = uuid.uuid4().hex
        requested = pb.ComposeRequested(meta=new_meta(piece_id, 0, "gateway"), spec=validated.spec)
        queue = self.router.subscribe(piece_id)
        try:
            key, value, headers = encode_event(requested, source="gateway")
            await self.producer.send_and_wait(
                self.settings.topics.compose_requested, value, key=key, headers=headers
            )
            first = {
                "kind": "compose_requested",
                "piece_id": piece_id,
                "bars": validated.spec.bars,
                "form": form_metadata(validated.spec.form),
            }
            return await self._event_stream(request, queue, first=first)
        finally:
            self.router.unsubscribe(piece_id, queue)

    async def _event_stream(
        self, request: web.Request, queue: asyncio.Queue, first: dict | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if first is not None:
            await response.write(f"data: {json.dumps(first)}\n\n".encode())
        seen: set[tuple[str, int]] = set()
        deadline = time.monotonic() + EVENT_STREAM_IDLE_S
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while time.monotonic() < deadline:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                identity = dedup_key(message)
                if identity in seen:
                    continue
                seen.add(identity)
                message = await self.router.for_client(message)
                payload = json.dumps(event_to_json(message))
                await response.write(f"data: {payload}\n\n".encode())
                if isinstance(message, pb.PieceCompleted | pb.DeadLetter):
                    break
        return response


def unmatched_path(path: str) -> str:
    """The 404 text for a path that matches no route, naming the field it would hold."""
    shown = repr(path[:80])
    if path.startswith("/pieces/"):
        return (
            f"piece_id: the path {shown} is not /pieces/ID/FILE, /pieces/ID/vN/FILE or "
            "/pieces/ID/events with ID a 32-character hex piece id\n"
        )
    if path.startswith("/stations/"):
        return f"name: the path {shown} is not /stations/NAME/PAGE with NAME a station's name\n"
    return f"path: no page at {shown}\n"
