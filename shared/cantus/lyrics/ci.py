"""Ci tune patterns (词牌) and how a stanza of melody carries one.

A ci is a song lyric written to a fixed tune pattern: the pattern sets how many clauses a
stanza has, how many characters each clause holds, and which clauses rhyme (浣溪沙: three
rhyming clauses of seven, twice; 如梦令: 6 6 5 6 2 2 6). The patterns (``ci_stanzas``, from
``CI_PATTERNS_PATH``) are those of the Song ci in ``chinese-poetry`` (``make lyric-data``)
with the most poems: per pattern, the clause lengths most of its poems use, and the clauses
that most of them end with a rhyme mark (。？！; ，、；： end the others). A pattern of two
stanzas (上片, 下片) is cut at the rhyme nearest half its characters.

A group of sections (``ci_groups``: up to ``CI_MAX_BARS`` bars) carries a stanza where the
tune allows (``fit_stanza``): its lines take the stanza's clauses in order, each line whole
clauses, each clause a run of notes with one character per note, except that a note may be
sung on the character before it (a melisma) where the melody has more notes than the
clauses have characters. The fit spends as few melismas as it can, on weak and short notes
first, and cuts clauses where the melody breathes. A group that would need more than
``MAX_MELISMA_SHARE`` of its notes held over, or has fewer notes than a stanza has
characters, carries one stanza over each half that one fits (``fit_parts``), or none; lines
that carry none are cut into clauses by the breath alone (``cantus.lyrics.clauses``).

``python -m cantus.lyrics.ci`` counts the patterns again and writes ``CI_PATTERNS_PATH``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import re
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cantus.lyrics.slots import LineSlots, Slot, make_line, next_line_bars
from cantus.lyrics.song_form import is_chorus, section_end
from cantus.music.form import FormPlan, Treatment
from cantus.music.notes import TICKS_PER_QUARTER, Meter, Note
from cantus.settings import CHECKPOINTS

CI_LANGUAGES = ("zh",)
"""Languages whose lyrics may carry ci stanzas."""
CI_PATTERNS_PATH = CHECKPOINTS / "ci_patterns.json"
MIN_POEMS = 100
"""A pattern is kept when this many Song ci use its commonest clause lengths."""
MAX_CHARACTERS = 64
"""Longer patterns (沁园春, 水调歌头: 95 and more characters) fill no stanza of a folk tune."""
RHYME_MARKS = "。？！"
CLAUSE_MARKS = "，。？！、；："
MAX_MELISMA_SHARE = 0.3
"""The most of a group's notes (and, less one, of a line's) that may be sung on the
character before them."""
MELISMA_COST = 1.0
STRONG_MELISMA_COST = 2.0
"""Added for a note on a strong beat held over from the character before."""
BREATH_BONUS = 0.5
"""Per quarter note of hold (at most two) after a clause cut inside a line."""
CONTINUE_BONUS = 3.0
"""For the stanza after the one the group or half before sang (上片 then 下片)."""
CI_MAX_BARS = 16
"""Longer groups (a long section, a long piece without a plan) carry no stanza: their
halves hold more notes than most stanzas' characters, and the lyric service, which waits
for a group's bars before it fits one, would wait long."""


@dataclass(frozen=True)
class CiClause:
    characters: int
    rhymes: bool


@dataclass(frozen=True)
class CiStanza:
    """``part`` of pattern ``pattern``: 上片 or 下片, or "" for the whole pattern."""

    pattern: str
    part: str
    clauses: tuple[CiClause, ...]
    poems: int = 0

    @property
    def characters(self) -> int:
        return sum(clause.characters for clause in self.clauses)

    @property
    def name(self) -> str:
        return f"{self.pattern}·{self.part}" if self.part else self.pattern


@dataclass(frozen=True)
class CiLine:
    """How one line carries its clauses: ``merged`` are the indices of its slots sung on
    the character before them; ``clauses`` the characters per clause; ``rhymes`` per
    clause."""

    merged: tuple[int, ...]
    clauses: tuple[int, ...]
    rhymes: tuple[bool, ...]


@dataclass(frozen=True)
class CiFit:
    stanza: CiStanza
    lines: dict[int, CiLine]
    """Line index → how it carries its part (silent lines are absent)."""
    melisma: int
    """Notes sung on the character before them."""
    cost: float


