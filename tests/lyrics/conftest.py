"""The committed lyric checkpoints and lexicons, loaded once (they are small: a few MB)."""

import pytest
import torch

from cantus.lyrics.lexicon import Lexicon
from cantus.lyrics.model import LocalLyricScorer, load_lyric_checkpoint
from cantus.lyrics.training import checkpoint_path, lexicon_path


@pytest.fixture(scope="session")
def scorers():
    torch.set_num_threads(1)
    return {
        lang: LocalLyricScorer(load_lyric_checkpoint(checkpoint_path(lang)))
        for lang in ("en", "zh")
    }


@pytest.fixture(scope="session")
def lexicons():
    return {lang: Lexicon.load(lexicon_path(lang)) for lang in ("en", "zh")}
