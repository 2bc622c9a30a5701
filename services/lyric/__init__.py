"""The lyric service: melody bars in, lyric lines out (a line per bar when no lyrics are asked)."""
