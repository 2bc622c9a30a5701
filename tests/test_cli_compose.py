"""``cantus compose`` options: --form and --duration reach the request, the plan is printed
when the first event arrives, and an invalid value exits non-zero with the server's error
naming the field. The gateway is replaced by a fake that validates as the gateway does."""

from __future__ import annotations

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

    def fake_compose(address, request, out_dir, *, on_event=lambda e: None, timeout_s=None):
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
    result = run("--form", "rondo", "--duration", "1m", "--tempo", "120", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    (request,) = gateway
    assert request.form == "rondo"
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
    assert "form AABA: A 1-4 | A' 5-8 | B 9-12 | A'' 13-16" in result.output
    assert "16/16" in result.output  # the progress bar advanced once per bar


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
        api.ComposeRequest(key="A", mode="minor", bars=32), max_bars=64
    ).spec
    assert describe_form(spec) == "AABA: A 1-8 | A' 9-16 | B 17-24 (E minor) | A'' 25-32"
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
