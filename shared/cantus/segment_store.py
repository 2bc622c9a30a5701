"""Where streamed audio segments are kept while someone may still fetch them, so that Kafka
records carry only their place (a claim check), never their bytes.

Two kinds, each in a folder of its own beside the finished pieces, in the same store
(``data_dir`` or the S3 bucket, which every service that reads or writes them shares):

* ``stations/<station>/``: a station's HLS segments (MPEG-TS). The station service writes
  them (``StationSegment.uri``); the gateway reads one when a player asks for it.
* ``segments/<piece id>/``: a piece's render segments' audio (Ogg Opus, or FLAC where the
  piece asked for lossless segments: a station's pieces). The render service
  writes them (``RenderSegment.audio_uri``); the station service reads them to mix its
  stream, and the gateway puts the audio back into the segments it streams to clients.

Neither folder name is a piece id, so the piece store never sees them. Each file is named
``seg<index>-<8 hex>.<ext>``: the random part keeps a restarted writer, which may publish an
index again, from overwriting a file that a record still names. A record's URI is never
followed as a path: readers take its last component and check it (``file_name_of``).

Files older than the kind's retention are deleted (``delete_older_than``), every minute, by
the service that writes them, as the topic's retention drops their records.

Why: the embedded broker (Tansu 0.6.0's memory engine) applies no retention, so it kept
every record ever written. In an 8-station soak the two segment topics were 69 % of all it
kept (78 KiB a station segment, 80 KiB a render segment), growing without end, and each
gateway replica held an hour of every station's audio in memory.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cantus.storage import StorageError, check_piece_id

if TYPE_CHECKING:
    from cantus.settings import Settings

SEGMENT_FILE = re.compile(r"^seg(\d+)-[0-9a-f]{8}\.(ts|opus|flac)$")
STATION_FOLDER = "stations"
RENDER_FOLDER = "segments"


class SegmentNotFound(StorageError):
    """No such segment (never written, or deleted with the retention), or a name or owner
    that cannot be one."""


def segment_file_name(index: int, extension: str) -> str:
    return f"seg{index}-{secrets.token_hex(4)}.{extension}"


def file_name_of(uri: str) -> str:
    """The segment's file name, from its URI, checked: a record's URI is never trusted as a
    path (a poisoned record cannot point a reader elsewhere)."""
    name = uri.rsplit("/", 1)[-1]
    if not SEGMENT_FILE.match(name):
        raise SegmentNotFound(f"uri: {uri[:120]!r} does not name a segment")
    return name


def _station_owner(station: str) -> str:
    from cantus.stations.config import StationConfigError, check_station_name

    try:
        return check_station_name(station)
    except StationConfigError as error:
        raise SegmentNotFound(f"station: {error.problem}") from None


def _piece_owner(piece_id: str) -> str:
    try:
        return check_piece_id(piece_id)
    except StorageError as error:
        raise SegmentNotFound(str(error)) from None


class SegmentStore:
    """Segments of one kind, by owner (a station or a piece) and file name; on disk under
    ``root/<owner>/`` (each write atomic: a temporary file renamed) or, given an S3
    ``client``, under ``s3://<bucket>/<root>/<owner>/``."""

    def __init__(
        self,
        root: Path | str,
        check_owner: Callable[[str], str],
        extension: str,
        *,
        client: Any = None,
        bucket: str = "",
    ) -> None:
        self.root = root
        self.check_owner = check_owner
        self.extension = extension
        self.client = client
        self.bucket = bucket

    def _checked(self, owner: str, name: str) -> str:
        if not SEGMENT_FILE.match(name):
            raise SegmentNotFound(f"file: {name[:120]!r} is not a segment's name")
        return f"{self.check_owner(owner)}/{name}"

    def write(self, owner: str, index: int, content: bytes, *, extension: str | None = None) -> str:
        """Keep one segment; returns its URI (``file://`` or ``s3://``). ``extension``: the
        file's, if not the store's own (one of ``SEGMENT_FILE``'s)."""
        name = segment_file_name(index, extension or self.extension)
        if not SEGMENT_FILE.match(name):
            raise SegmentNotFound(f"extension: {name.rsplit('.', 1)[-1][:20]!r} is not a segment's")
        relative = f"{self.check_owner(owner)}/{name}"
        if self.client is not None:
            key = f"{self.root}/{relative}"
            self.client.put_object(Bucket=self.bucket, Key=key, Body=content)
            return f"s3://{self.bucket}/{key}"
        path = Path(self.root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(content)
        partial.replace(path)
        return path.resolve().as_uri()

    def read(self, owner: str, name: str) -> bytes:
        relative = self._checked(owner, name)
        missing = SegmentNotFound(f"no segment {name!r} of {owner!r}")
        if self.client is not None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=f"{self.root}/{relative}")
            except self.client.exceptions.NoSuchKey:
                raise missing from None
            return response["Body"].read()
        try:
            return (Path(self.root) / relative).read_bytes()
        except FileNotFoundError:
            raise missing from None

    def read_uri(self, owner: str, uri: str) -> bytes:
        """The segment a record names, read as ``owner``'s (the URI's folders are ignored)."""
        return self.read(owner, file_name_of(uri))

    def delete_older_than(self, seconds: float, *, extension: str | None = None) -> int:
        """Delete every owner's segments written more than ``seconds`` ago (only those with
        ``extension``, if given; and, on disk, the folders left empty); the count of
        segments deleted."""
        oldest_kept = time.time() - seconds
        suffix = f".{extension}" if extension else ""
        if self.client is not None:
            return self._delete_older_s3(oldest_kept, suffix)
        root = Path(self.root)
        if not root.is_dir():
            return 0
        deleted = 0
        for folder in root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if not path.name.endswith(suffix):
                    continue
                try:
                    if path.stat().st_mtime < oldest_kept:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:
                    continue  # another replica deleted it first
            with contextlib.suppress(OSError):  # only when empty
                folder.rmdir()
        return deleted

    def _delete_older_s3(self, oldest_kept: float, suffix: str) -> int:
        stale = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.root}/"):
            for item in page.get("Contents", []):
                if item["Key"].endswith(suffix) and item["LastModified"].timestamp() < oldest_kept:
                    stale.append({"Key": item["Key"]})
        for first in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": stale[first : first + 1000]}
            )
        return len(stale)


def _store(settings: Settings, folder: str, check_owner, extension: str) -> SegmentStore:
    if settings.s3_bucket:
        from cantus.storage import S3PieceStore

        pieces = S3PieceStore(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint,
            region_name=settings.s3_region,
        )
        prefix = settings.s3_prefix.strip("/")
        root = f"{prefix}/{folder}" if prefix else folder
        return SegmentStore(
            root, check_owner, extension, client=pieces.client, bucket=settings.s3_bucket
        )
    return SegmentStore(settings.data_dir / folder, check_owner, extension)


def station_segment_store(settings: Settings) -> SegmentStore:
    """Stations' HLS segments, beside the piece store (``cantus.storage.piece_store``)."""
    return _store(settings, STATION_FOLDER, _station_owner, "ts")


def render_segment_store(settings: Settings) -> SegmentStore:
    """Pieces' render segment audio, beside the piece store."""
    return _store(settings, RENDER_FOLDER, _piece_owner, "opus")
