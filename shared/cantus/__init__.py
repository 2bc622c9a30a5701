"""Cantus: compose complete pieces with language models, streamed bar by bar."""
