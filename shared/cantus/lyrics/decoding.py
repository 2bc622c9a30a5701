"""Constrained decoding of lyric lines against any ``LyricScorer``, and the baseline that
samples the same LM without constraints and trims to length.

``LyricWriter.write_line`` runs a stochastic beam search (Gumbel noise on the scores,
seeded) over lexicon entries. Hard constraints, as masks over the lexicon:

* the line has exactly as many syllables as slots (a word fits only in the syllables left);
* English: the primary stress of a word of two or more syllables falls on a strong slot;
* the last word rhymes with the line's anchor (CMUdict rhyming part / merged pinyin
  final), and is not the anchor's own word; a line that others will rhyme with ends on a
  word with at least ``MIN_RHYME_CLASS`` rhymes in the lexicon;
* no blocked word (the lexicon has none) and no word twice in a row.

Soft scores added to the LM's log probability: theme similarity of each word (sentence
embeddings), a penalty for a content monosyllable on a weak slot, for words already sung
in the piece (function words a fifth of it) and for word pairs already written in it, and
(Mandarin) a reward or penalty for each tone step that agrees or clashes with the melody's
step. The LM reads the theme as the song's title line before the lyrics. Gumbel noise on
the plausible words (``DecodeOptions.noise``, ``noise_margin``) draws the line rather than
always finding the same best one, so pieces with other seeds get other lines. Finished
candidates are reranked with the similarity of the whole line to the theme, and the line
sung is drawn among those near the best (``pick_temperature``). A word is only taken where
the rest of the line can still be filled under the masks (``completable``): without that
look-ahead a beam could write itself into a corner, no word left that fits the syllables,
the stresses and the rhyme, and with more decoding noise every beam did so in one line in
37 (English, noise 0.6). If the masks leave nothing even so, the last word's stress, every
word's stress and then the rhyme are relaxed in turn (``RELAXATIONS``, counted in
``DecodedLine.relaxed``) so a line always comes out. A Mandarin line longer than a clause
is written clause by clause, each clause a line of the LM's (``cantus.lyrics.clauses``),
the rhyme on the last. Across pieces and verses (``DecodeOptions.word_dropout``,
``verse_words``): each piece does without a seeded share of the common content words, and
each stanza is steered to its own few words of the theme's neighbourhood. Everything
random is seeded by the writer's seed, the line and the relaxation, so a line written
again is the same line.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cantus.lyrics.blocklist import is_blocked
from cantus.lyrics.clauses import SEPARATOR, clause_lengths, word_groups
from cantus.lyrics.english import (
    is_content_word,
    pronounce,
    starts_with_vowel_sound,
    sung_syllables,
)
from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.mandarin import TONE_LEVEL
from cantus.lyrics.scoring import LyricScorer
from cantus.lyrics.slots import LineSlots
from cantus.lyrics.song_form import SungLine, line_melody, repeated_line
from cantus.lyrics.stock_pairs import load_stock_pairs
from cantus.music.form import FormPlan

MIN_RHYME_CLASS = 3
END_OF_LINE = "\n"


RELAXATIONS: tuple[list[str], ...] = ([], ["end stress"], ["stress"], ["stress", "rhyme"])
"""What a line gives up, in turn, when no words fit it: the stress of its last word (a
small rhyme class may hold no word stressed where the line ends: "beneath" for "teeth"),
then every word's stress, then the rhyme. Before session 24 the stress of every word went
first, and one chorus line relaxed so sang up to three words off the beat, each time the
chorus came back (10 songs: stresses on strong beats 81 %)."""


class NoWordsFit(RuntimeError):
    """Not even the relaxed constraints left a line of words: the same line would fail again,
    so callers sing it without words rather than retry."""


@dataclass(frozen=True)
class DecodeOptions:
    """The decoder's settings. The defaults were chosen on ``cantus eval lyrics`` (English
    Link Grammar parse rate, Mandarin judge perplexity and distinct-2 of both, against
    held-out human lines; ``docs/results/lyrics_eval.md``): a plain beam search wrote the
    same openings in every piece (distinct-2 0.36x the human lines' in English, while
    within a piece no word pair repeated), so the words of a line are drawn (Gumbel noise
    among the words the LM finds plausible), the theme is the LM's title line, and the line
    sung is drawn among the finished lines near the best; within a piece a repeated word
    pair is penalised, a repeated function word much less than a content word."""

    beam: int = 16
    expand: int = 8
    """Expansions kept per beam and step."""
    noise: float = 0.6
    """Scale of the Gumbel noise added to candidate scores (0: plain beam search). More
    noise, more distinct lines and fewer that parse. 0.4 was the most the fortunes-only LSTM
    could take and keep its English parse rate, and was served until session 24. The LSTMs
    of session 23 take more (30 pieces each, ``cantus eval lyrics``, with ``pair_dropout``
    0.5): at 0.6, English distinct-2 0.82x the human lines' (0.63x at 0.4) with 71.5 % of
    lines parsed (75.3 %), Mandarin 0.94x (0.83x) with parts of speech 1.04x. English rhyme
    fell to 92.5 % there until the beams looked ahead (``LyricWriter.completable``: 100 %
    since); the slower pieces seen once (6.5 s against 2.8 s) did not come again side by
    side on the same machine (3.0 s both). At 0.8, English distinct-2 0.89x, parsed 68 %,
    and more lines that break ("she would be going from to leave his limb"). English is
    served at 0.8 since session 34, with ``function_repeat`` 0.6 (``SERVED_DECODING``)."""
    noise_margin: float = 4.0
    """Only words whose LM log probability is within ``noise_margin`` of the beam's most
    likely word get the noise (0: every word): the line is drawn among words the LM finds
    plausible there, and a rare word does not win by the draw alone."""
    theme_weight: float = 3.0
    line_theme_weight: float = 4.5
    """The theme's pull on each word and on the finished line. 2.0 and 3.0 until session 23;
    the English LSTM then learnt everyday sentences besides songs and wandered from the theme
    at those weights (cosine 0.176 against 0.242), and 1.5 times them brought it back (0.223)
    with the lines still parsing (75 %)."""
    word_bonus: float = 2.5
    """Added per word, so that lines of short words are not favoured for having more."""
    weak_content_penalty: float = 1.5
    repeat_penalty: float = 2.5
    tone_weight: float = 2.5
    end_weight: float = 2.0
    function_repeat: float = 0.2
    """Share of ``repeat_penalty`` a function word (English) pays for being sung again:
    "i", "the", "is" recur in every song (at 1.0 each line began with another pronoun).
    English is served at 0.6 (``SERVED_DECODING``)."""
    bigram_penalty: float = 4.0
    """Subtracted from a word that would repeat a word pair (bigram) already written in the
    piece; a chorus that repeats is copied, not written, so it is not penalised."""
    prime_theme: bool = True
    """Put the theme before the lyrics in the LM's context, as a title line."""
    pick_temperature: float = 1.0
    """0: the best finished line; else one of the finished lines within ``pick_margin`` of
    the best, drawn (seeded) with probability ∝ exp(score / pick_temperature)."""
    pick_margin: float = 4.0
    generic_weight: float = 0.0
    """Weight of the anti-LM term (maximum mutual information decoding): each word gains
    ``generic_weight`` × its surprisal out of context, so that the line is scored by how
    much the context makes a word likely rather than by how common the word is. Pieces are
    written apart from each other, and the LM's most likely words ("i have been to", "tell
    me") were the same in every piece: the share of distinct word pairs across pieces stayed
    low although no pair repeated within one. The out-of-context log probability is Zipf's
    estimate from the lexicon's order (the LM's vocabulary, most frequent first),
    ``-log(rank + 1)``, centred on the lexicon's median."""
    word_dropout: float = 0.3
    """Share of the lexicon's ``dropout_top`` most frequent content words (Mandarin:
    characters) that a piece does without, drawn by the piece's seed; they may still end a
    line (the rhyme classes stay whole). Pieces are written apart, so nothing else keeps
    two pieces from reaching for the same common words ("go out", "a time to", "tell me"):
    with a different share of them missing, each piece finds other ones."""
    dropout_top: int = 400
    verse_words: int = 6
    """Words of the theme's neighbourhood each stanza is steered to (``verse_weight`` each):
    the ``neighbourhood`` content words nearest the theme (English: sentence-embedding
    similarity; Mandarin: the characters the LM makes likelier after the theme's title
    line, its pointwise mutual information), in an order drawn by the piece's seed, each
    stanza taking the next ``verse_words``, so verses move on to other words of the
    theme. With ``word_dropout`` 0.3 and 6 verse words, on 10 pieces with the LSTM (61
    lines), distinct-2 rose from 0.60x to 0.74x the held-out lines' in English (Link
    Grammar parse rate 1.00x) and to 0.89x in Mandarin (part-of-speech plausibility 1.07x)."""
    verse_weight: float = 2.0
    neighbourhood: int = 80
    pair_dropout: float = 0.75
    """Share of the stock pairs (``cantus.lyrics.stock_pairs``: the most frequent word pairs
    of the LSTM's lyric text, "a time", "i have", "is not") that a piece penalises by
    ``pair_dropout_penalty``, drawn by the piece's seed: as ``word_dropout`` for words, so
    pieces written apart do not all reach for the same pairs. The fortunes-only LSTM's
    lines fell apart without them (Link Grammar parse rate 0.83-0.89x the human lines' on 10
    pieces, session 15). The LSTM that also read everyday sentences keeps its grammar
    (English, 30 pieces: parse 75.8 % against 75.3 % off, distinct-2 0.69x against 0.63x);
    served with ``noise`` 0.6 since session 24, measured together in both languages. Three
    quarters since session 25, for the English LSTM that no longer reads the third-person
    examples: 60 pieces, distinct-2 0.71x -> 0.75x the human lines', parse rate 63.6 % ->
    66.5 %; Mandarin (30 pieces) distinct-2 0.94x -> 0.92x, parts of speech 1.04x -> 1.06x."""
    pair_dropout_penalty: float = 3.0
    """Subtracted from a word that would complete a dropped stock pair; a pair of two function
    words ("in the", "of the") pays ``function_repeat`` of it, being the glue of a sentence."""
    clauses: bool = True
    """Write a line longer than a clause as clauses cut where the melody breathes
    (``cantus.lyrics.clauses``), each decoded as a line of its own."""


