"""A generated corpus of malformed and hostile melody files, for the robustness tests.

``malformed_corpus`` derives every file from a few valid ones (an Essen tune as MIDI,
MusicXML and ABC) with a seeded random generator, so the corpus is the same on every run:
truncations, bad headers, huge chunk lengths and delta times, bit flips, random bytes,
XML bombs and deep nesting, absurd durations in MusicXML and ABC, and text that is no
format at all. Each entry is (name, bytes); the names say what was done.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Iterator
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "data" / "given_melodies"
SEED_MIDI = FIXTURES / "altdeu20-10.mid"


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (at most 4 bytes: 0 .. 2**28 - 1)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _midi(events: bytes, *, division: int = 480, fmt: int = 0, tracks: int = 1) -> bytes:
    header = b"MThd" + struct.pack(">LHHH", 6, fmt, tracks, division)
    return header + b"MTrk" + struct.pack(">L", len(events)) + events


def _note(delta: int, pitch: int, length: int, channel: int = 0) -> bytes:
    return (
        _vlq(delta)
        + bytes([0x90 | channel, pitch, 100])
        + _vlq(length)
        + bytes([0x80 | channel, pitch, 0])
    )


def _end() -> bytes:
    return b"\x00\xff\x2f\x00"


def midi_cases(seed_midi: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    yield "empty", b""
    yield "header-only", seed_midi[:14]
    for cut in sorted(rng.sample(range(1, len(seed_midi)), 12)):
        yield f"truncated-at-{cut}", seed_midi[:cut]
    yield "bad-magic", b"MThx" + seed_midi[4:]
    yield "header-length-2", seed_midi[:4] + struct.pack(">L", 2) + seed_midi[8:]
    yield "header-length-huge", seed_midi[:4] + struct.pack(">L", 0xFFFFFFFF) + seed_midi[8:]
    yield "format-7", seed_midi[:8] + struct.pack(">H", 7) + seed_midi[10:]
    yield "65535-tracks", seed_midi[:10] + struct.pack(">H", 0xFFFF) + seed_midi[12:]
    yield "division-0", seed_midi[:12] + b"\x00\x00" + seed_midi[14:]
    yield "division-1", _midi(_note(0, 60, 1) + _note(0, 62, 1) + _end(), division=1)
    yield "smpte", seed_midi[:12] + b"\xe7\x28" + seed_midi[14:]
    yield "track-length-huge", seed_midi[:18] + struct.pack(">L", 0xFFFFFFF0) + seed_midi[22:]
    yield "track-length-zero", _midi(b"")[:18] + struct.pack(">L", 0) + _note(0, 60, 480)
    # Huge delta times: a note 2**28 ticks after the start, or at 1 tick per quarter.
    yield "huge-delta", _midi(_note(0, 60, 480) + _note(2**28 - 1, 62, 480) + _end())
    yield (
        "huge-delta-low-division",
        _midi(_note(0, 60, 1) + _note(2**28 - 1, 62, 1) + _end(), division=1),
    )
    yield "huge-note-length", _midi(_note(0, 60, 2**28 - 1) + _end())
    yield "many-huge-deltas", _midi(b"".join(_note(2**27, 60, 1) for _ in range(200)) + _end())
    yield "five-byte-vlq", _midi(b"\xff\xff\xff\xff\x7f\x90\x3c\x64" + _end())
    yield "sysex-length-huge", _midi(b"\x00\xf0" + _vlq(2**28 - 1) + b"\x01\x02" + _end())
    yield "meta-length-huge", _midi(b"\x00\xff\x03" + _vlq(2**28 - 1) + b"name" + _end())
    yield "tempo-zero", _midi(b"\x00\xff\x51\x03\x00\x00\x00" + _note(0, 60, 480) + _end())
    yield (
        "time-signature-0-over-1",
        _midi(b"\x00\xff\x58\x04\x00\x00\x18\x08" + _note(0, 60, 480) + _end()),
    )
    yield (
        "time-signature-255-over-2^255",
        _midi(b"\x00\xff\x58\x04\xff\xff\x18\x08" + _note(0, 60, 480) + _end()),
    )
    yield "key-signature-garbage", _midi(b"\x00\xff\x59\x02\x7f\x05" + _note(0, 60, 480) + _end())
    yield "running-status-first", _midi(b"\x00\x3c\x64" + _end())
    yield "undefined-status", _midi(b"\x00\xf4" + _end())
    yield (
        "unfinished-notes",
        _midi(b"".join(_vlq(0) + b"\x90" + bytes([p, 90]) for p in range(128))),
    )
    yield (
        "chord-storm",
        _midi(
            b"".join(_vlq(1) + bytes([0x90 | (i % 9), 40 + i % 80, 90]) for i in range(20_000))
            + _end()
        ),
    )
    yield "notes-past-range", _midi(_note(0, 127, 480) + _note(0, 0, 480) + _end())
    for index in range(24):
        flipped = bytearray(seed_midi)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(flipped))
            flipped[position] ^= 1 << rng.randrange(8)
        yield f"bit-flips-{index}", bytes(flipped)
    for index in range(8):
        size = rng.choice([1, 13, 14, 100, 5000])
        yield f"random-after-header-{index}", seed_midi[:14] + rng.randbytes(size)
        yield f"random-{index}", rng.randbytes(size)


MUSICXML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _musicxml(measures: str, *, divisions: int = 1) -> bytes:
    return (
        MUSICXML_HEAD
        + '<score-partwise version="4.0"><part-list><score-part id="P1"><part-name>Voice'
        + '</part-name></score-part></part-list><part id="P1"><measure number="1">'
        + f"<attributes><divisions>{divisions}</divisions><time><beats>4</beats>"
        + "<beat-type>4</beat-type></time></attributes>"
        + measures
        + "</measure></part></score-partwise>"
    ).encode()


def _xml_note(step: str, duration: int | str) -> str:
    return (
        f"<note><pitch><step>{step}</step><octave>4</octave></pitch>"
        f"<duration>{duration}</duration><type>quarter</type></note>"
    )


def musicxml_cases(seed_xml: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    yield (
        "billion-laughs",
        (
            MUSICXML_HEAD
            + '<!DOCTYPE score-partwise [<!ENTITY a "aaaaaaaaaa">'
            + "".join(
                f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
            )
            + "]><score-partwise>&j;</score-partwise>"
        ).encode(),
    )
    yield (
        "external-entity",
        (
            MUSICXML_HEAD
            + '<!DOCTYPE score-partwise [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + "<score-partwise>&x;</score-partwise>"
        ).encode(),
    )
    yield "deep-nesting", (MUSICXML_HEAD + "<score-partwise>" + "<a>" * 50_000).encode()
    yield "not-xml-after-root", b"<score-partwise" + rng.randbytes(500)
    yield "huge-duration", _musicxml(_xml_note("C", 10**12))
    yield "negative-duration", _musicxml(_xml_note("C", -4))
    yield "nan-duration", _musicxml(_xml_note("C", "NaN"))
    yield "divisions-zero", _musicxml(_xml_note("C", 1), divisions=0)
    yield "huge-divisions", _musicxml(_xml_note("C", 1), divisions=10**15)
    yield (
        "ten-thousand-measures",
        MUSICXML_HEAD.encode()
        + (
            '<score-partwise><part-list><score-part id="P1"/></part-list><part id="P1">'
            + "".join(
                f'<measure number="{i}"><attributes><divisions>1</divisions></attributes>'
                + _xml_note("C", 4)
                + "</measure>"
                for i in range(10_000)
            )
            + "</part></score-partwise>"
        ).encode(),
    )
    yield "no-parts", (MUSICXML_HEAD + "<score-partwise></score-partwise>").encode()
    yield "html", b"<html><body>not a score</body></html>"
    yield (
        "latin-1",
        MUSICXML_HEAD.encode() + "<score-partwise>\xe9</score-partwise>".encode("latin-1"),
    )
    for cut in sorted(rng.sample(range(40, len(seed_xml)), 6)):
        yield f"musicxml-truncated-at-{cut}", seed_xml[:cut]
    for index in range(6):
        flipped = bytearray(seed_xml)
        for _ in range(rng.randint(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(32, 127)
        yield f"musicxml-byte-noise-{index}", bytes(flipped)


def abc_cases(seed_abc: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    head = b"X:1\nT:t\nM:4/4\nL:1/8\nK:C\n"
    yield "abc-huge-length", head + b"C99999999 D|\n"
    yield "abc-huge-fraction", head + b"C/99999999 D|\n"
    yield "abc-endless-tuplet", head + b"(9" * 2000 + b"C|\n"
    yield "abc-long-line", head + b"CDEF" * 50_000 + b"\n"
    yield "abc-no-notes", head
    yield "abc-meter-zero", b"X:1\nM:0/0\nK:C\nCDEF|\n"
    yield "abc-meter-huge", b"X:1\nM:99999/1\nK:C\nCDEF|\n"
    yield "abc-bad-key", b"X:1\nM:4/4\nK:H#########\nCDEF|\n"
    yield "abc-only-bars", head + b"|" * 10_000 + b"\n"
    yield "abc-deep-chords", head + b"[" * 5000 + b"C" + b"]" * 5000 + b"\n"
    for index in range(6):
        noisy = bytearray(seed_abc)
        for _ in range(rng.randint(1, 20)):
            noisy[rng.randrange(len(noisy))] = rng.randrange(32, 127)
        yield f"abc-byte-noise-{index}", bytes(noisy)
    yield "text", b"Dear musician, here is my tune.\n"


@functools.cache
def seed_files() -> tuple[bytes, bytes, bytes]:
    """The valid files the corpus is made from: the MIDI fixture, and the same tune as
    MusicXML and ABC (music21's export of its parse)."""
    import warnings

    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from cantus.melody.corpus import _abc_jobs
    from cantus.music.music21_io import parse_abc_tune

    midi = SEED_MIDI.read_bytes()
    job = next(j for j in _abc_jobs("essen", None) if j.tune_id == "essen/altdeu20.abc#10")
    abc = job.payload.encode("utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xml = GeneralObjectExporter(parse_abc_tune(job.payload)).parse()
    return midi, xml, abc


def malformed_corpus(seed: int = 16) -> list[tuple[str, bytes]]:
    """Every malformed file, in a fixed order; the same for the same ``seed``."""
    rng = random.Random(seed)
    midi, xml, abc = seed_files()
    return [*midi_cases(midi, rng), *musicxml_cases(xml, rng), *abc_cases(abc, rng)]
