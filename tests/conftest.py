"""Suite-wide test settings, and the ``golden`` fixture that compares output files with
their golden copies in tests/data/golden.

Hypothesis runs derandomized by default, so a CI run explores the same examples as the last
green run and cannot fail by chance on an example no one has seen; set
``HYPOTHESIS_PROFILE=explore`` to search fresh random examples (a rare case found that way,
such as CMUdict's vowelless "sh", becomes an explicit test).

Golden files are regenerated with ``make golden`` (``CANTUS_UPDATE_GOLDEN=1`` set for the
golden test modules): every ``golden`` check then writes its output instead of comparing."""

import difflib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
"""Where the golden files lie."""

UPDATE_GOLDEN_VARIABLE = "CANTUS_UPDATE_GOLDEN"
"""Set to 1, the ``golden`` checks write their output as the new golden files."""

REGENERATE_HINT = (
    "if the change is intended, regenerate the golden files with `make golden` "
    f"({UPDATE_GOLDEN_VARIABLE}=1 pytest on the golden test modules) and review the diff"
)

MAX_DIFF_LINES = 60
"""Lines of the readable diff shown when a golden file differs."""


def _midi_listing(data: bytes) -> str:
    """A MIDI file as text, one event a line with its track and absolute tick."""
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data), charset="utf-8")
    except Exception as error:  # mido raises assorted errors on bad bytes
        return f"(not readable as MIDI: {type(error).__name__}: {error})"
    lines = [f"type {midi.type}, {midi.ticks_per_beat} ticks per quarter"]
    for number, track in enumerate(midi.tracks):
        tick = 0
        for message in track:
            tick += message.time
            lines.append(f"track {number} tick {tick}: {message.copy(time=0)!r}")
    return "\n".join(lines)


def _readable(name: str, data: bytes) -> str:
    if name.endswith(".mid"):
        return _midi_listing(data)
    return data.decode("utf-8", errors="replace")


def _differences(name: str, expected: bytes, actual: bytes) -> str:
    """Where ``actual`` first departs from ``expected`` and a diff of their readable forms."""
    first = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    diff = list(
        difflib.unified_diff(
            _readable(name, expected).splitlines(),
            _readable(name, actual).splitlines(),
            "golden",
            "actual",
            lineterm="",
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)"]
    return (
        f"{len(actual)} bytes against {len(expected)} golden, first difference at byte "
        f"{first}\n" + "\n".join(diff)
    )


def _no_normalising(data: bytes) -> bytes:
    return data


def check_golden(
    name: str, actual: bytes, *, normalise: Callable[[bytes], bytes] = _no_normalising
) -> None:
    """Assert that ``actual`` equals the golden file ``name`` once both pass through
    ``normalise`` (default: exact bytes). With ``CANTUS_UPDATE_GOLDEN=1`` write ``actual``
    as the golden file instead, unless it matches already (so parts that ``normalise``
    removes, such as dates, do not churn the file)."""
    __tracebackhide__ = True  # a failure points at the test that checked, not here
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_GOLDEN_VARIABLE) == "1":
        if not path.exists() or normalise(path.read_bytes()) != normalise(actual):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing: create it with `make golden`")
    expected = normalise(path.read_bytes())
    normalised = normalise(actual)
    if normalised != expected:
        pytest.fail(
            f"output differs from the golden file {path}; {REGENERATE_HINT}.\n"
            + _differences(name, expected, normalised)
        )


@pytest.fixture
def golden() -> Callable[..., None]:
    """``check_golden``: compare an output with its golden file (or regenerate it)."""
    return check_golden


@pytest.fixture
def fake_s3(monkeypatch):
    """A moto-mocked S3 with the bucket ``cantus``, for the S3 stores (skipped where boto3 or
    moto is not installed: S3 storage is optional)."""
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed: S3 storage is optional")
    moto = pytest.importorskip("moto", reason="moto not installed: no fake S3 to test against")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="cantus")
        yield client
