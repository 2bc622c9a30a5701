"""The lyric LMs' training text beyond ``fortunes``, read from registry packages that
``make lyric-data`` installs (nothing is fetched at run time), each document tagged with
its *register* so that style can be asked for (``docs/lyrics_data.md``: sources, licences,
sizes, cleaning).

English (Debian):

* ``song``: ``fortunes`` ``songs-poems`` and ``love`` (the old LSTM's text);
* ``modern``: other ``fortunes`` files of everyday prose (wisdom, people, platitudes, …) and
  WordNet's example sentences (``wordnet-base``: the quoted examples in ``data.*``);
* ``literary``: the dated quotations of the GNU Collaborative International Dictionary of
  English (``dict-gcide``: indented quotation blocks ending ``--Author``), and ``fortunes``
  ``literature``;
* ``scripture``: the King James Bible (``bible-kjv``'s ``bible`` reader over
  ``bible-kjv-text``), one chapter per document, every second chapter kept so scripture
  does not outweigh the rest.

Mandarin: ``fortunes-zh`` (``tang300``, ``song100``) and the npm package
``chinese-poetry`` (``make lyric-data`` packs its pinned tarball into ``LYRIC_DATA_DIR``;
it is read from the tarball): ``ci`` (Song ci, the Huajian ji), ``shi`` (Tang poems,
converted to simplified characters with OpenCC ``t2s``), ``qu`` (Yuan qu: vernacular song).

A line is what one sung phrase can hold: prose is cut into clauses at ``. ; : ? !`` and, past
``MAX_LINE_WORDS``, at commas.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.english import WORD_PATTERN
from cantus.lyrics.mandarin import is_hanzi

REPO_ROOT = Path(__file__).resolve().parents[3]
LYRIC_DATA_DIR = REPO_ROOT / ".cache" / "lyric-data"
CHINESE_POETRY = "chinese-poetry-2.0.1.tgz"
"""The npm tarball ``make lyric-data`` packs (``npm pack chinese-poetry@2.0.1``)."""
FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
MIN_LINE_WORDS, MAX_LINE_WORDS = 2, 14
MAX_ZH_LINE = 12


MODERN_FORTUNES = (
    "wisdom",
    "people",
    "platitudes",
    "men-women",
    "fortunes",
    "miscellaneous",
    "humorists",
    "kids",
    "work",
    "pets",
    "food",
    "education",
)
"""``fortunes`` files of everyday prose; computing, drugs, politics, ethnic jokes and the
like are left out."""


class SourceMissing(RuntimeError):
    """A source package is not installed: ``make lyric-data`` installs them all."""


class Dropped(str, Enum):
    """Why a source line did not become a training line."""

    ATTRIBUTION = "attribution"
    TITLE = "title"
    BLOCKED = "blocked"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NOT_CONVERTED = "not_converted"
    THIRD_PERSON = "third_person"
    """A WordNet example told of "he" or "she", left out of the English LSTM's training
    (``cantus.lyrics.training.THIRD_PERSON``)."""


@dataclass(frozen=True)
class Document:
    """One poem, song, chapter or quotation: its normalised lines, source and register."""

    lines: tuple[str, ...]
    source: str
    register: str


# --- English ----------------------------------------------------------------------------

_CLAUSE_END = re.compile(r"(?<=[.;:?!])\s+|\s+--\s+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def english_clauses(text: str, dropped: Counter) -> list[str]:
    """Lines of lower-case words from running prose: clauses at . ; : ? ! (and commas in
    a clause longer than ``MAX_LINE_WORDS``)."""
    lines = []
    for clause in _CLAUSE_END.split(text.replace("’", "'")):
        pieces = [clause]
        if len(WORD_PATTERN.findall(clause.lower())) > MAX_LINE_WORDS:
            pieces = clause.split(",")
        for piece in pieces:
            line = _english_line(piece, dropped)
            if line:
                lines.append(line)
    return lines


def _english_line(raw: str, dropped: Counter) -> str | None:
    words = WORD_PATTERN.findall(raw.lower().replace("’", "'"))
    if len(words) < MIN_LINE_WORDS:
        dropped[Dropped.TOO_SHORT] += 1
    elif len(words) > MAX_LINE_WORDS + 2:
        dropped[Dropped.TOO_LONG] += 1
    elif any(is_blocked(word, "en") for word in words):
        dropped[Dropped.BLOCKED] += 1
    else:
        return " ".join(words)
    return None


def read_fortunes(name: str, directory: Path = FORTUNES_DIR) -> list[str]:
    path = directory / name
    if not path.exists():
        raise SourceMissing(f"{path} is missing: run make lyric-data")
    text = _ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
    return [chunk.strip("\n") for chunk in re.split(r"^%$", text, flags=re.M) if chunk.strip()]


def fortune_documents(
    names: tuple[str, ...], register: str, dropped: Counter, *, verse: bool
) -> Iterator[Document]:
    """``verse``: one line per source line (poems, songs); otherwise the fortune is prose
    and cut into clauses."""
    for name in names:
        for fortune in read_fortunes(name):
            body = [r for r in fortune.splitlines() if not r.strip().startswith("--")]
            dropped[Dropped.ATTRIBUTION] += len(fortune.splitlines()) - len(body)
            if verse:
                lines = [line for r in body if (line := _english_line(r, dropped))]
            else:
                lines = english_clauses(" ".join(r.strip() for r in body), dropped)
            if lines:
                yield Document(tuple(lines), f"fortunes/{name}", register)


def wordnet_documents(dropped: Counter, directory: Path = WORDNET_DIR) -> Iterator[Document]:
    """WordNet 3.0's example sentences (the quoted texts of each synset's gloss), eight to a
    document in file order."""
    quoted = re.compile(r'"([^"]+)"')
    batch: list[str] = []
    found = False
    for part in ("noun", "verb", "adj", "adv"):
        path = directory / f"data.{part}"
        if not path.exists():
            continue
        found = True
        with path.open(encoding="latin-1") as handle:
            for row in handle:
                if row.startswith("  ") or "|" not in row:
                    continue
                for example in quoted.findall(row.split("|", 1)[1]):
                    batch += english_clauses(example, dropped)
                    if len(batch) >= 8:
                        yield Document(tuple(batch), "wordnet", "modern")
                        batch = []
    if not found:
        raise SourceMissing(f"{directory}/data.* missing: run make lyric-data")
    if batch:
        yield Document(tuple(batch), "wordnet", "modern")


def gcide_documents(dropped: Counter, path: Path = GCIDE) -> Iterator[Document]:
    """The quotations of the 1913 Webster in GCIDE: blocks indented deeper than the
    definitions, ending in ``--Author.``; the attribution is dropped."""
    if not path.exists():
        raise SourceMissing(f"{path} is missing: run make lyric-data")
    block: list[str] = []

    def flush() -> Iterator[Document]:
        text = " ".join(block)
        if "--" in text:
            dropped[Dropped.ATTRIBUTION] += 1
            lines = english_clauses(text.rsplit("--", 1)[0], dropped)
            if lines:
                yield Document(tuple(lines), "gcide", "literary")
        block.clear()

    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        for row in handle:
            indent = len(row) - len(row.lstrip(" "))
            stripped = row.strip()
            if indent >= 9 and stripped and not stripped.startswith("["):
                block.append(stripped)
            elif block:
                yield from flush()
    if block:
        yield from flush()


def bible_documents(dropped: Counter, every: int = 2) -> Iterator[Document]:
    """The King James Bible, one chapter per document, every ``every``-th chapter."""
    try:
        result = subprocess.run(
            ["bible", "-f", "Ge1:1-Re22:21"], capture_output=True, text=True, check=True
        )
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        raise SourceMissing(f"the bible reader failed ({error}): run make lyric-data") from None
    verse = re.compile(r"^([1-3]?[A-Za-z]+\d+):\d+\s+(.*)$")
    chapters: dict[str, list[str]] = {}
    current = None
    for row in result.stdout.splitlines():
        match = verse.match(row)
        if match:
            current = match.group(1)
            chapters.setdefault(current, []).append(match.group(2))
        elif current and row.strip():
            chapters[current][-1] += " " + row.strip()
    for number, verses in enumerate(chapters.values()):
        if number % every:
            continue
        lines = [line for v in verses for line in english_clauses(v, dropped)]
        if lines:
            yield Document(tuple(lines), "bible-kjv", "scripture")


def english_documents(dropped: Counter) -> Iterator[Document]:
    yield from fortune_documents(("songs-poems", "love"), "song", dropped, verse=True)
    yield from fortune_documents(("literature",), "literary", dropped, verse=True)
    yield from fortune_documents(MODERN_FORTUNES, "modern", dropped, verse=False)
    yield from wordnet_documents(dropped)
    yield from gcide_documents(dropped)
    yield from bible_documents(dropped)


# --- Mandarin ---------------------------------------------------------------------------

_ZH_CLAUSE_END = re.compile(r"[，。？！；：、,.?!;:「」『』“”（）()\s]+")


def mandarin_clauses(text: str, dropped: Counter) -> list[str]:
    lines = []
    for clause in _ZH_CLAUSE_END.split(text):
        characters = "".join(c for c in clause if is_hanzi(c))
        if len(characters) < 2:
            dropped[Dropped.TOO_SHORT] += 1 if clause else 0
        elif len(characters) > MAX_ZH_LINE:
            dropped[Dropped.TOO_LONG] += 1
        elif is_blocked(characters, "zh"):
            dropped[Dropped.BLOCKED] += 1
        else:
            lines.append(characters)
    return lines


def fortunes_zh_documents(dropped: Counter) -> Iterator[Document]:
    for name, register in (("tang300", "shi"), ("song100", "ci")):
        for fortune in read_fortunes(name):
            body = []
            for raw in fortune.splitlines():
                if "《" in raw or "作者" in raw or "题目" in raw:
                    dropped[Dropped.TITLE] += 1
                else:
                    body.append(raw)
            lines = mandarin_clauses(" ".join(body), dropped)
            if lines:
                yield Document(tuple(lines), f"fortunes-zh/{name}", register)


CHINESE_POETRY_PARTS = (
    # (member path pattern, source name, register, convert traditional → simplified)
    (r"dist/songci/ci\.song\.\d+\.json", "chinese-poetry/songci", "ci", False),
    (
        r"dist/wudaishici/huajianji/huajianji-\d+-juan\.json",
        "chinese-poetry/huajianji",
        "ci",
        False,
    ),
    (r"dist/yuanqu/yuanqu\.json", "chinese-poetry/yuanqu", "qu", False),
    (r"dist/quantangshi/poet\.tang\.\d+\.json", "chinese-poetry/tang", "shi", True),
)


def chinese_poetry_documents(
    dropped: Counter, directory: Path = LYRIC_DATA_DIR
) -> Iterator[Document]:
    """Ci, qu and Tang poems from the ``chinese-poetry`` npm tarball, read in place."""
    path = directory / CHINESE_POETRY
    if not path.exists():
        raise SourceMissing(f"{path} is missing: run make lyric-data")
    import opencc

    to_simplified = opencc.OpenCC("t2s")
    patterns = [(re.compile(f"package/{p}$"), s, r, t) for p, s, r, t in CHINESE_POETRY_PARTS]
    with tarfile.open(path, "r:gz") as archive:
        members = sorted(archive.getmembers(), key=lambda m: m.name)
        for member in members:
            for pattern, source, register, convert in patterns:
                if not pattern.match(member.name):
                    continue
                handle = archive.extractfile(member)
                assert handle is not None
                for poem in json.loads(handle.read().decode("utf-8")):
                    paragraphs = poem.get("paragraphs") or []
                    text = " ".join(p for p in paragraphs if isinstance(p, str))
                    if convert:
                        text = to_simplified.convert(text)
                    lines = mandarin_clauses(text, dropped)
                    if lines:
                        yield Document(tuple(lines), source, register)


def mandarin_documents(dropped: Counter) -> Iterator[Document]:
    yield from fortunes_zh_documents(dropped)
    yield from chinese_poetry_documents(dropped)


def load_corpus(language: str) -> tuple[list[Document], Counter]:
    """Every document of ``language`` (in a fixed order) and dropped lines by reason."""
    dropped: Counter = Counter()
    reader = english_documents if language == "en" else mandarin_documents
    return list(reader(dropped)), dropped
