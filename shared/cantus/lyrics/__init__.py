"""Lyrics: slots from the melody, English and Mandarin prosody, the lyric language model,
constrained decoding, theme scoring and the blocklist."""

LYRICS_LANGUAGES = ("en", "zh")
"""Languages lyrics are written in (English, Mandarin): the request's ``lyrics_language``."""