SERVED_DECODING = {
    "en": DecodeOptions(noise=0.8, function_repeat=0.6, theme_weight=4.5, line_theme_weight=6.75),
    "zh": DecodeOptions(),
}
"""The decoder as served per language. English lines draw with more noise (0.8) and a
function word sung again, or a dropped stock pair of two function words ("to be", "it is"),
pays 0.6 of the penalty (0.2 before): the pieces no longer all reach for the same glue. The
theme pulls 1.5 times as hard, as the drawn words wandered from it. Session 34, on the 30
pieces of ``cantus eval lyrics`` (A) and 60 others (B); distinct-2 over 186 lines, Link
Grammar parse rate, theme similarity:

* before: A 75.9 %, 65.6 %, 0.250; B 71.8 %, 67.7 %;
* noise and glue: A 87.9 %, 62.4 %, 0.210; B 85.2 %, 57.0 %, 0.215;
* … and the theme 1.5 times (served): A 85.6 %, 54.8 %, 0.253; B 84.8 %, 59.7 %, 0.257
  (1.25 times: A 84.7 %, 57.5 %, 0.276; B 83.2 %, 58.1 %, 0.226);
* held-out human lines: 89.4 %, 58.1 %.

Either of noise and glue alone gave about half the gain (0.8 alone: A 82.5 %, 55.9 %).
Mandarin keeps 0.6: at 0.8 its distinct-2 rose from 0.92x to 0.96x the human lines' but
its parts of speech fell from 1.06x to 0.94x as likely as theirs, and it met the 0.9x
goal already."""


