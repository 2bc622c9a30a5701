"""``cantus train lyrics --model transformer``: trains one language's lyric transformer on
the registry corpora (``sources``) for a wall-clock budget, single-threaded, and writes
``checkpoints/lyric_<language>.pt`` and the language's lexicon
(``checkpoints/lyric_lexicon_<language>.npz``) only if it beats the LSTM it replaces on
held-out perplexity (``compare_perplexity``).

Held-out documents (``split_documents``): the LSTM's own validation documents of the
fortunes files it was trained on (so neither model trained on them), and one document in
``HOLDOUT_EVERY`` of every other source, chosen by a hash of its text.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cantus.lyrics import REGISTERS
from cantus.lyrics import corpus as fortunes_corpus
from cantus.lyrics.model import EOL, PAD, UNK, Vocabulary, load_lyric_checkpoint, tokenize
from cantus.lyrics.sources import Document, load_corpus
from cantus.lyrics.training import checkpoint_path, lexicon_path
from cantus.lyrics.transformer import (
    LyricTransformer,
    LyricTransformerConfig,
    cosine_rate,
    load_transformer_checkpoint,
    parameter_count,
    register_token,
    save_transformer_checkpoint,
)

HOLDOUT_EVERY = 50
VOCAB_SIZE = {"en": 10000, "zh": 6000}
"""Most frequent tokens kept: the output layer is most of a training step's work on the CPU."""
MIN_COUNT = 3
BATCH = 32
PEAK_RATE = 1.5e-3
EVAL_EVERY_SECONDS = 150.0
EVAL_TOKENS_PER_SOURCE = 12000
LSTM_SOURCES = {"en": ("songs-poems", "love", "literature"), "zh": ("tang300", "song100")}


@dataclass
class Split:
    train: list[Document]
    held_out: list[Document]


