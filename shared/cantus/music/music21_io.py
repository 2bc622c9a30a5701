"""Converting music21 scores (parsed ABC tunes, MusicXML chorales) into ``Melody`` objects.

Used by the corpus builder. The melody is the first part (or the part named Soprano),
laid out bar by bar from the score's measures: a short first measure is a pickup and is
right-aligned in its bar, short measures in the middle of a tune (repeat signs split bars
in ABC) are joined or padded so every full measure starts on a barline. Ties are merged,
chords keep their top note, grace notes and chord symbols are ignored, and the line is
quantized to the sixteenth grid and cut into bars by ``cantus.music.transcription``.

music21 is imported lazily: importing it costs about a second.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from cantus.music.melody_reading import (
    MAX_MELODY_NOTES,
    MAX_SPAN_BARS,
    MONOPHONIC_OVERLAP,
    KeySignature,
    MelodyReading,
    names_melody,
)
from cantus.music.notes import TICKS_PER_QUARTER, Key, Melody, Meter, Mode, MusicError
from cantus.music.styles import TEMPO_RANGE_BPM
from cantus.music.transcription import (
    TimedNote,
    drop_trailing_empty_bars,
    estimate_key,
    key_signature_candidates,
    notes_to_bars,
    off_grid_fraction,
    skyline,
    snap_to_grid,
)

if TYPE_CHECKING:
    from music21 import stream

# Reasons a ``ScoreConversionError`` carries; the corpus maps them to its reject reasons.
PARSE_ERROR = "parse_error"
NO_NOTES = "no_notes"
NO_METER = "no_meter"
METER_CHANGE = "meter_change"
IRREGULAR_BARS = "irregular_bars"
OFF_GRID = "off_grid"
POLYPHONIC = "polyphonic"

MINOR_LIKE_MODES = frozenset({"minor", "dorian", "phrygian", "aeolian", "locrian"})
"""music21 mode names read as minor (same tonic); every other mode reads as major."""

_ABC_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$")
_ABC_KEY_MODE = re.compile(
    r"^\s*[A-Ga-g][#b]?\s*(m|min|minor|maj|major|ion|dor|phr|lyd|mix|aeo|loc)[a-z]*\b",
    re.IGNORECASE,
)


class ScoreConversionError(MusicError):
    """A score cannot become a ``Melody``; ``reason`` is one of the module's reason codes
    (``off_grid``, ``meter_change``, ...) and the message says what was found."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def abc_header_fields(tune_text: str) -> dict[str, str]:
    """The header fields of one ABC tune (``X:`` up to and including the first ``K:``) as
    {field letter: value}; the first occurrence of each field wins."""
    fields: dict[str, str] = {}
    for line in tune_text.splitlines():
        match = _ABC_FIELD.match(line)
        if not match:
            continue
        letter, value = match.group(1), match.group(2)
        fields.setdefault(letter, value)
        if letter == "K":
            break
    return fields


def abc_key_names_mode(key_field: str) -> bool:
    """True when an ABC ``K:`` value names a mode (``Em``, ``Ador``, ``Gmaj``); a bare
    tonic (``G``) is read as a key signature only, because the Essen collection writes
    minor tunes that way."""
    return bool(_ABC_KEY_MODE.match(key_field))


def parse_abc_tune(tune_text: str) -> stream.Score:
    """Parse the text of one ABC tune with music21; any failure is a ``ScoreConversionError``
    with reason ``parse_error``."""
    from music21.abcFormat import ABCHandler, translate

    try:
        handler = ABCHandler()
        handler.process(tune_text)
        return translate.abcToStreamScore(handler)
    except Exception as error:  # music21 raises many unrelated types on bad input
        raise ScoreConversionError(
            PARSE_ERROR, f"music21 cannot parse the ABC tune: {type(error).__name__}: {error}"
        ) from error


def abc_tune_to_melody(tune_text: str, *, default_tempo_bpm: float, **limits: Any) -> Melody:
    """Parse one ABC tune and convert it with ``score_to_melody``; a ``K:`` without a mode
    counts as a key signature only (major or relative minor chosen from the notes)."""
    fields = abc_header_fields(tune_text)
    score = parse_abc_tune(tune_text)
    return score_to_melody(
        score,
        default_tempo_bpm=default_tempo_bpm,
        mode_is_explicit=abc_key_names_mode(fields.get("K", "")),
        **limits,
    )


def melody_part(score: stream.Stream) -> stream.Stream:
    """The part holding the melody: the one named Soprano if any, else the first part
    (or the score itself when it has no parts)."""
    from music21 import stream as m21_stream

    parts = list(score.getElementsByClass(m21_stream.Part))
    if not parts:
        return score
    for part in parts:
        name = (part.partName or "") + " " + str(part.id)
        if "soprano" in name.lower():
            return part
    return parts[0]