def served_decoding(language: str) -> DecodeOptions:
    """The decoder served for lyrics in ``language``."""
    return SERVED_DECODING.get(language, DecodeOptions())


REGISTER_DECODING = DecodeOptions(
    theme_weight=2.0, line_theme_weight=3.0, noise=0.4, pair_dropout=0.0
)
"""How a requested register is written (``lyrics_register``, the transformer): with the
settings it was measured with before session 23 retuned them for the served LSTMs. At their
raised theme weights every register leant towards the theme's words and English registers
were heard as asked in 55 % of pieces, not 65 % (``cantus eval lyrics``, session 23)."""


@dataclass
class DecodedLine:
    """A line of lyrics: its words, one text per slot (English syllables end in "-" inside
    a word), the rhyme key of its last word, the constraints that had to be relaxed, and
    the words per clause (``cantus.lyrics.clauses``; empty: one clause)."""

    words: list[str]
    syllables: list[str]
    rhyme: str = ""
    score: float = 0.0
    relaxed: list[str] = field(default_factory=list)
    clauses: list[int] = field(default_factory=list)

    def _clause_texts(self) -> list[str]:
        joiner = "" if self.words and _is_cjk(self.words[0]) else " "
        return [joiner.join(group) for group in word_groups(self.words, self.clauses)]

    @property
    def text(self) -> str:
        """The line as printed: its clauses joined by a comma."""
        cjk = bool(self.words) and _is_cjk(self.words[0])
        return SEPARATOR["zh" if cjk else "en"].join(self._clause_texts())

    @classmethod
    def from_text(cls, text: str, syllables: Sequence[str]) -> DecodedLine:
        """The line printed as ``text`` (``DecodedLine.text``), sung on ``syllables``."""
        cjk = _is_cjk(text.strip())
        groups = [g for g in text.split(SEPARATOR["zh" if cjk else "en"].strip()) if g.strip()]
        words = [list(g.strip()) if cjk else g.split() for g in groups]
        return cls(
            [w for group in words for w in group],
            list(syllables),
            clauses=[len(group) for group in words] if len(words) > 1 else [],
        )

    @property
    def lm_text(self) -> str:
        """The line as the LM reads it: a clause per line, as it learnt its text."""
        return "\n".join(self._clause_texts())


