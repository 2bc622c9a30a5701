"""``cantus eval lyrics``: constrained lyric decoding against the unconstrained baseline.

For each language, ``pieces`` melodies (the first 16 bars of test-split tunes of the melody
corpus, in tune-id order) get lyrics twice in the same run, from the same LM
(``LocalLyricScorer``, the code the ``lyric_lm`` Triton model runs): by ``LyricWriter``
(every constraint) and by the baseline that samples the LM freely and trims each line at a
word boundary (``sample_line_unconstrained``). Themes, moods and rhyme schemes (AABB, ABAB,
ABCB) rotate over the pieces. Measured per method:

* syllable fit: lines whose syllables equal their notes (lines without notes excluded);
* stress on strong beats (English): primary stresses of words of 2+ syllables that fall on a
  strong slot; the same for content monosyllables, reported apart;
* rhyme compliance: lines that must rhyme (scheme letter seen earlier in the stanza) whose
  last word rhymes with the anchor's (CMUdict rhyming part, a different word; Mandarin: the
  merged pinyin final);
* theme similarity: cosine of the piece's lyrics and the theme + mood (all-MiniLM-L6-v2);
* distinct-2: distinct word (character) bigrams within lines over all bigrams;
* repeated lines: lines equal to an earlier line of the same piece;
* tone–contour agreement (Mandarin): adjacent sung characters whose tone step goes the way
  the melody steps, over the note pairs where the pitch changes;
* blocked words in the output.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cantus.lyrics import LYRICS_LANGUAGES
from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.decoding import (
    DecodedLine,
    DecodeOptions,
    LyricWriter,
    sample_line_unconstrained,
)
from cantus.lyrics.english import is_content_word, pronounce
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.mandarin import contour_agrees, reading, rhyme_class
from cantus.lyrics.model import LocalLyricScorer, load_lyric_checkpoint
from cantus.lyrics.slots import LineSlots, plan_lines
from cantus.lyrics.theme import ThemeEmbedder, theme_text
from cantus.lyrics.training import CHECKPOINT_DIR, checkpoint_path, lexicon_path

THEMES = {
    "en": [
        "a sailor longing for the sea",
        "walking home through the winter snow",
        "the first warm morning of spring",
        "a mother singing her child to sleep",
        "old friends meeting again after many years",
        "the river running to the sea",
        "stars over the quiet hills at night",
        "dancing at the harvest fair",
        "a soldier coming home from war",
        "rain on the window and a letter from you",
    ],
    "zh": [
        "明月思乡",
        "春风花开",
        "秋夜送别故人",
        "江上孤舟",
        "山中白云",
        "边塞风雪",
        "雨后青山",
        "长安春色",
        "落日归鸟",
        "独坐听泉",
    ],
}
MOODS = ("calm", "happy", "sad", "hopeful", "tender")
SCHEMES = ("AABB", "ABAB", "ABCB")
BARS_PER_PIECE = 16
METHODS = ("constrained", "baseline")


@dataclass
class MethodStats:
    lines: int = 0
    fitting_lines: int = 0
    stressed: int = 0
    stressed_on_strong: int = 0
    mono_stressed: int = 0
    mono_on_strong: int = 0
    rhyme_lines: int = 0
    rhyming: int = 0
    theme_similarity: list[float] = field(default_factory=list)
    bigrams: Counter = field(default_factory=Counter)
    repeated_lines: int = 0
    tone_pairs: int = 0
    tone_agreeing: int = 0
    blocked: int = 0
    relaxed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def rates(self) -> dict[str, float]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else float("nan")

        return {
            "syllable_fit": ratio(self.fitting_lines, self.lines),
            "stress_on_strong": ratio(self.stressed_on_strong, self.stressed),
            "content_mono_on_strong": ratio(self.mono_on_strong, self.mono_stressed),
            "rhyme_compliance": ratio(self.rhyming, self.rhyme_lines),
            "theme_similarity": float(np.mean(self.theme_similarity))
            if self.theme_similarity
            else float("nan"),
            "distinct_2": ratio(len(self.bigrams), sum(self.bigrams.values())),
            "repeated_lines": ratio(self.repeated_lines, self.lines),
            "tone_contour_agreement": ratio(self.tone_agreeing, self.tone_pairs),
        }


def _rhyme_key(word: str, language: str) -> str:
    if language == "zh":
        read = reading(word[-1]) if word else None
        return rhyme_class(read[1]) if read else ""
    return pronounce(word).rhyme


def measure_piece(
    stats: MethodStats,
    language: str,
    lines: list[LineSlots],
    decoded: list[DecodedLine],
    similarity: float,
) -> None:
    """Add one piece's lines to ``stats``."""
    stats.theme_similarity.append(similarity)
    seen: set[str] = set()
    for line, out in zip(lines, decoded, strict=True):
        if line.syllables == 0:
            continue
        stats.lines += 1
        stats.fitting_lines += len(out.syllables) == line.syllables
        stats.relaxed.update(out.relaxed)
        stats.blocked += sum(is_blocked(w, language) for w in out.words)
        if out.text in seen:
            stats.repeated_lines += 1
        seen.add(out.text)
        stats.bigrams.update(zip(out.words, out.words[1:], strict=False))
        if language == "en":
            position = 0
            for word in out.words:
                spoken = pronounce(word)
                for offset in spoken.stressed_offsets:
                    if position + offset < line.syllables:
                        stats.stressed += 1
                        stats.stressed_on_strong += line.slots[position + offset].strong
                if spoken.syllables == 1 and is_content_word(word) and position < line.syllables:
                    stats.mono_stressed += 1
                    stats.mono_on_strong += line.slots[position].strong
                position += spoken.syllables
        else:
            for i in range(1, min(len(out.words), line.syllables)):
                before, after = reading(out.words[i - 1]), reading(out.words[i])
                if before is None or after is None:
                    continue
                agrees = contour_agrees(
                    before[0], after[0], line.slots[i - 1].pitch, line.slots[i].pitch
                )
                if agrees is not None:
                    stats.tone_pairs += 1
                    stats.tone_agreeing += agrees
    by_index = {line.index: out for line, out in zip(lines, decoded, strict=True)}
    for line in lines:
        if line.rhymes_with is None or line.syllables == 0:
            continue
        anchor, out = by_index.get(line.rhymes_with), by_index[line.index]
        if anchor is None or not anchor.words:
            continue
        stats.rhyme_lines += 1
        if out.words:
            same_key = _rhyme_key(out.words[-1], language) == _rhyme_key(anchor.words[-1], language)
            stats.rhyming += same_key and out.words[-1] != anchor.words[-1]


