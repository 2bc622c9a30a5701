"""A bearer token sent as ``?token=`` (how HLS players and the audio element send it) is
accepted but never written to the gateway's access log (#22: aiohttp logged the request
line whole, token included)."""

from __future__ import annotations

import asyncio
import http.client
import logging

from cantus.settings import Settings
from cantus.stack import free_ports
from services.gateway.stations import StationDirectory
from services.gateway.web import GatewayWeb, redact_tokens

TOKEN = "s3cret-token-0123456789abcdef"


def test_a_token_in_the_query_is_accepted_and_not_logged(tmp_path, caplog) -> None:
    port = free_ports(1)[0]
    settings = Settings(
        data_dir=tmp_path, gateway_http_port=port, host="127.0.0.1", gateway_auth_token=TOKEN
    )

    def get(path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", path, headers={"Referer": f"http://x/?a=1&token={TOKEN}"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    async def main() -> list[int]:
        web = GatewayWeb(settings, None, None, StationDirectory(settings))  # type: ignore[arg-type]
        await web.start()
        try:
            return [
                await asyncio.to_thread(get, f"/stations?token={TOKEN}"),
                await asyncio.to_thread(get, "/stations?token=not-the-token-at-all"),
            ]
        finally:
            await web.stop()

    caplog.set_level(logging.INFO)
    assert asyncio.run(main()) == [200, 401]
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) == 2
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert TOKEN not in logged and "not-the-token-at-all" not in logged
    assert "GET /stations?token=REDACTED HTTP/1.1" in access[0].getMessage()


def test_only_the_token_is_redacted():
    assert redact_tokens("GET /s/seg3.ts?token=abc&x=1 HTTP/1.1") == (
        "GET /s/seg3.ts?token=REDACTED&x=1 HTTP/1.1"
    )
    assert redact_tokens("/p?a=1&TOKEN=abc") == "/p?a=1&TOKEN=REDACTED"
    assert redact_tokens("/p?mytoken=abc") == "/p?mytoken=abc"
