"""Benchmarks: `cantus bench …`."""