# --- the patterns ------------------------------------------------------------------------


def clause_marks(paragraphs: Iterable[str]) -> tuple[tuple[int, str], ...] | None:
    """(characters, closing mark) per clause of a ci, or None where a clause holds anything
    but Chinese characters (a lacuna, a note)."""
    text = "".join(paragraphs)
    clauses = re.findall(f"([^{CLAUSE_MARKS}]+)([{CLAUSE_MARKS}])", text)
    out = []
    for body, mark in clauses:
        body = body.strip()
        if not body or not all("\u4e00" <= c <= "\u9fff" for c in body):
            return None
        out.append((len(body), mark))
    return tuple(out) or None


def count_patterns(
    poems: Iterable[tuple[str, Sequence[str]]], min_poems: int = MIN_POEMS
) -> list[tuple[str, int, tuple[CiClause, ...]]]:
    """``(pattern, poems, clauses)`` of each pattern with ``min_poems`` poems in its
    commonest clause lengths (``poems``: (pattern name, paragraphs)), most poems first."""
    by_pattern: dict[str, list[tuple[tuple[int, str], ...]]] = defaultdict(list)
    for name, paragraphs in poems:
        marks = clause_marks(paragraphs)
        if marks is not None and name:
            by_pattern[name].append(marks)
    out = []
    for name, found in by_pattern.items():
        lengths, count = Counter(tuple(n for n, _ in f) for f in found).most_common(1)[0]
        if count < min_poems or sum(lengths) > MAX_CHARACTERS:
            continue
        same = [f for f in found if tuple(n for n, _ in f) == lengths]
        clauses = tuple(
            CiClause(n, 2 * sum(f[i][1] in RHYME_MARKS for f in same) > len(same))
            for i, n in enumerate(lengths)
        )
        out.append((name, count, clauses))
    return sorted(out, key=lambda item: (-item[1], item[0]))


def stanzas_of(pattern: str, poems: int, clauses: Sequence[CiClause]) -> list[CiStanza]:
    """The whole pattern, and its 上片 and 下片 where a rhyme falls near half its
    characters (within a fifth of the whole)."""
    whole = CiStanza(pattern, "", tuple(clauses), poems)
    total = whole.characters
    cuts = [
        (abs(2 * sum(c.characters for c in clauses[:k]) - total), k)
        for k in range(1, len(clauses))
        if clauses[k - 1].rhymes
    ]
    if not cuts:
        return [whole]
    gap, k = min(cuts)
    if gap > total / 5:
        return [whole]
    return [
        whole,
        CiStanza(pattern, "上片", tuple(clauses[:k]), poems),
        CiStanza(pattern, "下片", tuple(clauses[k:]), poems),
    ]


@functools.cache
def ci_stanzas(path: Path = CI_PATTERNS_PATH) -> tuple[CiStanza, ...]:
    """Every stanza a section may carry, of the patterns in ``path``."""
    patterns = json.loads(path.read_text(encoding="utf-8"))
    out: list[CiStanza] = []
    for entry in patterns:
        clauses = [CiClause(n, bool(r)) for n, r in entry["clauses"]]
        out += stanzas_of(entry["pattern"], entry["poems"], clauses)
    return tuple(out)


# --- fitting a section --------------------------------------------------------------------


def _melisma_cost(slot: Slot) -> float:
    return MELISMA_COST + (STRONG_MELISMA_COST if slot.strong else 0.0)


