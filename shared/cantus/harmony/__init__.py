"""Harmony: chord symbols, the rule-based harmoniser, voicing and bass lines."""
