"""Generated from protos/cantus/v1 by `make protos`; do not edit (only this file is tracked)."""
