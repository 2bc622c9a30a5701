"""``cantus eval lyrics``: constrained lyric decoding on both lyric LMs, under the current
decoder and the one before, against the unconstrained baseline and held-out human lines.

For each language, ``pieces`` melodies (the first 16 bars of test-split tunes of the melody
corpus, in tune-id order) get lyrics in the same run from each LM shipped
(``cantus.lyrics.LYRIC_MODELS``: the transformer ``lyric_<language>.pt`` and the fortunes
LSTM ``lyric_lstm_<language>.pt``, each with its lexicon; ``load_lyric_scorer``, the code the
``lyric_lm`` Triton model runs): by ``LyricWriter`` (every constraint) with the current
decoder (``DecodeOptions()``) and with ``PLAIN_BEAM`` (the decoder before the diversity
changes), and by the baseline that samples the served LM freely and trims each line at a
word boundary (``sample_line_unconstrained``). Themes, moods and rhyme schemes (AABB, ABAB,
ABCB) rotate over the pieces; the seed is the piece's number. Measured per method:

* syllable fit: lines whose syllables equal their notes (lines without notes excluded);
* stress on strong beats (English): primary stresses of words of 2+ syllables that fall on a
  strong slot; the same for content monosyllables, reported apart;
* rhyme compliance: lines that must rhyme (scheme letter seen earlier in the stanza) whose
  last word rhymes with the anchor's (CMUdict rhyming part, a different word; Mandarin: the
  merged pinyin final);
* theme similarity: cosine of the piece's lyrics and the theme + mood (all-MiniLM-L6-v2);
* distinct-2: distinct word (character) bigrams within lines over all bigrams of all pieces;
  the same within each piece (its distinct lines), summed over pieces: how much of the
  repetition is inside a piece and how much across pieces;
* repeated lines: lines equal to an earlier line of the same piece;
* tone–contour agreement (Mandarin): adjacent sung characters whose tone step goes the way
  the melody steps, over the note pairs where the pitch changes;
* blocked words in the output.

*Human* lines are held out from both LMs' training (the lyric register's held-out documents:
fortunes songs and love poems; Song ci). Measured on all of them, in the same run:

* grammaticality (English): the share of lines Link Grammar parses completely
  (``cantus.eval.grammar``);
* part-of-speech plausibility (Mandarin): each line's parts of speech as jieba tags them
  (``cantus.eval.grammar.mandarin_tags``) scored per tag by an interpolated Kneser-Ney
  bigram over the tags of the judge's text (below); reported as that perplexity and as the
  share of lines whose score is at least the human lines' median (human: about half);
* judge perplexity: per token (words or characters, and the line end) of each line on its
  own, under an interpolated Kneser-Ney bigram trained on the held-out documents of the
  other registers (an LM that shares no training text with the generators nor with the
  human lines);
* distinct-2 at equal size: over the first N lines of each, N the fewest any has.

In Mandarin these checks read clauses, the unit of the human lines (Chinese verse is cut at
its punctuation, ``docs/lyrics_data.md``): a generated line written as two clauses
(``cantus.lyrics.clauses``, printed with "，") counts as two, and so does a line written
whole (the baseline, *whole lines*), cut at the same place. English lines are read whole:
the human English lines are verse lines, commas and all.

The LM that reads better under the current decoder (``reads_better``: English the higher
parse rate, Mandarin the lower judge perplexity) is named beside the served one (the
``lyric_models`` setting), so the report says whether the setting follows the measurement.

Song form: ``SONG_THEMES`` themes per language are set to 24-bar verse-chorus songs
(``song_melody``: a test tune's bars laid out by the plan, repeats copied) with the served LM
and printed by section with their title line; their guarantees are measured like the
pieces'.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cantus.eval.lyric_registers import RegisterCheck, format_register_check, run_register_check
from cantus.lyrics import LYRIC_MODELS, LYRICS_LANGUAGES, served_lyric_model
from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.ci import CI_LANGUAGES, CiStanza, sing_ci
from cantus.lyrics.clauses import CLAUSE_SYLLABLES, SEPARATOR, clause_lengths
from cantus.lyrics.decoding import (
    DecodedLine,
    DecodeOptions,
    LyricWriter,
    sample_line_unconstrained,
    served_decoding,
)
from cantus.lyrics.english import is_content_word, pronounce
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.mandarin import contour_agrees, reading, rhyme_class
from cantus.lyrics.model import tokenize
from cantus.lyrics.serving import load_lyric_scorer
from cantus.lyrics.slots import LineSlots, plan_lines, rhyme_word
from cantus.lyrics.song_form import title_line
from cantus.lyrics.theme import ThemeEmbedder, theme_text
from cantus.lyrics.training import CHECKPOINT_DIR, checkpoint_path, lexicon_path
from cantus.music.form import FormPlan, plan_form
from cantus.music.notes import Key, Mode, Note
from cantus.music.styles import Energy

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
CI_EXAMPLES = 6
"""Pieces printed per language with the ci stanza they carry."""
BARS_PER_PIECE = 16
METHOD_NAMES = {
    "baseline": "baseline",
    "human": "human (held out)",
}
SONG_FORM = "verse-chorus"
SONG_BARS = 24
HUMAN_REGISTER = {"en": "song", "zh": "ci"}
TAG_JUDGE_LINES = 40_000
"""Lines of the judge's text whose parts of speech train the Mandarin plausibility check."""


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
    piece_bigrams: list[tuple[int, int]] = field(default_factory=list)
    """Per piece: distinct bigrams, bigrams, over its distinct lines (repetition within a
    piece, against ``bigrams`` over all pieces; a chorus sung again is not counted twice)."""
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
            "distinct_2_in_piece": ratio(
                sum(d for d, _ in self.piece_bigrams), sum(n for _, n in self.piece_bigrams)
            ),
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
    piece_pairs: Counter = Counter()
    for words in {tuple(out.words) for out in decoded}:  # a repeated chorus line once
        piece_pairs.update(itertools.pairwise(words))
    stats.piece_bigrams.append((len(piece_pairs), sum(piece_pairs.values())))
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
    lines_by_index = {line.index: line for line in lines}
    for line in lines:
        if line.rhymes_with is None or line.syllables == 0:
            continue
        anchor, out = by_index.get(line.rhymes_with), by_index[line.index]
        if anchor is None or not anchor.words:
            continue
        stats.rhyme_lines += 1
        if out.words:
            word = rhyme_word(line, out.words)
            anchor_word = rhyme_word(lines_by_index[line.rhymes_with], anchor.words)
            same_key = _rhyme_key(word, language) == _rhyme_key(anchor_word, language)
            stats.rhyming += same_key and word != anchor_word