def fit_line(
    slots: Sequence[Slot], clauses: Sequence[CiClause]
) -> tuple[float, tuple[int, ...], tuple[int, ...]] | None:
    """``(cost, merged slot indices, notes per clause)`` of the cheapest way ``slots`` sing
    ``clauses`` in order, or None. Each clause starts a character on its first note; its
    other notes beyond its characters are melismas, the cheapest of them."""
    count = len(slots)
    need = [clause.characters for clause in clauses]
    if sum(need) > count:
        return None
    # best[q][i]: cost of the first q clauses on the first i notes
    infinity = float("inf")
    best = [[infinity] * (count + 1) for _ in range(len(need) + 1)]
    choice: dict[tuple[int, int], tuple[int, tuple[int, ...]]] = {}
    best[0][0] = 0.0
    for q, characters in enumerate(need):
        last = q == len(need) - 1
        for i in range(count + 1):
            if best[q][i] == infinity:
                continue
            ends = [count] if last else range(i + characters, count - sum(need[q + 1 :]) + 1)
            for end in ends:
                if end - i < characters:
                    continue
                extra = sorted(range(i + 1, end), key=lambda k: (_melisma_cost(slots[k]), -k))
                merged = tuple(sorted(extra[: end - i - characters]))
                cost = best[q][i] + sum(_melisma_cost(slots[k]) for k in merged)
                if not last:
                    hold = min(2.0, slots[end - 1].hold_ticks / TICKS_PER_QUARTER)
                    cost -= BREATH_BONUS * hold
                if cost < best[q + 1][end]:
                    best[q + 1][end] = cost
                    choice[(q + 1, end)] = (i, merged)
    if best[len(need)][count] == infinity:
        return None
    merged_all: list[int] = []
    notes: list[int] = []
    q, end = len(need), count
    while q:
        start, merged = choice[(q, end)]
        merged_all += merged
        notes.append(end - start)
        q, end = q - 1, start
    return best[len(need)][count], tuple(sorted(merged_all)), tuple(reversed(notes))


def fit_stanza(
    lines: Sequence[LineSlots],
    stanzas: Sequence[CiStanza] | None = None,
    *,
    after: CiStanza | None = None,
) -> CiFit | None:
    """The stanza (of ``stanzas``, default every one) that ``lines`` carry best, or None
    where the tune allows none; ``after``: the stanza sung before them (its 下片 is
    preferred)."""
    stanzas = ci_stanzas() if stanzas is None else stanzas
    sung = [line for line in lines if line.syllables]
    notes = sum(line.syllables for line in sung)
    if not sung:
        return None
    allowed = int(MAX_MELISMA_SHARE * notes)
    best: CiFit | None = None
    for stanza in stanzas:
        if not notes - allowed <= stanza.characters <= notes:
            continue
        fit = _fit_lines(sung, stanza)
        if fit is None or fit.melisma > allowed:
            continue
        if after is not None and after.pattern == stanza.pattern and after.part == "上片":
            fit = dataclasses.replace(fit, cost=fit.cost - CONTINUE_BONUS * (stanza.part == "下片"))
        if best is None or (fit.cost, -fit.stanza.poems) < (best.cost, -best.stanza.poems):
            best = fit
    return best


def _fit_lines(lines: Sequence[LineSlots], stanza: CiStanza) -> CiFit | None:
    """The cheapest split of ``stanza``'s clauses over ``lines`` (whole clauses per line)."""
    clauses = stanza.clauses
    prefix = [0, *itertools.accumulate(c.characters for c in clauses)]
    infinity = float("inf")
    # best[j][k]: the first k clauses on the first j lines
    best = [[infinity] * (len(clauses) + 1) for _ in range(len(lines) + 1)]
    choice: dict[tuple[int, int], tuple[int, tuple[int, ...]]] = {}
    best[0][0] = 0.0
    for j, line in enumerate(lines):
        for k in range(len(clauses) + 1):
            if best[j][k] == infinity:
                continue
            for k2 in range(k + 1, len(clauses) + 1):
                characters = prefix[k2] - prefix[k]
                if characters > line.syllables:
                    break
                if characters < line.syllables * (1 - MAX_MELISMA_SHARE) - 1:
                    continue
                fitted = fit_line(line.slots, clauses[k:k2])
                if fitted is None:
                    continue
                cost = best[j][k] + fitted[0]
                if cost < best[j + 1][k2]:
                    best[j + 1][k2] = cost
                    choice[(j + 1, k2)] = (k, fitted[1])
    if best[len(lines)][len(clauses)] == infinity:
        return None
    fitted_lines: dict[int, CiLine] = {}
    j, k2 = len(lines), len(clauses)
    while j:
        k, merged = choice[(j, k2)]
        part = clauses[k:k2]
        fitted_lines[lines[j - 1].index] = CiLine(
            merged, tuple(c.characters for c in part), tuple(c.rhymes for c in part)
        )
        j, k2 = j - 1, k
    melisma = sum(len(line.merged) for line in fitted_lines.values())
    return CiFit(stanza, fitted_lines, melisma, best[len(lines)][len(clauses)])


