"""How the corpus's tunes are shaped phrase by phrase, and a short piece's form drawn from it.

A listener hears a folk tune's form in its four-bar phrases: which are new, which return
and how (``cantus.eval.structure.phrase_pattern``: ``A A~ B C``). Over the training split's
tunes of 16 bars or more, the first 16 bars (after any pickup bar) read:

* ``A B C D`` (four new phrases) in 29 % of tunes, ``A A~ B C`` in 17 %, ``A A~ B B~`` in 12 %,
  ``A A~ B A~`` in 6 %, then a long tail;
* by style and meter: a celtic jig (6/8) or reel (2/2) doubles its strains (``A A~ B B~`` 27-32
  %), a folk song in 2/4 is mostly through-composed (``A B C D`` 46 %).

Until session 28 every 16-bar piece was the same ``A A' B A''`` (the ``AABA`` form): 6 % of
the corpus's tunes are shaped so, every composed piece was, and a station played that one
form all day. So the ``auto`` form of a piece of ``PATTERN_BARS`` draws its phrase pattern
as often as the corpus's tunes of its style and meter are shaped so (``draw_form``: the
training split's tunes at least that long, their first bars), and plans it phrase by phrase
(``cantus.music.form.plan_pattern``). Longer pieces keep the named forms ``auto`` picks by
length: the corpus holds too few of them to draw from, and a 32-bar song form is a form a
listener knows.

``PATTERN_TABLE`` holds the measurements (``data/phrase_patterns.json``); ``python -m
cantus.melody.phrase_patterns`` measures them again from the corpus cache and writes it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from cantus.music.form import AUTO, PHRASE_BARS, FormPlan, plan_form, plan_pattern
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy

PATTERN_BARS = (8, 12, 16, 20)
"""Piece lengths whose ``auto`` form is drawn from the corpus's phrase patterns."""
MINIMUM_TUNES = 40
"""Tunes of a style and meter the table needs to hold their patterns; fewer and the
patterns of every tune of that length answer."""

TABLE_PATH = Path(__file__).with_name("data") / "phrase_patterns.json"


def _load_table(path: Path = TABLE_PATH) -> dict[str, dict[str, float]]:
    with path.open(encoding="utf-8") as handle:
        table: dict[str, dict[str, float]] = json.load(handle)
    return table


PATTERN_TABLE = _load_table()
"""``"<style> <meter> <bars>"`` (and ``"<bars>"`` over every style and meter) → phrase
pattern → share of the training split's tunes of at least that many bars whose first bars
read so."""


def group_key(style: str, meter: Meter, bars: int) -> str:
    return f"{style} {meter.numerator}/{meter.denominator} {bars}"


def pattern_shares(style: str, meter: Meter, bars: int) -> dict[str, float]:
    """The patterns a piece of ``bars`` in ``style`` and ``meter`` draws from, with their
    shares; empty for a length the table does not hold."""
    return PATTERN_TABLE.get(group_key(style, meter, bars)) or PATTERN_TABLE.get(str(bars), {})


def draw_pattern(style: str, meter: Meter, bars: int, rng: random.Random) -> str | None:
    """A phrase pattern drawn as often as the corpus's tunes of ``style`` and ``meter`` are
    shaped so; None for a length not in ``PATTERN_BARS``."""
    shares = pattern_shares(style, meter, bars)
    if not shares:
        return None
    patterns = sorted(shares)
    return rng.choices(patterns, weights=[shares[p] for p in patterns])[0]


def draw_form(
    form: str,
    *,
    bars: int,
    key: Key,
    energy: Energy,
    style: str,
    meter: Meter,
    seed: int,
    window: int | None = None,
    drawn: bool = True,
) -> FormPlan:
    """The plan of a piece: ``form``'s (``plan_form``), except that ``auto`` over one of
    ``PATTERN_BARS`` draws its phrase pattern from the corpus's (``draw_pattern``); a
    function of the seed alone, so a resumed piece plans the same. ``drawn`` off
    (``settings.melody_corpus_forms``): ``auto`` picks by length alone.

    ``window``: a piece longer than ``window`` bars draws the pattern of a piece of
    ``window`` bars and goes on past it with new phrases. The realness eval compares the
    first bars of pieces that go on past them with those of real tunes that do; drawn from
    the longer tunes' patterns, its windows were the longer tunes' (mostly through-composed
    songs), not the pieces of that length a user gets."""
    if form == AUTO and drawn:
        length = window if window is not None and window < bars else bars
        extra, rest = divmod(bars - length, PHRASE_BARS)
        pattern = draw_pattern(style, meter, length, random.Random(seed * 1_000_003 + 13))
        if pattern is not None and not rest:
            stated = {token[0] for token in pattern.split()}
            tail = [chr(ord("A") + len(stated) + number) for number in range(extra)]
            return plan_pattern(" ".join([pattern, *tail]), key=key, energy=energy)
    return plan_form(form, bars=bars, key=key, energy=energy)


def measure_patterns(
    tunes: Iterable[tuple[str, Meter, dict[int, str]]],
    minimum: int = MINIMUM_TUNES,
) -> dict[str, dict[str, float]]:
    """``PATTERN_TABLE`` from (style, meter, {bars: pattern of its first bars}) of each tune;
    a group of fewer than ``minimum`` tunes is left out, and so is a pattern only one tune of
    its group has (the draw renormalises: 2 % of the 16-bar tunes, 2-25 % of a style and
    meter's 20-bar ones)."""
    groups: dict[str, Counter[str]] = {}
    for style, meter, patterns in tunes:
        for bars, pattern in patterns.items():
            groups.setdefault(group_key(style, meter, bars), Counter())[pattern] += 1
            groups.setdefault(str(bars), Counter())[pattern] += 1
    table = {}
    for key in sorted(groups, key=lambda k: (len(k.split()), k)):
        counter = groups[key]
        total = counter.total()
        if total < minimum:
            continue
        table[key] = {
            pattern: round(count / total, 3)
            for pattern, count in counter.most_common()
            if count > 1
        }
    return table


def main() -> None:
    """Measure ``PATTERN_TABLE`` on the training split of the corpus cache and write it."""
    from cantus.eval.structure import phrase_pattern
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR
    from cantus.music.pickup import pickup_bars

    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    tunes = []
    for tune in split.train:
        body = tune.melody.bars[pickup_bars(tune.melody.bars) :]
        patterns = {
            bars: phrase_pattern(body, bars // PHRASE_BARS)
            for bars in PATTERN_BARS
            if len(body) >= bars
        }
        tunes.append((tune.style, tune.melody.meter, patterns))
    table = measure_patterns(tunes)
    TABLE_PATH.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    for bars in PATTERN_BARS:
        top = list(table.get(str(bars), {}).items())[:4]
        print(f"{bars} bars: " + "; ".join(f"{p} {s:.0%}" for p, s in top))
    print(f"wrote {TABLE_PATH} ({len(table)} groups)")


if __name__ == "__main__":
    main()
