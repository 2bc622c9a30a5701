"""Where a station's HLS segments are kept while listeners may fetch them: the station
service writes each one here and publishes only its place (``StationSegment.uri``); the
gateway reads the bytes back when a player asks for the segment.

The segments live beside the finished pieces, in the same store (``data_dir`` or the S3
bucket, both shared by the station and the gateway already), under ``stations/<station>/``:
a name that is never a piece id, so the piece store never sees them. Each file is named
``seg<sequence>-<8 hex>.ts``: the random part keeps a restarted station, which may publish
a sequence number again, from overwriting a segment that a record still names.

Segments older than the station segment retention are deleted (``delete_older_than``, run
by the station service every minute), as the topic's retention drops their records, so the
store holds the same window as the gateway's playlist.

Why not in the record: on the embedded broker (Tansu 0.6.0's memory engine, which applies no
retention) the segment topic was half of everything the broker kept, 78 KiB a segment,
growing without end; and each gateway replica kept an hour of every station's audio in its
own memory.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cantus.stations.config import StationConfigError, check_station_name
from cantus.storage import StorageError

if TYPE_CHECKING:
    from cantus.settings import Settings

SEGMENT_FILE = re.compile(r"^seg(\d+)-[0-9a-f]{8}\.ts$")
FOLDER = "stations"


class SegmentNotFound(StorageError):
    """No such segment (never written, or deleted with the retention)."""


def segment_file_name(sequence: int) -> str:
    return f"seg{sequence}-{secrets.token_hex(4)}.ts"


def file_name_of(uri: str) -> str:
    """The segment's file name, from its URI, checked: a record's URI is never trusted as a
    path (a poisoned record cannot point the gateway elsewhere)."""
    name = uri.rsplit("/", 1)[-1]
    if not SEGMENT_FILE.match(name):
        raise SegmentNotFound(f"uri: {uri[:120]!r} does not name a station segment")
    return name


def _checked_station(station: str) -> str:
    try:
        return check_station_name(station)
    except StationConfigError as error:
        raise SegmentNotFound(f"station: {error.problem}") from None


class SegmentStore(Protocol):
    def write(self, station: str, sequence: int, content: bytes) -> str: ...

    def read(self, station: str, name: str) -> bytes: ...

    def delete_older_than(self, seconds: float) -> int: ...


def segment_store(settings: Settings) -> SegmentStore:
    """The store the settings name, beside the piece store (``cantus.storage.piece_store``)."""
    if settings.s3_bucket:
        from cantus.storage import S3PieceStore

        pieces = S3PieceStore(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint,
            region_name=settings.s3_region,
        )
        return S3SegmentStore(pieces.client, settings.s3_bucket, settings.s3_prefix)
    return LocalSegmentStore(settings.data_dir / FOLDER)


class LocalSegmentStore:
    """Segments under ``root/<station>/``; each write is atomic (a temporary file renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, station: str, sequence: int, content: bytes) -> str:
        folder = self.root / _checked_station(station)
        folder.mkdir(parents=True, exist_ok=True)
        name = segment_file_name(sequence)
        partial = folder / f".{name}.partial"
        partial.write_bytes(content)
        partial.replace(folder / name)
        return (folder / name).resolve().as_uri()

    def read(self, station: str, name: str) -> bytes:
        if not SEGMENT_FILE.match(name):
            raise SegmentNotFound(f"file: {name[:120]!r} is not a station segment's name")
        try:
            return (self.root / _checked_station(station) / name).read_bytes()
        except FileNotFoundError:
            raise SegmentNotFound(f"no segment {name!r} of station {station!r}") from None

    def delete_older_than(self, seconds: float) -> int:
        """Delete every station's segments written more than ``seconds`` ago; the count."""
        if not self.root.is_dir():
            return 0
        oldest_kept = time.time() - seconds
        deleted = 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime < oldest_kept:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:
                    continue  # another replica deleted it first
        return deleted


class S3SegmentStore:
    """Segments in the piece store's bucket, under ``<prefix>/stations/<station>/``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "pieces") -> None:
        self.client = client
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/{FOLDER}/" if prefix else f"{FOLDER}/"

    def write(self, station: str, sequence: int, content: bytes) -> str:
        key = f"{self.prefix}{_checked_station(station)}/{segment_file_name(sequence)}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=content, ContentType="video/mp2t")
        return f"s3://{self.bucket}/{key}"

    def read(self, station: str, name: str) -> bytes:
        if not SEGMENT_FILE.match(name):
            raise SegmentNotFound(f"file: {name[:120]!r} is not a station segment's name")
        key = f"{self.prefix}{_checked_station(station)}/{name}"
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise SegmentNotFound(f"no segment {name!r} of station {station!r}") from None

    def delete_older_than(self, seconds: float) -> int:
        oldest_kept = time.time() - seconds
        stale = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < oldest_kept:
                    stale.append({"Key": item["Key"]})
        for first in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": stale[first : first + 1000]}
            )
        return len(stale)
