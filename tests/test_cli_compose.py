"""``cantus compose`` options: --form and --duration reach the request, the plan is printed
when the first event arrives, and an invalid value exits non-zero with the server's error
naming the field. The gateway is replaced by a fake that validates as the gateway does."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

import cantus.cli.compose as cli_compose
from cantus.cli.compose import ComposedPiece, ComposeFailed, describe_form, parse_duration
from cantus.cli.main import app
from cantus.events.codec import new_meta
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    """A fake ``compose``: records each request, validates it like the gateway, and streams
    the requested event and one melody bar per bar to ``on_event``."""
    requests: list[api.ComposeRequest] = []

    def fake_compose(address, request, out_dir, *, on_event=lambda e: None, **options):
        requests.append(request)
        try:
            validated = validate_compose_request(request, max_bars=256)
        except RequestError as error:
            raise ComposeFailed(str(error), grpc.StatusCode.INVALID_ARGUMENT) from None
        piece_id = "0" * 32
        requested = pb.ComposeRequested(meta=new_meta(piece_id, 0, "gateway"), spec=validated.spec)
        on_event(api.PieceEvent(requested=requested))
        for index in range(validated.spec.bars):
            bar = pb.MelodyBar(meta=new_meta(piece_id, index, "melody"), spec=validated.spec)
            on_event(api.PieceEvent(melody_bar=bar))
        folder = Path(out_dir) / piece_id
        folder.mkdir(parents=True)
        return ComposedPiece(piece_id, folder)

    monkeypatch.setattr(cli_compose, "compose", fake_compose)
    return requests


def run(*arguments: str, tmp_path: Path):
    return CliRunner().invoke(app, ["compose", "--out", str(tmp_path), *arguments])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("150", 150.0),
        ("90s", 90.0),
        ("2m", 120.0),
        ("2min", 120.0),
        ("1m30s", 90.0),
        ("2.5m", 150.0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "m", "-5", "2h", "5m5m", "1e400"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_form_and_duration_reach_the_request_and_the_plan_is_printed(gateway, tmp_path):
    result = run(
        "--form", "rondo", "--duration", "1m", "--tempo", "120", "--no-pickup", tmp_path=tmp_path
    )
    assert result.exit_code == 0, result.output
    (request,) = gateway
    assert request.form == "rondo"
    assert request.HasField("pickup") and not request.pickup
    assert request.HasField("duration_seconds") and request.duration_seconds == 60.0
    assert not request.HasField("bars")  # the length comes from the duration alone
    assert "form rondo: A 1-" in result.output
    # 60 s at 2 s a bar: 32 bars, rondo sections of 4 (one phrase each: all home), one line
    assert "A 1-4 | B 5-8 | A' 9-12 | C 13-16 | A'' 17-20 |" in result.output


def test_the_defaults_send_no_length_and_get_the_auto_form(gateway, tmp_path):
    result = run(tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    (request,) = gateway
    assert request.form == "auto" and not request.HasField("bars")
    assert not request.HasField("duration_seconds")
    assert not request.HasField("pickup")  # the server draws it as the corpus's tunes open
    # the progress bar advanced once per bar, a pickup bar's included
    # the form drawn as the corpus's tunes are shaped: four four-bar phrases, the first new
    form = re.search(r"form (\S+): (pickup 1 \| )?A (\d+)-(\d+) \|.* (\d+)-(\d+)\n", result.output)
    assert form is not None, result.output
    opened = form.group(2) is not None
    assert form.group(1).startswith("A") and int(form.group(4)) == 4 + opened
    assert int(form.group(6)) == 16 + opened and f"{16 + opened}/{16 + opened}" in result.output


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("--form", "sonata"), "form"),
        (("--duration", "10m"), "duration_seconds"),
        (("--duration", "60", "--bars", "16"), "duration_seconds"),
        (("--form", "verse-chorus", "--bars", "4"), "form"),
    ],
)
def test_invalid_values_exit_non_zero_with_the_field_named(gateway, tmp_path, arguments, field):
    result = run(*arguments, tmp_path=tmp_path)
    assert result.exit_code == 1
    assert f"error: {field}: " in result.output


def test_an_unreadable_duration_is_refused_before_any_call(gateway, tmp_path):
    result = run("--duration", "soon", tmp_path=tmp_path)
    assert result.exit_code == 2
    assert "--duration" in result.output
    assert gateway == []


def test_describe_form_marks_key_areas_away_from_home():
    spec = validate_compose_request(
        api.ComposeRequest(key="A", mode="minor", bars=32, pickup=False), max_bars=64
    ).spec
    assert describe_form(spec) == "AABA: A 1-8 | A' 9-16 | B 17-24 (E minor) | A'' 25-32"
    spec = validate_compose_request(
        api.ComposeRequest(key="A", mode="minor", bars=32, pickup=True), max_bars=64
    ).spec
    assert describe_form(spec).startswith("AABA: pickup 1 | A 2-9 | A' 10-17 | B 18-25 (E minor)")
    assert describe_form(pb.PieceSpec()) == ""


GIVEN_MELODIES = Path(__file__).parent / "data" / "given_melodies"


def test_a_harmonised_file_sends_no_key_meter_or_tempo_and_what_was_read_is_printed(
    gateway, tmp_path
):
    tune = GIVEN_MELODIES / "altdeu20-10.mid"  # B minor, 4/4, a quarter-note pickup
    result = run("--harmonize", str(tune), tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    (request,) = gateway
    assert (request.key, request.mode, request.meter) == ("", "", "")
    assert not request.HasField("tempo_bpm")
    assert "melody file (midi): track 1 'Melody' (channel 1), the only part with notes" in (
        result.output
    )
    assert "key B minor (from the key signature, mode from the notes)" in result.output
    assert "meter 4/4 (from the file)" in result.output
    assert "tempo 96 bpm (from the file)" in result.output
    assert "pickup of 1 quarter note, kept as a pickup" in result.output


def test_explicit_values_are_sent_and_the_files_own_are_shown(gateway, tmp_path):
    tune = GIVEN_MELODIES / "ballad20-47.mid"  # 2/4, E major
    result = run(
        "--harmonize", str(tune), "--key", "D", "--meter", "4/4", "--tempo", "90",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (request,) = gateway
    assert (request.key, request.meter, request.tempo_bpm) == ("D", "4/4", 90.0)
    assert "key D major (as asked), the file's: E major" in result.output
    assert "meter 4/4 (as asked), the file's: 2/4" in result.output


class _BusyThenReady:
    """A gateway that is busy for its first ``busy`` calls, then streams a finished piece."""

    def __init__(self, busy: int) -> None:
        from cantus.v1 import composer_pb2_grpc as api_grpc

        self.busy = busy
        self.calls = 0
        self.servicer_base = api_grpc.ComposerServicer

    def servicer(self):  # type: ignore[no-untyped-def]
        outer = self

        class Servicer(self.servicer_base):  # type: ignore[misc, name-defined]
            def Compose(self, request, context):  # type: ignore[no-untyped-def]
                import grpc

                from cantus.events.codec import new_meta
                from cantus.requests import RETRY_AFTER_METADATA
                from cantus.v1 import events_pb2 as pb

                outer.calls += 1
                if outer.calls <= outer.busy:
                    context.set_trailing_metadata(((RETRY_AFTER_METADATA, "2"),))
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the gateway is busy")
                piece_id = "ab" * 16
                yield api.PieceEvent(requested=pb.ComposeRequested(meta=new_meta(piece_id, 0, "g")))
                yield api.PieceEvent(completed=pb.PieceCompleted(meta=new_meta(piece_id, 1, "r")))

            def GetPiece(self, request, context):  # type: ignore[no-untyped-def]
                return api.Piece(
                    piece_id=request.piece_id,
                    files=[api.PieceFile(name="piece.json", content=b"{}")],
                )

        return Servicer()


@pytest.mark.parametrize(("busy", "succeeds"), [(2, True), (9, False)])
def test_compose_waits_for_a_busy_gateway_then_gives_up(tmp_path, busy, succeeds):
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from cantus.cli.compose import ComposeFailed, compose
    from cantus.v1 import composer_pb2_grpc as api_grpc

    gateway = _BusyThenReady(busy)
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    api_grpc.add_ComposerServicer_to_server(gateway.servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    waits: list[float] = []
    try:
        call = lambda: compose(  # noqa: E731
            f"127.0.0.1:{port}",
            api.ComposeRequest(bars=4),
            tmp_path,
            on_busy=lambda message, wait: waits.append(wait),
            busy_wait_s=30.0,
            sleep=lambda seconds: None,
        )
        if succeeds:
            piece = call()
            assert (piece.folder / "piece.json").read_bytes() == b"{}"
            assert waits == [2.0, 2.0]  # the server's hint, then doubling (2 waited so far)
        else:
            with pytest.raises(ComposeFailed) as failed:
                call()
            assert failed.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert failed.value.retry_after_s == 2.0
            assert sum(waits) <= 30.0 and waits == [2.0, 2.0, 4.0, 8.0, 16.0][: len(waits)]
    finally:
        server.stop(0)
