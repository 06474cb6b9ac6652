"""Scorewright: adaptive music middleware for games."""

__version__ = "0.1.0"
