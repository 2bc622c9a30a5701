"""``cantus train lyrics --model lstm``: trains the English (word-level) and Mandarin
(character-level) LSTM lyric LMs, single-threaded by default, and writes
``checkpoints/lyric_lstm_<language>.pt`` and its lexicon with theme embeddings
(``checkpoints/lyric_lexicon_lstm_<language>.npz``). ``checkpoint_path`` and
``lexicon_path`` name the files of either LM (``cantus.lyrics.LYRIC_MODELS``).

What each language reads (``lstm_documents``):

* English: the song and everyday registers of the registry corpus (``cantus.lyrics.sources``,
  ``make lyric-data``): the fortunes songs, love poems and literature, each read
  ``LYRIC_REPEATS`` times an epoch, and the fortunes prose and WordNet's example sentences
  once (those that tell of "he" or "she" left out: ``THIRD_PERSON``). On the songs alone
  (55 k words) the LM knew a few hundred stock phrases and strung them together ("i have
  been to do"); the example sentences teach it whole sentences ("the oceans are teeming with life").
  Held out: the transformer's split
  (``transformer_training.split_documents``), whose song documents are the LSTM's own
  validation set, so the eval's human lines stay out of training.
* Mandarin: the ci of the registry corpus (``chinese-poetry``'s Song ci and Huajian ji, 1.4 M
  characters) and the fortunes-zh Tang and Song poems it read before, these
  ``LYRIC_REPEATS`` times. On the fortunes-zh poems alone (28 k characters) its lines were
  loose ("孤灯欲月无中"); on the ci they read as ci ("故乡情切，休辞醉乡").

The checkpoint kept is the one with the lowest validation loss (nats per token).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cantus.lyrics import LYRIC_MODELS, LYRICS_LANGUAGES, served_lyric_model
from cantus.lyrics.corpus import load_documents
from cantus.lyrics.lexicon import build_lexicon
from cantus.lyrics.model import (
    EOL,
    LyricLM,
    LyricLMConfig,
    Vocabulary,
    save_lyric_checkpoint,
    tokenize,
)

log = logging.getLogger("cantus.lyrics.training")

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
LSTM_REGISTERS = {"en": ("song", "modern"), "zh": ("ci",)}
"""Registers of the registry corpus an LSTM reads, besides its fortunes files; a language not
named reads the fortunes poems alone (``corpus.load_documents``)."""
THIRD_PERSON = frozenset({"he", "she", "him", "his", "her", "hers", "himself", "herself"})
"""Words that leave a WordNet example sentence out of the English LSTM's training. A fifth of
the examples tell of someone ("he got up in the air"; 69 k of their 280 k words), and lines
decoded from the LSTM that read them were told in the third person: 9.8 % of their words
against 2.6 % in the song text, "he" opening one line in five (session 24). A prior on the
pronouns at decoding cut that but cost 6 points of parse rate. Retrained without them
(session 25, 30 pieces): 4.0 % third person (human lines 3.4 %), theme similarity 0.211 ->
0.260, parse rate 71.5 -> 65.1 % (the examples were the LM's simplest grammar; still 1.12x
the human lines'). Songs and prose keep every line: their third person is the songs' own."""
LSTM_LEFT_OUT_SOURCES = {"en": {"wordnet": THIRD_PERSON}}
"""Per language, the registry sources whose lines containing one of the given words the LSTM
does not read (``lstm_documents``)."""
LYRIC_REPEATS = 3
"""Reads per epoch of the lyric documents (the fortunes files the LSTM read before) beside
the everyday prose, so that the LM still writes verse."""
MIN_COUNT = {"en": 3}
"""Occurrences in training a word needs to be in the vocabulary (default 2)."""
LEXICON_WORDS = {"en": 6000}
"""The decoder writes with the LM's most frequent words only (a language not named: every
word of the vocabulary). With all 12.8 k English words, rare ones from the example
sentences became rhyme anchors that nothing rhymed with, and 12 % of the lines that must
rhyme did not (``cantus eval lyrics``, 30 pieces; 94 % rhyme with 6000)."""
SEQUENCE_TOKENS = 64
BATCH = 32


def _model_part(language: str, model: str | None) -> str:
    model = model or served_lyric_model(language)
    if model not in LYRIC_MODELS:
        raise ValueError(f"lyric model {model!r} is not one of {LYRIC_MODELS}")
    return "" if model == "transformer" else f"{model}_"


def checkpoint_path(
    language: str, directory: Path = CHECKPOINT_DIR, model: str | None = None
) -> Path:
    """The checkpoint of lyric LM ``model`` (``LYRIC_MODELS``; default: the one served,
    the ``lyric_models`` setting): ``lyric_<language>.pt`` for the transformer,
    ``lyric_lstm_<language>.pt`` for the LSTM."""
    return Path(directory) / f"lyric_{_model_part(language, model)}{language}.pt"


def lexicon_path(language: str, directory: Path = CHECKPOINT_DIR, model: str | None = None) -> Path:
    """The lexicon that goes with ``checkpoint_path(language, directory, model)``."""
    return Path(directory) / f"lyric_lexicon_{_model_part(language, model)}{language}.npz"


def token_stream(documents: list[list[str]], vocab: Vocabulary, language: str) -> torch.Tensor:
    ids: list[int] = []
    for document in documents:
        ids += vocab.ids([EOL, *tokenize("\n".join(document), language), EOL])
    return torch.tensor(ids, dtype=torch.long)


def _batches(stream: torch.Tensor, rng: random.Random, *, shuffle: bool):
    starts = list(range(0, len(stream) - SEQUENCE_TOKENS - 1, SEQUENCE_TOKENS))
    if shuffle:
        offset = rng.randrange(SEQUENCE_TOKENS)
        starts = [s + offset for s in starts if s + offset + SEQUENCE_TOKENS + 1 <= len(stream)]
        rng.shuffle(starts)
    for i in range(0, len(starts), BATCH):
        chunk = starts[i : i + BATCH]
        rows = torch.stack([stream[s : s + SEQUENCE_TOKENS + 1] for s in chunk])
        yield rows[:, :-1], rows[:, 1:]


def _loss(model: LyricLM, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(inputs)
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0
    )


def train_language(
    language: str,
    *,
    minutes: float,
    out_dir: Path = CHECKPOINT_DIR,
    config_overrides: dict | None = None,
    max_epochs: int = 200,
    seed: int = 0,
    embed_lexicon: bool = True,
    registry: bool = True,
    report: Callable[[str], None] = print,
) -> dict:
    """Train one language's LM for at most ``minutes`` and write its checkpoint and
    lexicon; returns a summary (validation loss, perplexity, sizes). ``registry``: read the
    registry corpus's registers too (``lstm_documents``); False: the fortunes files alone,
    which ``make setup`` installs."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train_docs, valid_docs, dropped = lstm_documents(language, rng, registry=registry)
    once = list({tuple(document): document for document in train_docs}.values())
    vocab = Vocabulary.build(once, language, min_count=MIN_COUNT.get(language, 2))
    train, valid = (token_stream(d, vocab, language) for d in (train_docs, valid_docs))
    config = LyricLMConfig(vocab_size=len(vocab), **(config_overrides or {}))
    model = LyricLM(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    report(
        f"{language}: {len(train_docs)} documents ({len(train)} tokens) for training, "
        f"{len(valid_docs)} ({len(valid)} tokens) held out; vocabulary {len(vocab)}; "
        f"dropped lines {dict((k.value, v) for k, v in dropped.items())}; "
        f"{sum(p.numel() for p in model.parameters())} parameters"
    )
    started = time.monotonic()
    best, best_state, stale = math.inf, None, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        for inputs, targets in _batches(train, rng, shuffle=True):
            optimiser.zero_grad()
            loss = _loss(model, inputs, targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        model.eval()
        with torch.inference_mode():
            losses = [
                (_loss(model, i, t).item(), t.numel())
                for i, t in _batches(valid, rng, shuffle=False)
            ]
        valid_loss = sum(v * n for v, n in losses) / max(1, sum(n for _, n in losses))
        elapsed = time.monotonic() - started
        report(
            f"{language} epoch {epoch}: validation {valid_loss:.3f} nats/token ({elapsed:.0f} s)"
        )
        if valid_loss < best - 1e-3:
            best, stale = valid_loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if stale >= 3 or elapsed > minutes * 60:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "validation_nats_per_token": round(best, 4),
        "validation_perplexity": round(math.exp(best), 1),
        "vocabulary": len(vocab),
        "train_tokens": len(train),
        "epochs": epoch,
    }
    save_lyric_checkpoint(
        checkpoint_path(language, out_dir, "lstm"), model, vocab, language, **summary
    )
    specials = vocab.tokens.index(EOL) + 1
    lexicon = build_lexicon(
        vocab.tokens[: specials + LEXICON_WORDS.get(language, len(vocab))], language
    )
    if embed_lexicon:
        from cantus.lyrics.theme import ThemeEmbedder

        vectors = ThemeEmbedder().embed(lexicon.words).astype(np.float16)
        lexicon = build_lexicon(lexicon.words, language, embeddings=vectors)
    lexicon.save(lexicon_path(language, out_dir, "lstm"))
    report(f"{language}: kept validation {best:.3f} nats/token; lexicon {len(lexicon)} entries")
    return summary


def lstm_documents(
    language: str, rng: random.Random, *, registry: bool = True
) -> tuple[list[list[str]], list[list[str]], Counter]:
    """Training and validation documents (lists of lines) of ``language``'s LSTM and the
    dropped lines by reason (module docstring); training documents in a shuffled order.
    ``registry`` False, or a language without ``LSTM_REGISTERS``: the fortunes files alone,
    split 95/5."""
    if not registry or language not in LSTM_REGISTERS:
        documents, dropped = load_documents(language)
        order = list(range(len(documents)))
        rng.shuffle(order)
        cut = max(1, len(order) // 20)
        return [documents[i] for i in order[cut:]], [documents[i] for i in order[:cut]], dropped
    from cantus.lyrics.sources import Dropped, load_corpus
    from cantus.lyrics.transformer_training import lstm_sources, split_documents

    corpus, dropped = load_corpus(language)
    split = split_documents(corpus, language)
    lyric = lstm_sources(language)
    registers = LSTM_REGISTERS[language]
    left_out = LSTM_LEFT_OUT_SOURCES.get(language, {})
    train = []
    for document in split.train:
        if document.register not in registers and document.source not in lyric:
            continue
        lines = list(document.lines)
        if document.source in left_out:
            kept = [line for line in lines if left_out[document.source].isdisjoint(line.split())]
            dropped[Dropped.THIRD_PERSON] += len(lines) - len(kept)
            lines = kept
        if lines:
            train += [lines] * (LYRIC_REPEATS if document.source in lyric else 1)
    rng.shuffle(train)
    valid = [list(document.lines) for document in split.held_out if document.source in lyric]
    return train, valid, dropped


def train_lyrics_command(
    *, minutes: float, out_dir: Path = CHECKPOINT_DIR, languages=LYRICS_LANGUAGES, log_path=None
) -> None:
    """Train every language in turn, ``minutes`` each at most, one thread; the progress
    lines are appended to ``log_path`` (``docs/results/lyrics_training.log``) under the
    command that made them."""
    torch.set_num_threads(1)
    lines: list[str] = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    for language in languages:
        train_language(language, minutes=minutes, out_dir=out_dir, report=report)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        named = "".join(f" --language {language}" for language in languages)
        command = f"cantus train lyrics --model lstm --minutes {minutes:g}{named}"
        with Path(log_path).open("a") as handle:
            handle.write(f"\n# {command}\n" + "\n".join(lines) + "\n")
