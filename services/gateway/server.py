"""The gateway: the gRPC front door. Validates a request, publishes it, and relays every
event of the piece back on the client's stream until the piece completes or fails.

Edits of stored pieces (Composer.Edit, issue #18) run here, not through Kafka: an edit
changes a few bars of a finished piece, reads and writes the piece store, and asks the
models on Triton directly (``cantus.editing``); its events stream back on the call.

in:  gRPC Composer.Compose / GetPiece / GetPieceFiles / Edit (+ grpc.health.v1, reflection)
out: cantus.compose.requested
in:  every output topic, through ``PieceEventRouter``
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc
from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, start_http_server

from cantus.editing.requests import EditError
from cantus.events.codec import encode_event, new_meta
from cantus.requests import (
    RETRY_AFTER_METADATA,
    RequestError,
    ValidatedRequest,
    validate_compose_request,
)
from cantus.security import (
    check_gateway_edge,
    gateway_server_credentials,
    gateway_tokens,
    kafka_client_options,
)
from cantus.settings import MAX_GRPC_MESSAGE_BYTES, Settings, load_settings
from cantus.storage import (
    InvalidPieceId,
    StorageError,
    VersionNotFound,
    media_type,
    piece_store,
)
from cantus.streaming import configure_logging
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc
from services.gateway.auth import BearerTokenInterceptor
from services.gateway.events import PieceEventRouter, dedup_key
from services.gateway.stations import StationApi, StationDirectory
from services.gateway.web import GatewayWeb

if TYPE_CHECKING:
    # imported on the first edit or by the warm-up after the gateway serves: it pulls in
    # torch and the render, a minute of imports on a loaded machine that a restarted gateway
    # spent before it answered anything (#22)
    from cantus.editing.editor import PieceEditor

log = logging.getLogger("cantus.gateway")

REQUESTS = Counter("cantus_gateway_requests_total", "Compose requests", ["outcome"])
TIME_TO_FIRST_BAR = Histogram(
    "cantus_gateway_time_to_first_bar_seconds",
    "From request to the first melody bar",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)

EDITS = Counter("cantus_gateway_edits_total", "Edit requests", ["outcome"])

MELODY_FILE_THREADS = 4
"""Compose requests with a melody file that may wait for the file reader at once; more
queue for a thread."""

PIECE_CHUNK_BYTES = 1024 * 1024
"""Largest chunk of a file GetPieceFiles sends in one message."""
PIECE_MESSAGE_MAX_BYTES = MAX_GRPC_MESSAGE_BYTES - PIECE_CHUNK_BYTES
"""Most bytes of files one GetPiece message carries (the rest of the limit is left to names
and framing); a larger version is refused with a pointer to GetPieceFiles."""

_EVENT_FIELD = {
    pb.MelodyBar: "melody_bar",
    pb.HarmonyBar: "harmony_bar",
    pb.LyricLine: "lyric_line",
    pb.RenderSegment: "render_segment",
    pb.PieceCompleted: "completed",
    pb.DeadLetter: "failed",
}


class Composer(api_grpc.ComposerServicer):
    def __init__(
        self,
        settings: Settings,
        producer: AIOKafkaProducer,
        router: PieceEventRouter,
        editor: PieceEditor | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.router = router
        self.store = piece_store(settings)
        self._editor = editor
        self._editor_lock = threading.Lock()
        self.pieces_in_flight = 0
        self.piece_message_limit = PIECE_MESSAGE_MAX_BYTES
        self.melody_file_threads = ThreadPoolExecutor(
            max_workers=MELODY_FILE_THREADS, thread_name_prefix="melody-file"
        )

    async def Compose(self, request: api.ComposeRequest, context: grpc.aio.ServicerContext):
        try:
            if request.continue_midi or request.harmonize_midi:
                # A melody file is read in a child process, one at a time, for up to
                # READ_TIMEOUT_S: wait in threads of its own, so that neither the event
                # loop nor the default executor (piece downloads) waits behind it.
                validated = await asyncio.get_running_loop().run_in_executor(
                    self.melody_file_threads,
                    functools.partial(
                        validate_compose_request, request, max_bars=self.settings.max_bars
                    ),
                )
            else:
                validated = validate_compose_request(
                    request,
                    max_bars=self.settings.max_bars,
                    pickups=self.settings.melody_pickups,
                    corpus_forms=self.settings.melody_corpus_forms,
                )
        except RequestError as error:
            REQUESTS.labels("invalid").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return
        if self.pieces_in_flight >= self.settings.gateway_max_pieces_in_flight:
            REQUESTS.labels("busy").inc()
            await self._refuse_busy(context)
            return
        self.pieces_in_flight += 1
        try:
            async for event in self._compose(validated, context):
                yield event
        finally:
            self.pieces_in_flight -= 1

    async def _compose(
        self, validated: ValidatedRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api.PieceEvent]:
        """Publish the request and stream the piece's events until it completes or fails."""
        piece_id = uuid.uuid4().hex
        requested = pb.ComposeRequested(
            meta=new_meta(piece_id, 0, "gateway"),
            spec=validated.spec,
            given_bars=validated.given_bars,
        )
        queue = self.router.subscribe(piece_id)
        started = time.monotonic()
        try:
            key, value, headers = encode_event(requested, source="gateway")
            await self.producer.send_and_wait(
                self.settings.topics.compose_requested, value, key=key, headers=headers
            )
            log.info("piece %s requested: %s bars", piece_id, validated.spec.bars)
            yield api.PieceEvent(requested=requested)
            seen: set[tuple[str, int]] = set()
            deadline = started + self.settings.compose_timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    REQUESTS.labels("timeout").inc()
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"piece {piece_id} did not complete within "
                        f"{self.settings.compose_timeout_s:.0f} s",
                    )
                    return
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=remaining)
                except TimeoutError:
                    continue
                identity = dedup_key(message)
                if identity in seen:
                    continue
                seen.add(identity)
                if isinstance(message, pb.MelodyBar) and message.meta.index == 0:
                    TIME_TO_FIRST_BAR.observe(time.monotonic() - started)
                message = await self.router.for_client(message)
                yield api.PieceEvent(**{_EVENT_FIELD[type(message)]: message})
                if isinstance(message, pb.PieceCompleted):
                    REQUESTS.labels("completed").inc()
                    return
                if isinstance(message, pb.DeadLetter):
                    REQUESTS.labels("failed").inc()
                    return
        finally:
            self.router.unsubscribe(piece_id, queue)

    async def _piece_files(
        self, request: api.GetPieceRequest, context: grpc.aio.ServicerContext
    ) -> tuple[dict[str, int], int, int]:
        """The asked version's files by name with their sizes (none read), the version and
        the latest version; aborts with INVALID_ARGUMENT or NOT_FOUND naming the field."""
        try:
            versions = await asyncio.to_thread(self.store.versions, request.piece_id)
            version = request.version or (versions[-1] if versions else 1)
            sizes = await asyncio.to_thread(self.store.file_sizes, request.piece_id, version)
        except StorageError as error:
            await self._abort_storage(error, context)
            raise  # abort raises; for type checkers
        return sizes, version, versions[-1] if versions else version

    @staticmethod
    async def _abort_storage(error: StorageError, context: grpc.aio.ServicerContext) -> None:
        invalid = isinstance(error, InvalidPieceId)
        code = grpc.StatusCode.INVALID_ARGUMENT if invalid else grpc.StatusCode.NOT_FOUND
        field = "version" if isinstance(error, VersionNotFound) else "piece_id"
        await context.abort(code, f"{field}: {error}")

    async def GetPiece(self, request: api.GetPieceRequest, context: grpc.aio.ServicerContext):
        sizes, version, latest = await self._piece_files(request, context)
        size = sum(sizes.values())
        if size > self.piece_message_limit:  # refused before anything is read
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"piece_id: version {version} of piece {request.piece_id} has "
                f"{size / 2**20:.1f} MiB of files, over the "
                f"{self.piece_message_limit / 2**20:.0f} MiB one GetPiece message may carry; "
                "fetch it with GetPieceFiles, which streams the files in chunks "
                "(the cantus CLI does)",
            )
        try:
            files = await asyncio.to_thread(self.store.read_all, request.piece_id, version)
        except StorageError as error:
            await self._abort_storage(error, context)
            raise
        return api.Piece(
            piece_id=request.piece_id,
            files=[
                api.PieceFile(name=name, media_type=media_type(name), content=content)
                for name, content in files.items()
            ],
            version=version,
            latest_version=latest,
        )

    async def GetPieceFiles(
        self, request: api.GetPieceRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api.PieceChunk]:
        """Every file of the version in chunks of ``PIECE_CHUNK_BYTES``, read from the store
        one chunk at a time (#22); each ``yield`` waits for gRPC's flow control, so a call
        holds about one chunk in memory however large the piece and however slow its
        reader. An empty file is one empty chunk."""
        sizes, version, latest = await self._piece_files(request, context)
        for name, size in sizes.items():
            chunks = self.store.read_chunks(request.piece_id, name, version, PIECE_CHUNK_BYTES)
            offset = 0
            try:
                while True:
                    data = await asyncio.to_thread(next, chunks, None)
                    if data is None and offset > 0:
                        break
                    yield api.PieceChunk(
                        piece_id=request.piece_id,
                        version=version,
                        latest_version=latest,
                        name=name,
                        media_type=media_type(name),
                        size=size,
                        offset=offset,
                        data=data or b"",
                    )
                    if data is None:
                        break
                    offset += len(data)
            except StorageError as error:  # the file went away between listing and reading
                await self._abort_storage(error, context)
            finally:
                chunks.close()

    @property
    def editor(self) -> PieceEditor:
        """Made once, by the warm-up after the gateway serves or by the first edit,
        whichever comes first (it imports the editor, reads the melody vocabulary and opens
        Triton clients). Blocking: call it from a thread (``editor_ready``)."""
        with self._editor_lock:
            if self._editor is None:
                from cantus.editing.editor import PieceEditor
                from cantus.editing.triton import edit_options, triton_edit_models

                self._editor = PieceEditor(
                    self.store, triton_edit_models(self.settings), edit_options(self.settings)
                )
            return self._editor

    async def editor_ready(self) -> PieceEditor:
        """The editor, made in a worker thread if it is not yet, off the event loop."""
        if self._editor is not None:
            return self._editor
        return await asyncio.to_thread(lambda: self.editor)

    async def _refuse_busy(self, context: grpc.aio.ServicerContext) -> None:
        """Refuse a stream at the in-flight limit at once, with the wait as trailing
        metadata (``RETRY_AFTER_METADATA``), instead of queueing it until its deadline."""
        retry_after = self.settings.gateway_retry_after_s
        context.set_trailing_metadata(((RETRY_AFTER_METADATA, f"{retry_after:g}"),))
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the gateway is streaming {self.pieces_in_flight} pieces, its limit "
            f"(gateway_max_pieces_in_flight); retry in {retry_after:g} s",
        )

    async def Edit(self, request: api.EditRequest, context: grpc.aio.ServicerContext):
        """A new version of a stored piece; streams what changes (``cantus.editing``)."""
        if self.pieces_in_flight >= self.settings.gateway_max_pieces_in_flight:
            EDITS.labels("busy").inc()
            await self._refuse_busy(context)
            return
        self.pieces_in_flight += 1
        try:
            editor = await self.editor_ready()
        except BaseException:
            self.pieces_in_flight -= 1
            raise
        try:
            async with editor.lock(request.piece_id):
                try:
                    opened = await asyncio.to_thread(editor.open, request)
                except EditError as error:
                    EDITS.labels("invalid").inc()
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                    return
                except StorageError as error:
                    EDITS.labels("invalid").inc()
                    await context.abort(_storage_status(error), str(error))
                    return
                log.info(
                    "piece %s: edit %s, version %d from %d",
                    opened.piece_id,
                    opened.edit.kind,
                    opened.version,
                    opened.from_version,
                )
                try:
                    async for event in editor.run(opened):
                        yield event
                except EditError as error:
                    EDITS.labels("invalid").inc()
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                    return
                EDITS.labels("completed").inc()
        finally:
            self.pieces_in_flight -= 1
            if not editor.lock(request.piece_id).locked():
                editor.locks.pop(request.piece_id, None)