@dataclass
class CiStats:
    """How the pieces' sections carried ci stanzas (``cantus.lyrics.ci``)."""

    sections: int = 0
    carried: int = 0
    stanzas: Counter = field(default_factory=Counter)
    notes: int = 0
    """Notes of the sections that carry a stanza."""
    melisma: int = 0
    """Of those, the notes sung on the character before them."""
    examples: list[str] = field(default_factory=list)


def stanza_names(stanzas: Mapping[int, CiStanza]) -> str:
    """The stanzas a piece carries, in order ("浣溪沙·上片》《浣溪沙·下片" for two)."""
    names = [stanza.name for _, stanza in sorted(stanzas.items())]
    return "》《".join(dict.fromkeys(names))


def measure_ci(
    stats: CiStats,
    free_lines: list[LineSlots],
    lines: list[LineSlots],
    stanzas: Mapping[int, CiStanza],
) -> None:
    """Add one piece (without a form plan: one section) to ``stats``."""
    if not any(line.syllables for line in free_lines):
        return
    stats.sections += 1
    if not stanzas:
        return
    stats.carried += 1
    stats.stanzas[stanza_names(stanzas)] += 1
    notes = sum(line.syllables for line in free_lines)
    stats.notes += notes
    stats.melisma += notes - sum(line.syllables for line in lines)


@dataclass
class LyricsEvalReport:
    pieces: int
    models: dict[str, str]
    stats: dict[str, dict[str, MethodStats]]
    texts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """language → method (and ``human``) → every sung line."""
    language_checks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """language → method → grammaticality, judge perplexity, distinct-2 at equal size."""
    songs: dict[str, list[str]] = field(default_factory=dict)
    song_stats: dict[str, MethodStats] = field(default_factory=dict)
    served: dict[str, str] = field(default_factory=dict)
    """language → the LM the ``lyric_models`` setting serves."""
    reads_better: dict[str, str | None] = field(default_factory=dict)
    """language → the LM whose lines read better in this run (``reads_better``)."""
    registers: dict[str, RegisterCheck] = field(default_factory=dict)
    """language → the registers asked for and heard (``lyric_registers``)."""
    ci: dict[str, CiStats] = field(default_factory=dict)
    """language → how its pieces carried ci stanzas (``CI_LANGUAGES``)."""


# --- the human lines and the judge LM ------------------------------------------------------


@functools.lru_cache(maxsize=2)
def held_out_documents(language: str) -> tuple:
    """The lyric corpus's held-out documents (``transformer_training``'s split), unseen by
    either LM; read once per language and process (the English corpus takes a while)."""
    from cantus.lyrics.sources import load_corpus
    from cantus.lyrics.transformer_training import split_documents

    documents, _ = load_corpus(language)
    return tuple(split_documents(documents, language).held_out)


