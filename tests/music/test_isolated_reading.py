"""The isolated reader: a read that runs past its time or memory fails as a
``MelodyFileError`` and the next read gets a fresh child."""

from __future__ import annotations

import pytest

from cantus.music.isolated_reading import IsolatedReader
from cantus.music.melody_files import MelodyFileError

from .malformed_files import SEED_MIDI, seed_files


def test_a_reader_returns_what_the_file_holds():
    reader = IsolatedReader()
    try:
        reading = reader.read(SEED_MIDI.read_bytes())
        assert (str(reading.meter), reading.pickup_ticks) == ("4/4", 480)
        assert reading.key is not None and reading.key.name == "B minor"
        with pytest.raises(MelodyFileError, match="not a MIDI, MusicXML or ABC file"):
            reader.read(b"garbage")
    finally:
        reader.close()


def test_a_read_that_runs_too_long_is_given_up_and_the_reader_recovers():
    _, xml, _ = seed_files()
    impatient = IsolatedReader(timeout_s=0.001)
    try:
        with pytest.raises(MelodyFileError, match=r"took longer than 0\.001 s"):
            impatient.read(xml)
        impatient.timeout_s = 60
        assert impatient.read(xml).file_format == "musicxml"
    finally:
        impatient.close()


def test_a_reader_out_of_memory_fails_the_read_not_the_caller():
    starved = IsolatedReader(memory_limit_bytes=64 * 1024**2)  # music21 alone needs more
    try:
        with pytest.raises(MelodyFileError):
            starved.read(SEED_MIDI.read_bytes())
    finally:
        starved.close()


def test_a_read_waits_for_the_reads_before_it_only_so_long(monkeypatch):
    import cantus.music.isolated_reading as isolated_reading

    monkeypatch.setattr(isolated_reading, "QUEUE_TIMEOUT_S", 0.05)
    reader = IsolatedReader()
    reader._lock.acquire()  # another request's slow file
    try:
        with pytest.raises(MelodyFileError, match="busy with other files"):
            reader.read(SEED_MIDI.read_bytes())
    finally:
        reader._lock.release()
        reader.close()
