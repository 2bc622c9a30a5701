"""Hostile input (#22): generated invalid requests through the gateway's gRPC and HTTP sides
and raw records on the broker's topics, and what became of each.

``generate`` makes ``count`` cases from a seed, drawn from makers that each break one field in
one way: out of range, not a number, the wrong kind of value, oversized strings and files,
malformed MIDI / MusicXML / ABC / zip files, hostile station configs (YAML bombs, tags, wrong
shapes), feedback and listener signals, path traversal in piece ids and file names, oversized
headers, and undecodable or mislabelled Kafka records. Each case names the field its rejection
must name.

``run_cases`` sends them and counts, per case: rejected (a gRPC error or HTTP 4xx; a Kafka
record in the dead-letter topic), the rejection naming its field, a crash (gRPC UNKNOWN /
INTERNAL / UNAVAILABLE, HTTP 5xx, a dropped connection, the gateway unhealthy afterwards), or
accepted (an invalid request let through).

``in_process_gateway`` serves the gateway's own Composer, StationApi and GatewayWeb on
loopback without a broker: the lean CI run. Its producer records what the gateway would
publish, which no invalid request may reach. ``cantus bench chaos --scenario hostile`` runs
every channel against a private stack (cantus.bench.clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import math
import random
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import grpc

from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc

KNOWN_STATION = "hostile-radio"
"""A station the gateway knows (its state is on the station-state topic), so that feedback
and signals to it are checked past the station's name."""
KNOWN_PIECE = "ab" * 16
"""A piece in the known station's program."""

MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    channel: str  # grpc | http | kafka
    target: str  # an RPC, an HTTP route, or a topic kind
    field: str  # what the rejection must name ("" for Kafka records: the letter is the check)
    label: str  # how the field is broken
    payload: Any


@dataclass
class Outcome:
    case: Case
    status: str = ""
    rejected: bool = False
    names_field: bool = False
    crashed: bool = False
    accepted: bool = False
    detail: str = ""


# --- generating ---------------------------------------------------------------------------------


def _junk(rng: random.Random, longest: int = 200) -> str:
    alphabet = "abcXYZ019 _-./\\:;'\"<>{}[]%$#@!\x00\x7f\u00e9\u4e2d\U0001f3b5\u202e\ufeff"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, longest)))


def _huge(rng: random.Random) -> str:
    return rng.choice("xé中") * rng.choice([10_001, 100_000, 1_000_000])


def _bad_number(rng: random.Random, low: float, high: float) -> float:
    return rng.choice(
        [math.nan, math.inf, -math.inf, -1.0, low - 0.01, high + 0.01, 1e308, -1e308, high * 1000]
    )


def _midi_like(rng: random.Random) -> bytes:
    header = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0"
    track = b"MTrk" + (4000).to_bytes(4, "big") + bytes(rng.randrange(256) for _ in range(40))
    return rng.choice(
        [
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 3000))),
            b"MThd" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 60))),
            header,  # a header and no track
            header + track,  # a track that claims more bytes than it has
            header[:-2] + b"\x00\x00" + track,  # zero ticks per beat
            b"MThd\xff\xff\xff\xff" + b"\x00" * 20,  # a header length of 4 GiB
            header + b"MTrk\x00\x00\x00\x04\x00\xff\x51\x03",  # a tempo event cut short
        ]
    )


def _xml_like(rng: random.Random) -> bytes:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
            for i in range(9)
        )
        + "]><score-partwise><part-list/>&lol8;</score-partwise>"
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<score-partwise><work><work-title>&e;</work-title></work></score-partwise>"
    )
    return rng.choice(
        [
            b"<score-partwise><part><measure>",
            b'<?xml version="1.0"?><score-partwise version="4.0"></score-partwise>',
            b"<score-partwise><part id='P1'><measure number='1'><note><pitch><step>Q</step>"
            b"<octave>99</octave></pitch><duration>-4</duration></note></measure></part>"
            b"</score-partwise>",
            bomb.encode(),
            external.encode(),
            b"<score-timewise>" + b"<measure>" * 5000,
        ]
    )


