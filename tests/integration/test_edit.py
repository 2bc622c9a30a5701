"""Editing a stored piece against the real stack (issue #18): a composed piece's bars
regenerated through gRPC Edit (melody_lm decodes, melody_score chooses the closing bars,
the harmony model harmonises them), only those bars and their segments streamed, the new
version beside the old one, and bad edits refused naming the field."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from cantus.cli.compose import compose, open_channel
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc

pytestmark = pytest.mark.integration


def test_regenerating_bars_makes_a_new_version_streaming_only_them(gateway_address, tmp_path):
    started = time.monotonic()
    piece = compose(
        gateway_address,
        api.ComposeRequest(bars=8, tempo_bpm=120, mood="calm", seed=5),
        tmp_path,
        timeout_s=300,
    )
    piece_id = piece.piece_id
    with open_channel(gateway_address) as channel:
        stub = api_grpc.ComposerStub(channel)
        original = stub.GetPiece(api.GetPieceRequest(piece_id=piece_id), timeout=60)
        assert original.version == 1 and original.latest_version == 1
        assert "parts.pb" in {f.name for f in original.files}

        request = api.EditRequest(
            piece_id=piece_id,
            seed=9,
            regenerate=api.RegenerateBars(bars=api.BarRange(first_bar=3, last_bar=6)),
        )
        sent = time.monotonic()
        events, first_bar_s = [], None
        for event in stub.Edit(request, timeout=300):
            if event.WhichOneof("event") == "melody_bar" and first_bar_s is None:
                first_bar_s = time.monotonic() - sent
            events.append(event)
        print(f"compose {sent - started:.1f} s; edit first bar {first_bar_s:.2f} s")

        kinds = [e.WhichOneof("event") for e in events]
        assert kinds[0] == "edited" and kinds[-1] == "completed"
        assert events[0].edited.version == 2 and events[0].edited.from_version == 1
        melody = [e.melody_bar.meta.index for e in events if e.HasField("melody_bar")]
        harmony = [e.harmony_bar for e in events if e.HasField("harmony_bar")]
        segments = [e.render_segment for e in events if e.HasField("render_segment")]
        assert melody == [2, 3, 4, 5]
        assert [h.meta.index for h in harmony] == [2, 3, 4, 5]
        assert all(h.harmonizer.startswith("harmony@") for h in harmony), harmony[0].harmonizer
        assert [s.meta.index for s in segments] == [0, 1] and all(s.audio for s in segments)

        latest = stub.GetPiece(api.GetPieceRequest(piece_id=piece_id), timeout=60)
        assert latest.version == 2 and latest.latest_version == 2
        again = stub.GetPiece(api.GetPieceRequest(piece_id=piece_id, version=1), timeout=60)
        assert {f.name: f.content for f in again.files} == {
            f.name: f.content for f in original.files
        }
        summary = json.loads(next(f.content for f in latest.files if f.name == "piece.json"))
        [entry] = summary["edit_history"]
        assert entry["from_version"] == 1 and entry["bars"] == [3, 6]
        assert len(entry["infill"]["suffix_logprobs"]) >= 2  # melody_score answered
        before = json.loads(next(f.content for f in original.files if f.name == "piece.json"))
        for index in (0, 1, 6, 7):
            assert summary["melody_per_bar"][index] == before["melody_per_bar"][index]

        for bad, code, field in [
            (
                api.EditRequest(
                    piece_id=piece_id,
                    regenerate=api.RegenerateBars(bars=api.BarRange(first_bar=7, last_bar=9)),
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "regenerate.bars.last_bar",
            ),
            (
                api.EditRequest(
                    piece_id=piece_id, from_version=5, change_sound=api.ChangeSound(tempo_bpm=90)
                ),
                grpc.StatusCode.NOT_FOUND,
                "from_version",
            ),
            (
                api.EditRequest(piece_id="0" * 32, change_sound=api.ChangeSound(tempo_bpm=90)),
                grpc.StatusCode.NOT_FOUND,
                "piece_id",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.Edit(bad, timeout=60))
            assert raised.value.code() == code and field in raised.value.details()
        missing = pytest.raises(grpc.RpcError)
        with missing as raised:
            stub.GetPiece(api.GetPieceRequest(piece_id=piece_id, version=7), timeout=60)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert "version" in raised.value.details()
        assert stub.GetPiece(api.GetPieceRequest(piece_id=piece_id)).latest_version == 2