def carry(line: LineSlots, fitted: CiLine) -> LineSlots:
    """``line`` as it carries its clauses: each merged slot sung on the syllable before it
    (its notes and hold added to that syllable's), the clauses and their rhymes set."""
    slots: list[Slot] = []
    for index, slot in enumerate(line.slots):
        if index in fitted.merged and slots:
            held = slots[-1]
            slots[-1] = dataclasses.replace(
                held,
                note_count=held.note_count + slot.note_count,
                hold_ticks=held.hold_ticks + slot.hold_ticks,
            )
        else:
            slots.append(slot)
    return dataclasses.replace(
        line, slots=tuple(slots), clauses=fitted.clauses, clause_rhymes=fitted.rhymes
    )


# --- a piece's stanzas ----------------------------------------------------------------------


def ci_groups(plan: FormPlan | None, total_bars: int) -> list[tuple[int, int]]:
    """``(first bar, end bar)`` of each run of sections that carries one stanza: without a
    plan, the whole piece; with one, consecutive sections while they hold at most
    ``CI_MAX_BARS`` bars together (16 bars of AABA carry a whole ci, 32 bars a 上片 over A
    A' and a 下片 over B A''), except that a chorus is a run of its own, so that a chorus
    sung again is shaped as the first and sings its words again (``song_form``)."""
    if plan is None or not plan.sections:
        return [(0, total_bars)]
    groups: list[tuple[int, int, bool]] = []
    for index, section in enumerate(plan.sections):
        if section.treatment is Treatment.PICKUP and index + 1 < len(plan.sections):
            continue  # heard with the section it leads into
        first = plan.heard_first_bar(index)
        end = min(section.end_bar, total_bars)
        chorus = is_chorus(section.label)
        if first >= total_bars:
            break
        joined = (groups[-1][0], end) if groups else (first, end)
        if groups and not chorus and not groups[-1][2] and group_bars(plan, joined) <= CI_MAX_BARS:
            groups[-1] = (groups[-1][0], end, False)
        else:
            groups.append((first, end, chorus))
    if groups[-1][1] < total_bars:  # bars past the plan's end close its last line
        groups[-1] = (groups[-1][0], total_bars, groups[-1][2])
    return [(first, end) for first, end, _ in groups]


def group_bars(plan: FormPlan | None, group: tuple[int, int]) -> int:
    """Bars of a group, a pickup bar that opens the piece not counted (its upbeat is the
    first line's first notes)."""
    first, end = group
    return end - first - (1 if plan is not None and plan.pickup_bars and first == 0 else 0)


def group_of(groups: Sequence[tuple[int, int]], bar: int) -> int:
    """The index of the group (``ci_groups``) holding ``bar``."""
    return next((i for i, (first, end) in enumerate(groups) if first <= bar < end), -1)


def sing_stanza(lines: Sequence[LineSlots], fit: CiFit) -> list[LineSlots]:
    """A group's ``lines`` as they carry ``fit``: merged slots, clauses, and one rhyme
    through the stanza, anchored on its first line that has a rhyming clause."""
    out: list[LineSlots] = []
    anchor: int | None = None
    for line in lines:
        fitted = fit.lines.get(line.index)
        if fitted is None:
            out.append(dataclasses.replace(line, rhyme_label="-", rhymes_with=None))
            continue
        rhymes = any(fitted.rhymes)
        out.append(sung_as_planned(line, fitted, anchor if rhymes else None))
        if rhymes and anchor is None:
            anchor = line.index
    return out


def sung_as_planned(line: LineSlots, fitted: CiLine, rhymes_with: int | None) -> LineSlots:
    """``line`` carrying ``fitted``, rhyming with line ``rhymes_with``: as ``sing_stanza``
    plans it, for a service that writes a stanza's lines one at a time."""
    return dataclasses.replace(
        carry(line, fitted),
        rhyme_label="A" if any(fitted.rhymes) else "-",
        rhymes_with=rhymes_with,
    )


