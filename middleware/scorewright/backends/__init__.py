"""Generators behind one interface (see base.Backend)."""
