"""The lyric service: melody bars in, lyric lines out (one line per bar when no lyrics are asked)."""
