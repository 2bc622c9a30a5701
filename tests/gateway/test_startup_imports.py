"""A restarted gateway serves before it loads the editor (#22): importing the gateway's server
pulls in neither torch nor scipy nor the editor (a minute of imports on a loaded machine, which
the kill -9 campaign saw as a gateway unhealthy 135 s after its restart)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "scipy", "cantus.editing.editor")


def test_the_gateway_server_imports_neither_torch_nor_scipy_nor_the_editor():
    code = (
        "import json, sys; import services.gateway.server; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_editor_is_made_once_when_the_warm_up_and_an_edit_ask_together(tmp_path, monkeypatch):
    import asyncio
    import threading
    import types

    from cantus.settings import Settings
    from services.gateway.server import Composer

    made = []
    both_waiting = threading.Barrier(2, timeout=5)

    class Editor:  # stands in for PieceEditor (torch, Triton clients): only counted here
        def __init__(self, *args) -> None:
            made.append(args)

    editor = types.ModuleType("cantus.editing.editor")
    editor.PieceEditor = Editor
    triton = types.ModuleType("cantus.editing.triton")
    triton.triton_edit_models = lambda settings: "models"
    triton.edit_options = lambda settings: "options"
    monkeypatch.setitem(sys.modules, "cantus.editing.editor", editor)
    monkeypatch.setitem(sys.modules, "cantus.editing.triton", triton)
    composer = Composer(Settings(data_dir=tmp_path), producer=None, router=None)

    def ask():  # two threads reach the property at once
        both_waiting.wait()
        return composer.editor

    async def together() -> tuple:
        return await asyncio.gather(asyncio.to_thread(ask), asyncio.to_thread(ask))

    first, second = asyncio.run(together())
    assert first is second and len(made) == 1
    assert made[0][1:] == ("models", "options")
    assert asyncio.run(composer.editor_ready()) is first