def human_and_judge_documents(language: str) -> tuple[list[str], list[list[str]]]:
    """Held-out lines of the lyric register (human: song; ci) and the held-out documents of
    the other registers (the judge's training text), all unseen by either LM."""
    held_out = held_out_documents(language)
    human = [d for d in held_out if d.register == HUMAN_REGISTER[language]]
    judge = [list(d.lines) for d in held_out if d.register != HUMAN_REGISTER[language]]
    return [line for d in human for line in d.lines], judge


class BigramJudge:
    """Interpolated Kneser-Ney bigram over words (English) or characters (Mandarin), each
    line scored on its own between ``<s>`` and ``</s>``; the continuation distribution is
    add-one smoothed over ``vocabulary`` so that no token has probability 0."""

    def __init__(self, lines: list[list[str]], vocabulary: set[str], discount: float = 0.75):
        self.discount = discount
        self.pairs: Counter = Counter()
        for tokens in lines:
            padded = ["<s>", *tokens, "</s>"]
            self.pairs.update(itertools.pairwise(padded))
        self.history: Counter = Counter()
        self.followers: Counter = Counter()
        continuation: Counter = Counter()
        for (u, v), _n in self.pairs.items():
            continuation[v] += 1
            self.followers[u] += 1
        for (u, _v), n in self.pairs.items():
            self.history[u] += n
        size = len(vocabulary | set(continuation) | {"</s>"})
        total = sum(continuation.values())
        self.continuation = {v: (continuation[v] + 1) / (total + size) for v in continuation}
        self.unseen = 1 / (total + size)

    def logprob(self, u: str, v: str) -> float:
        base = self.continuation.get(v, self.unseen)
        seen = self.history[u]
        if not seen:
            return float(np.log(base))
        direct = max(self.pairs[(u, v)] - self.discount, 0) / seen
        weight = self.discount * self.followers[u] / seen
        return float(np.log(direct + weight * base))

    def line_logprob(self, tokens: list[str]) -> float:
        """Mean log probability per token of one line (its end included)."""
        padded = ["<s>", *tokens, "</s>"]
        pairs = list(itertools.pairwise(padded))
        return sum(self.logprob(u, v) for u, v in pairs) / len(pairs)

    def perplexity(self, lines: list[list[str]]) -> float:
        total, count = 0.0, 0
        for tokens in lines:
            padded = ["<s>", *tokens, "</s>"]
            for u, v in itertools.pairwise(padded):
                total -= self.logprob(u, v)
                count += 1
        return float(np.exp(total / max(1, count)))


def _tokens(line: str, language: str) -> list[str]:
    return tokenize(line, language)


def check_units(lines: list[str], language: str) -> list[str]:
    """What the language checks read of ``lines``: Mandarin lines cut into their clauses (the
    human lines' unit), English lines whole."""
    if language != "zh":
        return lines
    return [clause for line in lines for clause in line.split(SEPARATOR["zh"]) if clause]


def clause_text(line: LineSlots, decoded: DecodedLine, language: str) -> str:
    """``decoded`` as the language checks read it: a Mandarin line written whole (the
    baseline, ``WHOLE_LINES``) cut where the clause decoder cuts that line, so that every
    method is read in units of the same lengths."""
    if language not in CLAUSE_SYLLABLES or decoded.clauses:
        return decoded.text
    clauses, start = [], 0
    for length in line.clauses or clause_lengths(line.slots, language):
        if start < len(decoded.words):
            clauses.append(len(decoded.words[start : start + length]))
        start += length
    return dataclasses.replace(decoded, clauses=clauses if len(clauses) > 1 else []).text


def distinct_2(lines: list[str], language: str) -> float:
    pairs: Counter = Counter()
    for line in lines:
        tokens = _tokens(line, language)
        pairs.update(itertools.pairwise(tokens))
    return len(pairs) / max(1, sum(pairs.values()))


def language_checks(
    language: str, texts: dict[str, list[str]], judge_lines: list[list[str]]
) -> dict[str, dict[str, float]]:
    """Grammaticality (English: Link Grammar; Mandarin: part-of-speech plausibility), judge
    perplexity and distinct-2 at equal size per method."""
    from cantus.eval.grammar import mandarin_tags, parser_available, parses

    vocabulary = {t for lines in texts.values() for line in lines for t in _tokens(line, language)}
    judge = BigramJudge(judge_lines, vocabulary)
    size = min(len(lines) for lines in texts.values())
    out: dict[str, dict[str, float]] = {}
    tag_scores: dict[str, list[float]] = {}
    if language == "zh":
        reference = mandarin_tags(["".join(tokens) for tokens in judge_lines[:TAG_JUDGE_LINES]])
        tags = {method: mandarin_tags(lines) for method, lines in texts.items()}
        tag_judge = BigramJudge(
            reference, {t for lines in tags.values() for line in lines for t in line}
        )
        tag_scores = {m: [tag_judge.line_logprob(line) for line in ls] for m, ls in tags.items()}
    median = float(np.median(tag_scores["human"])) if "human" in tag_scores else float("nan")
    for method, lines in texts.items():
        checks = {
            "judge_perplexity": judge.perplexity([_tokens(line, language) for line in lines]),
            "distinct_2_equal": distinct_2(lines[:size], language),
            "lines": float(len(lines)),
            "equal_size": float(size),
        }
        if language == "en" and parser_available():
            verdicts = parses(lines)
            checks["grammatical"] = sum(verdicts) / max(1, len(verdicts))
        if method in tag_scores:
            scores = np.array(tag_scores[method])
            checks["tag_perplexity"] = float(np.exp(-scores.mean()))
            checks["tags_plausible"] = float(np.mean(scores >= median))
        out[method] = checks
    return out


