"""Whether a register asked for is the register heard (``cantus eval lyrics``, #21).

The lyric transformer writes pieces in each register of the language (``REGISTERS``: song,
modern, literary, scripture; ci, shi, qu), as the lyric service does for a request's
``lyrics_register``. Each piece's lyrics are then scored by one judge per register, an
interpolated Kneser-Ney bigram (``BigramJudge``) trained on that register's held-out
documents, which the transformer never saw (as many lines for each register, so that no
judge wins for knowing more words). A piece is *heard* in the register whose judge
finds its words likeliest per token. The confusion table says whether asking for a register
changes the voice as a reader would tell it (chance: one in the number of registers).
Reported beside each register: the English lines' Link Grammar parse rate and distinct-2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from cantus.lyrics import REGISTERS
from cantus.lyrics.decoding import REGISTER_DECODING
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.model import tokenize
from cantus.lyrics.slots import plan_lines
from cantus.lyrics.theme import ThemeEmbedder
from cantus.lyrics.training import CHECKPOINT_DIR, checkpoint_path, lexicon_path
from cantus.lyrics.transformer import TransformerLyricScorer, load_transformer_checkpoint
from cantus.lyrics.writer import themed_writer


@dataclass
class RegisterCheck:
    language: str
    pieces: int
    heard: dict[str, Counter] = field(default_factory=dict)
    """register asked → register heard → pieces."""
    lines: dict[str, list[str]] = field(default_factory=dict)
    parse_rate: dict[str, float] = field(default_factory=dict)
    distinct_2: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        right = sum(counts[asked] for asked, counts in self.heard.items())
        return right / max(1, sum(sum(counts.values()) for counts in self.heard.values()))


def held_out_by_register(language: str, seed: int = 0) -> dict[str, list[list[str]]]:
    """Each register's held-out lines as tokens (``held_out_documents``), as many for each as
    the register with the fewest has (a seeded draw): a judge trained on more text knows more
    words and would win pieces for that alone."""
    from cantus.eval.lyrics import held_out_documents

    out: dict[str, list[list[str]]] = {register: [] for register in REGISTERS[language]}
    for document in held_out_documents(language):
        out[document.register] += [tokenize(line, language) for line in document.lines]
    size = min(len(lines) for lines in out.values())
    rng = np.random.default_rng(seed)
    return {
        register: [lines[i] for i in sorted(rng.choice(len(lines), size, replace=False))]
        for register, lines in out.items()
    }


def run_register_check(
    language: str,
    tunes: list,
    themes: list[str],
    moods: list[str],
    *,
    bars: int,
    scheme: str = "AABB",
) -> RegisterCheck:
    """Pieces on ``tunes`` (themes and moods rotating) in every register of ``language``."""
    from cantus.eval.grammar import parser_available, parses
    from cantus.eval.lyrics import BigramJudge, distinct_2

    loaded = load_transformer_checkpoint(checkpoint_path(language, CHECKPOINT_DIR, "transformer"))
    lexicon = Lexicon.load(lexicon_path(language, CHECKPOINT_DIR, "transformer"))
    embedder = ThemeEmbedder()
    check = RegisterCheck(language, len(tunes))
    pieces: dict[str, list[list[str]]] = {}
    for register in REGISTERS[language]:
        scorer = TransformerLyricScorer(loaded, register)
        pieces[register] = []
        for number, tune in enumerate(tunes):
            theme, mood = themes[number % len(themes)], moods[number % len(moods)]
            lines = plan_lines(
                [bar.notes for bar in tune.melody.bars[:bars]], tune.melody.meter, scheme=scheme
            )
            writer = themed_writer(
                scorer, lexicon, embedder, theme, mood, seed=number, options=REGISTER_DECODING
            )
            pieces[register].append([d.text for d in writer.write_lines(lines) if d.words])
        check.lines[register] = [line for piece in pieces[register] for line in piece]
        check.distinct_2[register] = distinct_2(check.lines[register], language)
        if language == "en" and parser_available():
            verdicts = parses(check.lines[register])
            check.parse_rate[register] = sum(verdicts) / max(1, len(verdicts))
    references = held_out_by_register(language)
    vocabulary = {t for lines in references.values() for line in lines for t in line}
    vocabulary |= {
        t for lines in check.lines.values() for ln in lines for t in tokenize(ln, language)
    }
    judges = {register: BigramJudge(lines, vocabulary) for register, lines in references.items()}
    for asked, written in pieces.items():
        check.heard[asked] = Counter()
        for piece in written:
            tokens = [tokenize(line, language) for line in piece]
            scores = {r: -np.log(judge.perplexity(tokens)) for r, judge in judges.items()}
            check.heard[asked][max(scores, key=scores.__getitem__)] += 1
    return check


def format_register_check(check: RegisterCheck) -> list[str]:
    """The report's section: the confusion table, the quality per register, one line each."""
    registers = list(check.heard)
    lines = [
        f"### Registers asked for ({check.language}): {check.pieces} pieces each, the transformer",
        "",
        "Each register written as a request's `lyrics_register` writes it (the transformer "
        "conditioned on it, its lexicon, the current decoder); each piece heard in the "
        "register whose held-out text (a Kneser-Ney bigram per register, unseen in training) "
        "finds its words likeliest, each judge trained on as many lines "
        "(`cantus.eval.lyric_registers`). "
        f"Heard as asked: **{100 * check.accuracy:.0f} %** "
        f"(chance {100 / len(registers):.0f} %).",
        "",
        "| asked \\ heard | "
        + " | ".join(registers)
        + " | distinct-2 |"
        + (" parsed completely |" if check.parse_rate else ""),
        "|---|" + "---:|" * (len(registers) + 1 + bool(check.parse_rate)),
    ]
    for asked in registers:
        cells = [str(check.heard[asked][heard]) for heard in registers]
        cells.append(f"{100 * check.distinct_2[asked]:.1f} %")
        if check.parse_rate:
            cells.append(f"{100 * check.parse_rate[asked]:.1f} %")
        lines.append(f"| {asked} | " + " | ".join(cells) + " |")
    lines.append("")
    for register in registers:
        lines.append(f"* {register}: {' / '.join(check.lines[register][:4])}")
    lines.append("")
    return lines
