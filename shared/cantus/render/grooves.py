"""Drum grooves from Debian's ``mma`` (Musical MIDI Accompaniment) library, used as data.

MMA's groove files (``/usr/share/mma/lib/stdlib/*.mma``, GPL-2+, Bob van der Poel) describe
each groove's drum tracks in a small language: patterns defined as hits ``beat duration
volume`` (``1 0 90``: beat 1), built from others (``D1 * 4``: four copies spread over the
bar, ``D13 Shift 1``: moved a beat later, ``D1; D4``: both), each track a ``Tone`` (a GM
drum name) and a ``Sequence`` of one pattern per bar (``/``: the bar before again, ``z``:
silent). ``import_grooves`` reads the files named in ``MMA_FILES`` and writes the drum hits
of each groove they define, bar by bar, to ``data/mma_grooves.json`` (committed; ``make
grooves`` regenerates it where ``mma`` is installed), so nothing reads MMA at run time.

``groove_bar`` gives one bar of a groove as kit notes in a piece's ticks; the folk band's
kit plays the waltzes of ``FOLK_GROOVES`` (``cantus.render.arrangement.drum_pattern``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cantus.music.notes import Meter, Note

MMA_DIR = Path("/usr/share/mma")
GROOVES_PATH = Path(__file__).with_name("data") / "mma_grooves.json"
MMA_FILES = ("folk", "folkrock", "folkballad", "waltz", "countrywaltz", "68march", "march",
             "polka", "lullaby", "ballad", "ballad68", "hymn", "bluegrass")  # fmt: skip
"""The groove files imported: the ones near the styles Cantus plays."""

FOLK_GROOVES: dict[tuple[str, str], str] = {
    ("3/4", "mid"): "Waltz",
    ("3/4", "high"): "CountryWaltz",
}
"""(meter, energy) -> the MMA groove the folk band's kit plays, where one serves: a folk
waltz gets MMA's waltz (kick on one, hi-hat on two and three, a soft snare and a triangle
to open) and, lively, its country waltz. Elsewhere ``drum_pattern``'s own patterns play:
MMA's 4/4 folk grooves are a tambourine alone (Folk) or toms and claves (FolkRock), and its
6/8 march drops the kick on a jig's third eighth that drives a lively 6/8."""

_DRUM_NAMES = {
    "KICKDRUM1": 36, "KICKDRUM2": 35, "SIDEKICK": 37, "SNAREDRUM1": 38, "SNAREDRUM2": 40,
    "HANDCLAP": 39, "LOWTOM2": 41, "CLOSEDHIHAT": 42, "LOWTOM1": 43, "PEDALHIHAT": 44,
    "MIDTOM2": 45, "OPENHIHAT": 46, "MIDTOM1": 47, "HIGHTOM2": 48, "CRASHCYMBAL1": 49,
    "HIGHTOM1": 50, "RIDECYMBAL1": 51, "CHINESECYMBAL": 52, "RIDEBELL": 53,
    "TAMBOURINE": 54, "SPLASHCYMBAL": 55, "COWBELL": 56, "CRASHCYMBAL2": 57,
    "RIDECYMBAL2": 59, "CABASA": 69, "MARACAS": 70, "CLAVES": 75, "HIGHWOODBLOCK": 76,
    "LOWWOODBLOCK": 77, "MUTETRIANGLE": 80, "OPENTRIANGLE": 81, "SHAKER": 82,
    "JINGLEBELL": 83, "CASTANETS": 84, "STICKS": 31,
}  # fmt: skip
"""MMA's drum names (``MMA/miditables.py``) for the General MIDI keys a kit plays."""


_VOLUMES = {"OFF": 0.0, "PPPP": 0.05, "PPP": 0.10, "PP": 0.25, "P": 0.40, "MP": 0.70,
            "M": 1.00, "MF": 1.10, "F": 1.30, "FF": 1.60, "FFF": 1.80, "FFFF": 2.00}  # fmt: skip
"""A track's ``Volume`` as a share of its patterns' volumes (``MMA/volume.py``)."""


class GrooveError(ValueError):
    """A groove file this reader cannot follow (the import names the file and line)."""


@dataclass(frozen=True)
class Groove:
    """A groove's drum hits, bar by bar: (beat from 0, GM key, volume: the pattern's times
    its track's, the groove's loudest hit at 100)."""

    name: str
    meter: str
    beats: int
    """Beats per bar in MMA's ``Time`` (6/8 is written in 2)."""
    bars: tuple[tuple[tuple[float, int, int], ...], ...]
    source: str