# --- song form ----------------------------------------------------------------------------


def song_melody(tune_bars: list[list[Note]], plan: FormPlan) -> list[list[Note]]:
    """The piece's bars for ``plan`` from a tune: each new section takes the tune's next
    bars (from the start again when they run out), a repeat or variation copies its
    source's bars."""
    bars: list[list[Note]] = []
    starts: dict[int, int] = {}
    cursor = 0
    usable = [bar for bar in tune_bars if bar] or [[Note(0, 60, 480)]]
    for number, section in enumerate(plan.sections):
        starts[number] = len(bars)
        if section.source is not None:
            source = plan.sections[section.source]
            first = starts[section.source]
            bars += [bars[first + i % source.bars] for i in range(section.bars)]
            continue
        for _ in range(section.bars):
            bars.append(usable[cursor % len(usable)])
            cursor += 1
    return bars


PLAIN_BEAM = {
    "noise": 0.0,
    "function_repeat": 1.0,
    "bigram_penalty": 0.0,
    "prime_theme": False,
    "pick_temperature": 0.0,
    "pair_dropout": 0.0,
}
"""The decoder before the diversity changes (#21): a plain beam search, the best line
taken, every word sung before penalised alike; the *plain beam* methods."""

SHARED_WORDS = {"word_dropout": 0.0, "verse_words": 0}
"""The current decoder without the per-piece word dropout and the per-stanza verse words:
every piece may reach for the same common words (the *shared words* methods)."""

WHOLE_LINES = {"clauses": False}
"""The current decoder writing each line whole, not in clauses (``cantus.lyrics.clauses``;
the *whole lines* methods, in the languages whose lines are cut), on lines that carry no ci
stanza."""

BREATH_CLAUSES = "breath"
"""The *clauses by breath* methods (Mandarin): the current decoder on lines that carry no
ci stanza (``cantus.lyrics.ci``), cut into clauses where the melody breathes alone."""

COMPARISONS: dict[str, dict] = {
    "beam": PLAIN_BEAM,
    "shared": SHARED_WORDS,
    "lines": WHOLE_LINES,
    BREATH_CLAUSES: {},
}
"""Comparison methods by suffix: the changes each makes to the served decoder."""


def method_name(method: str) -> str:
    """``transformer``, ``lstm_beam``, … as the report prints them."""
    if method in METHOD_NAMES:
        return METHOD_NAMES[method]
    model, _, decoder = method.partition("_")
    name = "LSTM" if model == "lstm" else model
    if decoder == "shared":
        return f"{name}, shared words"
    if decoder == "lines":
        return f"{name}, whole lines"
    if decoder == BREATH_CLAUSES:
        return f"{name}, clauses by breath"
    return f"{name}, plain beam" if decoder else name


@dataclass
class LanguageResult:
    pieces: int
    models: str
    stats: dict[str, MethodStats]
    texts: dict[str, list[str]]
    checks: dict[str, dict[str, float]]
    songs: list[str]
    song_stats: MethodStats
    registers: RegisterCheck | None = None
    ci: CiStats | None = None


def reads_better(language: str, checks: dict[str, dict[str, float]]) -> str | None:
    """The LM whose lines read better under the same (current) decoder: English, the
    higher Link Grammar full-parse rate; Mandarin, the lower judge perplexity."""
    models = [m for m in LYRIC_MODELS if m in checks]
    if len(models) < 2:
        return models[0] if models else None
    if language == "en":
        if not all("grammatical" in checks[m] for m in models):
            return None
        return max(models, key=lambda m: checks[m]["grammatical"])
    return min(models, key=lambda m: checks[m]["judge_perplexity"])


