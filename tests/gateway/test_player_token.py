"""The web player works on a gateway with bearer tokens (#22): opened as ``/?token=…`` it
sends the token with every request it makes. Before, it sent none, so on a secured gateway
the page loaded (the one path served without a token) and everything it asked for got 401."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PLAYER = Path(__file__).parents[2] / "services" / "gateway" / "static" / "player.html"


def script() -> str:
    return PLAYER.read_text().split("<script>", 1)[1].split("</script>", 1)[0]


def test_every_request_of_the_player_carries_the_token():
    code = script()
    fetches = re.findall(r"(?<![\w.])fetch\(", code)
    assert len(fetches) == 1  # the one in api(), which adds the Authorization header
    assert "Authorization: `Bearer ${token}`" in code
    assert re.findall(r"api\(`", code)  # the requests go through it
    for pattern in (r"new EventSource\(([^)]*)\)", r"\.src = ([^;]*);", r"\.href = ([^;]*);"):
        for target in re.findall(pattern, code):
            if "createObjectURL" in target:
                continue  # a blob of this page, not a request to the gateway
            assert target.startswith("withToken("), target


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the player's helpers")
def test_with_token_adds_the_token_to_urls_with_and_without_a_query():
    helpers = "\n".join(
        line for line in script().splitlines() if line.startswith("const withToken")
    )
    probe = (
        "const token = 'a b&c';\n"
        + helpers
        + "\nconsole.log(JSON.stringify([withToken('/p/x.mp3'), withToken('/c/events?key=C')]));"
    )
    out = subprocess.run(["node", "-e", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '["/p/x.mp3?token=a%20b%26c","/c/events?key=C&token=a%20b%26c"]'