def _storage_status(error: StorageError) -> grpc.StatusCode:
    """INVALID_ARGUMENT for a malformed id, FAILED_PRECONDITION for a version that cannot be
    edited, NOT_FOUND for a piece or version that is not stored."""
    if isinstance(error, InvalidPieceId):
        return grpc.StatusCode.INVALID_ARGUMENT
    from cantus.editing.editor import EditUnsupported  # loaded: only the editor raises it

    if isinstance(error, EditUnsupported):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.NOT_FOUND


async def _warm_up(composer: Composer) -> None:
    try:
        await composer.editor_ready()
    except Exception:  # the first edit tries again, and says why if it fails too
        log.exception("the editor could not be made at start")


async def serve(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    check_gateway_edge(settings)  # before anything starts: a half-secured edge fails fast
    tokens = gateway_tokens(settings)
    start_http_server(settings.gateway_metrics_port, addr=settings.host)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker, acks="all", **kafka_client_options(settings)
    )
    await producer.start()
    router = PieceEventRouter(settings, producer)
    await router.start()

    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ],
        interceptors=[BearerTokenInterceptor(tokens)] if tokens else [],
    )
    composer = Composer(settings, producer, router)
    api_grpc.add_ComposerServicer_to_server(composer, server)
    # Stations: gRPC here, the work in the station service (over Kafka), HTTP (HLS) below.
    stations = StationDirectory(settings)
    await stations.start()
    st_grpc.add_StationServicer_to_server(StationApi(settings, producer, stations), server)
    web_side = GatewayWeb(settings, producer, router, stations)
    await web_side.start()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        api.DESCRIPTOR.services_by_name["Composer"].full_name,
        st.DESCRIPTOR.services_by_name["Station"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(service_names, server)
    address = f"{settings.host}:{settings.gateway_port}"
    credentials = gateway_server_credentials(settings)
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
    health_server = None
    if settings.gateway_health_port is not None:
        # kubelet gRPC probes speak no TLS: health alone on a plaintext port of its own
        health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        health_server.add_insecure_port(f"{settings.host}:{settings.gateway_health_port}")
        await health_server.start()
    await server.start()
    for name in ("", service_names[0]):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # The editor's imports (torch, render, lyrics) and vocabulary load now, in a thread,
    # not before serving (a restarted gateway answered nothing for a minute and more on a
    # loaded machine, #22) and not on the first edit, whose first bar would wait for them.
    editor_warm_up = asyncio.create_task(_warm_up(composer))
    log.info(
        "gateway serving on %s (%s, %s)",
        address,
        "TLS" if credentials is not None else "plaintext",
        f"{len(tokens)} bearer token(s)" if tokens else "no token check",
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway stopping")
    editor_warm_up.cancel()  # a warm-up still importing is left to finish in its thread
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    if health_server is not None:
        await health_server.stop(grace=1)
    await web_side.stop()
    await stations.stop()
    await router.stop()
    await producer.stop()


def main() -> None:
    configure_logging()
    asyncio.run(serve())