def music21_key_to_key(m21_key: Any) -> Key:
    """A music21 ``key.Key`` as a Cantus ``Key``: dorian, phrygian, aeolian and locrian read
    as minor, mixolydian, lydian and ionian as major, always on the mode's own tonic."""
    mode = Mode.MINOR if str(m21_key.mode).lower() in MINOR_LIKE_MODES else Mode.MAJOR
    return Key(m21_key.tonic.pitchClass, mode)


def _quarter_length_to_ticks(quarter_length: Any) -> Fraction:
    return Fraction(quarter_length).limit_denominator(10_000) * TICKS_PER_QUARTER


def _measure_notes(measure: Any) -> tuple[Fraction, list[tuple[Fraction, Fraction, int, str]]]:
    """Length of a measure (ticks) and its sounding notes as (offset, duration, top pitch,
    tie type) with offsets in ticks from the measure start."""
    from music21 import harmony

    notes = []
    for element in measure.flatten().notes:
        if isinstance(element, harmony.Harmony) or element.duration.isGrace:
            continue
        duration = _quarter_length_to_ticks(element.duration.quarterLength)
        pitches = getattr(element, "pitches", ())
        if duration <= 0 or not pitches:
            continue
        tie = element.tie.type if element.tie is not None else ""
        notes.append(
            (_quarter_length_to_ticks(element.offset), duration, max(p.midi for p in pitches), tie)
        )
    return _quarter_length_to_ticks(measure.duration.quarterLength), notes


def measure_starts(lengths: Sequence[Fraction], bar_ticks: int) -> list[Fraction]:
    """Where each measure (given its length in ticks) starts on a grid of full bars of
    ``bar_ticks``. A measure shorter than a bar that sits on a barline and is followed by a
    full measure is a pickup: it is right-aligned against the next barline. A measure that
    does not fit in what is left of the current bar starts on the next barline (the gap is
    a rest). Raises ``ScoreConversionError`` (irregular_bars) for a measure longer than a bar.
    """
    starts = []
    cursor = Fraction(0)
    for index, length in enumerate(lengths):
        if length > bar_ticks:
            raise ScoreConversionError(
                IRREGULAR_BARS,
                f"measure {index + 1} lasts {length} ticks, more than a bar ({bar_ticks} ticks)",
            )
        position = cursor % bar_ticks
        if position and length > bar_ticks - position:
            cursor += bar_ticks - position
            position = Fraction(0)
        next_is_full = index + 1 < len(lengths) and lengths[index + 1] == bar_ticks
        if position == 0 and 0 < length < bar_ticks and next_is_full:
            cursor += bar_ticks - length
        starts.append(cursor)
        cursor += length
    return starts


def _score_meter(part: Any) -> Meter:
    from music21 import meter

    signatures = list(part.recurse().getElementsByClass(meter.TimeSignature))
    if not signatures:
        raise ScoreConversionError(NO_METER, "the score has no time signature")
    ratios = {ts.ratioString for ts in signatures}
    if len(ratios) > 1:
        if _only_overfull_bar_artifacts(part, signatures[0].ratioString):
            raise ScoreConversionError(
                IRREGULAR_BARS, "a bar holds more than the meter allows (music21 split it)"
            )
        first = signatures[0].ratioString
        change = next(ts for ts in signatures if ts.ratioString != first)
        raise ScoreConversionError(
            METER_CHANGE,
            f"the meter changes from {first} to {change.ratioString} at bar "
            f"{change.measureNumber}; a melody must keep one meter",
        )
    try:
        return Meter.parse(signatures[0].ratioString)
    except MusicError as error:
        raise ScoreConversionError(NO_METER, str(error)) from error


def _only_overfull_bar_artifacts(part: Any, main_ratio: str) -> bool:
    """True when every time signature other than ``main_ratio`` sits on one measure and the
    next measure restores ``main_ratio``: that is how music21's ABC reader splits a bar
    holding more than the meter allows, not a real change of meter."""
    from music21 import meter
    from music21 import stream as m21_stream

    measures = list(part.getElementsByClass(m21_stream.Measure))
    for index, measure in enumerate(measures):
        for signature in measure.getElementsByClass(meter.TimeSignature):
            if signature.ratioString == main_ratio:
                continue
            following = measures[index + 1] if index + 1 < len(measures) else None
            restored = following is not None and any(
                ts.ratioString == main_ratio
                for ts in following.getElementsByClass(meter.TimeSignature)
            )
            if not restored:
                return False
    return True