def run_lyrics_eval(
    *,
    pieces: int = 100,
    languages: tuple[str, ...] = LYRICS_LANGUAGES,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    overrides: Mapping[str, Any] | None = None,
    songs: int = 10,
    compare_decoders: bool = True,
    compare_shared: bool = True,
    compare_clauses: bool = True,
    served_only: bool = False,
    register_pieces: int = 0,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> LyricsEvalReport:
    """Both LMs (``served_only``: the served one) under the served decoder
    (``served_decoding``, changed by ``overrides``) and, with ``compare_decoders``, under
    ``PLAIN_BEAM``, with ``compare_shared`` under ``SHARED_WORDS``, with ``compare_clauses``
    (Mandarin) under ``WHOLE_LINES`` and on lines without ci stanzas (``BREATH_CLAUSES``);
    the baseline and the songs use the served LM (``lyric_models``). ``jobs`` > 1: the
    languages in parallel processes."""
    served = {language: served_lyric_model(language) for language in languages}
    report = LyricsEvalReport(pieces=pieces, models={}, stats={}, served=served)
    comparisons = ("beam",) * compare_decoders + ("shared",) * compare_shared
    clause_comparisons = ("lines", BREATH_CLAUSES)
    arguments = [
        (
            language,
            pieces,
            checkpoint_dir,
            dict(overrides or {}),
            songs,
            comparisons + clause_comparisons * (compare_clauses and language in CLAUSE_SYLLABLES),
            served_only,
            register_pieces,
        )
        for language in languages
    ]
    if jobs > 1 and len(languages) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(languages)), mp_context=context) as pool:
            results = list(pool.map(_language_eval_job, arguments))
    else:
        results = [_language_eval(*a, log=log) for a in arguments]
    for language, result in zip(languages, results, strict=True):
        report.models[language] = result.models
        report.stats[language] = result.stats
        report.texts[language] = result.texts
        report.language_checks[language] = result.checks
        report.songs[language] = result.songs
        report.song_stats[language] = result.song_stats
        if result.registers is not None:
            report.registers[language] = result.registers
        if result.ci is not None:
            report.ci[language] = result.ci
        report.reads_better[language] = reads_better(language, result.checks)
        report.pieces = min(report.pieces, result.pieces)
    return report


def _language_eval_job(arguments) -> LanguageResult:
    return _language_eval(*arguments, log=lambda line: print(line, flush=True))