def _zip_like(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("META-INF/container.xml", rng.choice(["<container/>", "not xml", ""]))
        archive.writestr("../../escape.xml", "<score-partwise/>")
    return rng.choice(
        [b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(200)), buffer.getvalue()]
    )


def _abc_like(rng: random.Random) -> bytes:
    return rng.choice(
        [b"X:1\nK:Q\n", b"X:1\nT:t\nM:99/0\nK:C\nCDEF|\n", b"X:1\nK:C\n" + b"z" * 50_000 + b"\n"]
    )


def _melody_file(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["midi", "xml", "zip", "abc", "oversized"])
    if kind == "oversized":
        return "oversized file", b"MThd" + b"\x00" * 1_000_001
    return f"malformed {kind}", {
        "midi": _midi_like,
        "xml": _xml_like,
        "zip": _zip_like,
        "abc": _abc_like,
    }[kind](rng)


def _compose(rng: random.Random, max_bars: int) -> Case:
    def case(name: str, label: str, **fields: Any) -> Case:
        return Case("grpc", "Compose", name, label, api.ComposeRequest(**fields))

    which = rng.randrange(14)
    if which == 0:
        return case("key", "unknown", key=rng.choice(["H", "C##", "Cb#", "do", "\x00", _junk(rng)]))
    if which == 1:
        return case("mode", "unknown", mode=rng.choice(["dorian", "minor2", _junk(rng)]))
    if which == 2:
        return case("tempo_bpm", "out of range", tempo_bpm=_bad_number(rng, 40, 240))
    if which == 3:
        meter = rng.choice(["4/0", "0/4", "99/4", "a/b", "4/4/4", "4/3", "-4/4", "4/", "1e9/4"])
        return case("meter", "malformed", meter=meter)
    if which == 4:
        return case("bars", "out of range", bars=rng.choice([0, max_bars + 1, 2**32 - 1]))
    if which == 5:
        name = rng.choice(
            [
                "style",
                "mood",
                "palette",
                "form",
                "loudness_preset",
                "lyrics_language",
                "lyrics_register",
            ]
        )
        value = rng.choice([_junk(rng), _huge(rng)])
        if name in ("lyrics_language", "lyrics_register"):
            return case(name, "unknown", lyrics_theme="the sea", **{name: value})
        return case(name, "unknown", **{name: value})
    if which == 6:
        theme = rng.choice([_huge(rng), " \t\n" * rng.randint(1, 50), "!?…—" * rng.randint(1, 20)])
        return case("lyrics_theme", "oversized or empty", lyrics_theme=theme)
    if which == 7:
        scheme = rng.choice(["Z", "A", "ABCDEFGHA", "ab1", _junk(rng, 40)])
        return case(
            "lyrics_rhyme_scheme", "malformed", lyrics_theme="rain", lyrics_rhyme_scheme=scheme
        )
    if which == 8:
        if rng.random() < 0.3:
            return case("duration_seconds", "with bars", bars=8, duration_seconds=30.0)
        return case("duration_seconds", "out of range", duration_seconds=_bad_number(rng, 1, 300))
    if which == 9:
        return case("tempo_end_bpm", "out of range", tempo_end_bpm=_bad_number(rng, 40, 240))
    if which == 10:
        return case("vocals", "without lyrics", vocals=True)
    if which == 11:
        label, data = _melody_file(rng)
        name = rng.choice(["continue_midi", "harmonize_midi"])
        return case(name, label, **{name: data})
    if which == 12:
        data = _midi_like(rng)
        return case("harmonize_midi", "both files", continue_midi=data, harmonize_midi=data)
    return case(
        "bars",
        "out of range with others valid",
        key="D",
        style="folk",
        bars=max_bars + rng.randint(1, 10**6),
    )


