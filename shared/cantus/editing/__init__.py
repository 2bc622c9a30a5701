"""Editing stored pieces into new versions (issue #18)."""
