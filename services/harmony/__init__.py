"""The harmony service."""