def _piece_id(rng: random.Random) -> tuple[str, str]:
    return rng.choice(
        [
            ("piece_id", "../../etc/passwd"),
            ("piece_id", ""),
            ("piece_id", "a" * rng.choice([31, 33, 10_000])),
            ("piece_id", "..%2f..%2f" + "0" * 22),
            ("piece_id", "0" * 16 + "/" + "0" * 15),
            ("piece_id", "G" * 32),
            ("piece_id", _junk(rng)),
            ("piece_id", "cd" * 16),  # well-formed, not stored: NOT_FOUND
        ]
    )


def _get_piece(rng: random.Random) -> Case:
    name, value = _piece_id(rng)
    target = rng.choice(["GetPiece", "GetPieceFiles", "Edit"])
    if target == "Edit":
        request: Any = api.EditRequest(
            piece_id=value,
            regenerate=api.RegenerateBars(bars=api.BarRange(first_bar=1, last_bar=2)),
        )
    else:
        request = api.GetPieceRequest(piece_id=value, version=rng.choice([0, 1, 2**32 - 1]))
    return Case("grpc", target, name, "malformed or unknown", request)


def _config_yaml(rng: random.Random) -> tuple[str, str]:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    return rng.choice(
        [
            ("yaml bomb", bomb),
            ("python tag", "!!python/object/apply:os.system ['true']"),
            ("not yaml", "{{{: ]["),
            ("a list", "- folk\n- celtic\n"),
            ("a number", "42"),
            ("unknown key", "styles: {folk: 1}\nexplode: true\n"),
            ("negative bars", "styles: {folk: 1}\nbars: -4\n"),
            ("zero bars", "styles: {folk: 1}\nbars: 0\n"),
            ("huge bars", "styles: {folk: 1}\nbars: 100000000000\n"),
            ("unknown style", "styles: {polka-metal: 1}\n"),
            ("no styles", "styles: {}\n"),
            ("negative weight", "styles: {folk: -1}\n"),
            ("nan weight", "styles: {folk: .nan}\n"),
            ("tempo reversed", "styles: {folk: 1}\ntempo_bpm: [300, 10]\n"),
            ("bad meter", "styles: {folk: 1}\nmeters: ['5/0']\n"),
            ("huge buffer", "styles: {folk: 1}\nbuffer_pieces: 1000000000\n"),
            ("wrong type", "styles: folk\n"),
            ("oversized", "styles: {folk: 1}\n# " + "x" * 2_000_000 + "\n"),
            ("deep nesting", "styles: " + "[" * 5000 + "]" * 5000 + "\n"),
        ]
    )


def _station(rng: random.Random) -> Case:
    which = rng.randrange(7)
    if which == 0:
        name = rng.choice(["", "../etc", "Radio", "a" * 41, "a b", "ra\x00dio", _junk(rng)])
        request = st.StartStationRequest(name=name, config_yaml="styles: {folk: 1}\n")
        return Case("grpc", "StartStation", "name", "malformed", request)
    if which == 1:
        label, config = _config_yaml(rng)
        request = st.StartStationRequest(name="radio-x", config_yaml=config)
        return Case("grpc", "StartStation", "config_yaml", label, request)
    if which == 2:
        target = rng.choice(["GetStation", "StopStation"])
        name = rng.choice(["nowhere", "../etc", _junk(rng), "x" * 100_000])
        return Case("grpc", target, "name", "unknown", st.StationName(name=name))
    if which == 3:
        station, piece, kind = KNOWN_STATION, KNOWN_PIECE, "like"
        broken = rng.choice(["station", "piece_id", "kind"])
        if broken == "station":
            station = rng.choice(["nowhere", "", _junk(rng)])
        elif broken == "piece_id":
            piece = rng.choice(["cd" * 16, "", _junk(rng)])
        else:
            kind = rng.choice(["hate", "", "LIKE", _junk(rng)])
        request = st.StationFeedback(station=station, piece_id=piece, kind=kind)
        return Case("grpc", "SendFeedback", broken, "unknown", request)
    if which == 4:
        return _plan(rng)
    if which == 5:
        return _signals(rng)
    return _plan(rng)


