"""State maps: designer YAML that turns game state into per-frame conditioning."""