def _split_items(text: str) -> list[str]:
    """``;``-separated items, not splitting inside braces."""
    items, depth, current = [], 0, ""
    for character in text:
        depth += character == "{"
        depth -= character == "}"
        if character == ";" and depth == 0:
            items.append(current)
            current = ""
        else:
            current += character
    items.append(current)
    return [item.strip() for item in items if item.strip()]


class _Patterns:
    """Drum pattern definitions and their expansion to hits (beat from 1, volume)."""

    def __init__(self) -> None:
        self.defined: dict[str, str] = {}
        self.time = 4

    def hits(self, definition: str) -> list[tuple[float, int]]:
        definition = definition.strip()
        if definition.startswith("{") and definition.endswith("}"):
            definition = definition[1:-1]
        out: list[tuple[float, int]] = []
        for item in _split_items(definition):
            out += self._item(item.split())
        return sorted(out)

    def _item(self, words: list[str]) -> list[tuple[float, int]]:
        modifiers_at = next(
            (i for i, w in enumerate(words) if w == "*" or w.lower() == "shift"), len(words)
        )
        head, modifiers = words[:modifiers_at], words[modifiers_at:]
        if re.fullmatch(r"[0-9.]+", head[0]):
            if len(head) < 3:
                raise GrooveError(f"a drum hit needs beat, duration and volume: {words}")
            hits = [(float(head[0]), int(float(head[2])))]
        else:
            name = head[0].upper()
            if name not in self.defined:
                raise GrooveError(f"unknown drum pattern {head[0]!r}")
            hits = self.hits(self.defined[name])
        while modifiers:
            if modifiers[0] == "*":
                copies = int(modifiers[1])
                spacing = self.time / copies
                hits = [
                    (beat + k * spacing, volume) for k in range(copies) for beat, volume in hits
                ]
            else:
                shift = float(modifiers[1])
                hits = [(beat + shift, volume) for beat, volume in hits]
            modifiers = modifiers[2:]
        return hits


