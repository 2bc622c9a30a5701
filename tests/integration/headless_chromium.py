"""A minimal Chrome DevTools Protocol client for tests: start Debian's headless ``chromium``
on a page, evaluate JavaScript in it, take a screenshot. (Playwright would download its own
browser; the protocol over one websocket is all these tests need.)"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class HeadlessPage:
    """``async with HeadlessPage(url) as page: await page.evaluate("1 + 1")``."""

    def __init__(self, url: str, *, width: int = 1280, height: int = 900) -> None:
        self.url = url
        self.size = (width, height)
        self._ids = itertools.count(1)

    async def __aenter__(self) -> HeadlessPage:
        self._profile = tempfile.TemporaryDirectory(prefix="cantus-chromium-")
        self._process = subprocess.Popen(
            [
                chromium_binary() or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "--remote-debugging-port=0",
                self.url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._session: aiohttp.ClientSession | None = None
        self._socket = None
        try:
            port = await asyncio.to_thread(self._devtools_port)
            self._session = aiohttp.ClientSession()
            targets: list = []
            for _ in range(50):
                async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = [t for t in await response.json() if t["type"] == "page"]
                if targets:
                    break
                await asyncio.sleep(0.2)
            if not targets:
                raise RuntimeError("chromium opened no page")
            self._socket = await self._session.ws_connect(
                targets[0]["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
            )
        except BaseException:
            await self.__aexit__()  # no browser or profile left behind by a failed start
            raise
        return self

    def _devtools_port(self) -> int:
        assert self._process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                # keep reading what Chromium logs, or a full pipe would block it
                threading.Thread(target=self._process.stderr.read, daemon=True).start()
                return int(found.group(1))
        raise RuntimeError("chromium did not open its DevTools port")

    async def __aexit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._profile.cleanup()

    async def call(self, method: str, **params) -> dict:  # type: ignore[no-untyped-def]
        call_id = next(self._ids)
        await self._socket.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads((await self._socket.receive()).data)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression: str):  # type: ignore[no-untyped-def]
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.evaluate(expression):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{expression} did not hold within {timeout_s:.0f} s")

    async def screenshot(self, path: Path) -> None:
        result = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(result["data"]))
