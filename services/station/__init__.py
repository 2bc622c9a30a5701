"""The station service."""
