"""A piece's form: the plan of sections that melody, harmony, lyrics and arrangement follow.

A ``FormPlan`` is a sequence of ``Section`` s covering the piece's bars without gaps. Each
section has a label (``intro``, ``A``, ``A'``, ``B``, ``verse``, ``chorus``, ``bridge``,
``outro``…), a length in bars, a key area, an energy level, a cadence at its end and a
``Treatment`` that tells the melody composer what to do with it:

* ``NEW`` — decode new material (the first statement of a section, an intro, a bridge);
* ``REPEAT`` — play the ``source`` section's melody again, note for note;
* ``VARY`` — the ``source`` section's melody with its closing phrase decoded anew (a changed
  cadence) and light ornaments, the way folk tunes vary a returning strain;
* ``PICKUP`` — a first bar that rests until its last beat or so and leads into the next
  section (an anacrusis, as 71 % of the corpus's tunes open: ``with_pickup``). It ends no
  phrase: the composer decodes it with the phrase it leads into, and the arrangement plays
  it as a short intro under the upbeat.

``plan_form`` builds a plan from a named form (``FORMS``) and a length in bars, or picks the form
that suits a target duration (``bars_for_duration``). ``plan_pattern`` builds one from a phrase
pattern as ``cantus.eval.structure.phrase_pattern`` reads a tune (``A A~ B C``: one section
per four-bar phrase), which is how a short piece's form is drawn from the corpus's
(``cantus.melody.phrase_patterns``). Sections are whole phrases (multiples of
``PHRASE_BARS`` where the length allows), so phrase ends — where cadences fall — line up with
section ends; a half cadence closes every phrase inside a section, the section's own cadence
closes its last phrase.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cantus.music.notes import TICKS_PER_QUARTER, Key, Meter, Mode, MusicError
from cantus.music.styles import Energy

PHRASE_BARS = 4
"""Bars per phrase: cadences fall every ``PHRASE_BARS`` bars inside a section."""
STRAIN_BARS = 2 * PHRASE_BARS
"""Bars of a tune's first strain. In a plan drawn from a phrase pattern, a new section inside
the theme's first strain, at its energy and in its key, answers the theme (the B of a
through-composed ``A B C D``, bars 5-8) rather than contrasting with it as a second strain does
(``FormPlan.opening_strain``)."""
OPENING_LABELS = ("intro", "outro")
"""Labels of sections outside a form's strains: they frame the theme, not state it."""
MAX_SECTION_BARS = 16
"""Longest section; longer pieces get more sections, not longer ones."""
MIN_KEY_AREA_BARS = 2 * PHRASE_BARS
"""Shortest section that moves to its template's key area; a shorter one stays home. One
phrase is too short to establish a key and leave it again: a four-bar B in the dominant
made a 16-bar tune's key be heard as the dominant's, where a folk tune's short B stays in
the key and leans on the dominant chord (its half cadence)."""


class Treatment(str, enum.Enum):
    """What the melody composer does with a section (see the module docstring)."""

    NEW = "new"
    REPEAT = "repeat"
    VARY = "vary"
    PICKUP = "pickup"


class Cadence(str, enum.Enum):
    """How a phrase ends: ``AUTHENTIC`` on the tonic (V–I), ``HALF`` on the dominant (…–V)."""

    AUTHENTIC = "authentic"
    HALF = "half"


class KeyArea(str, enum.Enum):
    """A section's key relative to the piece's home key."""

    HOME = "home"
    DOMINANT = "dominant"
    SUBDOMINANT = "subdominant"
    RELATIVE = "relative"

    def key(self, home: Key) -> Key:
        if self is KeyArea.DOMINANT:
            return home.transpose(7)
        if self is KeyArea.SUBDOMINANT:
            return home.transpose(5)
        if self is KeyArea.RELATIVE:
            if home.mode is Mode.MAJOR:
                return Key((home.tonic + 9) % 12, Mode.MINOR)
            return Key((home.tonic + 3) % 12, Mode.MAJOR)
        return home


_ENERGY_ORDER = (Energy.LOW, Energy.MID, Energy.HIGH)


def shift_energy(energy: Energy, steps: int) -> Energy:
    """``energy`` moved ``steps`` levels up (positive) or down, clamped to LOW..HIGH."""
    index = _ENERGY_ORDER.index(energy) + steps
    return _ENERGY_ORDER[max(0, min(len(_ENERGY_ORDER) - 1, index))]