def _plan(rng: random.Random) -> Case:
    which = rng.randrange(5)
    if which == 0:
        return Case(
            "grpc",
            "PlanSession",
            "plan_name",
            "malformed",
            st.PlanRequest(plan_name=rng.choice(["../x", "A", "a" * 41])),
        )
    if which == 1:
        return Case(
            "grpc", "PlanSession", "preset", "unknown", st.PlanRequest(preset=_junk(rng, 40))
        )
    if which == 2:
        label, config = _config_yaml(rng)
        return Case(
            "grpc",
            "PlanSession",
            "session_yaml",
            label,
            st.PlanRequest(preset="relax", session_yaml=config),
        )
    if which == 3:
        return Case(
            "grpc",
            "PlanSession",
            "minutes",
            "out of range",
            st.PlanRequest(
                start=CALM,
                target=CALMER,
                minutes=rng.choice([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308]),
                pieces=0,
            ),
        )
    state = st.ListenerState(tempo_bpm=_bad_number(rng, 40, 240), energy=0.5, valence=0.5)
    return Case(
        "grpc",
        "PlanSession",
        "start",
        "out of range",
        st.PlanRequest(
            start=state, target=st.ListenerState(tempo_bpm=80, energy=0.3, valence=0.5), minutes=10
        ),
    )


CALM = st.ListenerState(tempo_bpm=90, energy=0.5, valence=0.5)
CALMER = st.ListenerState(tempo_bpm=70, energy=0.3, valence=0.5)


def _signal(rng: random.Random) -> tuple[str, st.ListenerSignal]:
    now = time.time_ns()
    good: dict[str, Any] = {
        "station": KNOWN_STATION,
        "measured_unix_ns": now,
        "kind": st.HEART_RATE,
        "value": 70.0,
    }
    broken = rng.choice(["station", "measured_unix_ns", "kind", "value", "valence"])
    if broken == "station":
        good["station"] = rng.choice(["", "nowhere"])
    elif broken == "measured_unix_ns":
        good["measured_unix_ns"] = rng.choice([0, now + 10**13, 2**63 - 1])
    elif broken == "kind":
        good["kind"] = rng.choice([0, 99, 2**31 - 1])
    elif broken == "value":
        good["value"] = _bad_number(rng, 30, 220)
    else:
        good.update(kind=st.MOOD, value=0.0, valence=_bad_number(rng, 0, 1), arousal=0.5)
    return broken, st.ListenerSignal(**good)


def _signals(rng: random.Random) -> Case:
    broken, signal = _signal(rng)
    return Case("grpc", "SendSignals", f"signals[0].{broken}", "invalid", [signal])