def _score_tempo(score: Any, default_tempo_bpm: float) -> float:
    from music21 import tempo

    low, high = TEMPO_RANGE_BPM
    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            bpm = mark.getQuarterBPM()
        except Exception:  # a mark with only text ("Allegro") and no number
            continue
        if bpm:
            return float(min(high, max(low, round(bpm, 2))))
    return default_tempo_bpm


def _score_key(part: Any, notes: Sequence[Any], mode_is_explicit: bool) -> Key:
    from music21 import key as m21_key

    signatures = list(part.recurse().getElementsByClass(m21_key.KeySignature))
    if signatures:
        first = signatures[0]
        if isinstance(first, m21_key.Key) and mode_is_explicit:
            return music21_key_to_key(first)
        # A signature without a (trusted) mode: choose between major and relative minor.
        return estimate_key(notes, candidates=key_signature_candidates(first.sharps))
    return estimate_key(notes)


def _timed_line(part: Any, meter: Meter) -> list[TimedNote]:
    """The part's notes laid out on full bars of ``meter`` (ticks from the start, a pickup
    measure right-aligned in bar 1, ties merged)."""
    from music21 import stream as m21_stream

    measures = list(part.getElementsByClass(m21_stream.Measure))
    if not measures:
        raise ScoreConversionError(NO_NOTES, "the score has no measures")
    contents = [_measure_notes(measure) for measure in measures]
    starts = measure_starts([length for length, _ in contents], meter.bar_ticks)

    timed: list[TimedNote] = []
    for start, (_, measure_notes) in zip(starts, contents, strict=True):
        for offset, duration, pitch, tie in measure_notes:
            onset = start + offset
            previous = timed[-1] if timed else None
            if (
                tie in ("stop", "continue")
                and previous is not None
                and previous.pitch == pitch
                and previous.end == onset
            ):
                timed[-1] = TimedNote(previous.onset, onset + duration, pitch)
            else:
                timed.append(TimedNote(onset, onset + duration, pitch))
    if not timed:
        raise ScoreConversionError(NO_NOTES, "the melody part has no notes")
    return timed


def _check_grid(timed: Sequence[TimedNote], max_off_grid_fraction: float) -> None:
    off_grid = off_grid_fraction(timed)
    if off_grid > max_off_grid_fraction:
        raise ScoreConversionError(
            OFF_GRID, f"{off_grid:.0%} of notes are off the sixteenth grid (triplets?)"
        )


def score_to_melody(
    score: stream.Score | stream.Part | stream.Opus,
    *,
    default_tempo_bpm: float,
    mode_is_explicit: bool = True,
    max_off_grid_fraction: float = 0.05,
    max_polyphonic_fraction: float = 0.2,
) -> Melody:
    """Convert a music21 score to a quantized monophonic ``Melody`` (velocity 90).

    Tempo comes from the first metronome mark, else ``default_tempo_bpm``; the key from the
    first key object when ``mode_is_explicit``, else from the key signature plus the notes
    (``estimate_key``). Raises ``ScoreConversionError`` when there is no single meter, a
    measure is longer than a bar, more than ``max_off_grid_fraction`` (0..1) of notes are off
    the sixteenth grid, more than ``max_polyphonic_fraction`` of notes lie under an
    independent higher voice, or no notes remain.
    """
    part = melody_part(score)
    meter = _score_meter(part)
    timed = _timed_line(part, meter)
    _check_grid(timed, max_off_grid_fraction)
    line, dropped = skyline(snap_to_grid(timed))
    if dropped > max_polyphonic_fraction * len(timed):
        raise ScoreConversionError(
            POLYPHONIC, f"{dropped} of {len(timed)} notes lie under another, higher voice"
        )
    bars = drop_trailing_empty_bars(notes_to_bars(line, [(0, meter)]))
    if not bars:
        raise ScoreConversionError(NO_NOTES, "no notes remain after quantization")
    key = _score_key(part, line, mode_is_explicit)
    return Melody(key, _score_tempo(score, default_tempo_bpm), tuple(bars))


# ---------------------------------------------------------------- a given melody


def _part_label(index: int, part: Any) -> str:
    name = (part.partName or "").strip()
    return f"part {index + 1}" + (f" {name!r}" if name else "")


def _note_stats(part: Any) -> tuple[int, float, float]:
    """(note count, fraction of chords and overlapping notes, mean top pitch) of a part."""
    events = [n for n in part.flatten().notes if getattr(n, "pitches", ())]
    if not events:
        return 0, 0.0, 0.0
    chords = sum(1 for n in events if len(n.pitches) > 1)
    overlapping, sounding_until = 0, -1.0
    for event in sorted(events, key=lambda n: float(n.offset)):
        if float(event.offset) < sounding_until:
            overlapping += 1
        sounding_until = max(sounding_until, float(event.offset + event.duration.quarterLength))
    top = sum(max(p.midi for p in n.pitches) for n in events) / len(events)
    return len(events), (chords + overlapping) / len(events), top


