"""Where finished pieces are kept: one folder per piece id, files named by the service.

File and folder names never come from user input: a piece id is checked to be the
hex id the gateway minted, and file names are fixed by the code (``piece.mid``, …).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cantus.settings import Settings

PIECE_ID = re.compile(r"^[0-9a-f]{32}$")
FILE_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9]+)+$")

MEDIA_TYPES = {
    ".mid": "audio/midi",
    ".json": "application/json",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg; codecs=opus",
    ".ogg": "audio/ogg",
    ".musicxml": "application/vnd.recordare.musicxml+xml",
    ".png": "image/png",
    ".pdf": "application/pdf",
}


class StorageError(ValueError):
    """A bad piece id or file name, or a missing piece."""


class InvalidPieceId(StorageError):
    """A piece id that is not 32 hex characters (a client's mistake, not a missing piece)."""


class PieceNotFound(StorageError):
    """No finished piece has this id."""


def check_piece_id(piece_id: str) -> str:
    if not PIECE_ID.match(piece_id):
        raise InvalidPieceId(f"piece_id {piece_id[:80]!r} is not a 32-character hex piece id")
    return piece_id


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


class PieceStore(Protocol):
    """What the render service writes through and the gateway reads from."""

    def write(self, piece_id: str, name: str, content: bytes) -> str: ...

    def read_all(self, piece_id: str) -> dict[str, bytes]: ...


def piece_store(settings: Settings) -> PieceStore:
    """The store the settings name: ``S3PieceStore`` when ``s3_bucket`` is set (with
    ``s3_prefix``, ``s3_endpoint``, ``s3_region``), else ``LocalPieceStore(data_dir)``."""
    if settings.s3_bucket:
        return S3PieceStore(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint,
            region_name=settings.s3_region,
        )
    return LocalPieceStore(settings.data_dir)


class LocalPieceStore:
    """Pieces under ``root/<piece_id>/``; writes are atomic (temporary file + rename), so a
    service killed mid-write never leaves half a file, and rewriting is idempotent."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, piece_id: str) -> Path:
        return self.root / check_piece_id(piece_id)

    def write(self, piece_id: str, name: str, content: bytes) -> str:
        """Store one file; returns its URI."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        folder = self._folder(piece_id)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as tmp:
            tmp.write(content)
            tmp_path = Path(tmp.name)
        os.replace(tmp_path, folder / name)
        return (folder / name).as_uri()

    def read_all(self, piece_id: str) -> dict[str, bytes]:
        """Every file of a piece by name; raises ``StorageError`` if there is none."""
        folder = self._folder(piece_id)
        if not (folder / "piece.json").exists():
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        return {
            path.name: path.read_bytes()
            for path in sorted(folder.iterdir())
            if path.is_file() and FILE_NAME.match(path.name)
        }


class S3PieceStore:
    """Pieces in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …) under
    ``s3://<bucket>/<prefix>/<piece_id>/<name>``, with ``LocalPieceStore``'s interface.

    One ``PutObject`` is atomic (a reader sees the old object or the new one whole, never
    half), so the local store's guarantees hold: a service killed mid-write leaves no half
    file, and rewriting is idempotent. Credentials come from boto3's usual chain
    (environment, config files, instance role); ``client`` may be passed ready-made.
    Needs the PyPI package ``boto3`` (imported only when this class is used).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "pieces",
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        client: Any = None,
        **client_options: object,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            try:
                import boto3
            except ImportError:
                raise StorageError(
                    "S3 storage needs the boto3 package (pip install boto3)"
                ) from None
            client = boto3.client(
                "s3", endpoint_url=endpoint_url, region_name=region_name, **client_options
            )
        self.client: Any = client

    def _folder(self, piece_id: str) -> str:
        check_piece_id(piece_id)
        return f"{self.prefix}/{piece_id}/" if self.prefix else f"{piece_id}/"

    def write(self, piece_id: str, name: str, content: bytes) -> str:
        """Store one file; returns its ``s3://`` URI."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        key = self._folder(piece_id) + name
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=content, ContentType=media_type(name)
        )
        return f"s3://{self.bucket}/{key}"

    def read_all(self, piece_id: str) -> dict[str, bytes]:
        """Every file of a piece by name; raises ``StorageError`` if there is none."""
        folder = self._folder(piece_id)
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            for item in page.get("Contents", []):
                name = item["Key"][len(folder) :]
                if FILE_NAME.match(name):
                    names.append(name)
        if "piece.json" not in names:
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        return {
            name: self.client.get_object(Bucket=self.bucket, Key=folder + name)["Body"].read()
            for name in sorted(names)
        }