def _language_eval(
    language: str,
    pieces: int,
    checkpoint_dir: Path,
    overrides: dict[str, Any],
    songs: int,
    comparisons: tuple[str, ...],
    served_only: bool,
    register_pieces: int = 0,
    *,
    log: Callable[[str], None],
) -> LanguageResult:
    from cantus.melody.corpus import load_or_build_corpus
    from cantus.melody.training import CORPUS_CACHE_DIR

    torch.set_num_threads(1)
    options = dataclasses.replace(served_decoding(language), **overrides)
    split = load_or_build_corpus(CORPUS_CACHE_DIR)
    tunes = sorted(split.test, key=lambda t: t.tune_id)
    tunes = [t for t in tunes if any(bar.notes for bar in t.melody.bars)]
    song_tunes = [t for t in tunes if sum(1 for bar in t.melody.bars if bar.notes) >= 12]
    tunes = tunes[:pieces]
    embedder = ThemeEmbedder()
    served = served_lyric_model(language)
    loaded = {}
    for model in LYRIC_MODELS:
        path = checkpoint_path(language, checkpoint_dir, model)
        if path.exists() and (model == served or not served_only):
            loaded[model] = (
                load_lyric_scorer(path),
                Lexicon.load(lexicon_path(language, checkpoint_dir, model)),
            )
    scorer, lexicon = loaded[served]
    sings_ci = language in CI_LANGUAGES
    writers_for: dict[str, tuple] = {}  # method → (scorer, lexicon, decoder, on ci lines)
    for model, (model_scorer, model_lexicon) in loaded.items():
        writers_for[model] = (model_scorer, model_lexicon, options, sings_ci)
    for suffix in comparisons:
        decoder = dataclasses.replace(options, **COMPARISONS[suffix])
        on_ci = sings_ci and suffix not in ("lines", BREATH_CLAUSES)
        for model, (model_scorer, model_lexicon) in loaded.items():
            writers_for[f"{model}_{suffix}"] = (model_scorer, model_lexicon, decoder, on_ci)
    models = ", ".join(f"{model} {pair[0].version}" for model, pair in loaded.items())
    stats = {method: MethodStats() for method in [*writers_for, "baseline"]}
    ci_stats = CiStats()
    texts: dict[str, list[str]] = {method: [] for method in stats}
    for number, tune in enumerate(tunes):
        theme = THEMES[language][number % len(THEMES[language])]
        mood = MOODS[number % len(MOODS)]
        scheme = SCHEMES[number % len(SCHEMES)]
        bars = [bar.notes for bar in tune.melody.bars[:BARS_PER_PIECE]]
        free_lines = plan_lines(bars, tune.melody.meter, scheme=scheme)
        lines, stanzas = sing_ci(free_lines, None) if sings_ci else (free_lines, {})
        if sings_ci:
            measure_ci(ci_stats, free_lines, lines, stanzas)
        target = theme_text(theme, mood)
        theme_vector = embedder.embed([target])[0]
        outputs: dict[str, list[DecodedLine]] = {}
        lines_of: dict[str, list[LineSlots]] = {"baseline": lines}
        for method, (method_scorer, method_lexicon, method_options, on_ci) in writers_for.items():
            started = time.perf_counter()
            writer = LyricWriter(
                method_scorer,
                method_lexicon,
                theme_vector=theme_vector,
                theme_text=theme,
                embed=embedder.embed,
                options=method_options,
                seed=number,
            )
            lines_of[method] = lines if on_ci else free_lines
            outputs[method] = writer.write_lines(lines_of[method])
            stats[method].seconds += time.perf_counter() - started

        started = time.perf_counter()
        rng = np.random.default_rng(number)
        baseline: list[DecodedLine] = []
        for line in lines:
            context = "\n".join(b.text for b in baseline[-4:] if b.words)
            baseline.append(
                sample_line_unconstrained(scorer, lexicon, line, context=context, rng=rng)
            )
        stats["baseline"].seconds += time.perf_counter() - started
        outputs["baseline"] = baseline

        for method, decoded in outputs.items():
            text = "\n".join(d.text for d in decoded if d.words)
            texts[method] += [
                clause_text(line, d, language)
                for line, d in zip(lines_of[method], decoded, strict=True)
                if d.words
            ]
            similarity = float(embedder.embed([text])[0] @ theme_vector) if text else 0.0
            measure_piece(stats[method], language, lines_of[method], decoded, similarity)
            if method == served and stanzas and len(ci_stats.examples) < CI_EXAMPLES:
                name = stanza_names(stanzas)
                ci_stats.examples.append(
                    f"{tune.tune_id} ({tune.melody.meter}, theme “{theme}”, {mood}), "
                    f"调寄《{name}》: " + " / ".join(d.text for d in decoded if d.words)
                )
            if number < 3:
                stats[method].examples.append(
                    f"{tune.tune_id} ({tune.melody.meter}, {scheme}, theme “{theme}”, {mood}): "
                    + " / ".join(d.text for d in decoded[:4])
                )
        if (number + 1) % 10 == 0:
            log(f"{language}: {number + 1}/{len(tunes)} pieces")
    human, judge_lines = human_and_judge_documents(language)
    texts = {method: check_units(lines, language) for method, lines in texts.items()}
    texts["human"] = human[: max(len(v) for v in texts.values())]
    checks = language_checks(
        language, texts, [_tokens(line, language) for d in judge_lines for line in d]
    )
    song_texts, song_stats = write_songs(
        language, scorer, lexicon, embedder, song_tunes[:songs], options
    )
    log(f"{language}: {len(song_texts)} songs")
    registers = None
    if register_pieces:
        registers = run_register_check(
            language,
            tunes[:register_pieces],
            THEMES[language],
            list(MOODS),
            bars=BARS_PER_PIECE,
        )
        log(f"{language}: registers heard as asked {100 * registers.accuracy:.0f} %")
    return LanguageResult(
        len(tunes),
        models,
        stats,
        texts,
        checks,
        song_texts,
        song_stats,
        registers,
        ci_stats if sings_ci else None,
    )