@dataclass(frozen=True)
class Section:
    """One section of a plan: bars ``first_bar`` .. ``first_bar + bars - 1`` (0-based)."""

    label: str
    first_bar: int
    bars: int
    key: Key
    key_area: KeyArea
    energy: Energy
    treatment: Treatment
    cadence: Cadence
    source: int | None = None
    """Index (in the plan) of the section whose material a REPEAT or VARY section reuses."""

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise MusicError(f"section {self.label!r} must have at least one bar")
        if self.treatment is Treatment.PICKUP:
            if self.bars != 1 or self.source is not None:
                raise MusicError(f"pickup section {self.label!r} must be one bar of its own")
        elif self.treatment is not Treatment.NEW and self.source is None:
            raise MusicError(f"section {self.label!r} ({self.treatment.value}) needs a source")

    @property
    def end_bar(self) -> int:
        """One past the section's last bar."""
        return self.first_bar + self.bars

    def phrase_ends(self) -> list[tuple[int, Cadence]]:
        """(last bar of each phrase, its cadence): half cadences inside, the section's own
        cadence on its last bar. A short tail phrase joins the phrase before it. A pickup
        ends none: it belongs to the phrase it leads into."""
        if self.treatment is Treatment.PICKUP:
            return []
        ends = list(range(self.first_bar + PHRASE_BARS - 1, self.end_bar - 1, PHRASE_BARS))
        if ends and self.end_bar - 1 - ends[-1] < 2:
            ends.pop()  # a one-bar tail would make a one-bar phrase: extend the last one
        return [(bar, Cadence.HALF) for bar in ends] + [(self.end_bar - 1, self.cadence)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "first_bar": self.first_bar,
            "bars": self.bars,
            "key": self.key.name,
            "key_tonic": self.key.tonic,
            "mode": self.key.mode.value,
            "key_area": self.key_area.value,
            "energy": self.energy.value,
            "treatment": self.treatment.value,
            "cadence": self.cadence.value,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            label=str(data["label"]),
            first_bar=int(data["first_bar"]),
            bars=int(data["bars"]),
            key=Key(int(data["key_tonic"]), Mode(data["mode"])),
            key_area=KeyArea(data["key_area"]),
            energy=Energy(data["energy"]),
            treatment=Treatment(data["treatment"]),
            cadence=Cadence(data["cadence"]),
            source=None if data.get("source") is None else int(data["source"]),
        )