@dataclass
class LyricsEvalReport:
    pieces: int
    models: dict[str, str]
    stats: dict[str, dict[str, MethodStats]]


def run_lyrics_eval(
    *,
    pieces: int = 100,
    languages: tuple[str, ...] = LYRICS_LANGUAGES,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    options: DecodeOptions | None = None,
    log: Callable[[str], None] = print,
) -> LyricsEvalReport:
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    torch.set_num_threads(1)
    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    tunes = sorted(split.test, key=lambda t: t.tune_id)
    tunes = [t for t in tunes if any(bar.notes for bar in t.melody.bars)][:pieces]
    embedder = ThemeEmbedder()
    report = LyricsEvalReport(pieces=len(tunes), models={}, stats={})
    for language in languages:
        scorer = LocalLyricScorer(load_lyric_checkpoint(checkpoint_path(language, checkpoint_dir)))
        lexicon = Lexicon.load(lexicon_path(language, checkpoint_dir))
        report.models[language] = scorer.version
        stats = {method: MethodStats() for method in METHODS}
        for number, tune in enumerate(tunes):
            theme = THEMES[language][number % len(THEMES[language])]
            mood = MOODS[number % len(MOODS)]
            scheme = SCHEMES[number % len(SCHEMES)]
            bars = [bar.notes for bar in tune.melody.bars[:BARS_PER_PIECE]]
            lines = plan_lines(bars, tune.melody.meter, scheme=scheme)
            target = theme_text(theme, mood)
            theme_vector = embedder.embed([target])[0]

            started = time.perf_counter()
            writer = LyricWriter(
                scorer,
                lexicon,
                theme_vector=theme_vector,
                theme_text=theme,
                embed=embedder.embed,
                options=options or DecodeOptions(),
                seed=number,
            )
            constrained = writer.write_lines(lines)
            stats["constrained"].seconds += time.perf_counter() - started

            started = time.perf_counter()
            rng = np.random.default_rng(number)
            baseline: list[DecodedLine] = []
            for line in lines:
                context = "\n".join(b.text for b in baseline[-4:] if b.words)
                baseline.append(
                    sample_line_unconstrained(scorer, lexicon, line, context=context, rng=rng)
                )
            stats["baseline"].seconds += time.perf_counter() - started

            for method, decoded in (("constrained", constrained), ("baseline", baseline)):
                text = "\n".join(d.text for d in decoded if d.words)
                similarity = float(embedder.embed([text])[0] @ theme_vector) if text else 0.0
                measure_piece(stats[method], language, lines, decoded, similarity)
                if number < 3:
                    stats[method].examples.append(
                        f"{tune.tune_id} ({tune.melody.meter}, {scheme}, theme “{theme}”, {mood}): "
                        + " / ".join(d.text for d in decoded[:4])
                    )
            if (number + 1) % 20 == 0:
                log(f"{language}: {number + 1}/{len(tunes)} pieces")
        report.stats[language] = stats
    return report


