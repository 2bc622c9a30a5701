"""One long-lived LilyPond that engraves lead sheet after lead sheet.

LilyPond spends most of a short lead sheet's engraving starting up: loading its Scheme
library and parsing its init files, about 2 s of CPU before the first note (a four-note
score costs as much as a 16-bar lead sheet; docs/results/render_profile.md). A
``LilyPondServer`` pays that once. It starts ``lilypond`` with a small Scheme loop
(``SERVER_LOOP``) that reads one ``.ly`` path per line on its standard input and does for
each what ``lilypond a.ly b.ly …`` does between files (``lilypond-all`` in LilyPond's
lily.scm): typeset it into its own folder, end the session, restore the options and reset
the fonts, so no state carries from one file to the next. The output (PDF and PNG pages
with the command line's options) is what a fresh ``lilypond`` writes; it answers with one
line, ``cantus-engraving done`` or ``cantus-engraving failed``.

The server is restarted after ``MAX_FILES`` files (to bound its memory) and whenever it
dies or runs past its time; callers fall back to a one-shot ``lilypond`` when it cannot
serve.
"""

from __future__ import annotations

import atexit
import collections
import os
import select
import subprocess
import threading
import time
from pathlib import Path

from cantus.render.subprocesses import add_child_cpu, program_cpu_seconds

SERVER_LOOP = """
(begin
  (use-modules (ice-9 rdelim))
  (ly:reset-all-fonts)
  (ly:parse-init "declarations-init.ly")
  (let loop ((line (read-line)))
    (if (not (eof-object? line))
        (let ((failed #f)
              (settings (ly:all-options)))
          (chdir (dirname line))
          ((@@ (lily) lilypond-file) (lambda (key file) (set! failed #t)) line)
          (ly:check-expected-warnings)
          ((@@ (lily) session-terminate))
          (for-each (lambda (s) (ly:set-option (car s) (cdr s))) settings)
          (ly:reset-all-fonts)
          (flush-all-ports)
          (display (if failed "cantus-engraving failed\\n" "cantus-engraving done\\n"))
          (force-output)
          (loop (read-line)))))
  (exit 0))
"""
"""Scheme evaluated by ``lilypond -e``: the per-file part of lily.scm's ``lilypond-all``."""

MAX_FILES = 200
"""Files one server engraves before it is replaced by a fresh one."""


class ServerUnavailable(RuntimeError):
    """The server died, or could not start; a one-shot ``lilypond`` should be used."""


class EngravingFailed(RuntimeError):
    """LilyPond could not engrave the file (or ran past its time); the message says why."""


class LilyPondServer:
    """A running ``lilypond`` reading ``.ly`` paths from its standard input (see the
    module docstring). ``engrave(source)`` writes ``source``'s PDF and PNGs beside it."""

    def __init__(self, engraver: str, options: tuple[str, ...]) -> None:
        self.process = subprocess.Popen(
            [engraver, "--loglevel=ERROR", *options, "-e", SERVER_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.files = 0
        self._errors: collections.deque[bytes] = collections.deque(maxlen=40)
        self._cpu_counted = 0.0
        threading.Thread(target=self._drain_errors, daemon=True).start()

    def _drain_errors(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            self._errors.append(line)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def engrave(self, source: Path, timeout_s: float) -> None:
        """Typeset ``source`` (an absolute path) into its folder; raises
        ``EngravingFailed`` or ``ServerUnavailable``."""
        self._errors.clear()
        try:
            self.process.stdin.write(f"{source}\n".encode())  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
            answer = self._read_line(time.monotonic() + timeout_s)
        except (BrokenPipeError, OSError) as error:
            self.close()
            raise ServerUnavailable(f"lilypond server gone: {error}") from None
        finally:
            self._count_cpu()
        self.files += 1
        if answer == "cantus-engraving done":
            return
        errors = b"".join(self._errors).decode(errors="replace").strip()[-800:]
        raise EngravingFailed(f"lilypond failed: {errors}")

    def _read_line(self, deadline: float) -> str:
        descriptor = self.process.stdout.fileno()  # type: ignore[union-attr]
        received = b""
        while not received.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise EngravingFailed("lilypond took too long")
            ready, _, _ = select.select([descriptor], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(descriptor, 4096)
            if not chunk:
                self.close()
                raise ServerUnavailable("lilypond server exited")
            received += chunk
        return received.decode(errors="replace").strip().splitlines()[-1]

    def _count_cpu(self) -> None:
        cpu = program_cpu_seconds(self.process.pid)
        if cpu is not None:
            add_child_cpu("lilypond", cpu - self._cpu_counted)
            self._cpu_counted = cpu

    def close(self) -> None:
        if self.alive:
            self._count_cpu()
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


_servers: dict[tuple[str, tuple[str, ...]], LilyPondServer] = {}
_servers_lock = threading.Lock()


def engrave_with_server(engraver: str, options: tuple[str, ...], source: Path, timeout_s: float):
    """Engrave ``source`` on the shared server for ``engraver`` and ``options`` (started on
    first use, replaced when dead or worn); one file at a time."""
    with _servers_lock:
        server = _servers.get((engraver, options))
        if server is None or not server.alive or server.files >= MAX_FILES:
            if server is not None:
                server.close()
            server = _servers[(engraver, options)] = LilyPondServer(engraver, options)
        server.engrave(source, timeout_s)


@atexit.register
def close_servers() -> None:
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()
