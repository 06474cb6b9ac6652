"""Scorewright sample game: a small top-down game that drives the middleware."""
