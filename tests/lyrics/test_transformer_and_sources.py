"""The lyric transformer (a tiny one trained here for a few steps), its scorer behind the
serving interface, and the registry corpora's line cutting on small texts."""

from collections import Counter

import numpy as np
import pytest
import torch

from cantus.lyrics.model import EOL, PAD, UNK, Vocabulary
from cantus.lyrics.serving import LyricServing, load_lyric_scorer
from cantus.lyrics.sources import (
    Document,
    Dropped,
    english_clauses,
    gcide_documents,
    mandarin_clauses,
)
from cantus.lyrics.transformer import (
    LyricTransformer,
    LyricTransformerConfig,
    TransformerLyricScorer,
    context_ids,
    load_transformer_checkpoint,
    register_token,
    save_transformer_checkpoint,
)
from cantus.lyrics.transformer_training import (
    _loss,
    build_vocabulary,
    register_streams,
    windows,
)

DOCUMENTS = [
    Document(("the sea is wide", "and the night is long", "i sail home"), "test", "song"),
    Document(("the wind is cold", "the sea is grey"), "test", "modern"),
] * 3


def tiny_model(tmp_path, steps: int = 30):
    torch.manual_seed(0)
    vocab = build_vocabulary(DOCUMENTS, "en")
    config = LyricTransformerConfig(vocab_size=len(vocab), d_model=32, layers=1, heads=2, ff=64)
    rows = windows(register_streams(DOCUMENTS, vocab, "en"), vocab, config.context)
    model = LyricTransformer(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        _loss(model, rows).backward()
        optimiser.step()
    path = tmp_path / "lyric_en.pt"
    save_transformer_checkpoint(
        path, model, vocab, "en", ("song", "modern", "literary", "scripture")
    )
    return path


def test_the_vocabulary_holds_registers_and_windows_start_with_one(tmp_path):
    vocab = build_vocabulary(DOCUMENTS, "en")
    assert vocab.tokens[:3] == [PAD, UNK, EOL]
    assert register_token("song") in vocab.index
    rows = windows(register_streams(DOCUMENTS, vocab, "en"), vocab, 12)
    assert all(len(row) <= 13 for row in rows)
    heads = {vocab.tokens[row[0]] for row in rows}
    assert heads == {"<reg:song>", "<reg:modern>"}
    assert all(row[1] == vocab.index[EOL] for row in rows)


def test_a_long_context_keeps_its_register_token_first():
    vocab = Vocabulary([PAD, UNK, EOL, "<reg:song>", "a"])
    ids = context_ids(vocab, "a a a a\na a a", "en", "song", 5)
    assert ids[0] == 3 and len(ids) == 5


def test_the_transformer_answers_the_scoring_interface(tmp_path):
    path = tiny_model(tmp_path)
    scorer = load_lyric_scorer(path)
    assert isinstance(scorer, TransformerLyricScorer)
    vocab = scorer.loaded.vocab.tokens[3:]
    scores = scorer.score(["the sea is", ""], [*vocab, "\n"])
    assert scores.shape == (2, len(vocab) + 1) and scores.dtype == np.float32
    assert np.all(scores <= 0) and 0.5 < np.exp(scores[0]).sum() <= 1.0001
    after_the = scorer.score(["and the"], ["night", "and"])[0]
    assert after_the[0] > after_the[1]  # learned from six documents
    # a candidate of two tokens is the sum of its steps
    two = scorer.score(["the sea"], ["is wide"])[0, 0]
    first = scorer.score(["the sea"], ["is"])[0, 0]
    second = scorer.score(["the sea is"], ["wide"])[0, 0]
    assert two == pytest.approx(first + second, abs=1e-4)
    serving = LyricServing.load(tmp_path, languages=("en",), models={"en": "transformer"})
    assert serving.versions.startswith("lyric_en@")


def test_a_register_is_asked_for_by_name(tmp_path):
    loaded = load_transformer_checkpoint(tiny_model(tmp_path, steps=1))
    assert TransformerLyricScorer(loaded, "modern").register == "modern"
    with pytest.raises(ValueError, match="register"):
        TransformerLyricScorer(loaded, "rap")


def test_prose_is_cut_into_clauses():
    dropped: Counter = Counter()
    lines = english_clauses("Give me the map. I know the way; follow me! Ok.", dropped)
    assert lines == ["give me the map", "i know the way", "follow me"]
    assert dropped[Dropped.TOO_SHORT] == 1
    long = (
        "we walked along the river, past the mill and the bridge, and up the hill to the old house"
    )
    assert english_clauses(long, dropped) == [
        "we walked along the river",
        "past the mill and the bridge",
        "and up the hill to the old house",
    ]


def test_mandarin_clauses_keep_hanzi_between_punctuation():
    assert mandarin_clauses("明月几时有？把酒问青天。a", Counter()) == ["明月几时有", "把酒问青天"]


def test_gcide_quotations_lose_their_attribution(tmp_path):
    import gzip

    text = (
        'Affect \\Af*fect"\\, v. t.\n'
        "   1. To act upon.\n"
        "      [1913 Webster]\n"
        "\n"
        "            The climate affected their health and spirits.\n"
        "                                                  --Macaulay.\n"
        "      [1913 Webster]\n"
    )
    path = tmp_path / "gcide.dict.dz"
    path.write_bytes(gzip.compress(text.encode()))
    documents = list(gcide_documents(Counter(), path))
    assert [d.lines for d in documents] == [("the climate affected their health and spirits",)]
    assert documents[0].register == "literary"