def group_shape(lines: Sequence[LineSlots]) -> str:
    """What a group's fit depends on: its lines' bars and their slots' places and
    strengths, relative to its first bar. A chorus sung again has the shape of the first,
    so it carries the same stanza the same way and can sing the same words."""
    if not lines:
        return ""
    first = lines[0].first_bar
    parts = [
        f"{line.first_bar - first}+{line.bar_count}:"
        + ",".join(
            f"{s.bar_index - first}.{s.onset_ticks}{'!' if s.strong else ''}" for s in line.slots
        )
        for line in lines
    ]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def stanza_named(name: str) -> CiStanza | None:
    """The stanza called ``name`` (``CiStanza.name``), or None."""
    return next((stanza for stanza in ci_stanzas() if stanza.name == name), None)


def fit_group(
    lines: Sequence[LineSlots],
    *,
    after: CiStanza | None = None,
    seen: Mapping[str, str] | None = None,
    stanzas: Sequence[CiStanza] | None = None,
) -> CiFit | None:
    """The stanza (of ``stanzas``, default every one) a group's lines carry, or None: a
    group shaped as one before (``seen``: shape → stanza name) carries that one again. The
    caller leaves out groups of more than ``CI_MAX_BARS`` bars (a long section, a long
    piece without a plan)."""
    if not lines:
        return None
    known = (seen or {}).get(group_shape(lines))
    if known is not None:
        stanza = stanza_named(known)
        stanzas = [stanza] if stanza is not None else []
    return fit_stanza(lines, stanzas, after=after)


def half_cut(lines: Sequence[LineSlots], plan: FormPlan | None) -> int | None:
    """Where a group's lines split into two halves: at the line that starts a section
    nearest the group's middle bar (without a plan, at the line start nearest it); None
    where no line but the first starts a section."""
    if len(lines) < 2:
        return None
    first, end = lines[0].first_bar, lines[-1].first_bar + lines[-1].bar_count
    starts = None
    if plan is not None:
        starts = {plan.heard_first_bar(k) for k in range(len(plan.sections))}
    cuts = [i for i in range(1, len(lines)) if starts is None or lines[i].first_bar in starts]
    if not cuts:
        return None
    return min(cuts, key=lambda i: (abs(2 * lines[i].first_bar - first - end), i))


def fit_parts(
    lines: Sequence[LineSlots],
    plan: FormPlan | None,
    *,
    after: CiStanza | None = None,
    seen: Mapping[str, str] | None = None,
    stanzas: Sequence[CiStanza] | None = None,
) -> list[tuple[list[LineSlots], CiFit]]:
    """The stanzas (of ``stanzas``, default every one) a group's lines carry, each with its
    lines: one over the whole group where one fits (``fit_group``), else one over each half
    (``half_cut``) that a stanza fits, as a ci's 上片 and 下片 are sung to the two halves of
    its tune."""
    whole = fit_group(lines, after=after, seen=seen, stanzas=stanzas)
    if whole is not None:
        return [(list(lines), whole)]
    cut = half_cut(lines, plan)
    if cut is None:
        return []
    parts = []
    for half in (lines[:cut], lines[cut:]):
        fit = fit_group(half, after=after, seen=seen, stanzas=stanzas)
        after = fit.stanza if fit is not None else None
        if fit is not None:
            parts.append((list(half), fit))
    return parts


def received_group(
    bars: Mapping[int, Sequence[Note]],
    group: tuple[int, int],
    meter: Meter,
    plan: FormPlan | None,
    total_bars: int,
    *,
    first_line: int,
    scheme: str,
    melisma: bool,
    after: CiStanza | None = None,
    seen: Mapping[str, str] | None = None,
) -> list[tuple[CiFit, list[LineSlots]]]:
    """The stanzas a group carries (``fit_parts``), fitted once its bars are all in
    ``bars`` (bar index → notes), each with its lines as they carry it (empty: none fits);
    the group's first line is line ``first_line`` of the piece. The lines close as
    ``slots.next_line_bars`` closes them bar by bar, at each section's end, each section's
    rhyme scheme counted from its first line (as the lyric service plans them)."""
    lines: list[LineSlots] = []
    cursor, end = group
    stanza, section = first_line, section_end(plan, cursor, total_bars)
    while cursor < end:
        if cursor >= section:
            stanza, section = first_line + len(lines), section_end(plan, cursor, total_bars)
        line_bars = next_line_bars(bars, cursor, meter, section)
        if line_bars is None:
            raise ValueError(f"bars {group[0]}..{end - 1} are not all received")
        lines.append(
            make_line(
                first_line + len(lines),
                cursor,
                line_bars,
                meter,
                scheme,
                melisma,
                stanza_start=stanza,
            )
        )
        cursor += len(line_bars)
    parts = fit_parts(lines, plan, after=after, seen=seen)
    return [(fit, sing_stanza(part, fit)) for part, fit in parts]


