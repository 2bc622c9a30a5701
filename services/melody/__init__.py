"""The melody service."""