def _lines(path: Path) -> list[str]:
    """The file's statements: comments dropped, continued lines joined."""
    out, pending = [], ""
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("//", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append(line)
    return out


def _sequence_tokens(text: str) -> list[str]:
    return re.findall(r"\{[^}]*\}|\S+", text)


def parse_groove_file(path: Path, mma_dir: Path = MMA_DIR) -> list[Groove]:
    """Every groove ``path`` defines (``DefGroove``) with its drum tracks' hits."""
    patterns = _Patterns()
    tracks: dict[str, dict[str, object]] = {}
    saved: dict[str, dict[str, dict[str, object]]] = {}
    grooves: list[Groove] = []
    seq_size, meter = 1, "4/4"
    block: str | None = None

    def set_track(track: str, command: str, value: str) -> None:
        entry = tracks.setdefault(track, {"tone": None, "sequence": [], "volume": 1.0})
        if command == "tone":
            entry["tone"] = value.split()[0]
        elif command == "volume" and value:
            entry["volume"] = _VOLUMES.get(value.split()[0].upper(), 1.0)
        elif command == "sequence":
            old = list(entry["sequence"])  # type: ignore[call-overload]
            tokens = [] if value.strip() == "-" else _sequence_tokens(value)
            # ``*``: that bar keeps the sequence it had
            entry["sequence"] = [
                (old[i % len(old)] if old else "z") if token == "*" else token
                for i, token in enumerate(tokens)
            ]

    def include(name: str) -> None:
        for line in _lines(mma_dir / "includes" / f"{name}.mma"):
            read(line, including=True)

    def read(line: str, *, including: bool = False) -> None:
        nonlocal block, seq_size, meter
        words = line.split(None, 1)
        keyword, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
        if block is not None:
            if keyword == "end":
                block = None
            elif block == "define":
                patterns.defined[words[0].upper()] = rest.strip()
            elif block.startswith("drum"):
                set_track(block, keyword, rest.strip())
            return
        if keyword == "begin":
            what = rest.lower().split()
            if what[:2] == ["drum", "define"]:
                block = "define"
            elif what and what[0].startswith("drum"):
                block = what[0]
            else:
                block = "other"
        elif keyword == "include" and not including:
            include(rest.strip())
        elif keyword == "time":
            patterns.time = int(float(rest.split()[0]))
        elif keyword == "timesig":
            numerator, denominator = rest.split()[:2]
            meter = f"{numerator}/{denominator}"
        elif keyword == "seqsize":
            seq_size = int(rest.split()[0])
        elif keyword == "seqclear":
            tracks.clear()
        elif keyword.startswith("drum") and rest:
            command = rest.split(None, 1)
            set_track(keyword, command[0].lower(), command[1] if len(command) > 1 else "")
        elif keyword == "defgroove" and rest:
            name = rest.split()[0]
            saved[name.lower()] = {k: dict(v) for k, v in tracks.items()}
            bars = _groove_bars(tracks, patterns, seq_size)
            if any(bars):
                grooves.append(Groove(name, meter, patterns.time, bars, path.name))
        elif keyword == "groove" and rest:
            state = saved.get(rest.split()[0].lower())
            if state is not None:
                tracks.clear()
                tracks.update({k: dict(v) for k, v in state.items()})

    for number, line in enumerate(_lines(path), 1):
        try:
            read(line)
        except (GrooveError, ValueError, IndexError) as error:
            raise GrooveError(f"{path.name}, statement {number} ({line!r}): {error}") from None
    return grooves


def _groove_bars(tracks, patterns: _Patterns, seq_size: int):
    bars: list[list[tuple[float, int, int]]] = [[] for _ in range(seq_size)]
    for entry in tracks.values():
        tone, sequence, ratio = entry["tone"], list(entry["sequence"]), entry.get("volume", 1.0)
        if not tone or not sequence:
            continue
        key = int(tone) if str(tone).isdigit() else _DRUM_NAMES.get(str(tone).upper())
        if key is None:
            continue  # a sound a kit does not play
        previous = "z"
        for index in range(seq_size):
            token = sequence[index % len(sequence)]
            token = previous if token == "/" else token
            previous = token
            if token.lower() in ("z", "-"):
                continue
            for beat, volume in patterns.hits(token):
                if 1 <= beat < patterns.time + 1 and volume * ratio > 0:
                    bars[index].append((round(beat - 1, 4), key, volume * ratio))
    # volumes relative to the groove's loudest hit, at 100
    loudest = max((hit[2] for bar in bars for hit in bar), default=0)
    return tuple(
        tuple(sorted((b, k, max(1, round(100 * v / loudest))) for b, k, v in bar)) for bar in bars
    )


def import_grooves(mma_dir: Path = MMA_DIR, out: Path = GROOVES_PATH) -> dict[str, Groove]:
    """Read ``MMA_FILES`` and write their grooves to ``out`` (JSON); the grooves by name."""
    grooves: dict[str, Groove] = {}
    for name in MMA_FILES:
        for groove in parse_groove_file(mma_dir / "lib" / "stdlib" / f"{name}.mma", mma_dir):
            grooves[groove.name] = groove
    document = {
        "source": "Debian package mma (Musical MIDI Accompaniment), lib/stdlib, GPL-2+, "
        "Bob van der Poel; drum tracks only, as (beat from 0, GM key, volume) per bar",
        "regenerate": "make grooves",
        "grooves": {
            name: {"meter": g.meter, "beats": g.beats, "file": g.source, "bars": g.bars}
            for name, g in sorted(grooves.items())
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
    return grooves


@functools.cache
def load_grooves(path: Path = GROOVES_PATH) -> dict[str, Groove]:
    document = json.loads(path.read_text())
    return {
        name: Groove(
            name,
            entry["meter"],
            entry["beats"],
            tuple(tuple((float(b), int(k), int(v)) for b, k, v in bar) for bar in entry["bars"]),
            entry["file"],
        )
        for name, entry in document["grooves"].items()
    }


def groove_bar(name: str, meter: Meter, bar_index: int, velocity_scale: float) -> list[Note]:
    """Bar ``bar_index`` (cycling through the groove's bars) of groove ``name`` in
    ``meter`` (the groove's own), as kit notes: onsets in ticks from the bar start,
    velocities the groove's volumes times ``velocity_scale``."""
    groove = load_grooves()[name]
    if groove.meter != str(meter):
        raise ValueError(f"groove {name} is in {groove.meter}, not {meter}")
    bar = groove.bars[bar_index % len(groove.bars)]
    beat_ticks = meter.bar_ticks / groove.beats
    hit = min(120, meter.bar_ticks)
    notes = []
    for beat, key, volume in bar:
        # MMA writes a third of a beat as .33 or .66: onto the grid of twelfths of a beat
        twelfths = beat * 12
        if abs(twelfths - round(twelfths)) < 0.1:
            beat = round(twelfths) / 12
        onset = round(beat * beat_ticks)
        if onset < meter.bar_ticks:
            velocity = max(1, min(127, round(volume * velocity_scale)))
            notes.append(Note(onset, key, min(hit, meter.bar_ticks - onset), velocity))
    return sorted(notes)


if __name__ == "__main__":
    found = import_grooves()
    for groove in found.values():
        hits = sum(len(bar) for bar in groove.bars)
        bars = len(groove.bars)
        print(f"{groove.name:22} {groove.meter:5} {bars} bars, {hits} hits ({groove.source})")
    print(f"wrote {GROOVES_PATH}")