def _http(rng: random.Random, max_bars: int) -> Case:
    which = rng.randrange(6)
    if which == 0:
        name, value = rng.choice(
            [
                ("tempo", rng.choice(["abc", "nan", "inf", "-1", "1e999", "", "0x10"])),
                ("bars", rng.choice(["-1", "abc", "1.5", str(max_bars + 1), "99999999999", ""])),
                ("duration", rng.choice(["x", "-5", "nan", "1e400"])),
                ("seed", rng.choice(["-1", "abc", str(2**64), "1.5"])),
                ("key", rng.choice(["H", _junk(rng, 60)])),
                ("meter", rng.choice(["4/0", "x"])),
                ("style", _junk(rng, 60)),
                ("mood", _junk(rng, 60)),
                ("form", _junk(rng, 60)),
                ("palette", _junk(rng, 60)),
                ("lyrics", rng.choice([" ", "!?", "x" * 2000, "\u4e2d\u6587"])),  # zh theme, en
                ("lang", rng.choice(["fr", "xx", "q" + _junk(rng, 60)])),
                ("register", rng.choice(["qu", "song", "q" + _junk(rng, 60)])),  # no lyrics
                ("rhyme", rng.choice(["ABCDEFGHI", "A", "XYZ", "Z" + _junk(rng, 60)])),
                ("vocals", rng.choice(["maybe", "2", "yes please"])),
            ]
        )
        return Case(
            "http",
            "GET /compose/events",
            name,
            "query",
            ("GET", "/compose/events", {name: value}, None, {}),
        )
    if which == 1:
        body, broken = rng.choice(
            [
                (b"not json", "body"),
                (b"[1, 2]", "body"),
                (b'"piece_id"', "body"),
                (json.dumps({"kind": "like"}).encode(), "piece_id"),
                (json.dumps({"piece_id": KNOWN_PIECE}).encode(), "kind"),
                (json.dumps({"piece_id": KNOWN_PIECE, "kind": "hate"}).encode(), "kind"),
                (json.dumps({"piece_id": KNOWN_PIECE, "kind": ["like"]}).encode(), "kind"),
                (json.dumps({"piece_id": "cd" * 16, "kind": "like"}).encode(), "piece_id"),
                (json.dumps({"piece_id": "x" * 100_000, "kind": "skip"}).encode(), "piece_id"),
                (b"{" * 100_000, "body"),
            ]
        )
        return Case(
            "http",
            "POST feedback",
            broken,
            "body",
            (
                "POST",
                f"/stations/{KNOWN_STATION}/feedback",
                {},
                body,
                {"Content-Type": "application/json"},
            ),
        )
    if which == 2:
        station = rng.choice(["nowhere", "..", "%2e%2e", "a" * 5000])
        route = rng.choice(
            ["live.m3u8", "seg1.ts", "playlist.m3u", "playlist.json", "session.json", "session.csv"]
        )
        return Case(
            "http",
            f"GET station {route}",
            "name",
            "unknown station",
            ("GET", f"/stations/{station}/{route}", {}, None, {}),
        )
    if which == 3:
        _, piece = _piece_id(rng)
        piece = piece or "none"
        return Case(
            "http",
            "GET piece file",
            "piece_id",
            "malformed or unknown",
            ("GET", f"/pieces/{_quote(piece)}/piece.json", {}, None, {}),
        )
    if which == 4:
        name = rng.choice(["..%2f..%2fetc%2fpasswd", "piece.exe", "%00", ".hidden", "a" * 300])
        return Case(
            "http",
            "GET piece file",
            "file",
            "malformed name",
            ("GET", f"/pieces/{KNOWN_PIECE}/{name}", {}, None, {}),
        )
    size = rng.choice([9_000, 20_000, 100_000])
    return Case(
        "http",
        "GET /stations",
        "header",
        "oversized header",
        ("GET", "/stations", {}, None, {"X-Hostile": "x" * size}),
    )


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


KAFKA_TOPICS = (
    "compose_requested",
    "melody_bar",
    "harmony_bar",
    "lyric_line",
    "render_segment",
    "piece_completed",
    "station_command",
    "station_feedback",
    "station_signal",
)
"""Topics with a consumer that must dead-letter a poison record."""


