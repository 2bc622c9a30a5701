"""Which lyric LM is served per language is one setting (``lyric_models``), read alike by
the Triton backend (``LyricServing.load``), the lyric service's lexicons and the paths; a
Triton that serves another checkpoint than the caller's lexicon belongs to is refused."""

import numpy as np
import pytest
from pydantic import ValidationError

from cantus.lyrics import LYRIC_MODELS, served_lyric_model
from cantus.lyrics.client import LyricLMError, check_served
from cantus.lyrics.serving import LyricServing
from cantus.lyrics.training import CHECKPOINT_DIR, checkpoint_path, lexicon_path
from cantus.lyrics.writer import LyricResources
from cantus.settings import SERVED_LYRIC_MODELS, Settings


def test_every_served_model_is_shipped_with_its_lexicon():
    assert set(SERVED_LYRIC_MODELS) == {"en", "zh"}
    for language, model in SERVED_LYRIC_MODELS.items():
        assert model in LYRIC_MODELS
        assert checkpoint_path(language, model=model).exists()
        assert lexicon_path(language, model=model).exists()


def test_paths_name_each_model():
    assert checkpoint_path("en", model="transformer").name == "lyric_en.pt"
    assert checkpoint_path("zh", model="lstm").name == "lyric_lstm_zh.pt"
    assert lexicon_path("zh", model="lstm").name == "lyric_lexicon_lstm_zh.npz"
    with pytest.raises(ValueError, match="gpt"):
        checkpoint_path("en", model="gpt")


def test_the_setting_chooses_per_language(monkeypatch):
    monkeypatch.setenv("CANTUS_LYRIC_MODELS", '{"zh": "transformer"}')
    assert Settings().lyric_models == {"en": SERVED_LYRIC_MODELS["en"], "zh": "transformer"}
    assert served_lyric_model("zh") == "transformer"
    assert checkpoint_path("zh") == CHECKPOINT_DIR / "lyric_zh.pt"
    monkeypatch.setenv("CANTUS_LYRIC_MODELS", '{"en": "lstm", "zh": "lstm"}')
    assert checkpoint_path("en").name == "lyric_lstm_en.pt"
    assert lexicon_path("en").name == "lyric_lexicon_lstm_en.npz"
    monkeypatch.setenv("CANTUS_LYRIC_MODELS", '{"en": "gpt2"}')
    with pytest.raises(ValidationError, match="gpt2"):
        Settings()
    monkeypatch.setenv("CANTUS_LYRIC_MODELS", '{"fr": "lstm"}')
    with pytest.raises(ValidationError, match="fr"):
        Settings()


def test_serving_and_lexicon_follow_the_setting(monkeypatch):
    monkeypatch.setenv("CANTUS_LYRIC_MODELS", '{"en": "lstm", "zh": "transformer"}')
    serving = LyricServing.load(CHECKPOINT_DIR)
    versions = {lang: scorer.version.partition("@")[0] for lang, scorer in serving.scorers.items()}
    assert versions == {"en": "lyric_lstm_en", "zh": "lyric_zh"}
    resources = LyricResources(scorer_for=lambda language, register: serving.scorers[language])
    lexicon = resources.lexicon("en")
    # the LSTM's lexicon: every entry is in the LSTM's vocabulary
    vocabulary = set(serving.scorers["en"].loaded.vocab.tokens)
    assert set(lexicon.words) <= vocabulary
    texts = lambda *values: np.array([v.encode() for v in values], dtype=np.object_)  # noqa: E731
    out = serving.handle(
        {"LANGUAGE": texts("en"), "CONTEXTS": texts(""), "CANDIDATES": texts("the", "\n")}
    )
    assert out["MODEL"][0].decode().startswith("lyric_lstm_en@")


def test_a_triton_serving_another_checkpoint_is_refused():
    check_served("lyric_lstm_en@0123456789ab", "lyric_lstm_en", "en")
    check_served("gpt2-large", "lyric_en", "en")  # an LM not trained here is taken as it is
    with pytest.raises(LyricLMError, match="CANTUS_LYRIC_MODELS"):
        check_served("lyric_en@0123456789ab", "lyric_lstm_en", "en")
