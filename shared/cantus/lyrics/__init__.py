"""Lyrics: slots from the melody, English and Mandarin prosody, the lyric language model,
constrained decoding, theme scoring and the blocklist."""