@dataclass(frozen=True)
class FormPlan:
    """The sections of a piece, in order, covering bars 0 .. ``total_bars`` - 1."""

    name: str
    sections: tuple[Section, ...]
    home_key: Key = field(default_factory=lambda: Key(0, Mode.MAJOR))

    def __post_init__(self) -> None:
        if not self.sections:
            raise MusicError("a form plan needs at least one section")
        expected = 0
        for index, section in enumerate(self.sections):
            if section.first_bar != expected:
                raise MusicError(
                    f"section {index} ({section.label}) starts at bar {section.first_bar}, "
                    f"expected {expected}"
                )
            if section.treatment is Treatment.PICKUP and (index or len(self.sections) < 2):
                raise MusicError(
                    f"section {index} ({section.label}) is a pickup: only a piece's first "
                    "section, before another, can be one"
                )
            if section.source is not None and not 0 <= section.source < index:
                raise MusicError(
                    f"section {index} ({section.label}) reuses section {section.source}, "
                    "which does not come before it"
                )
            if section.source is not None and section.treatment is not Treatment.NEW:
                source = self.sections[section.source]
                if source.bars != section.bars:
                    raise MusicError(
                        f"section {index} ({section.label}) has {section.bars} bars but its "
                        f"source {source.label} has {source.bars}"
                    )
            expected = section.end_bar

    @property
    def total_bars(self) -> int:
        return self.sections[-1].end_bar

    def section_index(self, bar: int) -> int:
        """Index of the section holding ``bar`` (0-based)."""
        for index, section in enumerate(self.sections):
            if section.first_bar <= bar < section.end_bar:
                return index
        raise MusicError(f"bar {bar} is outside the plan's {self.total_bars} bars")

    def stated_sections(self) -> list[int]:
        """Indices of the sections that state new material inside the form's strains: new,
        and not an intro or an outro (a pickup is never new)."""
        return [
            index
            for index, section in enumerate(self.sections)
            if section.treatment is Treatment.NEW
            and section.label.rstrip("'").lower() not in OPENING_LABELS
        ]

    def opening_strain(self) -> set[int]:
        """Indices of the sections that state the theme: the first of ``stated_sections``,
        and in a plan drawn from a phrase pattern (``plan_pattern``) those that answer it
        inside its first strain (start before ``STRAIN_BARS`` are over, at its energy and in
        its key). The others contrast with it: a named form's B, C or bridge wherever it
        starts (its template says so), a drawn pattern's phrases after the first strain."""
        new = self.stated_sections()
        if not new:
            return set()
        if self.name in FORMS:
            return {new[0]}
        theme = self.sections[new[0]]
        strain_end = theme.first_bar + STRAIN_BARS
        return {
            index
            for index in new
            if self.sections[index].first_bar < strain_end
            and self.sections[index].energy is theme.energy
            and self.sections[index].key == theme.key
        }

    @property
    def pickup_bars(self) -> int:
        """1 where the plan opens with a pickup bar (``with_pickup``), else 0: the first bar
        of the first phrase that ends in a cadence."""
        return int(self.sections[0].treatment is Treatment.PICKUP)

    def heard_section_index(self, bar: int) -> int:
        """Index of the section ``bar`` belongs to as a listener hears it: a pickup bar
        belongs to the section it leads into (its upbeat starts that section's first phrase
        and its first line of lyrics)."""
        index = self.section_index(bar)
        if self.sections[index].treatment is Treatment.PICKUP and index + 1 < len(self.sections):
            return index + 1
        return index

    def heard_first_bar(self, index: int) -> int:
        """Where section ``index`` starts as a listener hears it: at the pickup bar before
        it, if it has one."""
        if index and self.sections[index - 1].treatment is Treatment.PICKUP:
            return self.sections[index - 1].first_bar
        return self.sections[index].first_bar

    def section_at(self, bar: int) -> Section:
        return self.sections[self.section_index(bar)]

    def cadence_at(self, bar: int) -> Cadence | None:
        """The cadence that ends on ``bar``, if a phrase ends there."""
        for end, cadence in self.section_at(bar).phrase_ends():
            if end == bar:
                return cadence
        return None

    def labels(self) -> list[str]:
        return [s.label for s in self.sections]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "home_key": self.home_key.name,
            "home_tonic": self.home_key.tonic,
            "home_mode": self.home_key.mode.value,
            "total_bars": self.total_bars,
            "sections": [s.to_dict() for s in self.sections],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormPlan:
        return cls(
            name=str(data["name"]),
            sections=tuple(Section.from_dict(s) for s in data["sections"]),
            home_key=Key(int(data["home_tonic"]), Mode(data["home_mode"])),
        )


