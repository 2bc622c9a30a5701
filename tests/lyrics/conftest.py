"""The committed lyric checkpoints (transformer or LSTM, told by format) and lexicons,
loaded once (they are small: a few MB)."""

import pytest
import torch

from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.serving import load_lyric_scorer
from cantus.lyrics.training import checkpoint_path, lexicon_path


@pytest.fixture(scope="session")
def scorers():
    torch.set_num_threads(1)
    return {lang: load_lyric_scorer(checkpoint_path(lang)) for lang in ("en", "zh")}


@pytest.fixture(scope="session")
def lexicons():
    return {lang: Lexicon.load(lexicon_path(lang)) for lang in ("en", "zh")}
