"""A musician's melody file, in whatever form it comes, read into a ``MelodyReading``.

``read_melody_file`` takes the bytes of a Standard MIDI File, a MusicXML file (plain or
compressed .mxl) or an ABC tune, tells them apart by their content (the request carries
no file name), reads the melody with ``midi_io`` or music21 (``music21_io``) and settles
the key: the key signature when it states the mode, else the major or relative minor the
signature allows whose tonic ends the tune, or failing that the one music21's key
analysis of the notes hears, else (no signature) the analysis alone.
A major mode is not taken as stated: notation programs write it whatever the tune
(MIDI's mode byte 0, MusicXML's <mode>major</mode>), and minor tunes are common.

Every failure is a ``MelodyFileError`` whose message says what is wrong. The input may be
hostile, so sizes are capped here and in the readers; ``isolated_reading`` runs this in a
child process with a time and memory limit besides.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
import zipfile

from cantus.music.key_analysis import heard_key, heard_key_among
from cantus.music.melody_reading import (
    FORMAT_ABC,
    FORMAT_MIDI,
    FORMAT_MUSICXML,
    KEY_FROM_NOTES,
    KEY_FROM_SIGNATURE,
    KEY_FROM_SIGNATURE_AND_NOTES,
    KeySignature,
    MelodyReading,
)
from cantus.music.notes import Key, Meter, Mode, MusicError

MAX_FILE_BYTES = 1_000_000
"""Largest melody file accepted (a long tune in MusicXML is about 200 kB)."""

MAX_UNZIPPED_BYTES = 5_000_000
"""Largest MusicXML document a compressed .mxl file may unpack to (a zip bomb guard)."""

MAX_ABC_BYTES = 100_000
"""Largest ABC file accepted: a long tune is a few kilobytes, and music21's ABC reader
takes seconds for every 10,000 notes."""

_XML_HEAD_BYTES = 4_096
_ABC_METER = re.compile(r"(?:^|\[)M:([^\]\n]*)", re.MULTILINE)
_ABC_UNIT_LENGTH = re.compile(r"(?:^|\[)L:([^\]\n]*)", re.MULTILINE)
_ABC_FIELD_LINE = re.compile(rb"^\s*[XTMLKQ]:", re.MULTILINE)
_ABC_TUNE_START = re.compile(r"^X:", re.MULTILINE)


class MelodyFileError(MusicError):
    """A melody file cannot be read; the message says what is wrong (and where)."""


def sniff_format(data: bytes) -> str:
    """``midi``, ``musicxml``, ``mxl`` (compressed MusicXML) or ``abc`` by content;
    ``MelodyFileError`` for anything else."""
    if data.startswith(b"MThd"):
        return FORMAT_MIDI
    if data.startswith(b"PK\x03\x04"):
        return "mxl"
    head = data[:_XML_HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") and (b"<score-partwise" in head or b"<score-timewise" in head):
        return FORMAT_MUSICXML
    if head.startswith(b"<"):
        raise MelodyFileError("an XML file that is not MusicXML (no <score-partwise>)")
    if _ABC_FIELD_LINE.search(data[:_XML_HEAD_BYTES]) and re.search(rb"^\s*K:", data, re.M):
        return FORMAT_ABC
    raise MelodyFileError(
        f"not a MIDI, MusicXML or ABC file (it starts with {data[:8]!r})"
        if data
        else "the file is empty"
    )


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if what == "ABC":
            return data.decode("latin-1")  # older ABC collections are Latin-1
        raise MelodyFileError(f"the {what} is not UTF-8 text") from None


def _unzip_mxl(data: bytes) -> bytes:
    """The MusicXML document inside a compressed .mxl file, its size checked before it is
    unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [
                info
                for info in archive.infolist()
                if not info.filename.startswith("META-INF/")
                and info.filename.lower().endswith((".xml", ".musicxml"))
            ]
            if not names:
                raise MelodyFileError("the compressed MusicXML (.mxl) holds no .xml score")
            score = names[0]
            if score.file_size > MAX_UNZIPPED_BYTES:
                raise MelodyFileError(
                    f"the compressed MusicXML unpacks to {score.file_size} bytes; "
                    f"at most {MAX_UNZIPPED_BYTES}"
                )
            with archive.open(score) as member:
                content = member.read(MAX_UNZIPPED_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as error:
        raise MelodyFileError(f"a damaged compressed MusicXML (.mxl) file: {error}") from None
    if len(content) > MAX_UNZIPPED_BYTES:
        raise MelodyFileError(f"the compressed MusicXML unpacks to over {MAX_UNZIPPED_BYTES} bytes")
    return content


def _read_musicxml(data: bytes) -> MelodyReading:
    from cantus.music import music21_io

    text = _text(data, "MusicXML")
    if "<!ENTITY" in text:
        # Entity declarations are how XML bombs and external-file reads are built; no
        # notation program writes them.
        raise MelodyFileError("the MusicXML declares entities (<!ENTITY>), which are refused")
    from music21 import converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(text, format="musicxml")
    except Exception as error:  # music21 raises many unrelated types on bad input
        raise MelodyFileError(
            f"music21 cannot read the MusicXML: {type(error).__name__}: {error}"[:500]
        ) from None
    reading = music21_io.read_score_melody(score, file_format=FORMAT_MUSICXML)
    signature = reading.key_signature
    if signature is not None and signature.mode_stated and signature.key.mode is Mode.MAJOR:
        # <mode>major</mode> is what notation programs write by default.
        reading = _with_signature(reading, KeySignature(signature.key, mode_stated=False))
    return reading


def _check_abc_fields(text: str) -> None:
    """Refuse meters and unit note lengths no tune has before music21 sees them: its ABC
    reader lays out a bar of M:99999/1 for minutes, in ever more memory."""
    for value in _ABC_METER.findall(text):
        value = value.strip()
        if value in ("C", "C|", "none", ""):
            continue
        try:
            Meter.parse(value)
        except MusicError as error:
            raise MelodyFileError(f"ABC meter M:{value}: {error}") from None
    for value in _ABC_UNIT_LENGTH.findall(text):
        value = value.strip()
        numerator, _, denominator = value.partition("/")
        if not (
            numerator.strip() == "1"
            and denominator.strip() in ("1", "2", "4", "8", "16", "32", "64")
        ):
            raise MelodyFileError(f"ABC unit note length L:{value} is not 1/1 .. 1/64")


def _read_abc(data: bytes) -> MelodyReading:
    from cantus.music import music21_io

    if len(data) > MAX_ABC_BYTES:
        raise MelodyFileError(f"the ABC tune has {len(data)} bytes; at most {MAX_ABC_BYTES}")
    text = _text(data, "ABC")
    starts = [match.start() for match in _ABC_TUNE_START.finditer(text)]
    notices = []
    if len(starts) > 1:
        header = text[: starts[0]]
        text = header + text[starts[0] : starts[1]]
        notices.append(f"the ABC file holds {len(starts)} tunes: read the first")
    _check_abc_fields(text)
    fields = music21_io.abc_header_fields(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = music21_io.parse_abc_tune(text)
        reading = music21_io.read_score_melody(
            score,
            file_format=FORMAT_ABC,
            mode_is_explicit=music21_io.abc_key_names_mode(fields.get("K", "")),
        )
    if notices:
        reading = _with_notices(reading, notices)
    return reading


def _with_signature(reading: MelodyReading, signature: KeySignature) -> MelodyReading:
    return dataclasses.replace(reading, key_signature=signature)


def _with_notices(reading: MelodyReading, notices: list[str]) -> MelodyReading:
    return dataclasses.replace(reading, notices=(*notices, *reading.notices))


def settle_key(reading: MelodyReading) -> MelodyReading:
    """The reading with its key: the signature's when it states the mode, else the
    signature's major or relative minor, the one whose tonic is the last note or else the
    one heard in the notes, else (no signature) the heard key."""
    melody = reading.melody(Key(0), 100.0)
    signature = reading.key_signature
    if signature is not None and signature.mode_stated:
        return reading.with_key(signature.key, KEY_FROM_SIGNATURE)
    if signature is not None:
        candidates = signature.candidates()
        notes = melody.notes_absolute()
        # A folk tune ends on its tonic: when the last note names one of the two keys, it
        # decides (on 174 such Essen tunes music21's analysis alone agrees in 164).
        ending = [key for key in candidates if notes and key.tonic == notes[-1].pitch % 12]
        key = ending[0] if ending else heard_key_among(melody, candidates) or candidates[0]
        return reading.with_key(key, KEY_FROM_SIGNATURE_AND_NOTES)
    return reading.with_key(heard_key(melody) or Key(0), KEY_FROM_NOTES)


def read_melody_file(data: bytes) -> MelodyReading:
    """Read the melody of a MIDI, MusicXML or ABC file with its key settled; raises
    ``MelodyFileError`` (and no other exception) saying what is wrong."""
    if len(data) > MAX_FILE_BYTES:
        raise MelodyFileError(f"the file has {len(data)} bytes; at most {MAX_FILE_BYTES}")
    file_format = sniff_format(data)
    try:
        if file_format == FORMAT_MIDI:
            from cantus.music.midi_io import read_midi_melody

            reading = read_midi_melody(data)
        elif file_format == "mxl":
            reading = _read_musicxml(_unzip_mxl(data))
        elif file_format == FORMAT_MUSICXML:
            reading = _read_musicxml(data)
        else:
            reading = _read_abc(data)
        return settle_key(reading)
    except MelodyFileError:
        raise
    except MusicError as error:  # MidiError, ScoreConversionError, a bad value in a score
        raise MelodyFileError(str(error)) from None
    except RecursionError:
        raise MelodyFileError(f"the {file_format} file nests too deeply to read") from None
    except MemoryError:
        raise MelodyFileError(f"the {file_format} file needs too much memory to read") from None
    except Exception as error:  # music21 fails in odd ways on odd scores
        raise MelodyFileError(
            f"cannot read the {file_format} file: {type(error).__name__}: {error}"[:500]
        ) from None
