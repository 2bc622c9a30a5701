"""Cantus services: each folder is one process (gateway, melody, harmony, lyric, render)."""
