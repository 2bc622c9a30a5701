"""Reading a user's melody file in a child process, so that no file can crash or stall a
service: the child has a memory limit, each read a time limit, and a child that runs
over either is killed and replaced.

The parsers are pure Python and capped in size (``melody_files``), but music21 is large
and was not written for hostile input, so the gateway never runs it in its own process.
The child (``python -m cantus.music.isolated_reading``) imports the readers once, says it
is ready, then answers one request at a time over its stdin and stdout: a 4-byte
big-endian length and the file's bytes in, a length and a JSON object out, either
``{"reading": ...}`` (``MelodyReading.to_json``) or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

from cantus.music.melody_files import MelodyFileError
from cantus.music.melody_reading import MelodyReading

READ_TIMEOUT_S = 15.0
"""Longest one file may take to read; an Essen tune in MusicXML takes about 0.2 s."""

QUEUE_TIMEOUT_S = 2 * READ_TIMEOUT_S
"""Longest a read waits for the reads before it (one at a time); beyond it the file is
refused as the reader being busy, so slow files cannot hold every request for long."""

START_TIMEOUT_S = 120.0
"""Longest a fresh child may take to import the readers (music21) and say it is ready."""

MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Address space of the child; a file that needs more fails to read instead of starving
the machine."""

_READY = b"ready"
_LENGTH = struct.Struct(">I")


class _Deadline(Exception):
    """The child did not answer in time."""


class _ChildGone(Exception):
    """The child's pipe closed: it died (or was killed by its limits)."""


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    chunks, remaining = [], size
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise _Deadline
        chunk = os.read(fd, min(remaining, 1 << 16))
        if not chunk:
            raise _ChildGone
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float) -> bytes:
    (size,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size, deadline))
    return _read_exact(fd, size, deadline)


class IsolatedReader:
    """A child process that reads melody files; ``read`` is thread-safe (one read at a
    time) and starts, or restarts, the child as needed."""

    def __init__(
        self,
        *,
        timeout_s: float = READ_TIMEOUT_S,
        memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_limit_bytes = memory_limit_bytes
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env["CANTUS_READER_MEMORY_LIMIT"] = str(self.memory_limit_bytes)
        child = subprocess.Popen(
            [sys.executable, "-m", "cantus.music.isolated_reading"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert child.stdout is not None
        try:
            if _read_frame(child.stdout.fileno(), time.monotonic() + START_TIMEOUT_S) != _READY:
                raise _ChildGone
        except (_Deadline, _ChildGone):
            self._kill(child)
            raise MelodyFileError(
                "the melody file reader could not start (a server fault)"
            ) from None
        return child

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> None:
        child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()

    def read(self, data: bytes) -> MelodyReading:
        """The file read by the child; ``MelodyFileError`` for a file it cannot read, one
        that takes longer than ``timeout_s`` or needs more memory than the child has."""
        if not self._lock.acquire(timeout=QUEUE_TIMEOUT_S):
            raise MelodyFileError(
                "the melody file reader is busy with other files; try again in a minute"
            )
        try:
            if self._child is None or self._child.poll() is not None:
                self._child = self._start()
            child = self._child
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(_LENGTH.pack(len(data)) + data)
                child.stdin.flush()
                answer = json.loads(
                    _read_frame(child.stdout.fileno(), time.monotonic() + self.timeout_s)
                )
            except _Deadline:
                self._kill(child)
                self._child = None
                raise MelodyFileError(
                    f"reading the file took longer than {self.timeout_s:g} s; it was given up"
                ) from None
            except (_ChildGone, BrokenPipeError, ValueError):
                self._kill(child)
                self._child = None
                raise MelodyFileError(
                    "the reader stopped while reading the file (it needs more memory than "
                    "a melody file may)"
                ) from None
        finally:
            self._lock.release()
        if "error" in answer:
            raise MelodyFileError(str(answer["error"]))
        try:
            return MelodyReading.from_json(answer["reading"])
        except (KeyError, TypeError, ValueError) as error:  # MusicError is a ValueError
            raise MelodyFileError(f"the reader answered nonsense: {error}") from None

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._kill(self._child)
                self._child = None


_shared_reader: IsolatedReader | None = None
_shared_lock = threading.Lock()


def read_melody_file_isolated(data: bytes) -> MelodyReading:
    """``melody_files.read_melody_file`` run in the process's shared ``IsolatedReader``."""
    global _shared_reader
    with _shared_lock:
        if _shared_reader is None:
            _shared_reader = IsolatedReader()
        reader = _shared_reader
    return reader.read(data)


def _serve() -> None:
    """The child: limit memory, import the readers, then answer requests until stdin ends."""
    import resource
    import warnings

    limit = int(os.environ.get("CANTUS_READER_MEMORY_LIMIT", MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    import music21  # noqa: F401  # imported before "ready", so reads are not charged for it

    from cantus.music.melody_files import read_melody_file

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def send(payload: bytes) -> None:
        stdout.write(_LENGTH.pack(len(payload)) + payload)
        stdout.flush()

    send(_READY)
    while True:
        header = stdin.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        (size,) = _LENGTH.unpack(header)
        data = stdin.read(size)
        answer: dict[str, str | dict]
        try:
            answer = {"reading": read_melody_file(data).to_json()}
        except MelodyFileError as error:
            answer = {"error": str(error)}
        except Exception as error:  # never let a file end the child
            answer = {"error": f"cannot read the file: {type(error).__name__}: {error}"[:500]}
        send(json.dumps(answer).encode())


if __name__ == "__main__":
    _serve()
