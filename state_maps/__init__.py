"""Example state maps, their event scripts and the JSON Schema (package data)."""