def _is_cjk(word: str) -> bool:
    return bool(word) and "\u4e00" <= word[0] <= "\u9fff"


def slot_texts(words: Sequence[str], language: str) -> list[str]:
    """One sung text per syllable of ``words``."""
    if language == "zh":
        return list(words)
    texts: list[str] = []
    for word in words:
        texts += sung_syllables(word, pronounce(word).syllables)
    return texts


@dataclass
class _Beam:
    words: tuple[str, ...]
    ids: tuple[int, ...]
    position: int
    score: float


class LyricWriter:
    """Writes the lines of one piece, in order, remembering what it needs of earlier lines
    (the text so far, line endings for rhymes, words used)."""

    def __init__(
        self,
        scorer: LyricScorer,
        lexicon: Lexicon,
        *,
        theme_vector: np.ndarray | None = None,
        theme_text: str = "",
        embed=None,  # texts -> unit vectors, for reranking
        options: DecodeOptions = DecodeOptions(),
        seed: int = 0,
    ) -> None:
        self.scorer = scorer
        self.lexicon = lexicon
        self.language = lexicon.language
        self.options = options
        self.seed = seed
        self.theme_vector = theme_vector
        self.embed = embed
        self.static = np.zeros(len(lexicon), dtype=np.float32)
        if options.generic_weight:
            self.static += options.generic_weight * generic_surprisal(len(lexicon))
        if theme_vector is not None and lexicon.embeddings is not None:
            similarity = lexicon.embeddings.astype(np.float32) @ theme_vector.astype(np.float32)
            self.static += options.theme_weight * (similarity - float(np.median(similarity)))
        if self.language == "zh" and theme_text:
            in_theme = np.array([w in theme_text for w in lexicon.words])
            self.static += 1.5 * in_theme
        self.levels = np.array([TONE_LEVEL.get(int(t), 3.0) for t in lexicon.tones], np.float32)
        self.function = np.array(
            [self.language == "en" and not is_content_word(w) for w in lexicon.words], dtype=bool
        )
        self.vowel_initial: np.ndarray | None = None
        if self.language == "en" and {"a", "an"} & set(lexicon.index):
            self.vowel_initial = np.array([starts_with_vowel_sound(w) for w in lexicon.words])
        self.title = " ".join(theme_text.lower().split()) if self.language == "en" else theme_text
        content = ~self.function if self.language == "en" else np.ones(len(lexicon), bool)
        piece_rng = np.random.default_rng([seed, 21])
        self.dropped = np.zeros(len(lexicon), dtype=bool)
        if options.word_dropout:
            common = np.flatnonzero(content[: options.dropout_top])
            left_out = piece_rng.choice(common, round(options.word_dropout * len(common)), False)
            self.dropped[left_out] = True
        self.neighbours = np.zeros(0, dtype=np.int64)
        if options.verse_words:
            near = self._theme_association(theme_vector)
            if near is not None:
                order = np.argsort(-np.where(content & ~self.dropped, near, -np.inf))
                nearest = order[: options.neighbourhood]
                self.neighbours = nearest[piece_rng.permutation(len(nearest))]

        self.dropped_pairs = self._drop_pairs(seed)

    def _drop_pairs(self, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The piece's dropped stock pairs (``DecodeOptions.pair_dropout``): for each first
        word, the lexicon ids of the second words and the penalty of each."""
        opts, lex = self.options, self.lexicon
        if not opts.pair_dropout:
            return {}  # served so: no file read, no draw for every piece
        stock = [
            (a, b) for a, b in load_stock_pairs(self.language) if a in lex.index and b in lex.index
        ]
        if not stock:
            return {}
        rng = np.random.default_rng([seed, 22])  # apart from the word dropout's draws
        chosen = rng.choice(len(stock), round(opts.pair_dropout * len(stock)), replace=False)
        followers: dict[str, list[tuple[int, float]]] = {}
        for index in sorted(chosen):
            first, second = stock[index]
            glue = self.function[lex.index[first]] and self.function[lex.index[second]]
            penalty = opts.pair_dropout_penalty * (opts.function_repeat if glue else 1.0)
            followers.setdefault(first, []).append((lex.index[second], penalty))
        return {
            first: (np.array([i for i, _ in pairs]), np.array([p for _, p in pairs], np.float32))
            for first, pairs in followers.items()
        }

    def _theme_association(self, theme_vector: np.ndarray | None) -> np.ndarray | None:
        """How near each lexicon entry is to the theme: the cosine of its sentence embedding
        (English), else the log ratio of its LM probability after the title line to that
        at the start of a song (the embedding model is English; the LM learnt which
        characters go with which from its poems). Words the theme itself names are left
        out: the title line already gives them."""
        lex = self.lexicon
        if self.language == "en" and theme_vector is not None and lex.embeddings is not None:
            near = lex.embeddings.astype(np.float32) @ theme_vector.astype(np.float32)
            named = set(self.title.split())
        elif self.title:
            after, before = self.scorer.score([self.title + END_OF_LINE, ""], lex.words)
            near = np.where(after > np.median(after), after - before, -np.inf)
            named = set(self.title)
        else:
            return None
        return np.where([w in named for w in lex.words], -np.inf, near).astype(np.float32)

    def verse_bonus(self, stanza: int) -> np.ndarray:
        """``verse_weight`` for the words stanza ``stanza`` (its first line's index) is
        steered to: the next ``verse_words`` of the piece's shuffled neighbourhood."""
        bonus = np.zeros(len(self.lexicon), np.float32)
        size, count = len(self.neighbours), self.options.verse_words
        if size and count:
            start = stanza * count
            bonus[self.neighbours[(start + np.arange(min(count, size))) % size]] = (
                self.options.verse_weight
            )
        return bonus

    # --- the constrained search ----------------------------------------------------------
    def write_line(
        self,
        line: LineSlots,
        *,
        context: str,
        anchor: DecodedLine | None = None,
        used: Counter | None = None,
        is_anchor: bool = False,
        pairs: set[tuple[str, str]] | None = None,
    ) -> DecodedLine:
        """Line ``line`` after the lyrics ``context``; ``anchor``: the line it must rhyme
        with; ``is_anchor``: later lines will rhyme with it; ``used``: words sung so far;
        ``pairs``: word pairs written so far (``word_pairs``)."""
        if line.syllables == 0:
            return DecodedLine([], [])
        used, pairs = Counter(used or {}), set(pairs or set())
        if line.clauses:  # a ci pattern's clauses, which may rhyme inside the line
            lengths, rhyming = line.clauses, line.clause_rhymes
        else:
            lengths = (
                clause_lengths(line.slots, self.language)
                if self.options.clauses
                else (line.syllables,)
            )
            rhyming = (False,) * (len(lengths) - 1) + (True,)
        if len(lengths) == 1:
            return self._write_clause(line, context, anchor, used, is_anchor, pairs, 0)
        parts: list[DecodedLine] = []
        start = 0
        rhyme_anchor = anchor  # inside a line of two rhyming clauses, the first sets it
        for number, (length, rhymes) in enumerate(zip(lengths, rhyming, strict=True)):
            clause = dataclasses.replace(line, slots=line.slots[start : start + length])
            before = "\n".join(t for t in [context, *(p.lm_text for p in parts)] if t)
            lead = None  # the sung character before the clause, for its first tone step
            if parts and parts[-1].words:
                lead = (self.lexicon.index[parts[-1].words[-1]], line.slots[start - 1].pitch)
            start += length
            rhymes_later = any(rhyming[number + 1 :])
            part = self._write_clause(
                clause,
                before,
                rhyme_anchor if rhymes else None,
                used,
                rhymes and rhyme_anchor is None and (is_anchor or rhymes_later),
                pairs,
                number,
                lead,
            )
            used.update(part.words)
            pairs |= word_pairs(part.words)
            parts.append(part)
            if rhymes and rhyme_anchor is None and part.words:
                rhyme_anchor = part
        words = [w for p in parts for w in p.words]
        rhymed = [p for p, rhymes in zip(parts, rhyming, strict=True) if rhymes]
        return DecodedLine(
            words,
            [s for p in parts for s in p.syllables],
            (rhymed or parts)[-1].rhyme,
            sum(p.score for p in parts),
            sorted({r for p in parts for r in p.relaxed}),
            [len(p.words) for p in parts],
        )

    def _write_clause(
        self,
        line: LineSlots,
        context: str,
        anchor: DecodedLine | None,
        used: Counter,
        is_anchor: bool,
        pairs: set[tuple[str, str]],
        clause: int,
        lead: tuple[int, int] | None = None,
    ) -> DecodedLine:
        """One clause (or a whole line), relaxing stress and then rhyme if nothing fits
        (``RELAXATIONS``);
        ``lead``: the lexicon id and pitch of the syllable sung just before it."""
        for relaxed in RELAXATIONS:
            found = self._search(
                line, context, anchor, used, is_anchor, relaxed, pairs, clause, lead
            )
            if found is not None:
                found.relaxed = relaxed
                return found
        raise NoWordsFit(f"no words fit line {line.index} ({line.syllables} syllables)")

    def _search(
        self,
        line: LineSlots,
        context: str,
        anchor: DecodedLine | None,
        used: Counter,
        is_anchor: bool,
        relaxed: list[str],
        pairs: set[tuple[str, str]],
        clause: int = 0,
        lead: tuple[int, int] | None = None,
    ) -> DecodedLine | None:
        lex, opts = self.lexicon, self.options
        # the first clause draws as a whole line did, so a line of one clause is unchanged
        stream = [self.seed, line.index, len(relaxed)] + ([clause] if clause else [])
        rng = np.random.default_rng(stream)
        n = line.syllables
        strong_bits = sum(1 << i for i, strong in enumerate(line.strong) if strong)
        strong = np.array(line.strong, dtype=bool)
        pitches = [slot.pitch for slot in line.slots]
        verse = self.verse_bonus(line.stanza)
        used_penalty = np.array([used.get(w, 0) for w in lex.words], np.float32)
        used_penalty = opts.repeat_penalty * np.minimum(used_penalty, 2)
        if self.language == "zh":
            used_penalty *= 0.4  # characters recur in verse far more than words do
        else:
            used_penalty *= np.where(self.function, opts.function_repeat, 1.0).astype(np.float32)
        followers: dict[str, list[int]] = {}
        if opts.bigram_penalty:
            for before, after in pairs:
                if after in lex.index:
                    followers.setdefault(before, []).append(lex.index[after])
        rhyme_ok = np.ones(len(lex), dtype=bool)
        if anchor is not None and anchor.rhyme and "rhyme" not in relaxed:
            rhyme_ok = np.array([r == anchor.rhyme for r in lex.rhymes])
            if anchor.words:
                rhyme_ok &= np.array([w != anchor.words[-1] for w in lex.words])
        elif is_anchor and "rhyme" not in relaxed:
            rhyme_ok = lex.rhyme_sizes >= MIN_RHYME_CLASS
        if opts.prime_theme and self.title:
            context = self.title + END_OF_LINE + context if context else self.title
        prefix = context + END_OF_LINE if context else ""
        fitting = self.fitting_words(n, strong_bits, rhyme_ok, relaxed)
        completable = self.completable(n, strong_bits, rhyme_ok, relaxed, fitting)
        if not completable[0]:
            return None
        beams = [_Beam((), (), 0, 0.0)]
        done: list[_Beam] = []
        for _ in range(n):
            active = [b for b in beams if b.position < n]
            if not active:
                break
            texts = [prefix + self._join(b.words) for b in active]
            scores = self.scorer.score(texts, lex.words)
            pool: list[_Beam] = []
            for beam, row in zip(active, scores, strict=True):
                after = completable[np.minimum(beam.position + lex.syllables, n)]
                allowed = fitting[beam.position] & after  # a new array: changed below
                if beam.ids:
                    allowed[beam.ids[-1]] = False
                    if self.vowel_initial is not None and beam.words[-1] in ("a", "an"):
                        # "an the first house": the article agrees with the word after it
                        allowed &= self.vowel_initial == (beam.words[-1] == "an")
                if not allowed.any():
                    continue
                total = row + self.static + verse - used_penalty + opts.word_bonus
                if self.language == "en" and not strong[beam.position]:
                    total = total - opts.weak_content_penalty * lex.content_mono
                if self.language == "zh" and beam.ids:
                    total = total + self._tone_scores(beam.ids[-1], pitches, beam.position)
                elif self.language == "zh" and lead is not None:
                    total = total + self._tone_scores(lead[0], [lead[1], pitches[0]], 1)
                if beam.ids:  # a word twice in one line reads as a stutter
                    total[list(beam.ids)] -= 1.5 * opts.repeat_penalty
                    again = followers.get(beam.words[-1])
                    if again:  # a word pair the piece has sung already
                        total[again] -= opts.bigram_penalty
                    stock = self.dropped_pairs.get(beam.words[-1])
                    if stock is not None:  # a stock pair this piece does without
                        total[stock[0]] -= stock[1]
                if opts.noise:
                    draw = opts.noise * rng.gumbel(size=len(total)).astype(np.float32)
                    if opts.noise_margin:
                        draw[row < np.max(row[allowed]) - opts.noise_margin] = 0.0
                    total = total + draw
                total = np.where(allowed, total, -np.inf)
                top = np.argpartition(-total, min(opts.expand, len(total) - 1))[: opts.expand]
                for k in top:
                    if math.isfinite(total[k]):
                        pool.append(
                            _Beam(
                                (*beam.words, lex.words[k]),
                                (*beam.ids, int(k)),
                                beam.position + int(lex.syllables[k]),
                                beam.score + float(total[k]),
                            )
                        )
            seen, beams = set(), []
            for candidate in sorted(pool, key=lambda b: -b.score):
                if candidate.words not in seen:
                    seen.add(candidate.words)
                    beams.append(candidate)
                if len(beams) == opts.beam:
                    break
            finished = [b for b in beams if b.position == n]
            if finished:  # how well the line ends there: log P(end of line | line)
                ends = self.scorer.score(
                    [prefix + self._join(b.words) for b in finished], [END_OF_LINE]
                )
                for beam, end in zip(finished, ends[:, 0], strict=True):
                    beam.score += opts.end_weight * float(end)
            done += finished
        if not done:
            return None
        return self._best(sorted(done, key=lambda b: -b.score)[: opts.beam], rng)

    def fitting_words(
        self, n: int, strong_bits: int, rhyme_ok: np.ndarray, relaxed: Sequence[str]
    ) -> list[np.ndarray]:
        """For each syllable position 0..``n`` - 1 of a line of ``n``, the words that may be
        sung from there under the masks: no more syllables than are left; English, each
        stress on a strong slot unless relaxed (``RELAXATIONS``; "end stress": the line's
        last word may fall as it must); the last word in ``rhyme_ok``; a dropped word only
        last."""
        lex = self.lexicon
        check_stress = "stress" not in relaxed and self.language == "en"
        masks = []
        for position in range(n):
            left = n - position
            ends = lex.syllables == left
            fits = lex.syllables <= left
            if check_stress:
                stressed_right = ((lex.stress_mask << position) & ~strong_bits) == 0
                if "end stress" in relaxed:
                    stressed_right |= ends
                fits &= stressed_right
            masks.append(fits & (~ends | rhyme_ok) & (ends | ~self.dropped))
        return masks

    def completable(
        self,
        n: int,
        strong_bits: int,
        rhyme_ok: np.ndarray,
        relaxed: Sequence[str],
        fitting: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """For each syllable position 0..``n`` of a line of ``n``, whether words of the
        lexicon can fill the rest of it under the masks (``fitting_words``, computed here
        unless given): position ``n`` is complete; a word that leaves the line at a
        position that is not completable leads nowhere."""
        lex = self.lexicon
        fitting = fitting or self.fitting_words(n, strong_bits, rhyme_ok, relaxed)
        done = np.zeros(n + 1, dtype=bool)
        done[n] = True
        for position in range(n - 1, -1, -1):
            after = done[np.minimum(position + lex.syllables, n)]
            done[position] = bool((fitting[position] & after).any())
        return done

    def _tone_scores(self, previous: int, pitches: Sequence[int], position: int) -> np.ndarray:
        step = pitches[position] - pitches[position - 1]
        if step == 0:
            return np.zeros(len(self.lexicon), np.float32)
        tone_step = self.levels - self.levels[previous]
        agrees = (np.sign(tone_step) == np.sign(step)) & (tone_step != 0)
        return np.where(agrees, self.options.tone_weight, -self.options.tone_weight).astype(
            np.float32
        )

    def _best(self, finished: list[_Beam], rng: np.random.Generator) -> DecodedLine:
        """The finished line to sing: the best after the line's theme similarity is added,
        or (``pick_temperature``) one drawn among those near the best."""
        opts = self.options
        scores = np.array([b.score for b in finished], dtype=np.float32)
        if self.embed is not None and self.theme_vector is not None:
            vectors = self.embed([self._join(b.words) for b in finished])
            scores = scores + opts.line_theme_weight * (vectors @ self.theme_vector)
        chosen = int(np.argmax(scores))
        if opts.pick_temperature > 0 and len(finished) > 1:
            gap = (scores - scores[chosen]).astype(np.float64)
            weights = np.where(gap >= -opts.pick_margin, np.exp(gap / opts.pick_temperature), 0)
            chosen = int(rng.choice(len(finished), p=weights / weights.sum()))
        best = finished[chosen]
        words = list(best.words)
        return DecodedLine(
            words,
            slot_texts(words, self.language),
            self.lexicon.rhymes[best.ids[-1]],
            float(scores[chosen]),
        )

    def _join(self, words: Sequence[str]) -> str:
        return "".join(words) if self.language == "zh" else " ".join(words)

    # --- whole pieces ----------------------------------------------------------------------
    def write_lines(
        self, lines: Sequence[LineSlots], plan: FormPlan | None = None
    ) -> list[DecodedLine]:
        """Every line of a piece, in order (what the service does line by line); with a
        form ``plan``, a repeated chorus sings its words again (``song_form``)."""
        written: dict[int, DecodedLine] = {}
        anchors = {line.rhymes_with for line in lines if line.rhymes_with is not None}
        used: Counter = Counter()
        pairs: set[tuple[str, str]] = set()
        sung: list[SungLine] = []
        for line in lines:
            melody = line_melody(line.first_bar, line.slots)
            again = repeated_line(plan, line.first_bar, line.bar_count, melody, sung)
            if again is not None:
                decoded = DecodedLine(
                    list(again.words),
                    list(again.syllables),
                    again.rhyme,
                    clauses=list(again.clauses),
                )
            else:
                decoded = self.write_line(
                    line,
                    context=self.context(written),
                    anchor=written.get(line.rhymes_with) if line.rhymes_with is not None else None,
                    used=used,
                    is_anchor=line.index in anchors,
                    pairs=pairs,
                )
                used.update(decoded.words)
                pairs |= word_pairs(decoded.words)
            written[line.index] = decoded
            sung.append(
                SungLine(
                    line.index,
                    line.first_bar,
                    line.bar_count,
                    melody,
                    tuple(decoded.words),
                    tuple(decoded.syllables),
                    decoded.rhyme,
                    tuple(decoded.clauses),
                )
            )
        return [written[line.index] for line in lines]

    @staticmethod
    def context(written: dict[int, DecodedLine], lines: int = 4) -> str:
        """The last few lines sung, the LM's context for the next one."""
        return "\n".join(written[i].lm_text for i in sorted(written)[-lines:] if written[i].words)


def generic_surprisal(size: int) -> np.ndarray:
    """Zipf's estimate of each lexicon entry's surprisal out of context, ``log(rank + 1)``
    (entries in order of frequency), minus its median: common words below zero, rare ones
    above."""
    surprisal = np.log(np.arange(1, size + 1, dtype=np.float32))
    return surprisal - np.float32(np.median(surprisal))


def word_pairs(words: Sequence[str]) -> set[tuple[str, str]]:
    """The adjacent word (character) pairs of a line."""
    return set(itertools.pairwise(words))


# --- the unconstrained baseline -----------------------------------------------------------


def sample_line_unconstrained(
    scorer: LyricScorer,
    lexicon: Lexicon,
    line: LineSlots,
    *,
    context: str,
    rng: np.random.Generator,
    temperature: float = 1.0,
    max_words: int = 24,
) -> DecodedLine:
    """Baseline: sample words from the same LM, no constraints (the end of line is not
    offered, so the line never stops early), until the slots are filled, trimmed at a word
    boundary: a word that would run past the last note is dropped, so the line may come
    out a syllable or two short."""
    if line.syllables == 0:
        return DecodedLine([], [])
    candidates = lexicon.words
    syllables = lexicon.syllables.tolist()
    prefix = context + END_OF_LINE if context else ""
    words: list[str] = []
    count = 0
    join = "".join if lexicon.language == "zh" else " ".join
    while count < line.syllables and len(words) < max_words:
        logits = scorer.score([prefix + join(words)], candidates)[0] / temperature
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        k = int(rng.choice(len(candidates), p=probabilities))
        if count + syllables[k] > line.syllables:
            break  # trimmed: the word does not fit
        words.append(candidates[k])
        count += syllables[k]
    words = [w for w in words if not is_blocked(w, lexicon.language)]
    rhyme = lexicon.rhymes[lexicon.index[words[-1]]] if words else ""
    return DecodedLine(words, slot_texts(words, lexicon.language), rhyme)
