"""Stations and therapy plans: continuous, non-repeating programs of composed pieces."""