def _kafka(rng: random.Random, max_bars: int) -> Case:
    from cantus.events.codec import encode_event, new_meta
    from cantus.stations.records import encode_station_record

    kind = rng.choice(KAFKA_TOPICS)
    which = rng.randrange(5)
    if which == 0:
        value, headers, label = (
            bytes(rng.randrange(256) for _ in range(rng.randint(0, 500))),
            [],
            "garbage, no headers",
        )
    elif which == 1:
        value = bytes(rng.randrange(256) for _ in range(rng.randint(1, 500)))
        headers = [("ce_type", _junk(rng, 40).encode("utf-8", "replace"))]
        label = "garbage, wrong ce_type"
    elif which == 2:
        # a well-formed event of another kind under this topic's name
        _, value, headers = encode_event(
            pb.DeadLetter(meta=new_meta("ef" * 16, 0, "x"), reason="x"), source="hostile"
        )
        label = "another kind's event"
    elif kind.startswith("station"):
        label = "invalid station record"
        if kind == "station_command":
            command = st.StationCommand(
                name=rng.choice(["../etc", "radio-y"]),
                action=rng.choice(["start", "explode"]),
                config_yaml=_config_yaml(rng)[1][:10_000],
            )
            if command.action == "start" and command.name == "radio-y":
                command.config_yaml = rng.choice(["{{{", "styles: {}\n", "bars: -1\n"])
            _, value, headers = encode_station_record(kind, command, command.name, source="hostile")
        elif kind == "station_signal":
            _, signal = _signal(rng)
            if signal.station == "nowhere":
                signal.kind = 99  # type: ignore[assignment]
            _, value, headers = encode_station_record(
                kind, signal, signal.station or "x", source="hostile"
            )
        else:
            feedback = st.StationFeedback(station=KNOWN_STATION, piece_id=KNOWN_PIECE, kind="like")
            _, value, headers = encode_station_record(
                kind, feedback, KNOWN_STATION, source="hostile"
            )
            value = value[: max(1, len(value) // 2)] + b"\xff\xff\xff"  # cut and corrupted
    else:
        label = "the right headers, a body cut short"
        _, value, headers = encode_event(
            pb.ComposeRequested(meta=new_meta("ef" * 16, 0, "x"), spec=pb.PieceSpec(bars=4)),
            source="hostile",
        )
        if kind != "compose_requested":
            headers = [(k, v) for k, v in headers if k != "ce_type"] + [
                ("ce_type", b"cantus.v1." + kind.encode())
            ]
        value = value[:-3] + b"\xff\xff\xff\xff"
    return Case("kafka", kind, "", label, (value, headers))


def generate(
    count: int,
    seed: int,
    *,
    max_bars: int = 64,
    channels: tuple[str, ...] = ("grpc", "http", "kafka"),
) -> list[Case]:
    """``count`` invalid cases; the same seed gives the same cases."""
    rng = random.Random(seed)
    makers: list[tuple[float, Callable[[], Case]]] = []
    if "grpc" in channels:
        makers += [
            (0.30, lambda: _compose(rng, max_bars)),
            (0.08, lambda: _get_piece(rng)),
            (0.22, lambda: _station(rng)),
        ]
    if "http" in channels:
        makers.append((0.25, lambda: _http(rng, max_bars)))
    if "kafka" in channels:
        makers.append((0.15, lambda: _kafka(rng, max_bars)))
    weights = [w for w, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(count)]


# --- sending --------------------------------------------------------------------------------


CRASH_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}


def _names(detail: str, name: str) -> bool:
    """The rejection starts with the field's name ("field: problem", "field.sub: …")."""
    return detail.strip().startswith(name)


def send_grpc(channel: grpc.Channel, case: Case, timeout_s: float = 60.0) -> Outcome:
    outcome = Outcome(case)
    composer = api_grpc.ComposerStub(channel)
    stations = st_grpc.StationStub(channel)
    try:
        if case.target in ("Compose", "Edit", "GetPieceFiles"):
            call = getattr(composer, case.target)(case.payload, timeout=timeout_s)
            try:
                first = next(iter(call))
            except StopIteration:
                first = None
            call.cancel()
            outcome.accepted = first is not None
            outcome.status = "OK"
            outcome.detail = "accepted: " + str(first)[:100]
            return outcome
        if case.target == "SendSignals":
            reply = stations.SendSignals(iter(case.payload), timeout=timeout_s)
        elif case.target == "GetPiece":
            reply = composer.GetPiece(case.payload, timeout=timeout_s)
        else:
            reply = getattr(stations, case.target)(case.payload, timeout=timeout_s)
        outcome.accepted, outcome.status = True, "OK"
        outcome.detail = "accepted: " + str(reply)[:100]
    except grpc.RpcError as error:
        code, detail = error.code(), error.details() or ""
        outcome.status, outcome.detail = code.name, detail
        outcome.crashed = code in CRASH_CODES
        outcome.rejected = not outcome.crashed and code != grpc.StatusCode.CANCELLED
        outcome.names_field = outcome.rejected and _names(detail, case.field)
    return outcome


def send_http(host: str, port: int, case: Case, timeout_s: float = 60.0) -> Outcome:
    from urllib.parse import urlencode

    outcome = Outcome(case)
    method, path, query, body, headers = case.payload
    if query:
        path = f"{path}?{urlencode(query)}"
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(4096).decode("utf-8", "replace")
        outcome.status = str(response.status)
        outcome.detail = text.strip()[:300]
        outcome.crashed = response.status >= 500
        outcome.rejected = 400 <= response.status < 500
        outcome.accepted = response.status < 400
        outcome.names_field = outcome.rejected and _names(text, case.field)
    except (OSError, http.client.HTTPException) as error:
        outcome.status, outcome.crashed = "connection", True
        outcome.detail = f"{type(error).__name__}: {error}"
    finally:
        connection.close()
    return outcome


def run_cases(
    cases: list[Case],
    *,
    grpc_address: str,
    http_port: int,
    kafka: Callable[[list[Case]], list[Outcome]] | None = None,
    healthy: Callable[[], bool] = lambda: True,
    log: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """Send every case and say what became of it; a case after which the gateway is not
    healthy counts as a crash."""
    outcomes: list[Outcome] = []
    options = [
        ("grpc.max_send_message_length", MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(grpc_address, options=options) as channel:
        for index, case in enumerate(cases):
            if case.channel == "grpc":
                outcome = send_grpc(channel, case)
            elif case.channel == "http":
                outcome = send_http("127.0.0.1", http_port, case)
            else:
                continue
            if outcome.crashed or (index % 200 == 0 and not healthy()):
                outcome.crashed = True
            outcomes.append(outcome)
            if (index + 1) % 500 == 0:
                log(f"{index + 1} of {len(cases)} sent")
    if kafka is not None:
        outcomes += kafka([c for c in cases if c.channel == "kafka"])
    return outcomes


# --- counting -------------------------------------------------------------------------------------


@dataclass
class HostileReport:
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    where: str = ""

    def by(self, key: Callable[[Outcome], str]) -> dict[str, list[Outcome]]:
        groups: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            groups.setdefault(key(outcome), []).append(outcome)
        return dict(sorted(groups.items()))

    @property
    def defects(self) -> list[Outcome]:
        """Crashes, accepted invalid requests, and rejections that do not name the field."""
        return [
            o
            for o in self.outcomes
            if o.crashed or o.accepted or not o.rejected or (o.case.field and not o.names_field)
        ]


def _row(name: str, group: list[Outcome]) -> str:
    named = [o for o in group if o.case.field]
    return (
        f"| {name} | {len(group)} | {sum(o.rejected for o in group)} | "
        f"{sum(o.names_field for o in named)} of {len(named)} | "
        f"{sum(o.crashed for o in group)} | {sum(o.accepted for o in group)} |"
    )


def format_section(report: HostileReport, *, command: str) -> str:
    outcomes = report.outcomes
    lines = [
        "## Hostile input",
        "",
        f"Made by `{command}` ({len(outcomes)} cases, seed {report.seed}, "
        f"{report.wall_s:.0f} s; {report.where}).",
        "",
        "Each case breaks one field in one way (cantus.bench.hostile). Rejected: a gRPC error "
        "or an HTTP 4xx; for a Kafka record, a letter in the dead-letter topic naming its "
        "topic and offset. Crash: gRPC UNKNOWN / INTERNAL / UNAVAILABLE, HTTP 5xx, a dropped "
        "connection, or the gateway unhealthy after it. Accepted: an invalid request let through.",
        "",
        "| channel | cases | rejected | naming the field | crashes | accepted |",
        "|---|---|---|---|---|---|",
    ]
    for name, group in report.by(lambda o: o.case.channel).items():
        lines.append(_row(name, group))
    lines.append(_row("**all**", outcomes))
    lines += [
        "",
        "| target | cases | rejected | naming the field | crashes | accepted |",
        "|---|---|---|---|---|---|",
    ]
    for name, group in report.by(lambda o: f"{o.case.channel} {o.case.target}").items():
        lines.append(_row(name, group))
    codes = Counter(f"{o.case.channel} {o.status}" for o in outcomes)
    lines += ["", "Answers: " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items())) + "."]
    defects = report.defects
    lines += ["", f"Cases not cleanly rejected: {len(defects)}."]
    seen: set[tuple[str, str, str]] = set()
    for outcome in defects:
        key = (outcome.case.target, outcome.case.field, outcome.case.label)
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"* {outcome.case.channel} {outcome.case.target}, {outcome.case.field or 'record'} "
            f"({outcome.case.label}): {outcome.status} {outcome.detail[:160]!r}"
        )
    return "\n".join(lines) + "\n"


# --- a gateway in this process --------------------------------------------------------------


class RecordingProducer:
    """What the gateway would publish; an invalid request must never get here."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.sent.append((topic, value))


class IdleRouter:
    """A router with no broker behind it: an accepted piece's stream waits for events that
    never come (the client sees it accepted and cancels)."""

    def subscribe(self, piece_id: str, *, replay: bool = False) -> asyncio.Queue:
        return asyncio.Queue()

    def unsubscribe(self, piece_id: str, queue: asyncio.Queue) -> None:
        return None


@contextlib.contextmanager
def in_process_gateway(settings: Settings) -> Iterator[tuple[str, int, RecordingProducer]]:
    """The gateway's gRPC servicers and web side on loopback, without a broker: the gRPC
    address, the HTTP port and the producer. The station directory knows ``KNOWN_STATION``
    with ``KNOWN_PIECE`` in its program, from a station-state record fed to it."""
    from aiohttp import web

    from cantus.stations.records import encode_station_record
    from cantus.storage import piece_store
    from services.gateway.server import Composer
    from services.gateway.stations import StationApi, StationDirectory
    from services.gateway.web import GatewayWeb

    producer = RecordingProducer()
    loop = asyncio.new_event_loop()
    ready: Future[tuple[int, int]] = Future()
    stop = asyncio.Event()

    async def serve() -> None:
        piece_store(settings).write(KNOWN_PIECE, "piece.json", b"{}")
        directory = StationDirectory(settings)
        status = st.StationStatus(
            name=KNOWN_STATION,
            config_yaml="styles: {folk: 1}\n",
            running=True,
            program=[st.ProgramEntry(piece_id=KNOWN_PIECE, position=0, status="playing")],
        )
        _, value, headers = encode_station_record(
            "station_state", status, KNOWN_STATION, source="bench"
        )
        directory.on_record(settings.topics.station_state, value, headers, int(time.time() * 1000))
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MESSAGE_BYTES),
            ]
        )
        api_grpc.add_ComposerServicer_to_server(Composer(settings, producer, IdleRouter()), server)  # type: ignore[arg-type]
        st_grpc.add_StationServicer_to_server(StationApi(settings, producer, directory), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        site_runner = web.AppRunner(GatewayWeb(settings, producer, IdleRouter(), directory).app())  # type: ignore[arg-type]
        await site_runner.setup()
        site = web.TCPSite(site_runner, "127.0.0.1", 0)
        await site.start()
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set_result((port, http_port))
        await stop.wait()
        await site_runner.cleanup()
        await server.stop(0)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    port, http_port = ready.result(timeout=60)
    try:
        yield f"127.0.0.1:{port}", http_port, producer
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