def choose_melody_part(score: Any) -> tuple[Any, str]:
    """The part that holds the melody and why: the first part named melody (lead, vocal,
    voice, soprano, ...), else the highest part that plays one note at a time, else the
    highest part. A score without parts is its own part."""
    from music21 import stream as m21_stream

    parts = list(score.getElementsByClass(m21_stream.Part))
    if not parts:
        return score, "the score's single line"
    if len(parts) == 1:
        return parts[0], f"{_part_label(0, parts[0])}, the only part"
    for index, part in enumerate(parts):
        if names_melody(f"{part.partName or ''} {part.id}"):
            return part, f"{_part_label(index, part)}, named as the melody"
    stats = [(index, part, *_note_stats(part)) for index, part in enumerate(parts)]
    with_notes = [s for s in stats if s[2] > 0]
    if not with_notes:
        raise ScoreConversionError(NO_NOTES, "no part of the score has notes")
    single = [s for s in with_notes if s[3] <= MONOPHONIC_OVERLAP]
    pool = single or with_notes
    index, part, *_ = max(pool, key=lambda s: s[4])
    why = (
        f"the highest of {len(single)} single-note parts"
        if single
        else f"the highest of {len(with_notes)} parts (none plays one note at a time)"
    )
    return part, f"{_part_label(index, part)}, {why}"


def _score_key_signature(part: Any, mode_is_explicit: bool) -> KeySignature | None:
    from music21 import key as m21_key

    signatures = list(part.recurse().getElementsByClass(m21_key.KeySignature))
    if not signatures:
        return None
    first = signatures[0]
    if isinstance(first, m21_key.Key) and mode_is_explicit:
        return KeySignature(music21_key_to_key(first), mode_stated=True)
    if not -7 <= first.sharps <= 7:
        return None  # a nonsense signature says nothing
    major, _ = key_signature_candidates(first.sharps)
    return KeySignature(major, mode_stated=False)


def _file_tempo(score: Any) -> float | None:
    sentinel = -1.0
    tempo = _score_tempo(score, sentinel)
    return None if tempo == sentinel else tempo


def read_score_melody(
    score: Any,
    *,
    file_format: str,
    mode_is_explicit: bool = True,
    max_off_grid_fraction: float = 0.05,
) -> MelodyReading:
    """Read a musician's melody from a parsed MusicXML or ABC score, saying what was read.

    The melody is the part ``choose_melody_part`` picks; a pickup measure is kept
    right-aligned in bar 1; chords and overlapping voices are reduced to the top note, with
    a notice. Raises ``ScoreConversionError`` when the meter changes (naming the bar), a
    measure is longer than a bar, too many notes are off the sixteenth grid, the part has
    no notes, more than ``MAX_MELODY_NOTES`` notes or spans more than ``MAX_SPAN_BARS``."""
    from music21 import meter as m21_meter

    part, why = choose_melody_part(score)
    count, _, _ = _note_stats(part)
    if count > MAX_MELODY_NOTES:
        raise ScoreConversionError(
            NO_NOTES, f"the melody part holds {count} notes; at most {MAX_MELODY_NOTES}"
        )
    meter_from_file = bool(list(part.recurse().getElementsByClass(m21_meter.TimeSignature)))
    meter = _score_meter(part) if meter_from_file else Meter(4, 4)
    timed = _timed_line(part, meter)
    span = max(n.end for n in timed) / meter.bar_ticks
    if span > MAX_SPAN_BARS:
        raise ScoreConversionError(
            IRREGULAR_BARS, f"the melody spans {span:.0f} bars; at most {MAX_SPAN_BARS}"
        )
    _check_grid(timed, max_off_grid_fraction)
    snapped = snap_to_grid(timed)
    line, _ = skyline(snapped)
    notices = []
    if len(line) < len(snapped):
        notices.append(
            f"the melody part plays several notes at once: kept its top line, "
            f"{len(snapped) - len(line)} of {len(snapped)} notes left out"
        )
    bars = drop_trailing_empty_bars(notes_to_bars(line, [(0, meter)]))
    if not bars:
        raise ScoreConversionError(NO_NOTES, "no notes remain after quantization")
    first_onset = line[0].onset
    pickup = meter.bar_ticks - first_onset if 0 < first_onset < meter.bar_ticks else 0
    return MelodyReading(
        file_format=file_format,
        bars=tuple(bars),
        meter=meter,
        meter_from_file=meter_from_file,
        pickup_ticks=pickup,
        tempo_bpm=_file_tempo(score),
        key_signature=_score_key_signature(part, mode_is_explicit),
        part=why,
        notices=tuple(notices),
    )