# --- the forms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One section of a form template: ``size`` in units (one unit = the form's section
    length), the label of the section it reuses (``source``), key area and energy step."""

    label: str
    treatment: Treatment = Treatment.NEW
    source: str | None = None
    key_area: KeyArea = KeyArea.HOME
    energy_step: int = 0
    cadence: Cadence = Cadence.AUTHENTIC
    size: float = 1.0
    fixed_bars: int | None = None  # intros and outros keep their length whatever the unit


def _intro() -> _Part:
    return _Part("intro", energy_step=-1, cadence=Cadence.HALF, fixed_bars=PHRASE_BARS)


def _outro() -> _Part:
    return _Part("outro", Treatment.NEW, energy_step=-1, fixed_bars=PHRASE_BARS)


FORMS: dict[str, tuple[_Part, ...]] = {
    # one strain, played once: the short default when a piece has fewer than 12 bars
    "through": (_Part("A"),),  # through-composed: longer pieces add new sections B, C, …
    # a strain and its varied return: the commonest folk-song shape
    "AA'": (_Part("A", cadence=Cadence.HALF), _Part("A'", Treatment.VARY, "A")),
    # 32-bar song form
    "AABA": (
        _Part("A", cadence=Cadence.HALF),
        _Part("A'", Treatment.VARY, "A"),
        _Part("B", key_area=KeyArea.DOMINANT, energy_step=1, cadence=Cadence.HALF),
        _Part("A''", Treatment.VARY, "A"),
    ),
    "ABAC": (
        _Part("A", cadence=Cadence.HALF),
        _Part("B", energy_step=1, cadence=Cadence.HALF),
        _Part("A'", Treatment.REPEAT, "A", cadence=Cadence.HALF),
        _Part("C", key_area=KeyArea.SUBDOMINANT, energy_step=1),
    ),
    # binary dance tune: each strain played twice (the celtic AABB)
    "AABB": (
        _Part("A", cadence=Cadence.HALF),
        _Part("A'", Treatment.VARY, "A"),
        _Part("B", energy_step=1, cadence=Cadence.HALF),
        _Part("B'", Treatment.VARY, "B", energy_step=1),
    ),
    "ABA": (
        _Part("A"),
        _Part("B", key_area=KeyArea.DOMINANT, energy_step=1, cadence=Cadence.HALF),
        _Part("A'", Treatment.VARY, "A"),
    ),
    "rondo": (
        _Part("A"),
        _Part("B", key_area=KeyArea.DOMINANT, energy_step=1, cadence=Cadence.HALF),
        _Part("A'", Treatment.REPEAT, "A"),
        _Part("C", key_area=KeyArea.RELATIVE, energy_step=1, cadence=Cadence.HALF),
        _Part("A''", Treatment.VARY, "A"),
    ),
    "verse-chorus": (
        _intro(),
        _Part("verse", cadence=Cadence.HALF),
        _Part("chorus", energy_step=1),
        _Part("verse'", Treatment.VARY, "verse", cadence=Cadence.HALF),
        _Part("chorus'", Treatment.REPEAT, "chorus", energy_step=1),
        _Part("bridge", key_area=KeyArea.RELATIVE, cadence=Cadence.HALF),
        _Part("chorus''", Treatment.VARY, "chorus", energy_step=2),
        _outro(),
    ),
}
"""Named forms. Labels with primes are returns of the unprimed section."""

FORM_ALIASES = {"verse_chorus": "verse-chorus", "aaba": "AABA", "abac": "ABAC", "aabb": "AABB"}
AUTO = "auto"
"""Form name that lets ``plan_form`` choose by length."""


def form_names() -> list[str]:
    return [AUTO, *FORMS]


def normalise_form_name(name: str) -> str:
    """The canonical form name, or ``MusicError`` naming the accepted ones."""
    cleaned = name.strip()
    if cleaned in ("", AUTO):
        return AUTO
    cleaned = FORM_ALIASES.get(cleaned.lower(), cleaned)
    for known in FORMS:
        if cleaned.lower() == known.lower():
            return known
    raise MusicError(f"unknown form {name!r}; choose one of {', '.join(form_names())}")


def quarter_notes_per_bar(meter: Meter) -> float:
    return meter.bar_ticks / TICKS_PER_QUARTER


def bars_for_duration(seconds: float, tempo_bpm: float, meter: Meter) -> int:
    """Whole bars closest to ``seconds`` at ``tempo_bpm`` quarter notes a minute, rounded to
    whole phrases (at least one)."""
    if not seconds > 0:
        raise MusicError(f"duration must be > 0 seconds, got {seconds}")
    bar_seconds = quarter_notes_per_bar(meter) * 60.0 / tempo_bpm
    phrases = max(1, round(seconds / bar_seconds / PHRASE_BARS))
    return phrases * PHRASE_BARS


def choose_form(bars: int) -> str:
    """The form ``auto`` picks for a piece of ``bars`` bars."""
    if bars < 12:
        return "AA'" if bars >= 8 else "through"
    if bars <= 64:
        return "AABA"
    if bars <= 96:
        return "rondo"
    return "verse-chorus"


def plan_form(name: str, *, bars: int, key: Key, energy: Energy) -> FormPlan:
    """The plan of form ``name`` (``FORMS`` or ``auto``) over exactly ``bars`` bars, in ``key``
    with base ``energy``. Longer pieces than one pass of the form takes at full section length
    repeat the form's main sections (the last return gets the highest energy); bars that do
    not fill whole phrases lengthen the last section."""
    form = normalise_form_name(name)
    if form == AUTO:
        form = choose_form(bars)
    if bars < 1:
        raise MusicError(f"a piece needs at least one bar, got {bars}")
    parts = list(FORMS[form])
    fixed = sum(p.fixed_bars or 0 for p in parts)
    if fixed and bars - fixed < PHRASE_BARS * len([p for p in parts if not p.fixed_bars]):
        parts = [p for p in parts if not p.fixed_bars]  # too short for an intro and outro
        fixed = 0
    flexible = [p for p in parts if not p.fixed_bars]
    unit = _section_length((bars - fixed) / len(flexible))
    parts = _extend_parts(parts, bars - fixed, unit)
    flexible_count = len([p for p in parts if not p.fixed_bars])
    unit = max(1, min(unit, (bars - fixed) // flexible_count))
    lengths = [p.fixed_bars or unit for p in parts]
    parts = _spread_remainder(parts, lengths, bars)
    return _build(form, parts, lengths, key, energy)


PATTERN_RETURNS = {"~": Treatment.VARY, "=": Treatment.REPEAT}
"""A phrase pattern's marks for a return (``cantus.eval.structure.phrase_pattern``)."""