def write_songs(
    language: str,
    scorer,
    lexicon: Lexicon,
    embedder: ThemeEmbedder,
    tunes: list,
    options: DecodeOptions,
) -> tuple[list[str], MethodStats]:
    """One verse-chorus song per theme (Markdown: title, then each section's lines)."""
    stats = MethodStats()
    out = []
    for number, tune in enumerate(tunes):
        theme = THEMES[language][number % len(THEMES[language])]
        mood = MOODS[number % len(MOODS)]
        plan = plan_form(SONG_FORM, bars=SONG_BARS, key=Key(0, Mode.MAJOR), energy=Energy.MID)
        bars = song_melody([bar.notes for bar in tune.melody.bars], plan)
        lines = plan_lines(bars, tune.melody.meter, scheme="AABB", plan=plan)
        stanzas: dict[int, CiStanza] = {}
        if language in CI_LANGUAGES:
            lines, stanzas = sing_ci(lines, plan)
        theme_vector = embedder.embed([theme_text(theme, mood)])[0]
        writer = LyricWriter(
            scorer,
            lexicon,
            theme_vector=theme_vector,
            theme_text=theme,
            embed=embedder.embed,
            options=options,
            seed=1000 + number,
        )
        started = time.perf_counter()
        decoded = writer.write_lines(lines, plan)
        stats.seconds += time.perf_counter() - started
        text = "\n".join(d.text for d in decoded if d.words)
        similarity = float(embedder.embed([text])[0] @ theme_vector) if text else 0.0
        measure_piece(stats, language, lines, decoded, similarity)
        found = title_line(
            plan, {ln.index: (ln.first_bar, d.text) for ln, d in zip(lines, decoded, strict=True)}
        )
        title = found[1] if found else ""
        sections: list[tuple[str, list[str]]] = []
        for line, words in zip(lines, decoded, strict=True):
            label = plan.sections[plan.heard_section_index(line.first_bar)].label
            if line.index in stanzas:
                label += f" 《{stanzas[line.index].name}》"
            if not sections or sections[-1][0] != label:
                sections.append((label, []))
            if words.words:
                sections[-1][1].append(words.text)
        body = "<br>".join(f"*{label}*: {' / '.join(texts)}" for label, texts in sections)
        out.append(
            f"**“{title}”** — theme “{theme}”, {mood}; {tune.tune_id} "
            f"({tune.melody.meter}), {SONG_FORM}, AABB per section<br>{body}"
        )
    return out, stats


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
        "of the melody corpus; themes, moods and rhyme schemes (AABB, ABAB, ABCB) rotate. All "
        "methods run in the same run. *transformer* and *LSTM* are `LyricWriter` (syllables, "
        "stress, rhyme, tone, theme, blocklist) with the served decoder on each LM "
        "(`served_decoding`), Mandarin on lines that carry a ci stanza where the tune allows "
        "(`cantus.lyrics.ci`), *…, plain beam* the same LMs with the decoder before the "
        "diversity changes (`PLAIN_BEAM`: plain beam search, best line, every repeated word "
        "penalised alike), *…, shared words* the current decoder without the per-piece word "
        "dropout and per-stanza verse words (`SHARED_WORDS`); *…, whole lines* (Mandarin) the "
        "current decoder writing each line whole instead of in clauses cut where the melody "
        "breathes (`WHOLE_LINES`; `cantus.lyrics.clauses`), and *…, clauses by breath* "
        "(Mandarin) the current decoder on lines that carry no ci stanza, cut into clauses "
        "where the melody breathes; *baseline* samples the served "
        "LM without constraints and trims each line to its notes at a word boundary; *human* "
        "lines are held out from both LMs' training. Definitions: "
        "`shared/cantus/eval/lyrics.py`; the corpora: `docs/lyrics_data.md`.",
        "",
    ]
    names = [
        ("syllable_fit", "syllable fit", True),
        ("stress_on_strong", "stress on strong beats (2+ syllable words)", True),
        ("content_mono_on_strong", "content monosyllables on strong beats", True),
        ("rhyme_compliance", "rhyme-scheme compliance", True),
        ("theme_similarity", "theme similarity (cosine)", False),
        ("distinct_2", "distinct-2", True),
        ("distinct_2_in_piece", "distinct-2 within a piece", True),
        ("repeated_lines", "repeated lines", True),
        ("tone_contour_agreement", "tone–contour agreement", True),
    ]
    for language, stats in report.stats.items():
        methods = list(stats)
        served = report.served.get(language, "")
        rates = {m: s.rates() for m, s in stats.items()}
        title = "English" if language == "en" else "Mandarin"
        better = report.reads_better.get(language)
        verdict = ""
        if better:
            verdict = (
                f" Reads better in this run: {method_name(better)} "
                + ("(the Link Grammar parse rate" if language == "en" else "(the judge perplexity")
                + " under the same decoder)"
                + (
                    "; the setting agrees."
                    if better == served
                    else f"; the setting does not: set lyric_models {language}={better}."
                )
            )
        lines += [
            f"## {title}",
            "",
            f"Models: {report.models[language]}. Served (`lyric_models`): "
            f"**{method_name(served)}**.{verdict}",
            "",
            "| metric | " + " | ".join(method_name(m) for m in methods) + " | target (served) |",
            "|---|" + "---:|" * len(methods) + "---|",
        ]
        for key, name, percent in names:
            values = [rates[m][key] for m in methods]
            if all(np.isnan(v) for v in values):
                continue
            fmt = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.3f}")
            target = ""
            if key in TARGETS and not (key == "stress_on_strong" and language != "en"):
                label, met = TARGETS[key]
                value = rates.get(served, rates[methods[0]])[key]
                target = f"{label}: {'met' if met(value) else 'not met'}"
            cells = " | ".join("–" if np.isnan(v) else fmt(v) for v in values)
            lines.append(f"| {name} | {cells} | {target} |")
        lines += [
            "| blocked words in output | "
            + " | ".join(str(stats[m].blocked) for m in methods)
            + " | 0 |",
            "| lines | " + " | ".join(str(stats[m].lines) for m in methods) + " | |",
            "| seconds per piece (1 thread) | "
            + " | ".join(f"{stats[m].seconds / max(1, report.pieces):.2f}" for m in methods)
            + " | |",
            "",
        ]
        checks = report.language_checks.get(language, {})
        if checks:
            order = [m for m in [*methods, "human"] if m in checks]
            human = checks.get("human", {})
            lines += [
                "Language checks, the same lines plus held-out human lines "
                f"(ratio: served ({method_name(served)}) ÷ human):",
                "",
                "| check | " + " | ".join(method_name(m) for m in order) + " | ratio | goal |",
                "|---|" + "---:|" * len(order) + "---:|---|",
            ]
            rows = [
                ("grammatical", "parsed completely by Link Grammar", True, "≥ 0.9× human"),
                (
                    "tags_plausible",
                    "parts of speech as likely as the human median (jieba tags, KN bigram)",
                    True,
                    "≥ 0.9× human",
                ),
                ("tag_perplexity", "part-of-speech perplexity (same)", False, "lower"),
                ("judge_perplexity", "judge perplexity (held-out KN bigram)", False, "lower"),
                ("distinct_2_equal", "distinct-2 (equal line counts)", True, "≥ 0.9× human"),
            ]
            for key, name, percent, goal in rows:
                if not all(key in checks[m] for m in order):
                    continue
                cells = " | ".join(
                    f"{100 * checks[m][key]:.1f} %" if percent else f"{checks[m][key]:.0f}"
                    for m in order
                )
                reference = checks.get(served, checks[order[0]])
                ratio = reference[key] / human[key] if human.get(key) else float("nan")
                verdict = ""
                if goal.startswith("≥"):
                    verdict = ": met" if ratio >= 0.9 else ": not met"
                lines.append(f"| {name} | {cells} | {ratio:.2f}× | {goal}{verdict} |")
            lines += [
                "",
                (
                    "Clauses read (every line cut where the clause decoder cuts it): "
                    if language in CLAUSE_SYLLABLES
                    else "Lines: "
                )
                + ", ".join(f"{method_name(m)} {int(checks[m]['lines'])}" for m in order)
                + "; "
                f"distinct-2 over the first {int(checks[order[0]]['equal_size'])} of each.",
                "",
            ]
        relaxed = stats[served].relaxed if served in stats else Counter()
        lines += [
            f"Constraints relaxed to find a line ({method_name(served)}): "
            f"{dict(relaxed) or 'none'}.",
            "",
            "Examples (first four lines):",
            "",
        ]
        for method in methods:
            for example in stats[method].examples:
                lines.append(f"* {method_name(method)}: {example}")
        human_lines = report.texts.get(language, {}).get("human", [])
        if human_lines:
            lines.append(f"* human (held out): {' / '.join(human_lines[:8])}")
        lines.append("")
        songs = report.songs.get(language, [])
        if songs:
            song = report.song_stats[language].rates()
            lines += [
                f"### Songs ({title}): {len(songs)} themes, {SONG_BARS}-bar {SONG_FORM}, "
                f"{method_name(served)}",
                "",
                "Each theme set to a test tune laid out as verse, chorus, verse', chorus' "
                "(repeat), bridge, chorus'' (variation); the title is the first chorus line. "
                f"Over these songs: syllable fit {100 * song['syllable_fit']:.1f} %, "
                + (
                    f"stress on strong beats {100 * song['stress_on_strong']:.1f} %, "
                    if language == "en"
                    else f"tone–contour agreement {100 * song['tone_contour_agreement']:.1f} %, "
                )
                + f"rhyme compliance {100 * song['rhyme_compliance']:.1f} %, "
                f"distinct-2 within a song {100 * song['distinct_2_in_piece']:.1f} % "
                "(the repeated choruses counted once).",
                "",
            ]
            lines += [f"{number}. {song_text}" for number, song_text in enumerate(songs, 1)]
            lines.append("")
        if language in report.ci:
            lines += format_ci(report.ci[language])
        if language in report.registers:
            lines += format_register_check(report.registers[language])
    return "\n".join(lines)


def format_ci(stats: CiStats) -> list[str]:
    """The ci section of a language's report."""
    share = stats.carried / stats.sections if stats.sections else float("nan")
    melisma = stats.melisma / stats.notes if stats.notes else float("nan")
    stanzas = ", ".join(f"《{name}》 {count}" for name, count in stats.stanzas.most_common())
    return [
        "### Ci stanzas (词牌)",
        "",
        f"Pieces whose melody carries a stanza of a ci pattern (`cantus.lyrics.ci`: the "
        f"commonest clause lengths and rhymes of the Song ci patterns with the most poems; "
        f"one over the whole piece, else one over each half where it fits): "
        f"**{stats.carried} of {stats.sections}** ({100 * share:.0f} %); of their notes, "
        f"{100 * melisma:.1f} % are sung on the character before them (a melisma). "
        f"Stanzas: {stanzas or 'none'}. The others are cut into clauses where the melody "
        "breathes. The served LSTM's lines above are written on these lines; *…, clauses by "
        "breath* is the same decoder on the same tunes without the stanzas.",
        "",
        *[f"* {example}" for example in stats.examples],
        "",
    ]