def lstm_validation_lines(language: str) -> set[tuple[str, ...]]:
    """The documents the LSTM held out (``training.train_language``'s split: seed 0, the
    first twentieth of a shuffled order)."""
    documents, _ = fortunes_corpus.load_documents(language)
    order = list(range(len(documents)))
    random.Random(0).shuffle(order)
    cut = max(1, len(order) // 20)
    return {tuple(documents[i]) for i in order[:cut]}


def lstm_sources(language: str) -> set[str]:
    """The registry corpus's ``Document.source`` names of the fortunes files the LSTM reads."""
    package = "fortunes" if language == "en" else "fortunes-zh"
    return {f"{package}/{name}" for name in LSTM_SOURCES[language]}


def split_documents(documents: Sequence[Document], language: str) -> Split:
    lstm_valid = lstm_validation_lines(language)
    lstm_files = lstm_sources(language)
    train: list[Document] = []
    held_out: list[Document] = []
    for document in documents:
        if document.source in lstm_files:
            # the LSTM's split of the same text; line cutting may differ a little for
            # Mandarin, so a document is matched by its lines or kept in training
            (held_out if document.lines in lstm_valid else train).append(document)
            continue
        digest = hashlib.sha256("\n".join(document.lines).encode()).digest()
        if int.from_bytes(digest[:4], "big") % HOLDOUT_EVERY == 0:
            held_out.append(document)
        else:
            train.append(document)
    # the same poem in two sources (a Tang poem in tang300 and in chinese-poetry) stays out
    # of training when one copy is held out
    held_lines = {line for document in held_out for line in document.lines}
    kept = [d for d in train if sum(line in held_lines for line in d.lines) * 3 < len(d.lines)]
    return Split(kept, held_out)


def build_vocabulary(documents: Sequence[Document], language: str) -> Vocabulary:
    counts: Counter = Counter()
    for document in documents:
        for line in document.lines:
            counts.update(tokenize(line, language))
    kept = [t for t, n in counts.most_common(VOCAB_SIZE[language]) if n >= MIN_COUNT]
    registers = [register_token(r) for r in REGISTERS[language]]
    return Vocabulary([PAD, UNK, EOL, *registers, *kept])


def register_streams(
    documents: Sequence[Document], vocab: Vocabulary, language: str
) -> dict[str, list[list[int]]]:
    """Per register, the documents' lines as token ids, a document ending in an empty line
    (so a window may run across documents, as a lyric's context runs across lines)."""
    streams: dict[str, list[list[int]]] = defaultdict(list)
    for document in documents:
        lines = streams[document.register]
        lines += [vocab.ids(tokenize(line, language)) for line in document.lines]
        lines.append([])
    return streams


def windows(
    streams: dict[str, list[list[int]]], vocab: Vocabulary, context: int
) -> list[list[int]]:
    """Training sequences of at most ``context + 1`` tokens, each ``<reg> <eol> line <eol>
    …`` starting at a line; a window ends before the first line that does not fit whole, and
    the next starts at it."""
    eol = vocab.index[EOL]
    out = []
    for register, lines in streams.items():
        head = vocab.index[register_token(register)]
        current = [head, eol]
        for line in lines:
            piece = [*line, eol]
            if len(current) + len(piece) > context + 1 and len(current) > 2:
                out.append(current)
                current = [head, eol]
            current += piece[: context - 1]
        if len(current) > 2:
            out.append(current)
    return out


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    batch = torch.zeros((len(rows), max(len(r) for r in rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = torch.tensor(row)
    return batch


def _loss(model: LyricTransformer, rows: Sequence[Sequence[int]]) -> torch.Tensor:
    batch = _pad(rows)
    logits = model(batch[:, :-1])
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), ignore_index=0
    )


def _validation_loss(model: LyricTransformer, rows: Sequence[Sequence[int]]) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(rows), 64):
            chunk = rows[start : start + 64]
            tokens = sum(len(r) - 1 for r in chunk)
            total += _loss(model, chunk).item() * tokens
            count += tokens
    model.train()
    return total / max(1, count)


def train_transformer(
    language: str,
    *,
    minutes: float,
    out_path: Path,
    config_overrides: dict | None = None,
    seed: int = 0,
    report: Callable[[str], None] = print,
) -> dict:
    """Train for ``minutes`` (wall clock) and write the best checkpoint (lowest loss on the
    held-out windows) to ``out_path``; returns a summary."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    documents, dropped = load_corpus(language)
    split = split_documents(documents, language)
    vocab = build_vocabulary(split.train, language)
    config = LyricTransformerConfig(vocab_size=len(vocab), **(config_overrides or {}))
    train_rows = windows(register_streams(split.train, vocab, language), vocab, config.context)
    valid_rows = windows(register_streams(split.held_out, vocab, language), vocab, config.context)
    rng.shuffle(valid_rows)
    valid_rows = valid_rows[:400]
    model = LyricTransformer(config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "position" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "position" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
        lr=PEAK_RATE,
        betas=(0.9, 0.98),
    )
    registers = Counter(d.register for d in split.train)
    report(
        f"{language}: {len(split.train)} documents ({sum(len(r) for r in train_rows)} tokens, "
        f"{len(train_rows)} windows) for training, {len(split.held_out)} held out; registers "
        f"{dict(registers)}; vocabulary {len(vocab)}; dropped lines "
        f"{dict((k.value, v) for k, v in dropped.items())}; {parameter_count(model)} parameters"
    )
    started = time.monotonic()
    budget = minutes * 60
    best, best_state, step, seen, last_eval = math.inf, None, 0, 0, started
    order: list[int] = []
    model.train()
    while True:
        elapsed = time.monotonic() - started
        if not order:
            order = list(range(len(train_rows)))
            rng.shuffle(order)
        rows = [train_rows[order.pop()] for _ in range(min(BATCH, len(order)))]
        for group in optimiser.param_groups:
            group["lr"] = cosine_rate(elapsed / budget, PEAK_RATE)
        optimiser.zero_grad()
        loss = _loss(model, rows)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step += 1
        seen += sum(len(r) - 1 for r in rows)
        now = time.monotonic()
        finished = now - started > budget
        if now - last_eval > EVAL_EVERY_SECONDS or finished:
            last_eval = now
            valid = _validation_loss(model, valid_rows)
            report(
                f"{language} step {step} ({seen} tokens, {now - started:.0f} s): train "
                f"{loss.item():.3f}, held-out {valid:.3f} nats/token"
            )
            if valid < best:
                best = valid
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if finished:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    summary = {
        "held_out_nats_per_token": round(best, 4),
        "vocabulary": len(vocab),
        "train_tokens_seen": seen,
        "steps": step,
        "minutes": minutes,
    }
    save_transformer_checkpoint(out_path, model, vocab, language, REGISTERS[language], **summary)
    report(f"{language}: kept held-out {best:.3f} nats/token -> {out_path}")
    return summary


# --- side-by-side perplexity --------------------------------------------------------------


def _document_tokens(document: Document, language: str) -> list[str]:
    return [EOL, *tokenize("\n".join(document.lines), language), EOL]


def lstm_token_logprobs(path: Path, tokens: list[str]) -> tuple[list[float], set[str]]:
    """log P(token i | tokens < i) for i ≥ 1 under the LSTM checkpoint, and its vocabulary."""
    loaded = load_lyric_checkpoint(path)
    ids = loaded.vocab.ids(tokens)
    with torch.inference_mode():
        logits = loaded.model(torch.tensor([ids[:-1]]))[0]
        logprobs = torch.log_softmax(logits.float(), -1)
    values = [float(logprobs[i, ids[i + 1]]) for i in range(len(ids) - 1)]
    return values, set(loaded.vocab.tokens)


def compare_perplexity(
    language: str,
    lstm_path: Path,
    transformer_path: Path,
    *,
    report: Callable[[str], None] = print,
) -> dict[str, dict[str, float]]:
    """Per held-out source, both LMs' perplexity on the tokens both vocabularies hold (words
    or characters, and line ends; the transformer's larger vocabulary only costs it here),
    each target token scored once, with context within its document."""
    documents, _ = load_corpus(language)
    held_out = split_documents(documents, language).held_out
    lstm = load_lyric_checkpoint(lstm_path)
    transformer = load_transformer_checkpoint(transformer_path)
    common = set(lstm.vocab.tokens) & set(transformer.vocab.tokens)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    window = transformer.model.config.context
    by_source: dict[str, list[Document]] = defaultdict(list)
    for document in held_out:
        by_source[document.source].append(document)
    for source, docs in sorted(by_source.items()):
        budget = EVAL_TOKENS_PER_SOURCE
        for document in docs:
            if budget <= 0:
                break
            tokens = _document_tokens(document, language)[: 4 * window]
            budget -= len(tokens)
            lstm_ids = lstm.vocab.ids(tokens)
            with torch.inference_mode():
                logits = lstm.model(torch.tensor([lstm_ids[:-1]]))[0]
                lstm_lp = torch.log_softmax(logits.float(), -1)
            t_lp = _transformer_logprobs(transformer, tokens, document.register, window)
            for i in range(1, len(tokens)):
                if tokens[i] not in common:
                    continue
                entry = totals[source]
                entry[0] += -float(lstm_lp[i - 1, lstm_ids[i]])
                entry[1] += -t_lp[i - 1]
                entry[2] += 1
    results = {}
    for source, (lstm_nll, t_nll, count) in sorted(totals.items()):
        results[source] = {
            "tokens": count,
            "lstm": math.exp(lstm_nll / count),
            "transformer": math.exp(t_nll / count),
        }
        report(
            f"{language} {source}: {int(count)} tokens, perplexity LSTM "
            f"{results[source]['lstm']:.1f}, transformer {results[source]['transformer']:.1f}"
        )
    lstm_all = sum(v[0] for v in totals.values())
    t_all = sum(v[1] for v in totals.values())
    n_all = sum(v[2] for v in totals.values())
    results["all"] = {
        "tokens": n_all,
        "lstm": math.exp(lstm_all / n_all),
        "transformer": math.exp(t_all / n_all),
    }
    report(
        f"{language} all held-out: {int(n_all)} tokens, perplexity LSTM "
        f"{results['all']['lstm']:.1f}, transformer {results['all']['transformer']:.1f}"
    )
    return results


def _transformer_logprobs(loaded, tokens: list[str], register: str, window: int) -> list[float]:
    """log P(token i | …) for i ≥ 1; the document is cut into windows at line ends, each
    starting ``<reg> <eol>``."""
    vocab = loaded.vocab
    ids = vocab.ids(tokens)
    head = vocab.index[register_token(register)]
    out: list[float] = []
    start = 0
    eol = vocab.index[EOL]
    while start < len(ids) - 1:
        end = min(len(ids), start + window)
        if end < len(ids):  # end the window after a line end when there is one
            cut = max((j for j in range(start + 1, end) if ids[j] == eol), default=end - 1)
            end = cut + 1
        row = [head, *ids[start:end]]
        with torch.inference_mode():
            logits = loaded.model(torch.tensor([row[:-1]]))[0]
            lp = torch.log_softmax(logits.float(), -1)
        # row[k + 1] is predicted at position k; targets are ids[start + 1 : end]
        out += [float(lp[k + 1, row[k + 2]]) for k in range(len(row) - 2)]
        start = end - 1
    return out


def lexicon_words(vocab: Vocabulary, documents: Sequence[Document], language: str) -> list[str]:
    """Lexicon candidates: vocabulary entries seen at least twice in the lyric and everyday
    registers (song, modern; ci, qu, shi), so archaic words from scripture and 1913 quotations
    stay out of the lines the decoder may write."""
    lyric_registers = {"en": ("song", "modern"), "zh": ("ci", "qu", "shi")}[language]
    counts: Counter = Counter()
    for document in documents:
        if document.register in lyric_registers:
            for line in document.lines:
                counts.update(tokenize(line, language))
    return [t for t in vocab.tokens[3:] if counts[t] >= 2 and not t.startswith("<")]


def build_transformer_lexicon(checkpoint: Path, out_path: Path, *, embed: bool = True) -> int:
    """The decoder's lexicon for a transformer checkpoint (``lexicon_words``), with theme
    embeddings; returns its size."""
    from cantus.lyrics.lexicon import build_lexicon

    loaded = load_transformer_checkpoint(checkpoint)
    documents, _ = load_corpus(loaded.language)
    train = split_documents(documents, loaded.language).train
    words = lexicon_words(loaded.vocab, train, loaded.language)
    lexicon = build_lexicon(words, loaded.language)
    if embed:
        from cantus.lyrics.theme import ThemeEmbedder

        vectors = ThemeEmbedder().embed(lexicon.words).astype(np.float16)
        lexicon = build_lexicon(lexicon.words, loaded.language, embeddings=vectors)
    lexicon.save(out_path)
    return len(lexicon)


def train_transformer_command(
    *,
    minutes: float,
    languages: Sequence[str],
    checkpoint_dir: Path,
    work_dir: Path,
    log_path: Path | None = None,
    config_overrides: dict | None = None,
) -> dict[str, dict]:
    """Per language: train a candidate into ``work_dir``, compare it with the LSTM
    (``lyric_lstm_<language>.pt``, or ``lyric_<language>.pt`` while that is still an LSTM)
    on held-out text, and install it as ``checkpoints/lyric_<language>.pt`` with its
    lexicon only if its perplexity over all held-out text is lower (per-source numbers are
    logged). Which installed LM ``lyric_lm`` serves is the ``lyric_models`` setting, chosen
    by ``cantus eval lyrics`` on the lines each writes. The progress lines also go to
    ``log_path``."""
    import shutil

    from cantus.checkpoint_io import load_checkpoint
    from cantus.lyrics.model import CHECKPOINT_FORMAT as LSTM_FORMAT

    torch.set_num_threads(1)
    lines: list[str] = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    results = {}
    for language in languages:
        candidate = Path(work_dir) / f"lyric_{language}.transformer.pt"
        installed = checkpoint_path(language, checkpoint_dir, "transformer")
        lstm = checkpoint_path(language, checkpoint_dir, "lstm")
        if not lstm.exists():
            load_checkpoint(installed, LSTM_FORMAT)  # refuses anything but the LSTM
            shutil.copyfile(installed, lstm)
        summary = train_transformer(
            language,
            minutes=minutes,
            out_path=candidate,
            config_overrides=config_overrides,
            report=report,
        )
        perplexity = compare_perplexity(language, lstm, candidate, report=report)
        better = perplexity["all"]["transformer"] < perplexity["all"]["lstm"]
        if better:
            shutil.copyfile(candidate, installed)
            size = build_transformer_lexicon(
                installed, lexicon_path(language, checkpoint_dir, "transformer")
            )
            report(f"{language}: installed {installed.name}; lexicon {size} entries")
        else:
            report(f"{language}: the transformer does not beat the LSTM; nothing installed")
        results[language] = {"summary": summary, "perplexity": perplexity, "installed": better}
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        command = f"cantus train lyrics --model transformer --minutes {minutes:g} " + " ".join(
            f"--language {lang}" for lang in languages
        )
        with Path(log_path).open("a") as handle:
            handle.write(f"\n# {command}\n" + "\n".join(lines) + "\n")
    return results