def plan_pattern(
    pattern: str, *, key: Key, energy: Energy, phrase_bars: int = PHRASE_BARS
) -> FormPlan:
    """The plan of a phrase pattern (``"A A~ B C"``): one section of ``phrase_bars`` bars per
    phrase; a letter's first phrase is new, ``X~`` varies it and ``X=`` repeats it. Its name
    is its labels (``AA'BC``).

    Phrases pair into eight-bar periods: the first of a pair closes on a half cadence, the
    second on the tonic (bar 8 of 16, where a tune's first strain ends), and so does the last
    phrase; a repeat closes as its source does. The material the piece's second half brings
    in plays an energy level up, as a second strain does; a return keeps its source's level."""
    tokens = pattern.split()
    if not tokens:
        raise MusicError("a phrase pattern needs at least one phrase")
    parts: list[_Part] = []
    steps: dict[str, int] = {}
    cadences: dict[str, Cadence] = {}
    returns: dict[str, int] = {}
    for index, token in enumerate(tokens):
        letter, mark = token[:1], token[1:]
        if not letter.isalpha() or not letter.isupper() or mark not in ("", *PATTERN_RETURNS):
            raise MusicError(f"phrase {token!r} of {pattern!r}: write a letter, then ~ or =")
        cadence = Cadence.AUTHENTIC if index % 2 else Cadence.HALF
        if not mark:
            if letter in steps:
                raise MusicError(f"phrase {index + 1} of {pattern!r} states {letter} again")
            steps[letter] = int(len(tokens) >= 4 and index >= len(tokens) // 2)
            cadences[letter] = cadence
            parts.append(_Part(letter, energy_step=steps[letter], cadence=cadence))
            continue
        if letter not in steps:
            raise MusicError(f"phrase {index + 1} of {pattern!r} returns to {letter} before it")
        returns[letter] = returns.get(letter, 0) + 1
        treatment = PATTERN_RETURNS[mark]
        parts.append(
            _Part(
                letter + "'" * returns[letter],
                treatment,
                letter,
                energy_step=steps[letter],
                cadence=cadences[letter] if treatment is Treatment.REPEAT else cadence,
            )
        )
    name = "".join(part.label for part in parts)
    return _build(name, parts, [phrase_bars] * len(parts), key, energy)


PICKUP_LABEL = "pickup"


def with_pickup(plan: FormPlan) -> FormPlan:
    """``plan`` after a one-bar pickup section (``Treatment.PICKUP``): one bar longer, every
    section a bar later. A plan that opens with a pickup already is returned as it is.

    A tune with an anacrusis is written with its phrases ending a bar after the pickup's: the
    pickup bar is the phrases' bar 0, not their first bar, so its plan keeps the whole
    phrases of the plan without it (a 16-bar AABA with a pickup is 17 bars, its last phrase
    ending on bar 17 as a written tune's does)."""
    if plan.pickup_bars:
        return plan
    first = plan.sections[0]
    pickup = Section(
        PICKUP_LABEL, 0, 1, first.key, first.key_area, first.energy, Treatment.PICKUP, Cadence.HALF
    )
    return after_opening(pickup, plan)


def after_opening(opening: Section, plan: FormPlan) -> FormPlan:
    """``plan`` after one ``opening`` section at bar 0 (a pickup bar, or a continued melody's
    given bars): every section ``opening.bars`` later, every source one section on."""
    shifted = tuple(
        dataclasses.replace(
            section,
            first_bar=section.first_bar + opening.bars,
            source=None if section.source is None else section.source + 1,
        )
        for section in plan.sections
    )
    return FormPlan(plan.name, (opening, *shifted), plan.home_key)


def _section_length(ideal: float) -> int:
    """A section length in whole phrases where possible (4, 8, 12, 16 bars)."""
    if ideal < PHRASE_BARS:
        return max(1, int(ideal))
    return int(min(MAX_SECTION_BARS, max(PHRASE_BARS, PHRASE_BARS * int(ideal // PHRASE_BARS))))


def _extend_parts(parts: list[_Part], flexible_bars: int, unit: int) -> list[_Part]:
    """Repeat the form's sections (all but intro and outro) until they fill the bars at
    ``unit`` bars each: later passes reuse the first pass's material (varied returns)."""
    head = [p for p in parts if p.fixed_bars and p is parts[0]]
    tail = [p for p in parts if p.fixed_bars and p is parts[-1]]
    body = [p for p in parts if not p.fixed_bars]
    needed = max(len(body), flexible_bars // unit)
    extended = list(body)
    pass_number = 1
    while len(extended) < needed:
        pass_number += 1
        for part in body:
            if len(extended) >= needed:
                break
            if len(body) == 1:  # through-composed: every section is new
                extended.append(_Part(chr(ord("A") + len(extended) % 26), cadence=part.cadence))
                continue
            source = part.source or part.label
            repeat = part.treatment is Treatment.REPEAT
            extended.append(
                _Part(
                    source if repeat else source + "'",
                    Treatment.REPEAT if repeat else Treatment.VARY,
                    source,
                    part.key_area,
                    part.energy_step + (1 if pass_number > 2 else 0),
                    part.cadence,
                )
            )
    if len(extended) > len(body):
        extended[-1] = _Part(
            extended[-1].label,
            extended[-1].treatment,
            extended[-1].source,
            KeyArea.HOME if extended[-1].source else extended[-1].key_area,
            max(extended[-1].energy_step, 1),
            Cadence.AUTHENTIC,
        )
    return head + extended + tail


def _spread_remainder(parts: list[_Part], lengths: list[int], bars: int) -> list[_Part]:
    """Give bars left over (or take bars too many) to/from the last flexible section that no
    other section reuses, so the plan covers exactly ``bars``; failing that, the last section
    takes them and becomes new material (a coda). Returns the parts, ``lengths`` is updated."""
    remainder = bars - sum(lengths)
    if remainder == 0:
        return parts
    reused = {p.source for p in parts if p.source}
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        free = not part.fixed_bars and part.label not in reused and part.source is None
        if free and lengths[index] + remainder >= 1:
            lengths[index] += remainder
            return parts
    lengths[-1] += remainder
    if lengths[-1] < 1:
        raise MusicError(f"cannot fit the form into {bars} bars")
    return [*parts[:-1], dataclasses.replace(parts[-1], treatment=Treatment.NEW, source=None)]


def _build(
    form: str, parts: Sequence[_Part], lengths: Sequence[int], key: Key, energy: Energy
) -> FormPlan:
    sections: list[Section] = []
    first_index: dict[str, int] = {}
    first_bar = 0
    for part, length in zip(parts, lengths, strict=True):
        source = None
        treatment = part.treatment
        key_area = part.key_area if length >= MIN_KEY_AREA_BARS else KeyArea.HOME
        if part.source is not None:
            source = first_index.get(part.source)
            if source is None or sections[source].bars != length:
                treatment, source = Treatment.NEW, None
        sections.append(
            Section(
                label=part.label,
                first_bar=first_bar,
                bars=length,
                key=key_area.key(key),
                key_area=key_area,
                energy=shift_energy(energy, part.energy_step),
                treatment=treatment,
                cadence=part.cadence,
                source=source,
            )
        )
        first_index.setdefault(part.label, len(sections) - 1)
        first_bar += length
    # the piece ends on the tonic whatever the template's last cadence was
    last = sections[-1]
    if last.cadence is not Cadence.AUTHENTIC or last.key_area is not KeyArea.HOME:
        sections[-1] = Section(
            last.label,
            last.first_bar,
            last.bars,
            key,
            KeyArea.HOME,
            last.energy,
            last.treatment if last.key_area is KeyArea.HOME else Treatment.NEW,
            Cadence.AUTHENTIC,
            last.source if last.key_area is KeyArea.HOME else None,
        )
    # a note-for-note repeat ends as its source does: one that must end on another cadence
    # (the last section, closing on the tonic after a half-cadence strain) is a variation
    for index, section in enumerate(sections):
        origin = None if section.source is None else sections[section.source]
        if section.treatment is Treatment.REPEAT and origin and origin.cadence != section.cadence:
            sections[index] = dataclasses.replace(section, treatment=Treatment.VARY)
    return FormPlan(form, tuple(sections), key)
