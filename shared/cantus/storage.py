"""Where finished pieces are kept: one folder per piece id, files named by the service.

File and folder names never come from user input: a piece id is checked to be the
hex id the gateway minted, and file names are fixed by the code (``piece.mid``, …).

Versions (issue #18): a piece as composed is version 1, its files directly in the piece's
folder; each edit makes the next version, its files in ``v<N>/`` inside that folder, and
never touches an older one. A version exists once its ``piece.json`` is stored, which is
written last: an edit that fails half-way leaves files nobody can read as a version.

An edit claims its version number before it writes anything (``claim_version``): the
claim is an exclusive create (the ``v<N>/`` folder on disk, a conditional ``PutObject``
of ``v<N>/.claim`` on S3), so two edits of one piece at once, in one process or in two
gateways, never get the same number. A failed edit gives its number back
(``release_version``); one killed before it could leaves a gap in the numbers, never a
version made of two edits' files.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Generator, Iterable
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
    ".pb": "application/x-protobuf",
}


class StorageError(ValueError):
    """A bad piece id or file name, or a missing piece."""


class InvalidPieceId(StorageError):
    """A piece id that is not 32 hex characters (a client's mistake, not a missing piece)."""


class PieceNotFound(StorageError):
    """No finished piece has this id."""


class VersionNotFound(StorageError):
    """The piece exists, but not this version of it."""


def check_piece_id(piece_id: str) -> str:
    if not PIECE_ID.match(piece_id):
        raise InvalidPieceId(f"piece_id {piece_id[:80]!r} is not a 32-character hex piece id")
    return piece_id


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def version_folder(version: int) -> str:
    """The folder of ``version`` inside the piece's folder: "" for version 1, ``v<N>/``
    for an edit."""
    if version < 1:
        raise VersionNotFound(f"version {version} does not exist (versions start at 1)")
    return "" if version == 1 else f"v{version}/"


VERSION_FOLDER = re.compile(r"^v([0-9]{1,6})$")
CLAIM_FILE = ".claim"
"""On S3, the object whose conditional create claims a version (a folder there is only a
prefix); its name is not a FILE_NAME, so it is never read as one of the version's files."""
MAX_CLAIM_TRIES = 1000


class VersionClaimConflict(StorageError):
    """No free version number could be claimed (other edits kept taking them)."""


CHUNK_BYTES = 1024 * 1024
"""What ``read_chunks`` reads at a time: a large piece is streamed, never held whole (#22)."""


class PieceStore(Protocol):
    """What the render service writes through and the gateway reads from."""

    def write(self, piece_id: str, name: str, content: bytes, *, version: int = 1) -> str: ...

    def read_all(self, piece_id: str, version: int = 1) -> dict[str, bytes]: ...

    def read_files(
        self, piece_id: str, names: Iterable[str], version: int = 1
    ) -> dict[str, bytes]: ...

    def file_sizes(self, piece_id: str, version: int = 1) -> dict[str, int]: ...

    def read_chunks(
        self, piece_id: str, name: str, version: int = 1, chunk_bytes: int = CHUNK_BYTES
    ) -> Generator[bytes, None, None]: ...

    def versions(self, piece_id: str) -> list[int]: ...

    def claim_version(self, piece_id: str) -> int: ...

    def release_version(self, piece_id: str, version: int) -> None: ...


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

    def _folder(self, piece_id: str, version: int = 1) -> Path:
        return self.root / check_piece_id(piece_id) / version_folder(version)

    def write(self, piece_id: str, name: str, content: bytes, *, version: int = 1) -> str:
        """Store one file of ``version``; returns its URI."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        folder = self._folder(piece_id, version)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as tmp:
            tmp.write(content)
            tmp_path = Path(tmp.name)
        os.replace(tmp_path, folder / name)
        return (folder / name).as_uri()

    def read_all(self, piece_id: str, version: int = 1) -> dict[str, bytes]:
        """Every file of one version of a piece by name; raises ``PieceNotFound`` if the
        piece is not there, ``VersionNotFound`` if that version is not."""
        folder = self._folder(piece_id, version)
        if not (folder / "piece.json").exists():
            if version != 1 and (self._folder(piece_id) / "piece.json").exists():
                raise VersionNotFound(f"piece {piece_id} has no version {version}")
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        return {
            path.name: path.read_bytes()
            for path in sorted(folder.iterdir())
            if path.is_file() and FILE_NAME.match(path.name)
        }

    def file_sizes(self, piece_id: str, version: int = 1) -> dict[str, int]:
        """Every file of one version by name, with its size in bytes, reading none of them;
        raises as ``read_all``."""
        folder = self._folder(piece_id, version)
        if not (folder / "piece.json").exists():
            self.read_all(piece_id, version)  # raises PieceNotFound / VersionNotFound
        return {
            path.name: path.stat().st_size
            for path in sorted(folder.iterdir())
            if path.is_file() and FILE_NAME.match(path.name)
        }

    def read_chunks(
        self, piece_id: str, name: str, version: int = 1, chunk_bytes: int = CHUNK_BYTES
    ) -> Generator[bytes, None, None]:
        """One file of one version, ``chunk_bytes`` at a time (a rewrite replaces the file
        whole, so an open file reads as one version of it); ``StorageError`` if absent."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        try:
            file = (self._folder(piece_id, version) / name).open("rb")
        except FileNotFoundError:
            raise StorageError(f"piece {piece_id} version {version} has no {name}") from None
        with file:
            while data := file.read(chunk_bytes):
                yield data

    def read_files(self, piece_id: str, names: Iterable[str], version: int = 1) -> dict[str, bytes]:
        """The named files of one version (those it has), without reading the others (an
        edit needs three small files, not the audio exports); raises as ``read_all``."""
        folder = self._folder(piece_id, version)
        if not (folder / "piece.json").exists():
            self.read_all(piece_id, version)  # raises PieceNotFound / VersionNotFound
        found = {}
        for name in names:
            if FILE_NAME.match(name) and (folder / name).is_file():
                found[name] = (folder / name).read_bytes()
        return found

    def versions(self, piece_id: str) -> list[int]:
        """The piece's stored versions, ascending ([] for no finished piece)."""
        folder = self._folder(piece_id)
        if not (folder / "piece.json").exists():
            return []
        found = [1]
        for path in folder.iterdir():
            match = VERSION_FOLDER.match(path.name)
            if match and (path / "piece.json").exists():
                found.append(int(match.group(1)))
        return sorted(found)

    def claim_version(self, piece_id: str) -> int:
        """The next version number, above every stored or claimed one, claimed by creating
        its folder exclusively (``mkdir`` fails if another edit made it first: that edit
        has the number, and this one tries the next)."""
        folder = self._folder(piece_id)
        if not (folder / "piece.json").exists():
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        taken = [
            int(match.group(1))
            for path in folder.iterdir()
            if (match := VERSION_FOLDER.match(path.name)) and path.is_dir()
        ]
        version = max([1, *taken]) + 1
        for _ in range(MAX_CLAIM_TRIES):
            try:
                (folder / version_folder(version)).mkdir()
            except FileExistsError:
                version += 1
                continue
            return version
        raise VersionClaimConflict(f"piece {piece_id}: no free version number after {version}")

    def release_version(self, piece_id: str, version: int) -> None:
        """Give back a claimed version that was never stored (its piece.json missing): its
        folder and any files a failed edit left in it are removed. A stored version is
        never touched."""
        if version < 2:
            return
        folder = self._folder(piece_id, version)
        if not folder.is_dir() or (folder / "piece.json").exists():
            return
        for path in folder.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # something else in it: a gap, never a mix
            folder.rmdir()


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

    def _folder(self, piece_id: str, version: int = 1) -> str:
        check_piece_id(piece_id)
        base = f"{self.prefix}/{piece_id}/" if self.prefix else f"{piece_id}/"
        return base + version_folder(version)

    def write(self, piece_id: str, name: str, content: bytes, *, version: int = 1) -> str:
        """Store one file of ``version``; returns its ``s3://`` URI."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        key = self._folder(piece_id, version) + name
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=content, ContentType=media_type(name)
        )
        return f"s3://{self.bucket}/{key}"

    def _names(self, folder: str) -> list[str]:
        """Every key under ``folder``, less the folder (names in sub-folders keep theirs)."""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            for item in page.get("Contents", []):
                names.append(item["Key"][len(folder) :])
        return names

    def read_all(self, piece_id: str, version: int = 1) -> dict[str, bytes]:
        """Every file of one version of a piece by name; raises ``PieceNotFound`` if the
        piece is not there, ``VersionNotFound`` if that version is not."""
        folder = self._folder(piece_id, version)
        names = [name for name in self._names(folder) if FILE_NAME.match(name)]
        if "piece.json" not in names:
            if version != 1 and self.versions(piece_id):
                raise VersionNotFound(f"piece {piece_id} has no version {version}")
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        return {
            name: self.client.get_object(Bucket=self.bucket, Key=folder + name)["Body"].read()
            for name in sorted(names)
        }

    def file_sizes(self, piece_id: str, version: int = 1) -> dict[str, int]:
        """Every file of one version by name, with its size in bytes (from the listing);
        raises as ``read_all``."""
        folder = self._folder(piece_id, version)
        sizes: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            for item in page.get("Contents", []):
                name = item["Key"][len(folder) :]
                if FILE_NAME.match(name):
                    sizes[name] = int(item["Size"])
        if "piece.json" not in sizes:
            self.read_all(piece_id, version)  # raises PieceNotFound / VersionNotFound
        return dict(sorted(sizes.items()))

    def read_chunks(
        self, piece_id: str, name: str, version: int = 1, chunk_bytes: int = CHUNK_BYTES
    ) -> Generator[bytes, None, None]:
        """One object, ``chunk_bytes`` at a time from its body's stream."""
        if not FILE_NAME.match(name):
            raise StorageError(f"file name {name!r} is not allowed")
        key = self._folder(piece_id, version) + name
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise StorageError(f"piece {piece_id} version {version} has no {name}") from None
        try:
            yield from body.iter_chunks(chunk_bytes)
        finally:
            body.close()

    def read_files(self, piece_id: str, names: Iterable[str], version: int = 1) -> dict[str, bytes]:
        """The named files of one version (those it has); raises as ``read_all``."""
        folder = self._folder(piece_id, version)
        stored = set(self._names(folder))
        if "piece.json" not in stored:
            self.read_all(piece_id, version)  # raises PieceNotFound / VersionNotFound
        return {
            name: self.client.get_object(Bucket=self.bucket, Key=folder + name)["Body"].read()
            for name in names
            if FILE_NAME.match(name) and name in stored
        }

    def versions(self, piece_id: str) -> list[int]:
        """The piece's stored versions, ascending ([] for no finished piece)."""
        names = self._names(self._folder(piece_id))
        if "piece.json" not in names:
            return []
        found = [1]
        for name in names:
            folder, _, file_name = name.partition("/")
            match = VERSION_FOLDER.match(folder)
            if match and file_name == "piece.json":
                found.append(int(match.group(1)))
        return sorted(found)

    def claim_version(self, piece_id: str) -> int:
        """The next version number, above every stored or claimed one, claimed by a
        conditional create of ``v<N>/.claim`` (``If-None-Match: *``: S3 answers 412 when
        the object exists, i.e. another edit claimed N; this one tries the next)."""
        names = self._names(self._folder(piece_id))
        if "piece.json" not in names:
            raise PieceNotFound(f"piece {piece_id} is not finished or does not exist")
        taken = [
            int(match.group(1))
            for name in names
            if (match := VERSION_FOLDER.match(name.partition("/")[0])) and "/" in name
        ]
        version = max([1, *taken]) + 1
        for _ in range(MAX_CLAIM_TRIES):
            key = self._folder(piece_id, version) + CLAIM_FILE
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*")
            except Exception as error:
                code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
                if str(code) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                    version += 1
                    continue
                raise
            return version
        raise VersionClaimConflict(f"piece {piece_id}: no free version number after {version}")

    def release_version(self, piece_id: str, version: int) -> None:
        """Give back a claimed version that was never stored (no piece.json): its claim and
        any files a failed edit left are deleted; a stored version is never touched."""
        if version < 2:
            return
        folder = self._folder(piece_id, version)
        names = self._names(folder)
        if "piece.json" in names:
            return
        for name in names:
            self.client.delete_object(Bucket=self.bucket, Key=folder + name)