def _grouped(lines: Sequence[LineSlots], plan: FormPlan | None) -> list[list[LineSlots]]:
    total = max((line.first_bar + line.bar_count for line in lines), default=0)
    groups = ci_groups(plan, total)
    return [
        list(grouped)
        for _, grouped in itertools.groupby(
            lines, key=lambda line: group_of(groups, line.first_bar)
        )
    ]


def sing_named(
    lines: Sequence[LineSlots], names: Mapping[int, str], plan: FormPlan | None
) -> dict[int, LineSlots]:
    """The lines (by index) of each group whose lines were sung to the stanza named in
    ``names`` (line index → ``CiStanza.name``), carrying it again on the notes they have now
    (an edit rewrites some of them); a group the stanza no longer fits is left out."""
    out: dict[int, LineSlots] = {}
    for group in _grouped(lines, plan):
        for name, run in itertools.groupby(group, key=lambda line: names.get(line.index, "")):
            part = list(run)
            stanza = stanza_named(name) if name else None
            if stanza is None:
                continue
            # both halves of a group may carry the same stanza: one run of names
            for half, fit in fit_parts(part, plan, stanzas=[stanza]):
                out.update({line.index: line for line in sing_stanza(half, fit)})
    return out


def sing_ci(
    lines: Sequence[LineSlots], plan: FormPlan | None
) -> tuple[list[LineSlots], dict[int, CiStanza]]:
    """Every line of a piece, each group (``ci_groups``) carrying the stanzas that fit it
    where they do (``fit_parts``), and the stanza per line index of the lines that carry
    one."""
    out: list[LineSlots] = []
    stanzas: dict[int, CiStanza] = {}
    after: CiStanza | None = None
    seen: dict[str, str] = {}
    for group in _grouped(lines, plan):
        span = (group[0].first_bar, group[-1].first_bar + group[-1].bar_count)
        parts = []
        if group_bars(plan, span) <= CI_MAX_BARS:
            parts = fit_parts(group, plan, after=after, seen=seen)
        after = parts[-1][1].stanza if parts else None
        carried: dict[int, LineSlots] = {}
        for part, fit in parts:
            seen[group_shape(part)] = fit.stanza.name
            carried.update({line.index: line for line in sing_stanza(part, fit)})
            stanzas.update({line.index: fit.stanza for line in part})
        out += [carried.get(line.index, line) for line in group]
    return out, stanzas


# --- counting them again --------------------------------------------------------------------


def song_ci(path: Path) -> Iterable[tuple[str, list[str]]]:
    """(pattern name, paragraphs) of every Song ci in the ``chinese-poetry`` tarball."""
    member = re.compile(r"package/dist/songci/ci\.song\.\d+\.json$")
    with tarfile.open(path, "r:gz") as archive:
        for entry in sorted(archive.getmembers(), key=lambda m: m.name):
            if member.match(entry.name):
                handle = archive.extractfile(entry)
                assert handle is not None
                for poem in json.loads(handle.read().decode("utf-8")):
                    yield poem.get("rhythmic") or "", poem.get("paragraphs") or []


def main() -> None:
    from cantus.lyrics.sources import CHINESE_POETRY, LYRIC_DATA_DIR

    patterns = count_patterns(song_ci(LYRIC_DATA_DIR / CHINESE_POETRY))
    entries = [
        {"pattern": name, "poems": poems, "clauses": [[c.characters, int(c.rhymes)] for c in cs]}
        for name, poems, cs in patterns
    ]
    CI_PATTERNS_PATH.write_text(
        "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n",
        encoding="utf-8",
    )
    for name, poems, clauses in patterns:
        shape = " ".join(f"{c.characters}{'。' if c.rhymes else '，'}" for c in clauses)
        print(f"{name:8s} {poems:4d}  {shape}")
    print(f"{len(patterns)} patterns → {CI_PATTERNS_PATH}")


if __name__ == "__main__":
    main()
