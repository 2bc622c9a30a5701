"""Corrupt and hostile melody files never crash or stall a reader: every file of the
generated corpus (``malformed_files``) reads or fails with a ``MelodyFileError`` that says
why, within a bounded time, in process and in the isolated reader the gateway uses."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cantus.music.isolated_reading import IsolatedReader
from cantus.music.melody_files import MelodyFileError, read_melody_file

from .malformed_files import SEED_MIDI, malformed_corpus, seed_files

MAX_SECONDS_PER_FILE = 5.0
"""Longest one malformed file may take in process (the slowest takes about 0.7 s)."""


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    return malformed_corpus()


@pytest.fixture(scope="module")
def reader():
    isolated = IsolatedReader()
    yield isolated
    isolated.close()


def _outcome(data: bytes) -> str:
    try:
        read_melody_file(data)
    except MelodyFileError as error:
        assert str(error).strip(), "an error must say what is wrong"
        return "error"
    return "read"


def test_the_corpus_covers_every_kind_of_damage(corpus):
    names = [name for name, _ in corpus]
    assert len(names) == len(set(names)) >= 120
    for kind in (
        "truncated", "bad-magic", "header-length", "track-length-huge", "huge-delta",
        "huge-note-length", "bit-flips", "random", "billion-laughs", "external-entity",
        "deep-nesting", "huge-duration", "musicxml-truncated", "abc-meter-huge", "abc-long-line",
    ):  # fmt: skip
        assert any(name.startswith(kind) for name in names), kind


@pytest.mark.timeout(300)
def test_every_malformed_file_reads_or_fails_clearly_in_bounded_time(corpus):
    outcomes: Counter[str] = Counter()
    for name, data in corpus:
        started = time.perf_counter()
        outcomes[_outcome(data)] += 1
        seconds = time.perf_counter() - started
        assert seconds < MAX_SECONDS_PER_FILE, f"{name} took {seconds:.1f} s"
    # Most damage is refused; some bit flips only change notes, and the tune still reads.
    assert outcomes["error"] >= 90 and outcomes["read"] <= 30, outcomes


def test_hostile_files_are_refused_with_the_reason(corpus):
    messages = {name: _message(data) for name, data in corpus}
    assert "declares entities" in messages["billion-laughs"]
    assert "declares entities" in messages["external-entity"]
    assert "span 139811 bars; at most 1000" in messages["huge-delta"]
    assert "Message length 268435455 exceeds" in messages["sysex-length-huge"]
    assert "ABC meter M:99999/1" in messages["abc-meter-huge"]
    assert "at most 100000" in messages["abc-long-line"]
    assert "more than a bar" in messages["huge-duration"]


def _message(data: bytes) -> str:
    try:
        read_melody_file(data)
    except MelodyFileError as error:
        return str(error)
    return "(read)"


@pytest.mark.timeout(300)
def test_the_isolated_reader_survives_the_whole_corpus(corpus, reader):
    for name, data in corpus:
        try:
            reader.read(data)
        except MelodyFileError as error:
            assert str(error).strip(), name
    assert reader.read(SEED_MIDI.read_bytes()).file_format == "midi"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_seed_files_read_or_fail_clearly(data):
    seeds = seed_files()
    original = bytearray(data.draw(st.sampled_from(seeds)))
    cut = data.draw(st.integers(0, len(original)))
    damaged = original[:cut] if data.draw(st.booleans()) else original
    for _ in range(data.draw(st.integers(0, 6))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    started = time.perf_counter()
    _outcome(bytes(damaged))
    assert time.perf_counter() - started < MAX_SECONDS_PER_FILE
