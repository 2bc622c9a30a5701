"""Lyrics: slots from the melody, English and Mandarin prosody, the lyric language model,
constrained decoding, theme scoring and the blocklist."""

LYRICS_LANGUAGES = ("en", "zh")
"""Languages lyrics are written in (English, Mandarin): the request's ``lyrics_language``."""

REGISTERS = {"en": ("song", "modern", "literary", "scripture"), "zh": ("ci", "shi", "qu")}
"""The registers the lyric transformer is conditioned on, per language (``sources`` tags
each training document with one): a request's ``lyrics_register``."""
DEFAULT_REGISTER = {"en": "song", "zh": "ci"}
"""The register a lyric is written in unless another is asked for."""

LYRIC_MODELS = ("transformer", "lstm")
"""The lyric LMs shipped per language, each with its own lexicon: the small transformer on
the registry corpora (``lyric_<language>.pt``, ``lyric_lexicon_<language>.npz``) and the
fortunes LSTM (``lyric_lstm_<language>.pt``, ``lyric_lexicon_lstm_<language>.npz``). Which
one ``lyric_lm`` serves, and whose lexicon the decoder uses, is the ``lyric_models``
setting (``served_lyric_model``)."""


def served_lyric_model(language: str) -> str:
    """The lyric LM served for ``language``: the ``lyric_models`` setting
    (``CANTUS_LYRIC_MODELS``), read where it is needed so that Triton's backend, the lyric
    service, the editor and the evaluation agree."""
    from cantus.settings import load_settings

    return load_settings().lyric_models[language]