TARGETS = {
    "syllable_fit": ("= 100 %", lambda v: v >= 0.9999),
    "stress_on_strong": ("≥ 85 % (English)", lambda v: v >= 0.85),
    "rhyme_compliance": ("≥ 90 %", lambda v: v >= 0.90),
}


def format_report(report: LyricsEvalReport, *, command: str) -> str:
    lines = [
        "# Lyrics evaluation",
        "",
        f"Command: `{command}`",
        "",
        f"{report.pieces} pieces per language: the first {BARS_PER_PIECE} bars of test-split tunes "
        "of the melody corpus; themes, moods and rhyme schemes (AABB, ABAB, ABCB) rotate. Both "
        "methods use the same LM in the same run: *constrained* is `LyricWriter` (syllables, "
        "stress, rhyme, tone, theme, blocklist), *baseline* samples the LM without constraints "
        "and trims each line to its notes at a word boundary. Definitions: "
        "`shared/cantus/eval/lyrics.py`.",
        "",
    ]
    names = [
        ("syllable_fit", "syllable fit", True),
        ("stress_on_strong", "stress on strong beats (2+ syllable words)", True),
        ("content_mono_on_strong", "content monosyllables on strong beats", True),
        ("rhyme_compliance", "rhyme-scheme compliance", True),
        ("theme_similarity", "theme similarity (cosine)", False),
        ("distinct_2", "distinct-2", True),
        ("repeated_lines", "repeated lines", True),
        ("tone_contour_agreement", "tone–contour agreement", True),
    ]
    for language, stats in report.stats.items():
        rates = {m: s.rates() for m, s in stats.items()}
        title = "English" if language == "en" else "Mandarin"
        lines += [
            f"## {title} (`{report.models[language]}`)",
            "",
            "| metric | constrained | baseline | ratio | target |",
            "|---|---:|---:|---:|---|",
        ]
        for key, name, percent in names:
            a, b = rates["constrained"][key], rates["baseline"][key]
            if np.isnan(a) and np.isnan(b):
                continue
            fmt = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.3f}")
            ratio = f"{a / b:.2f}×" if b and not np.isnan(b) and not np.isnan(a) else "–"
            target = ""
            if key in TARGETS and not (key == "stress_on_strong" and language != "en"):
                label, met = TARGETS[key]
                target = f"{label}: {'met' if met(a) else 'not met'}"
            lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} | {target} |")
        c, base = stats["constrained"], stats["baseline"]
        lines += [
            f"| blocked words in output | {c.blocked} | {base.blocked} | | 0 |",
            f"| lines | {c.lines} | {base.lines} | | |",
            f"| seconds per piece (1 thread) | {c.seconds / report.pieces:.2f} | "
            f"{base.seconds / report.pieces:.2f} | | |",
            "",
            f"Constraints relaxed to find a line (constrained): {dict(c.relaxed) or 'none'}.",
            "",
            "Examples (first four lines):",
            "",
        ]
        for method in METHODS:
            for example in stats[method].examples:
                lines.append(f"* {method}: {example}")
        lines.append("")
    return "\n".join(lines)
