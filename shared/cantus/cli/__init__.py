"""The cantus command line."""
